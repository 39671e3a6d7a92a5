//! `failscope infer`: flags → shift plan → TorchScript inference → FD-Shifts folder.

use std::path::PathBuf;

use crate::data::split::Fractions;
use crate::error::InputError;
use crate::export;
use crate::infer::InferConfig;
use crate::preprocess::Preprocess;
use crate::shift::corrupt::Corruption;
use crate::shift::{self, ShiftPlan};
use crate::torch::TorchModel;
use crate::train::checkpoint;

use super::CliError;

#[derive(Debug, clap::Args)]
pub(super) struct InferArgs {
    /// The model: a TorchScript file whose `forward(x)` returns logits or `(logits, features)`, or a
    /// checkpoint folder written by `failscope train`.
    #[arg(long)]
    model: PathBuf,
    /// Where to run: `cpu`, or `cuda` (checkpoints of `failscope train`; needs a GPU and the NVIDIA libraries, see the README).
    #[arg(long, value_enum, default_value = "cpu")]
    device: super::DeviceArg,
    /// Dataset source, as for `failscope dataset`.
    #[arg(long)]
    dataset: String,
    /// The data folder.
    #[arg(long, env = "FAILSCOPE_DATA")]
    data: Option<PathBuf>,
    /// Output folder (must not exist).
    #[arg(long)]
    out: PathBuf,
    /// Input size `H,W` (else from the sidecar `<model>.json`).
    #[arg(long, value_delimiter = ',')]
    size: Option<Vec<u32>>,
    /// Normalisation mean `r,g,b` on [0, 1] intensities (default: sidecar, else ImageNet's).
    #[arg(long, value_delimiter = ',')]
    mean: Option<Vec<f32>>,
    /// Normalisation std `r,g,b` (default: sidecar, else ImageNet's).
    #[arg(long, value_delimiter = ',')]
    std: Option<Vec<f32>>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// MC-dropout passes (0 = none); only Dropout modules sample, BatchNorm stays in eval mode.
    #[arg(long, default_value_t = 0)]
    mc: usize,
    /// Acquisition shift: a domain (site) held out as its own test set; repeatable.
    #[arg(long = "hold-out-domain")]
    hold_out_domains: Vec<String>,
    /// Manifestation shift: `key=v1,v2` held out as one test set (HAM10000: `dx=bkl,akiec`).
    #[arg(long)]
    hold_out_subtypes: Option<String>,
    /// Corruptions of the i.i.d. test set at severities 1–5: `all` or names (`gaussian_noise,hair,…`).
    #[arg(long, value_delimiter = ',')]
    corrupt: Vec<String>,
    /// Training share of samples without a predefined split.
    #[arg(long, default_value_t = 0.7)]
    train: f64,
    /// Validation share.
    #[arg(long, default_value_t = 0.1)]
    val: f64,
    /// Seed of the split and the corruptions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn shift_plan(a: &InferArgs) -> Result<ShiftPlan, InputError> {
    let corruptions = Corruption::parse_list(&a.corrupt, "--corrupt")?;
    let held_out_subtypes = match &a.hold_out_subtypes {
        None => None,
        Some(spec) => {
            let (key, values) = spec
                .split_once('=')
                .ok_or_else(|| InputError::item("--hold-out-subtypes", format!("{spec:?}: expected key=v1,v2")))?;
            Some((key.to_string(), values.split(',').map(str::to_string).collect()))
        }
    };
    Ok(ShiftPlan {
        held_out_domains: a.hold_out_domains.clone(),
        held_out_subtypes,
        corruptions,
        fractions: Fractions {
            train: a.train,
            val: a.val,
        },
        seed: a.seed,
    })
}

pub(super) fn infer(a: &InferArgs) -> Result<String, CliError> {
    if a.out.exists() {
        return Err(InputError::file(&a.out, "already exists: choose a new output folder").into());
    }
    for (flag, values, n) in [
        ("--size", a.size.as_ref().map(Vec::len), 2),
        ("--mean", a.mean.as_ref().map(Vec::len), 3),
        ("--std", a.std.as_ref().map(Vec::len), 3),
    ] {
        if values.is_some_and(|len| len != n) {
            return Err(InputError::item(flag, format!("expected {n} comma-separated numbers")).into());
        }
    }
    let compute = a.device.compute();
    let checkpoint = if checkpoint::is_checkpoint(&a.model) {
        Some(checkpoint::load(&a.model, compute.device()?)?)
    } else {
        if compute != crate::train::Compute::Cpu {
            return Err(InputError::item(
                "--device cuda",
                "TorchScript models run on the CPU here; only checkpoints of `failscope train` run on CUDA",
            )
            .into());
        }
        None
    };
    let sidecar = match &checkpoint {
        Some((_, card)) => Some(card.preprocess.clone()),
        None => Preprocess::sidecar(&a.model)?,
    };
    let size = match (&a.size, &sidecar) {
        (Some(s), _) => [s[0], s[1]],
        (None, Some(p)) => p.size,
        (None, None) => {
            return Err(InputError::file(
                &a.model,
                "no input size: pass --size H,W or write a sidecar <model>.json",
            )
            .into())
        }
    };
    let pick = |flag: &Option<Vec<f32>>, side: Option<[f32; 3]>, default: [f32; 3]| -> [f32; 3] {
        flag.as_ref().map(|v| [v[0], v[1], v[2]]).or(side).unwrap_or(default)
    };
    let preprocess = Preprocess {
        size,
        mean: pick(&a.mean, sidecar.as_ref().map(|p| p.mean), [0.485, 0.456, 0.406]),
        std: pick(&a.std, sidecar.as_ref().map(|p| p.std), [0.229, 0.224, 0.225]),
    };
    let ds = crate::data::load(&a.dataset, a.data.as_deref())?;
    let design = shift::design(&ds, &shift_plan(a)?)?;
    let cfg = InferConfig {
        preprocess,
        batch: a.batch,
        mc_passes: a.mc,
        seed: a.seed,
    };
    let (mut rows, ext_name) = match &checkpoint {
        Some((model, card)) => {
            if card.classes != ds.classes {
                return Err(InputError::file(
                    &a.model,
                    format!(
                        "trained for classes {:?}, but the dataset has {:?}",
                        card.classes, ds.classes
                    ),
                )
                .into());
            }
            (
                crate::infer::run(model.classifier(), &ds, &design, &cfg)?,
                model.ext_name(),
            )
        }
        None => (
            crate::infer::run(&TorchModel::load(&a.model)?, &ds, &design, &cfg)?,
            "ext",
        ),
    };
    let mut warning = String::new();
    if rows.features.is_none() {
        // The latent view still works, on the logits (documented in the README's model contract).
        warning = "\nwarning: the model returns only logits: the latent space will use the logits as features".into();
        rows.features = Some((rows.logits.clone(), rows.num_classes));
    }
    export::write_fdshifts(&a.out, &rows, ext_name)?;
    let sets: Vec<String> = design
        .test_sets
        .iter()
        .map(|t| {
            let mix: Vec<String> = shift::label_mix(&ds, &t.rows)
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            format!("  {:<36}{:>7} rows  ({})", t.name, t.rows.len(), mix.join(", "))
        })
        .collect();
    Ok(format!(
        "wrote {} ({} validation rows, {} test sets):\n{}\nscore it: failscope eval {}{warning}",
        a.out.display(),
        design.val.len(),
        design.test_sets.len(),
        sets.join("\n"),
        a.out.display()
    ))
}
