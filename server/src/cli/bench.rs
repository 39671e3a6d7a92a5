//! `failscope bench <recipe> --seeds N`: the recipe once per seed (train, shift, infer, evaluate,
//! store), resumable, then one report from the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::import::{import, open_store};
use super::{bar, io, report_to, CliError, DataDevice, DbArg, Definitions};
use crate::bench::{self, aggregate};
use crate::error::{InputError, WriteError};
use crate::recipe::Recipe;
use crate::store::Store;

/// The models a recipe trains, by FD-Shifts method name.
const METHODS: [&str; 2] = ["confidnet", "deepgamblers"];

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The recipe (TOML).
    recipe: PathBuf,
    /// How many seeds: the recipe's training seed, then the next ones. The shift design (the
    /// recipe's `[shifts] seed`) stays the same, so every seed is scored on the same test rows.
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Folder of the seeds' experiment folders (`seed-<k>/`) and of the report (`report.md`,
    /// `report.html`, `report.json`). Kept between runs: a seed whose studies are stored is not redone.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    on: DataDevice,
    /// Bootstrap resamples of the test rows for the CIs and rankings.
    #[arg(long, default_value_t = 500)]
    boot: usize,
    /// Only write the report, from the studies already stored (fails if a seed is missing).
    #[arg(long)]
    report_only: bool,
    /// Also write the report's summary (findings and one row per shift) into this Markdown file,
    /// between the lines `<!-- bench:<recipe> -->` and `<!-- /bench:<recipe> -->` (e.g. the README).
    #[arg(long, value_name = "FILE")]
    readme: Option<PathBuf>,
    #[command(flatten)]
    db: DbArg,
}

/// Replaces `result`'s summary block in the Markdown file `path`.
fn write_summary(path: &Path, result: &aggregate::BenchResult, findings: &[String]) -> Result<(), CliError> {
    let doc = std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read ({e})")))?;
    let block = bench::markdown::summary(result, findings);
    let new =
        bench::markdown::replace_block(&doc, &result.recipe, &block).ok_or_else(|| no_block(path, &result.recipe))?;
    write_atomic(path, &new)
}

fn no_block(path: &Path, recipe: &str) -> CliError {
    let (begin, end) = bench::markdown::block_markers(recipe);
    InputError::file(
        path,
        format!("has no summary block: add a line `{begin}` and, below it, a line `{end}` where the summary goes"),
    )
    .into()
}

fn write_atomic(path: &Path, text: &str) -> Result<(), CliError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CliError::Other(WriteError::new(path, format!("cannot write ({e})")).to_string()))
}

/// Runs the seeds not stored yet. A seed's folder left by an interrupted run is removed and the
/// seed redone; studies already stored are kept.
fn run_missing(args: &BenchArgs, r: &Recipe, store: &mut Store, out: &mut dyn Write) -> Result<(), CliError> {
    for k in 0..args.seeds {
        let seed = r.train.seed + k;
        let names: Vec<String> = METHODS.iter().map(|m| bench::study_name(&r.name, seed, m)).collect();
        let mut missing = Vec::new();
        for (method, name) in METHODS.iter().zip(&names) {
            if store.study_named(name)?.is_none() {
                missing.push((*method, name.clone()));
            }
        }
        if missing.is_empty() {
            writeln!(out, "seed {seed}: stored").map_err(io)?;
            continue;
        }
        if args.report_only {
            return Err(InputError::item(
                format!("seed {seed}"),
                format!("{} not in the store: run without --report-only first", names.join(", ")),
            )
            .into());
        }
        let dir = args.out.join(format!("seed-{seed}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| CliError::Other(format!("{}: cannot remove an interrupted seed ({e})", dir.display())))?;
        }
        writeln!(out, "seed {seed}: training and inference into {}", dir.display()).map_err(io)?;
        let mut rk = r.clone();
        rk.train.seed = seed;
        let (_, runs) = crate::recipe::run(&rk, args.on.data.as_deref(), &dir, args.on.device.compute())?;
        for run in &runs {
            if let Some((_, name)) = missing.iter().find(|(m, _)| *m == run.method) {
                let (id, _) = import(store, &run.dir, Some(name), &Definitions::default())?;
                writeln!(out, "seed {seed}: stored {name} as study {id}").map_err(io)?;
            }
        }
    }
    Ok(())
}

pub(super) fn bench(args: &BenchArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if args.seeds == 0 {
        return Err(InputError::item("--seeds", "must be at least 1").into());
    }
    let r = Recipe::load(&args.recipe)?;
    if !args.report_only {
        args.on.device.compute().device()?;
    }
    if let Some(path) = &args.readme {
        // Checked before hours of training, not after.
        let doc = std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read ({e})")))?;
        if bench::markdown::replace_block(&doc, &r.name, "").is_none() {
            return Err(no_block(path, &r.name));
        }
    }
    let mut store = open_store(&args.db.db)?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::Other(format!("{}: cannot create ({e})", args.out.display())))?;
    run_missing(args, &r, &mut store, out)?;
    let seeds: Vec<u64> = (0..args.seeds).map(|k| r.train.seed + k).collect();
    let data = bench::load(&store, &r.name, &r.data.source, &seeds, &METHODS).map_err(|e| match e {
        bench::BenchError::Input(e) => CliError::Input(e),
        bench::BenchError::Store(e) => e.into(),
    })?;
    let settings = aggregate::Settings {
        n_boot: args.boot,
        ..aggregate::Settings::default()
    };
    writeln!(
        out,
        "aggregating {} test sets × {} CSFs × {} seeds ({} bootstrap resamples)…",
        data.sets.len(),
        data.columns.len(),
        seeds.len(),
        args.boot
    )
    .map_err(io)?;
    let progress = bar();
    let tick = report_to(&progress);
    let result = aggregate::aggregate(&data, &settings, &|f| {
        let _ = tick("aggregating", f);
    });
    progress.finish_and_clear();
    let findings = bench::markdown::findings(&result);
    let files = bench::render(&result, &findings);
    write_atomic(&args.out.join("report.md"), &files.markdown)?;
    write_atomic(&args.out.join("report.html"), &files.html)?;
    write_atomic(&args.out.join("report.json"), &files.json)?;
    // The web app serves it from the store (`/reports/<recipe>`).
    store.save_report(&r.name, &seeds, &data.studies, &files)?;
    if let Some(path) = &args.readme {
        write_summary(path, &result, &findings)?;
        writeln!(out, "summary written into {}", path.display()).map_err(io)?;
    }
    writeln!(out, "\nFindings:").map_err(io)?;
    for f in &findings {
        writeln!(out, "- {f}").map_err(io)?;
    }
    writeln!(out, "\nreport: {}", args.out.join("report.md").display()).map_err(io)?;
    Ok(())
}
