//! The fields of FD-Shifts' `hydra/config.yaml` that the analysis reads (listed in the README's "FD-Shifts folders"),
//! with OmegaConf-style `${a.b}` interpolations resolved.

use std::cell::Cell;
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

/// How deep flow collections (`[`, `{`) may nest. libyaml, under serde_yaml, takes time quadratic in that depth:
/// 100,000 nested `[` cost a second, forty under a sanitizer. A hydra config nests a handful of levels.
const MAX_NESTING: usize = 64;
/// How many `${…}` substitutions one config may need in all, and how long a resolved string may grow. Each
/// `a: ${b}${b}`, `b: ${c}${c}`, … doubles the work, so a chain of 16 such keys would take 65,536 steps.
const MAX_STEPS: usize = 10_000;
const MAX_RESOLVED_LEN: usize = 64 * 1024;
/// How long a chain of references (`a` → `b` → …) may be before it is called circular.
const MAX_CHAIN: usize = 16;

/// The deepest nesting of flow brackets, counting brackets inside quoted strings too: an upper bound.
fn flow_nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn lookup<'a>(root: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(root, |v, key| v.get(key))
}

/// Resolves OmegaConf-style `${a.b}` references, whole-string or embedded, against the config's root, within a
/// budget of steps shared by the whole config.
struct Resolver<'a> {
    root: &'a Value,
    path: &'a Path,
    steps: Cell<usize>,
}

impl Resolver<'_> {
    fn error(&self, problem: String) -> InputError {
        InputError::file(self.path, problem)
    }

    fn resolve(&self, v: &Value) -> Result<Value, InputError> {
        self.resolve_at(v, 0)
    }

    /// `chain` counts the references followed to reach `v`.
    fn resolve_at(&self, v: &Value, chain: usize) -> Result<Value, InputError> {
        let Value::String(s) = v else { return Ok(v.clone()) };
        if !s.contains("${") {
            return Ok(v.clone());
        }
        if chain > MAX_CHAIN {
            return Err(self.error(format!("interpolation '{s}' is circular")));
        }
        let mut text = String::new();
        let mut rest = s.as_str();
        while let Some(start) = rest.find("${") {
            let steps = self.steps.get() + 1;
            if steps > MAX_STEPS {
                return Err(self.error(format!(
                    "the interpolations need more than {MAX_STEPS} substitutions in all"
                )));
            }
            self.steps.set(steps);
            let end = rest[start..]
                .find('}')
                .map(|e| start + e)
                .ok_or_else(|| self.error(format!("unterminated interpolation in '{s}'")))?;
            let key = &rest[start + 2..end];
            let target = lookup(self.root, key)
                .ok_or_else(|| self.error(format!("interpolation '${{{key}}}' refers to a missing field")))?;
            let target = self.resolve_at(target, chain + 1)?;
            if start == 0 && end + 1 == s.len() {
                return Ok(target);
            }
            text.push_str(&rest[..start]);
            match &target {
                Value::String(t) => text.push_str(t),
                Value::Number(n) => text.push_str(&n.to_string()),
                Value::Bool(b) => text.push_str(&b.to_string()),
                _ => return Err(self.error(format!("interpolation '${{{key}}}' is not a scalar"))),
            }
            if text.len() > MAX_RESOLVED_LEN {
                return Err(self.error(format!("interpolation '{s}' grows past {MAX_RESOLVED_LEN} characters")));
            }
            rest = &rest[end + 1..];
        }
        text.push_str(rest);
        Ok(Value::String(text))
    }

    fn field(&self, dotted: &str) -> Result<Option<Value>, InputError> {
        match lookup(self.root, dotted) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => self.resolve(v).map(Some),
        }
    }

    /// A dataset entry: a name, or (HEAD) a DataConfig mapping with a `dataset` key.
    fn dataset_name(&self, v: &Value, at: &str) -> Result<String, InputError> {
        let v = self.resolve(v)?;
        match &v {
            Value::String(s) => Ok(s.clone()),
            Value::Mapping(_) => match v.get("dataset").map(|d| self.resolve(d)).transpose()? {
                Some(Value::String(s)) => Ok(s),
                _ => Err(self.error(format!("{at}: a dataset mapping needs a string 'dataset' field"))),
            },
            other => Err(self.error(format!("{at}: expected a dataset name, found {other:?}"))),
        }
    }

    fn dataset_list(&self, key: &str) -> Result<Vec<String>, InputError> {
        let at = format!("eval.query_studies.{key}");
        match self.field(&at)? {
            None => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| self.dataset_name(v, &format!("{at}[{i}]")))
                .collect(),
            // HEAD: noise_study may be a single DataConfig.
            Some(single) => Ok(vec![self.dataset_name(&single, &at)?]),
        }
    }
}

