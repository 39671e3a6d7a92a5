//! The foundation's errors. [`InputError`]: the user's input is wrong; each names the file (or
//! request), the field and what was expected — exit code 2, or a 4xx JSON error. [`WriteError`]:
//! output could not be written (a full disk, a read-only file system) — not the user's input, so
//! exit code 1. [`Error`]: either, or a library failing on valid input (exit code 1), for the steps
//! that read input and write output.
//!
//! [`lock`] is the one policy for a poisoned lock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Up to `max` items of a list for a message, then how many more: `["a", "b", … and 999998 more]`.
pub fn list_some<T: std::fmt::Debug>(items: &[T], max: usize) -> String {
    if items.len() <= max {
        return format!("{items:?}");
    }
    let shown: Vec<String> = items[..max].iter().map(|i| format!("{i:?}")).collect();
    format!("[{}, … and {} more]", shown.join(", "), items.len() - max)
}

/// Locks `m`, also after a thread panicked while holding it. The one lock-poison policy: every value
/// behind a lock here (job tables, progress, caches, a store connection) is replaced whole or read
/// whole, never left half-updated, so a panic elsewhere must not take every later request down
/// with it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Bad input: which file or item, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item}: {problem}")]
pub struct InputError {
    /// The file, folder or item at fault.
    pub item: String,
    /// What is wrong and what was expected.
    pub problem: String,
}

impl InputError {
    /// An error about `path`.
    pub fn file(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            item: path.display().to_string(),
            problem: problem.into(),
        }
    }

    /// An error about a named item that is not a file (a CLI flag, a request field).
    pub fn item(item: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            item: item.into(),
            problem: problem.into(),
        }
    }
}

/// Output that could not be written: the path and what failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct WriteError {
    /// The file or folder being written.
    pub path: String,
    /// What failed (the operating system's reason included).
    pub problem: String,
}

impl WriteError {
    /// A failed write of `path`.
    pub fn new(path: &Path, problem: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            problem: problem.into(),
        }
    }
}

/// A failure of a step that reads input and writes output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is wrong.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The output could not be written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A library failed at run time on valid input (libtorch during training): not the user's
    /// input, so exit code 1.
    #[error("{0}")]
    Internal(String),
}
