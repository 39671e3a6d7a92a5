//! The `failscope` command line: raw flags (clap) → actions (`datasets` and `infer` hold the
//! dataset and inference commands). `run` is the whole program minus the
//! process exit, so tests call it in-process; exit code 2 means bad input, 1 anything else.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use failscope_shared::analysis::{Compat, EvalConfig, TieOrder};

use crate::error::InputError;
use crate::ingest::evaluate_path;
use crate::recipe::Recipe;
use crate::{export, report};

mod bench;
mod datasets;
mod import;
mod infer;
mod latent;
mod serve;

pub use datasets::dataset_summary;
use import::{import, open_store};
use infer::InferArgs;

/// Find silent failures of medical image classifiers.
#[derive(Debug, Parser)]
#[command(name = "failscope", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Score an FD-Shifts experiment folder (or a CSV of per-sample outputs) with FD-Shifts' metrics.
    Eval {
        /// FD-Shifts experiment folder (holding `test_results/` and `hydra/`), or a `.csv` file.
        path: PathBuf,
        #[command(flatten)]
        defs: Definitions,
        /// Output: one JSON object, or tables (default: table on a terminal, JSON otherwise).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Manage the study store.
    Study {
        #[command(subcommand)]
        action: StudyAction,
    },
    /// Inspect a dataset: classes, domains and splits with their sizes.
    Dataset {
        /// `ham10000` (binary), `ham10000-7class`, a MedMNIST `.npz`, or an image-folder manifest `.csv`.
        /// HAM10000 and relative `.npz` paths are looked up in the data folder.
        source: String,
        /// The data folder (holding `ham10000/`, `medmnist/`).
        #[arg(long, env = "FAILSCOPE_DATA")]
        data: Option<PathBuf>,
    },
    /// Run a TorchScript model over a dataset's validation and shifted test sets; write the outputs as
    /// an FD-Shifts experiment folder (score it with `failscope eval`).
    Infer(Box<InferArgs>),
    /// Run a study recipe end to end: shifts, training (CNN + ConfidNet, DeepGamblers), inference,
    /// FD-Shifts experiment folders, metrics; imported into the study store.
    Run {
        #[command(flatten)]
        recipe: RecipeArgs,
        #[command(flatten)]
        db: DbArg,
    },
    /// Run a recipe over several seeds (resumable: a seed whose studies are stored is not redone)
    /// and write one report: AURC/AUGRC per test set and CSF over seeds with bootstrap CIs,
    /// rankings with significance, SGR working points, and the findings in words.
    Bench(Box<bench::BenchArgs>),
    /// Train a recipe's models (CNN + ConfidNet head, DeepGamblers CNN) and save them as checkpoint
    /// folders `<out>/confidnet`, `<out>/deepgamblers` (use with `failscope infer --model`).
    Train {
        #[command(flatten)]
        recipe: RecipeArgs,
    },
    /// Embed a study's features jointly over all test sets: PCA, then t-SNE in 2-D or 3-D (cached).
    Embed(Box<latent::EmbedArgs>),
    /// Cluster a study's samples (k-means per class, GMM, DBSCAN) with per-cluster failure statistics.
    Cluster(Box<latent::ClusterArgs>),
    /// Serve the web app and its API.
    Serve(Box<serve::ServeArgs>),
    /// Manage the access tokens a shared server requires (only their hashes are stored).
    Token {
        #[command(subcommand)]
        action: serve::TokenAction,
    },
}

#[derive(Debug, Subcommand)]
enum StudyAction {
    /// Evaluate an FD-Shifts experiment folder or CSV and store it as a study.
    Import {
        /// The folder or CSV file.
        path: PathBuf,
        /// Display name (default: the folder or file name).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        defs: Definitions,
        #[command(flatten)]
        db: DbArg,
    },
    /// List stored studies.
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Show a study: summary and accuracy + AURC per test set and CSF.
    Show {
        /// Study id.
        id: i64,
        #[command(flatten)]
        db: DbArg,
    },
    /// Write a study's source back out (an FD-Shifts experiment folder, or the CSV), to re-score or share.
    Export {
        /// Study id.
        id: i64,
        /// Output folder (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        db: DbArg,
    },
}

#[derive(Debug, clap::Args)]
struct DbArg {
    /// The SQLite study store.
    #[arg(long, env = "FAILSCOPE_DB", default_value = ".failscope/failscope.db")]
    db: PathBuf,
}

/// What `run` and `train` take: a recipe, a new output folder, the data folder and the device.
#[derive(clap::Args, Debug)]
struct RecipeArgs {
    /// The recipe (TOML): its data, shifts and training settings.
    recipe: PathBuf,
    /// Output folder for the experiment folders and checkpoints (must not exist).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    on: DataDevice,
}

/// Where a recipe's data comes from and where it trains: the flags `run`, `train` and `bench` share.
#[derive(clap::Args, Debug)]
struct DataDevice {
    /// The data folder.
    #[arg(long, env = "FAILSCOPE_DATA")]
    data: Option<PathBuf>,
    /// Where to train and infer.
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceArg,
}

