//! The fields of FD-Shifts' `hydra/config.yaml` that the analysis reads (listed in the README's "FD-Shifts folders"),
//! with OmegaConf-style `${a.b}` interpolations resolved.

use std::path::Path;

use failscope_shared::analysis::experiment::Plan;
use serde_yaml::Value;

use crate::error::InputError;

/// What the analysis needs from the config.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentConfig {
    /// `data.num_classes`.
    pub num_classes: usize,
    /// Studies and CSFs to evaluate.
    pub plan: Plan,
}

const STUDY_KEYS: [&str; 4] = ["iid_study", "noise_study", "in_class_study", "new_class_study"];

fn lookup<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(root, |v, key| v.get(key))
}

/// Resolves `${a.b}` references (whole-string or embedded) against the root, up to a depth of 16.
fn resolve(root: &Value, v: &Value, path: &Path, depth: usize) -> Result<Value, InputError> {
    let Value::String(s) = v else { return Ok(v.clone()) };
    let Some(start) = s.find("${") else {
        return Ok(v.clone());
    };
    if depth > 16 {
        return Err(InputError::file(path, format!("interpolation '{s}' is circular")));
    }
    let end = s[start..]
        .find('}')
        .map(|e| start + e)
        .ok_or_else(|| InputError::file(path, format!("unterminated interpolation in '{s}'")))?;
    let key = &s[start + 2..end];
    let target = lookup(root, key)
        .ok_or_else(|| InputError::file(path, format!("interpolation '${{{key}}}' refers to a missing field")))?;
    let target = resolve(root, target, path, depth + 1)?;
    if start == 0 && end + 1 == s.len() {
        return Ok(target);
    }
    let text = match &target {
        Value::String(t) => t.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => {
            return Err(InputError::file(
                path,
                format!("interpolation '${{{key}}}' is not a scalar"),
            ))
        }
    };
    let replaced = Value::String(format!("{}{}{}", &s[..start], text, &s[end + 1..]));
    resolve(root, &replaced, path, depth + 1)
}

fn field(root: &Value, dotted: &str, path: &Path) -> Result<Option<Value>, InputError> {
    match lookup(root, dotted) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => resolve(root, v, path, 0).map(Some),
    }
}

/// A dataset entry: a name, or (HEAD) a DataConfig mapping with a `dataset` key.
fn dataset_name(root: &Value, v: &Value, path: &Path, at: &str) -> Result<String, InputError> {
    let v = resolve(root, v, path, 0)?;
    match &v {
        Value::String(s) => Ok(s.clone()),
        Value::Mapping(_) => match v.get("dataset").map(|d| resolve(root, d, path, 0)).transpose()? {
            Some(Value::String(s)) => Ok(s),
            _ => Err(InputError::file(
                path,
                format!("{at}: a dataset mapping needs a string 'dataset' field"),
            )),
        },
        other => Err(InputError::file(
            path,
            format!("{at}: expected a dataset name, found {other:?}"),
        )),
    }
}

fn dataset_list(root: &Value, key: &str, path: &Path) -> Result<Vec<String>, InputError> {
    let at = format!("eval.query_studies.{key}");
    match field(root, &at, path)? {
        None => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| dataset_name(root, v, path, &format!("{at}[{i}]")))
            .collect(),
        // HEAD: noise_study may be a single DataConfig.
        Some(single) => Ok(vec![dataset_name(root, &single, path, &at)?]),
    }
}

