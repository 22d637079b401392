//! High availability: per-server health records shared by all workers.

use crate::clock::Millis;

/// Why an attempt on a server failed (what counts toward `AttemptsCount`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The connection was refused or failed with another socket error.
    ConnectRefused,
    /// The connection did not complete within `ConnectTimeout`.
    ConnectTimeout,
    /// The connection broke before any response byte arrived.
    ResetBeforeResponse,
    /// No response byte arrived within `ReadTimeout`.
    ReadTimeout,
    /// The response was malformed.
    BadResponse,
}

impl FailureKind {
    /// A short text for logs and statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ConnectRefused => "connection refused",
            FailureKind::ConnectTimeout => "connect timeout",
            FailureKind::ResetBeforeResponse => "connection reset before response",
            FailureKind::ReadTimeout => "read timeout",
            FailureKind::BadResponse => "bad response",
        }
    }
}

/// One server's health. Placeholder: always available (the balancing issue fills this in).
#[derive(Debug, Default)]
pub struct Health {}

impl Health {
    /// Whether the server may be tried at `now`.
    pub fn is_available(&self, _now: Millis) -> bool {
        true
    }
}
