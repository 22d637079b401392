//! Configuration: the `PROXY_DEFAULTS` / `PROXY_ENTRY` language of `proxy_reverse.conf`.
//!
//! [`model`] holds the validated model every other module reads. The parser turns a file into
//! that model or into a list of [`ConfigError`]s (`FILE:LINE: message`), all of them, never just
//! the first. A valid model can still carry [`ConfigWarning`]s ([`Config::warnings`]): things
//! that work as written but were most likely not meant, such as an entry that never serves a
//! request.

pub mod affinity;
pub mod balancers;
pub mod handlers;
pub mod headers;
pub mod health;
pub mod keys;
pub mod lexer;
pub mod limits;
pub mod model;
mod parser;
pub mod pem;
mod printer;
pub mod resolve;
pub mod route_rules;
pub mod tls;
pub mod values;
pub mod warnings;

pub use affinity::{Affinity, HashKey, SameSite, StickyCookie};
pub use balancers::{balancer_named, is_weighted, BalancerName, BALANCERS};
pub use model::*;
pub use parser::parse_bytes;
pub use printer::print;
pub use resolve::{Resolver, SystemResolver};
pub use route_rules::{HostPattern, HostRule, PathRewrite, RewriteRule, RouteRules};

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
        if self.line == 0 {
            // About the whole file (unreadable, no entry at all): no line to point at.
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
        }
    }
}

/// Something a valid configuration does that was most likely not meant, printed as
/// `FILE:LINE: warning: message`. The file is used as it is; see [`Config::warnings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// The file the warning is about.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What looks wrong and why, in one line.
    pub message: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: warning: {}",
            self.file.display(),
            self.line,
            self.message
        )
    }
}

/// Reads and validates the configuration file at `path`, resolving host names now with the
/// system resolver. A valid file may still deserve warnings: [`Config::warnings`] (the
/// checker prints them; a host logs them at start-up).
pub fn load(path: &Path) -> Result<Config, Vec<ConfigError>> {
    load_with(path, &SystemResolver)
}

/// Like [`load`], resolving host names with `resolver`.
///
/// Files the configuration names are checked too: the `AccessLog` file must open for
/// appending (it is created if missing, as `nginx -t` creates its logs), so that a path
/// that cannot be written is a `FILE:LINE` problem at start-up and on reload, not a line
/// lost later.
pub fn load_with(path: &Path, resolver: &dyn Resolver) -> Result<Config, Vec<ConfigError>> {
    let config = match std::fs::read(path) {
        Ok(bytes) => parse_bytes(&bytes, path, resolver)?,
        Err(e) => {
            return Err(vec![ConfigError {
                file: path.to_path_buf(),
                line: 0,
                message: format!("cannot read the file: {e}"),
            }])
        }
    };
    check_access_log(&config)?;
    Ok(config)
}

/// The `AccessLog` file opens for appending (see [`load_with`]).
fn check_access_log(config: &Config) -> Result<(), Vec<ConfigError>> {
    let Some(log) = &config.access_log else {
        return Ok(());
    };
    match std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log.path)
    {
        Ok(_) => Ok(()),
        Err(e) => Err(vec![ConfigError {
            file: config.file.clone(),
            line: log.line,
            message: format!(
                "AccessLog `{}` cannot be opened for appending: {e}",
                log.path.display()
            ),
        }]),
    }
}

/// Parses configuration text as if read from `file`, resolving host names with `resolver`.
pub fn parse_str(
    text: &str,
    file: &Path,
    resolver: &dyn Resolver,
) -> Result<Config, Vec<ConfigError>> {
    parse_bytes(text.as_bytes(), file, resolver)
}
