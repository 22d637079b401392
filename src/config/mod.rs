//! Configuration: the `PROXY_DEFAULTS` / `PROXY_ENTRY` language of `proxy_reverse.conf`.
//!
//! [`model`] holds the validated model every other module reads. The parser turns a file into
//! that model or into a list of [`ConfigError`]s (`FILE:LINE: message`), all of them, never just
//! the first.

pub mod model;

pub use model::*;

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem found in a configuration file, printed as `FILE:LINE: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// 1-based line number (0 when the problem concerns the whole file).
    pub line: usize,
    /// What is wrong, in one line.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

/// Reads and validates the configuration file at `path`, resolving host names now.
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let _ = path;
    unimplemented!("parser: configuration issue")
}
