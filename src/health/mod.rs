//! High availability: per-server health records shared by all workers.
//!
//! A server is *up*, *offline until T*, or *probing* (offline, its timeout over, and one
//! request claimed the single probe slot). Everything lives in atomics so the request path
//! never locks:
//!
//! - `offline_until` (`AtomicU64`): 0 while up, otherwise the instant the offline period ends.
//!   Every transition is a compare-and-swap on it, so exactly one thread wins each transition
//!   and logs it.
//! - `probe_since` (`AtomicU64`): 0, or when the current probe was claimed. A claim older than
//!   the offline timeout is considered abandoned and may be taken over, so a probe whose
//!   outcome is never reported cannot keep a server out forever.
//! - `failures` (`AtomicU32`): consecutive failed attempts; `last_reason` (`AtomicU8`): why the
//!   last transition happened.
//!
//! `AttemptsCount N` consecutive failures take an up server offline for `OfflineTimeOut`; the
//! first request after the timeout probes it; success brings it back, failure restarts the
//! timeout. `OfflineTimeOut 0` disables all of this: servers are never offline.
//!
//! With active checks (`HealthCheck`) this record only counts consecutive failures: the
//! server's state is then [`check::CheckState`], which probes and users' failures feed
//! together, and no user request is ever sent as a probe. [`outlier`] ejects servers that
//! answer 5xx too often, [`slow_start`] ramps a server that comes back.

pub mod check;
pub mod outlier;
pub mod slow_start;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use crate::clock::Millis;
use crate::config::Entry;

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
    /// The response was malformed (its head, or its body's framing).
    BadResponse,
    /// The backend closed or reset the connection after the response head, before the end
    /// of the body: the client got a cut response.
    ResponseCut,
    /// The backend sent nothing more of the body within `ReadTimeout`.
    BodyTimeout,
    /// The TLS handshake failed (a certificate that does not verify, an alert, a protocol
    /// error, or the connection closed during it).
    TlsHandshake,
}

impl FailureKind {
    const ALL: [FailureKind; 8] = [
        FailureKind::ConnectRefused,
        FailureKind::ConnectTimeout,
        FailureKind::ResetBeforeResponse,
        FailureKind::ReadTimeout,
        FailureKind::BadResponse,
        FailureKind::ResponseCut,
        FailureKind::BodyTimeout,
        FailureKind::TlsHandshake,
    ];

    /// A short text for logs and statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ConnectRefused => "connection refused",
            FailureKind::ConnectTimeout => "connect timeout",
            FailureKind::ResetBeforeResponse => "connection reset before response",
            FailureKind::ReadTimeout => "read timeout",
            FailureKind::BadResponse => "bad response",
            FailureKind::ResponseCut => "response cut",
            FailureKind::BodyTimeout => "read timeout in the body",
            FailureKind::TlsHandshake => "TLS handshake failed",
        }
    }
}

/// The high-availability settings of one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaPolicy {
    /// `AttemptsCount`: consecutive failures that take a server offline (0 is treated as 1).
    pub attempts_count: u32,
    /// `OfflineTimeOut` in milliseconds; 0 disables high availability.
    pub offline_timeout: Millis,
}

impl HaPolicy {
    /// The policy configured for `entry`.
    pub fn from_entry(entry: &Entry) -> HaPolicy {
        HaPolicy::new(entry.attempts_count, entry.offline_timeout)
    }

    /// A policy from `AttemptsCount` and `OfflineTimeOut`.
    pub fn new(attempts_count: u32, offline_timeout: Duration) -> HaPolicy {
        HaPolicy {
            attempts_count,
            offline_timeout: offline_timeout.as_millis().min(u128::from(u64::MAX / 2)) as Millis,
        }
    }

    /// Whether servers can be taken offline at all (`OfflineTimeOut` is not 0).
    pub fn enabled(&self) -> bool {
        self.offline_timeout > 0
    }
}

/// A server's state as statistics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthState {
    /// Serving normally.
    Up,
    /// Skipped until `offline_until` (or past it, waiting for the next request to probe it).
    Offline,
    /// Offline, and one request is trying it now.
    Probing,
}