/// Parses `hydra/config.yaml`.
pub fn load(path: &Path) -> Result<ExperimentConfig, InputError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| InputError::file(path, format!("cannot read the config ({e})")))?;
    let nesting = flow_nesting(&text);
    if nesting > MAX_NESTING {
        return Err(InputError::file(
            path,
            format!("brackets nest {nesting} levels deep; a config nests at most {MAX_NESTING}"),
        ));
    }
    let root: Value =
        serde_yaml::from_str(&text).map_err(|e| InputError::file(path, format!("not valid YAML ({e})")))?;
    let r = Resolver {
        root: &root,
        path,
        steps: Cell::new(0),
    };
    let num_classes = match r.field("data.num_classes")? {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|c| c >= 2) => n.as_u64().unwrap_or(0) as usize,
        Some(other) => {
            return Err(InputError::file(
                path,
                format!("data.num_classes is {other:?}, expected an integer >= 2"),
            ))
        }
        None => return Err(InputError::file(path, "missing field data.num_classes")),
    };
    if let Some(Value::Mapping(kwargs)) = r.field("data.kwargs")? {
        if kwargs.contains_key("out_classes") {
            return Err(InputError::file(
                path,
                "data.kwargs.out_classes (open-set studies) is not supported yet",
            ));
        }
    }
    if let Some(Value::Bool(false)) = r.field("eval.val_tuning")? {
        return Err(InputError::file(
            path,
            "eval.val_tuning is false: FD-Shifts needs val_tuning to fit Platt scaling",
        ));
    }
    if let Some(Value::Mapping(studies)) = r.field("eval.query_studies")? {
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
    let csfs = match r.field("eval.confidence_measures.test")? {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| match r.resolve(v)? {
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
        Some(v) => Some(r.dataset_name(v, "eval.query_studies.iid_study")?),
    };
    let fast_dev_run = matches!(r.field("trainer.fast_dev_run")?, Some(Value::Bool(true)));
    let ext_confid_name = match r.field("eval.ext_confid_name")? {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    let number = |key: &str, default: f64| -> Result<f64, InputError> {
        match r.field(key)? {
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
            noise_study: r.dataset_list("noise_study")?,
            in_class_study: r.dataset_list("in_class_study")?,
            new_class_study: r.dataset_list("new_class_study")?,
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

    #[test]
    fn many_interpolations_in_one_string_are_not_circular() {
        let many = "${data.dataset}-".repeat(40);
        let cfg = parse(&format!("{BASE}  query_studies:\n    iid_study: \"{many}\"\n")).unwrap();
        assert_eq!(cfg.plan.iid_study.as_deref(), Some("derm-".repeat(40).as_str()));
    }

    #[test]
    fn interpolation_and_nesting_bombs_are_refused_at_once() {
        // Each key triples the one below it: 3^12 substitutions unless a budget stops them.
        let mut yaml = String::from(BASE);
        yaml.push_str("  query_studies:\n    iid_study: ${k.a0}\nk:\n");
        for i in 0..12 {
            let below = format!("${{k.a{}}}", i + 1);
            yaml.push_str(&format!("  a{i}: \"{}\"\n", below.repeat(3)));
        }
        yaml.push_str("  a12: \"\"\n");
        let started = std::time::Instant::now();
        let e = parse(&yaml).unwrap_err();
        assert!(e.problem.contains("substitutions"), "{e}");
        // A chain of 17 references is still circular.
        let mut yaml = format!("{BASE}  query_studies:\n    iid_study: ${{k.a0}}\nk:\n");
        for i in 0..20 {
            yaml.push_str(&format!("  a{i}: ${{k.a{}}}\n", i + 1));
        }
        yaml.push_str("  a20: derm\n");
        assert!(parse(&yaml).unwrap_err().problem.contains("circular"));
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = parse(&deep).unwrap_err();
        assert!(e.problem.contains("100000 levels deep"), "{e}");
        // Work bounded by the budget, not by 3^12: generous for a debug build on a busy machine.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
