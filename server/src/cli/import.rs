//! `import` and `study import`: open the store, ingest a source and store it whole.

use std::path::Path;

use super::{CliError, Definitions};
use crate::ingest::{evaluate_path, Evaluated};
use crate::store::{NewStudy, Store};

pub(super) fn open_store(db: &Path) -> Result<Store, CliError> {
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| CliError::Other(format!("{}: cannot create the store's folder ({e})", parent.display())))?;
    }
    Ok(Store::open(db)?)
}

/// Evaluates `path` and stores it (report, source files, samples) in one transaction.
pub(super) fn import(
    store: &mut Store,
    path: &Path,
    name: Option<&str>,
    defs: &Definitions,
) -> Result<(i64, Evaluated), CliError> {
    let cfg = defs.config();
    let ev = evaluate_path(path, &cfg)?;
    let default_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let source = path
        .canonicalize()
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string();
    let id = store.insert(
        &NewStudy {
            name: name.unwrap_or(&default_name),
            source: &source,
            compat: cfg.compat.name(),
        },
        &ev,
    )?;
    Ok((id, ev))
}