impl HealthState {
    /// Lower-case text for statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Up => "up",
            HealthState::Offline => "offline",
            HealthState::Probing => "probing",
        }
    }
}

/// A consistent-enough, read-only copy of one health record, for statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Up, offline or probing.
    pub state: HealthState,
    /// When the offline period ends (0 while up).
    pub offline_until: Millis,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Why the last transition happened ("" before the first one).
    pub last_reason: &'static str,
}

/// A state change, returned by the recording methods so the caller can log it with the
/// server's name; each is returned to exactly one caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Up → offline after `failures` consecutive failures, the last one of `kind`.
    WentOffline {
        /// Consecutive failures counted.
        failures: u32,
        /// The failure that tipped it.
        kind: FailureKind,
    },
    /// The probe failed: offline again for a whole timeout.
    ProbeFailed {
        /// How the probe failed.
        kind: FailureKind,
    },
    /// Offline → up: a response arrived.
    BackUp,
}

impl Transition {
    /// The log line for server `name`, e.g.
    /// `server 10.0.0.2:80 offline after 2 failed attempts: connection refused`.
    pub fn message(&self, name: &str) -> String {
        match *self {
            Transition::WentOffline { failures, kind } => format!(
                "server {name} offline after {failures} failed attempt{}: {}",
                if failures == 1 { "" } else { "s" },
                kind.as_str()
            ),
            Transition::ProbeFailed { kind } => {
                format!(
                    "server {name} still offline, probe failed: {}",
                    kind.as_str()
                )
            }
            Transition::BackUp => format!("server {name} back up"),
        }
    }

    /// Whether the line is a warning (offline) rather than information (back up).
    pub fn is_warning(&self) -> bool {
        !matches!(self, Transition::BackUp)
    }
}

/// `last_reason` code of a recovery; failure kinds use their position in `FailureKind::ALL` + 1.
const REASON_RECOVERED: u8 = 0xff;

/// One server's health record, shared by every worker (see the module documentation).
#[derive(Debug, Default)]
pub struct Health {
    offline_until: AtomicU64,
    probe_since: AtomicU64,
    failures: AtomicU32,
    last_reason: AtomicU8,
}

impl Health {
    /// Whether `plan` should offer the server at `now`: up, or offline with its timeout over
    /// and no live probe on it.
    #[inline]
    pub fn is_available(&self, now: Millis, policy: HaPolicy) -> bool {
        let until = self.offline_until.load(Ordering::Acquire);
        until == 0 || (now >= until && self.probe_free(now, policy))
    }

    /// When the offline period ends (0 while up).
    #[inline]
    pub fn offline_until(&self) -> Millis {
        self.offline_until.load(Ordering::Acquire)
    }

    fn probe_free(&self, now: Millis, policy: HaPolicy) -> bool {
        let claim = self.probe_since.load(Ordering::Acquire);
        claim == 0 || now.saturating_sub(claim) >= policy.offline_timeout
    }

