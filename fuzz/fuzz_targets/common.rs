//! Shared by the file-parser targets: the parsers read paths, so each input is written to one file
//! in this process's own temporary folder first.

use std::path::PathBuf;
use std::sync::OnceLock;

/// Writes `data` to `name` in the process's folder; answers its path.
pub fn file(name: &str, data: &[u8]) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("failscope-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("a temporary folder");
        d
    });
    let path = dir.join(name);
    std::fs::write(&path, data).expect("the temporary file is writable");
    path
}