/// A failed write of the command's output.
fn io(e: std::io::Error) -> CliError {
    CliError::Other(format!("writing output: {e}"))
}

/// A stage-aware progress bar on stderr (hidden when stderr is not a terminal).
fn bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(1000);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:>12} [{bar:40}] {percent:>3}% ({elapsed})")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar
}

/// A progress callback that moves `bar`: stage name and fraction done.
fn report_to(bar: &indicatif::ProgressBar) -> impl Fn(&str, f64) -> std::ops::ControlFlow<()> + Sync + '_ {
    move |stage: &str, f: f64| {
        if bar.message() != stage {
            bar.set_message(stage.to_string());
        }
        bar.set_position((f.clamp(0.0, 1.0) * 1000.0) as u64);
        std::ops::ControlFlow::Continue(())
    }
}

impl RecipeArgs {
    /// The parsed recipe and the output folder, once both are usable (a new folder, a device
    /// that exists).
    fn load(&self) -> Result<(Recipe, PathBuf), CliError> {
        if self.out.exists() {
            return Err(InputError::file(&self.out, "already exists: choose a new output folder").into());
        }
        let r = Recipe::load(&self.recipe)?;
        self.on.device.compute().device()?;
        Ok((r, self.out.clone()))
    }
}

#[derive(Debug, Clone, clap::Args)]
struct Definitions {
    /// Metric definitions: FD-Shifts HEAD, quirks included (`fd-shifts-head`, also `head` or
    /// `current`), the paper code (`fd-shifts-0.1.1`), or HEAD with its quirks corrected (`corrected`).
    #[arg(long, value_enum, default_value = "fd-shifts-head")]
    compat: CompatArg,
    /// Order of tied confidences for the tie-dependent metrics (legacy AURC, b-aurc, test_risk):
    /// numpy's `argsort` (FD-Shifts' numbers), the input order, or errors / corrects first.
    #[arg(long, value_enum, default_value = "numpy")]
    ties: TiesArg,
    /// Bootstrap resamples for 95 % intervals of AURC/AUGRC (`<metric>_ci95_low/high`); 0 = none.
    #[arg(long, default_value_t = 0)]
    bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// `--device`.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum DeviceArg {
    Cpu,
    Cuda,
}