    /// Decides whether a request may use the server now: always while up (or with high
    /// availability disabled); while offline only by claiming the single probe slot, which
    /// succeeds for one caller until the probe's outcome is recorded (or it is abandoned).
    ///
    /// The offline period is not checked here: `plan` only offers an offline server once its
    /// timeout is over, or as the all-offline fallback, which is a probe too.
    #[inline]
    pub fn try_acquire(&self, now: Millis, policy: HaPolicy) -> bool {
        if self.offline_until.load(Ordering::Acquire) == 0 || !policy.enabled() {
            return true;
        }
        let claim = self.probe_since.load(Ordering::Acquire);
        if claim != 0 && now.saturating_sub(claim) < policy.offline_timeout {
            return false;
        }
        self.probe_since
            .compare_exchange(claim, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Takes the probe slot over, whoever holds it: for a last-resort try while every server
    /// of the group is offline (several may then probe one server at once; the first outcome
    /// decides, as for any probe).
    pub fn take_probe(&self, now: Millis) {
        self.probe_since.store(now.max(1), Ordering::Release);
    }

    /// Gives the probe slot back when nobody uses the server any more without an outcome
    /// (the probing request was abandoned); called when its in-flight count drops to 0.
    pub fn release_idle(&self) {
        let claim = self.probe_since.load(Ordering::Acquire);
        if claim != 0 && self.offline_until.load(Ordering::Acquire) != 0 {
            // CAS, not store: a newer claim by another request must survive.
            let _ =
                self.probe_since
                    .compare_exchange(claim, 0, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// A response head arrived: failures are forgotten and an offline server is up again.
    #[inline]
    pub fn record_success(&self) -> Option<Transition> {
        // Load before store: the common case (no failures) must not write a shared line.
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
        }
        let until = self.offline_until.load(Ordering::Acquire);
        if until == 0 {
            return None;
        }
        // Only the probe brings a server back: a success while no probe is claimed belongs to
        // a request that started before the server went offline and proves nothing now.
        if self.probe_since.load(Ordering::Acquire) == 0 {
            return None;
        }
        self.offline_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.probe_since.store(0, Ordering::Release);
        self.last_reason.store(REASON_RECOVERED, Ordering::Relaxed);
        Some(Transition::BackUp)
    }

    /// An attempt failed at `now`. Returns the transition it caused, if any: the failure that
    /// reaches `attempts_count` takes an up server offline; a failure while a probe is claimed
    /// is the probe's and restarts the timeout (reported only for a probe made after the
    /// offline period, so at most once per period). Failures of requests that started before
    /// the server went offline change nothing.
    pub fn record_failure(
        &self,
        kind: FailureKind,
        now: Millis,
        policy: HaPolicy,
    ) -> Option<Transition> {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if !policy.enabled() {
            return None;
        }
        let until = self.offline_until.load(Ordering::Acquire);
        let transition = if until == 0 {
            if failures < policy.attempts_count.max(1) {
                return None;
            }
            Transition::WentOffline { failures, kind }
        } else {
            if self.probe_since.load(Ordering::Acquire) == 0 {
                return None;
            }
            Transition::ProbeFailed { kind }
        };
        let next = now.saturating_add(policy.offline_timeout).max(1);
        self.offline_until
            .compare_exchange(until, next, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        if let Transition::ProbeFailed { .. } = transition {
            self.probe_since.store(0, Ordering::Release);
        }
        let code = FailureKind::ALL
            .iter()
            .position(|&k| k == kind)
            .unwrap_or(0) as u8
            + 1;
        self.last_reason.store(code, Ordering::Relaxed);
        if let Transition::ProbeFailed { .. } = transition {
            if now < until {
                // A last-resort probe, tried before the offline period was over because every
                // server was offline: its failure restarts the period (so the next last
                // resort is another server) but is no news — the server never came back.
                // Reported, it would log a line per request while a whole pool is down.
                return None;
            }
        }
        Some(transition)
    }

    /// Counts one failed attempt without changing the state (with active checks, which
    /// decide the state); returns the failures now in a row.
    pub fn count_failure(&self) -> u32 {
        self.failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1)
    }

    /// The failure that last took the server offline (or failed its probe), if any.
    pub fn last_failure(&self) -> Option<FailureKind> {
        let code = self.last_reason.load(Ordering::Relaxed);
        (code != REASON_RECOVERED && code != 0)
            .then(|| FailureKind::ALL.get(usize::from(code) - 1).copied())
            .flatten()
    }

    /// Forgets an offline period (active checks take over the server's state).
    pub fn clear_offline(&self) {
        self.offline_until.store(0, Ordering::Release);
        self.probe_since.store(0, Ordering::Release);
    }

    /// A read-only copy for statistics (fields are read one by one, not as one atomic unit).
    pub fn snapshot(&self) -> HealthSnapshot {
        let offline_until = self.offline_until.load(Ordering::Acquire);
        let state = if offline_until == 0 {
            HealthState::Up
        } else if self.probe_since.load(Ordering::Acquire) != 0 {
            HealthState::Probing
        } else {
            HealthState::Offline
        };
        let last_reason = match self.last_reason.load(Ordering::Relaxed) {
            0 => "",
            REASON_RECOVERED => "response received",
            code => FailureKind::ALL
                .get(usize::from(code) - 1)
                .map_or("", |k| k.as_str()),
        };
        HealthSnapshot {
            state,
            offline_until,
            consecutive_failures: self.failures.load(Ordering::Relaxed),
            last_reason,
        }
    }
}