/// Parses `hydra/config.yaml`.
pub fn load(path: &Path) -> Result<ExperimentConfig, InputError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read the config ({e})")))?;
    let root: Value =
        serde_yaml::from_str(&text).map_err(|e| InputError::file(path, format!("not valid YAML ({e})")))?;
    let num_classes = match field(&root, "data.num_classes", path)? {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|c| c >= 2) => n.as_u64().unwrap_or(0) as usize,
        Some(other) => {
            return Err(InputError::file(
                path,
                format!("data.num_classes is {other:?}, expected an integer >= 2"),
            ))
        }
        None => return Err(InputError::file(path, "missing field data.num_classes")),
    };
    if let Some(Value::Mapping(kwargs)) = field(&root, "data.kwargs", path)? {
        if kwargs.contains_key("out_classes") {
            return Err(InputError::file(
                path,
                "data.kwargs.out_classes (open-set studies) is not supported yet",
            ));
        }
    }
    if let Some(Value::Bool(false)) = field(&root, "eval.val_tuning", path)? {
        return Err(InputError::file(
            path,
            "eval.val_tuning is false: FD-Shifts needs val_tuning to fit Platt scaling",
        ));
    }
    if let Some(Value::Mapping(studies)) = field(&root, "eval.query_studies", path)? {
        for key in studies.keys() {
            let name = key.as_str().unwrap_or("?");
            if !STUDY_KEYS.contains(&name) {
                return Err(InputError::file(
                    path,
                    format!(
                        "unknown study '{name}' in eval.query_studies (expected one of {})",
                        STUDY_KEYS.join(", ")
                    ),
                ));
            }
        }
    } else {
        return Err(InputError::file(path, "missing field eval.query_studies"));
    }
    let csfs = match field(&root, "eval.confidence_measures.test", path)? {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| match resolve(&root, v, path, 0)? {
                Value::String(s) => Ok(s),
                other => Err(InputError::file(
                    path,
                    format!("eval.confidence_measures.test: expected names, found {other:?}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(InputError::file(path, "missing list eval.confidence_measures.test")),
    };
    let iid_study = match lookup(&root, "eval.query_studies.iid_study") {
        None | Some(Value::Null) => None,
        Some(v) => Some(dataset_name(&root, v, path, "eval.query_studies.iid_study")?),
    };
    let fast_dev_run = matches!(field(&root, "trainer.fast_dev_run", path)?, Some(Value::Bool(true)));
    let ext_confid_name = match field(&root, "eval.ext_confid_name", path)? {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let number = |key: &str, default: f64| -> Result<f64, InputError> {
        match field(&root, key, path)? {
            None => Ok(default),
            Some(Value::Number(n)) => n
                .as_f64()
                .ok_or_else(|| InputError::file(path, format!("{key} is not a number"))),
            Some(other) => Err(InputError::file(path, format!("{key} is {other:?}, expected a number"))),
        }
    };
    let (r_star, r_delta) = (number("eval.r_star", 0.25)?, number("eval.r_delta", 0.05)?);
    if !((0.0..=1.0).contains(&r_star) && r_delta > 0.0 && r_delta < 1.0) {
        return Err(InputError::file(
            path,
            format!("eval.r_star = {r_star} and eval.r_delta = {r_delta}: expected a risk in [0, 1] and a confidence in (0, 1)"),
        ));
    }
    Ok(ExperimentConfig {
        num_classes,
        plan: Plan {
            iid_study,
            noise_study: dataset_list(&root, "noise_study", path)?,
            in_class_study: dataset_list(&root, "in_class_study", path)?,
            new_class_study: dataset_list(&root, "new_class_study", path)?,
            fast_dev_run,
            csfs,
            ext_confid_name,
            r_star,
            r_delta,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ExperimentConfig, InputError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        std::fs::write(&p, yaml).unwrap();
        load(&p)
    }

    const BASE: &str = "data: {num_classes: 3, dataset: derm}\neval:\n  val_tuning: true\n  ext_confid_name: dg\n  confidence_measures: {test: [det_mcp, ext]}\n";

    #[test]
    fn interpolations_and_data_configs_resolve() {
        let cfg = parse(&format!(
            "{BASE}  query_studies:\n    iid_study: ${{data.dataset}}\n    noise_study: {{dataset: derm_corrupt}}\n    in_class_study: [site_b]\n    new_class_study: []\n"
        ))
        .unwrap();
        assert_eq!(cfg.num_classes, 3);
        assert_eq!(cfg.plan.iid_study.as_deref(), Some("derm"));
        assert_eq!(cfg.plan.noise_study, vec!["derm_corrupt"]);
        assert_eq!(cfg.plan.in_class_study, vec!["site_b"]);
        assert_eq!(cfg.plan.ext_confid_name.as_deref(), Some("dg"));
    }

    #[test]
    fn unknown_study_and_missing_fields_are_named() {
        let e = parse(&format!(
            "{BASE}  query_studies:\n    iid_study: derm\n    bogus_study: [x]\n"
        ))
        .unwrap_err();
        assert!(e.problem.contains("unknown study 'bogus_study'"), "{e}");
        let e = parse("eval: {query_studies: {}}\n").unwrap_err();
        assert!(e.problem.contains("data.num_classes"), "{e}");
        let e = parse(&format!("{BASE}  query_studies:\n    iid_study: ${{data.nope}}\n")).unwrap_err();
        assert!(e.problem.contains("data.nope"), "{e}");
    }
}