impl DeviceArg {
    fn compute(self) -> crate::train::Compute {
        match self {
            DeviceArg::Cpu => crate::train::Compute::Cpu,
            DeviceArg::Cuda => crate::train::Compute::Cuda,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CompatArg {
    #[value(name = "fd-shifts-head", alias = "head", alias = "current")]
    Head,
    #[value(name = "fd-shifts-0.1.1")]
    FdShifts011,
    Corrected,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum TiesArg {
    Numpy,
    Input,
    ErrorsFirst,
    CorrectsFirst,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Json,
    Table,
}

impl Default for Definitions {
    /// The CLI defaults: FD-Shifts HEAD, numpy's tie order, no bootstrap.
    fn default() -> Self {
        Self {
            compat: CompatArg::Head,
            ties: TiesArg::Numpy,
            bootstrap: 0,
            seed: 0,
        }
    }
}

impl Definitions {
    fn config(&self) -> EvalConfig {
        EvalConfig {
            compat: match self.compat {
                CompatArg::Head => Compat::Head,
                CompatArg::FdShifts011 => Compat::FdShifts011,
                CompatArg::Corrected => Compat::Corrected,
            },
            ties: match self.ties {
                TiesArg::Numpy => TieOrder::Numpy,
                TiesArg::Input => TieOrder::Input,
                TiesArg::ErrorsFirst => TieOrder::ErrorsFirst,
                TiesArg::CorrectsFirst => TieOrder::CorrectsFirst,
            },
            bootstrap: self.bootstrap,
            seed: self.seed,
            ..EvalConfig::default()
        }
    }
}

/// A failure of a command: bad input (exit 2) or anything else (exit 1).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The user's input is wrong.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Something else failed.
    #[error("{0}")]
    Other(String),
}

/// Bad input exits 2; a failed write or a failing library is not the user's input and exits 1.
impl From<crate::error::Error> for CliError {
    fn from(e: crate::error::Error) -> Self {
        match e {
            crate::error::Error::Input(e) => CliError::Input(e),
            crate::error::Error::Write(e) => CliError::Other(e.to_string()),
            crate::error::Error::Internal(e) => CliError::Other(e),
        }
    }
}

impl From<crate::store::StoreError> for CliError {
    fn from(e: crate::store::StoreError) -> Self {
        CliError::Other(e.to_string())
    }
}

/// Study `id` exists in the store of `db`, or an input error naming both.
fn check_study(store: &crate::store::Store, id: i64, db: &DbArg) -> Result<(), CliError> {
    if !store.exists(id)? {
        return Err(InputError::item("study", format!("no study with id {id} in {}", db.db.display())).into());
    }
    Ok(())
}

fn execute(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Eval { path, defs, format } => {
            let ev = evaluate_path(&path, &defs.config())?;
            let format = format.unwrap_or(if std::io::stdout().is_terminal() {
                Format::Table
            } else {
                Format::Json
            });
            match format {
                Format::Json => writeln!(out, "{}", report::to_json(&ev.report)).map_err(io)?,
                Format::Table => write!(out, "{}", report::to_table(&ev.report)).map_err(io)?,
            }
        }
        Command::Embed(args) => latent::embed(&args, out)?,
        Command::Cluster(args) => latent::cluster(&args, out)?,
        Command::Infer(args) => {
            let summary = infer::infer(&args)?;
            writeln!(out, "{summary}").map_err(io)?;
        }
        Command::Train { recipe: args } => {
            let (r, out_dir) = args.load()?;
            let start = std::time::Instant::now();
            let t = crate::recipe::train(&r, args.on.data.as_deref(), args.on.device.compute())?;
            let dirs = crate::recipe::save_checkpoints(&t, &r, &out_dir)?;
            for ((model, curve), dir) in t.models.iter().zip(&dirs) {
                let best = curve.iter().map(|e| e.val_balanced_accuracy).fold(f64::NAN, f64::max);
                writeln!(
                    out,
                    "{}: {} epochs, best validation balanced accuracy {best:.3} → {}",
                    model.method(),
                    curve.len(),
                    dir.display()
                )
                .map_err(io)?;
            }
            writeln!(out, "trained in {:.0} s", start.elapsed().as_secs_f64()).map_err(io)?;
        }
        Command::Run { recipe: args, db } => {
            let (r, out_dir) = args.load()?;
            let start = std::time::Instant::now();
            let (_design, runs) = crate::recipe::run(&r, args.on.data.as_deref(), &out_dir, args.on.device.compute())?;
            let mut store = open_store(&db.db)?;
            for run in &runs {
                let (id, ev) = import(
                    &mut store,
                    &run.dir,
                    Some(&format!("{}/{}", r.name, run.method)),
                    &Definitions::default(),
                )?;
                let epochs = run.curve.len();
                writeln!(
                    out,
                    "\n{} / {} (study {id}, {epochs} epochs)\n{}",
                    r.name,
                    run.method,
                    report::summary_table(&ev.report)
                )
                .map_err(io)?;
            }
            writeln!(
                out,
                "finished in {:.0} s; experiments in {}",
                start.elapsed().as_secs_f64(),
                out_dir.display()
            )
            .map_err(io)?;
        }
        Command::Dataset { source, data } => {
            let ds = crate::data::load(&source, data.as_deref())?;
            write!(out, "{}", dataset_summary(&ds)).map_err(io)?;
        }
        Command::Study {
            action: StudyAction::Import { path, name, defs, db },
        } => {
            let mut store = open_store(&db.db)?;
            let (id, _) = import(&mut store, &path, name.as_deref(), &defs)?;
            writeln!(out, "imported study {id} from {}", path.display()).map_err(io)?;
        }
        Command::Study {
            action: StudyAction::Show { id, db },
        } => {
            let store = open_store(&db.db)?;
            let d = store
                .get(id)?
                .ok_or_else(|| InputError::item("study", format!("no study with id {id} in {}", db.db.display())))?;
            let s = &d.summary;
            writeln!(
                out,
                "study {} \"{}\" ({}, from {})\n{} samples, {} classes, metrics: {}\n{}",
                s.id,
                s.name,
                s.kind,
                s.source,
                s.n_samples,
                s.n_classes,
                d.compat,
                report::summary_table(&d.report)
            )
            .map_err(io)?;
        }
        Command::Study {
            action: StudyAction::Export { id, out: dir, db },
        } => {
            let store = open_store(&db.db)?;
            check_study(&store, id, &db)?;
            export::write_files(&dir, &store.files(id)?)?;
            writeln!(out, "exported study {id} to {}", dir.display()).map_err(io)?;
        }
        Command::Study {
            action: StudyAction::List { db },
        } => {
            let store = open_store(&db.db)?;
            for s in store.list()? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{} samples\t{}",
                    s.id,
                    s.name,
                    s.kind,
                    s.n_samples,
                    s.test_sets.join(",")
                )
                .map_err(io)?;
            }
        }
        Command::Serve(args) => serve::serve(*args, out)?,
        Command::Bench(args) => bench::bench(&args, out)?,
        Command::Token { action } => serve::token(action, out)?,
    }
    Ok(())
}

/// Runs the program on `args` (including the program name); returns the exit code.
pub fn run<I, T>(args: I, out: &mut dyn Write, err: &mut dyn Write) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = if e.use_stderr() {
                write!(err, "{e}")
            } else {
                write!(out, "{e}")
            };
            return e.exit_code();
        }
    };
    match execute(cli, out) {
        Ok(()) => 0,
        Err(CliError::Input(e)) => {
            let _ = writeln!(err, "error: {e}");
            2
        }
        Err(CliError::Other(e)) => {
            let _ = writeln!(err, "error: {e}");
            1
        }
    }
}
