//! Errors about the user's input: each names the file (or request), the field and what was expected.
//! The CLI maps them to exit code 2; the HTTP layer to a 4xx JSON error.

use std::fmt;
use std::path::Path;

/// Bad input: which file or item, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
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

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.item, self.problem)
    }
}

impl std::error::Error for InputError {}
