//! Folders written atomically: [`staging`] makes a temporary folder beside the destination,
//! [`publish`] renames it into place. Leftovers of killed runs are removed when the next staging
//! folder is made.

use std::path::Path;

use crate::error::{Error, InputError, WriteError};

const STAGING: &str = ".failscope-export-";

/// A temporary folder beside `dir` (which must not exist yet) to write an export into; [`publish`]
/// renames it into place, so `dir` is either complete or absent. Its name carries this process's id,
/// so leftovers of killed runs (whose process no longer exists) are removed here.
pub fn staging(dir: &Path) -> Result<tempfile::TempDir, Error> {
    if dir.exists() {
        return Err(InputError::file(dir, "already exists: choose a new output folder").into());
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| WriteError::new(parent, format!("cannot create ({e})")))?;
    remove_stale_staging(parent);
    tempfile::Builder::new()
        .prefix(&format!("{STAGING}{}-", std::process::id()))
        .tempdir_in(parent)
        .map_err(|e| WriteError::new(parent, format!("cannot write here ({e})")).into())
}

/// Removes staging folders in `parent` left by processes that no longer run (Linux: `/proc/<pid>`).
fn remove_stale_staging(parent: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(STAGING).and_then(|r| r.split('-').next()) else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Moves a finished staging folder to `dir`; when that fails, the staging folder is removed too.
pub fn publish(tmp: tempfile::TempDir, dir: &Path) -> Result<(), WriteError> {
    let kept = tmp.keep();
    std::fs::rename(&kept, dir).map_err(|e| {
        let _ = std::fs::remove_dir_all(&kept);
        WriteError::new(dir, format!("cannot move the finished export into place ({e})"))
    })
}
