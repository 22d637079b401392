//! Active health checks: the state one server has in one entry, fed by probes and by users'
//! failures, and the probe schedule.
//!
//! The state machine is a pure function ([`Word::step`]) on a small value packed into one
//! `AtomicU64` ([`CheckState`]), so the request path reads a server's status with one load
//! and every transition is one compare-and-swap that exactly one thread wins (and logs):
//!
//! ```text
//!            first pass                      `fall` failed probes in a row,
//!  checking ───────────▶ up ◀──────────────▶ or `AttemptsCount` failed requests   down
//!     │                   ▲   `rise` passing probes in a row                       │
//!     └── first failure ──┼──────────────────────────────────────────────────────▶─┘
//!                         └─────────────────────────────────────────────────────────
//! ```
//!
//! `checking` is a server configured with checks that has no result yet (new to the process
//! or back from maintenance): it takes requests only while no server of its entry is up.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use super::FailureKind;
use crate::clock::Millis;

/// A server's status as checks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Configured, no result yet.
    Checking,
    /// Passing: takes requests.
    Up,
    /// Failing: takes no request until `rise` probes in a row pass.
    Down,
}

impl Status {
    /// Lower-case text for statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Checking => "checking",
            Status::Up => "up",
            Status::Down => "down",
        }
    }
}

/// Why one probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeFailure {
    /// The connection was refused (or failed with another socket error).
    Refused,
    /// The connection did not complete within `HealthCheckTimeout`.
    ConnectTimeout,
    /// Connected, but no complete answer within `HealthCheckTimeout`.
    Timeout,
    /// The server closed or reset the connection before a complete answer.
    Reset,
    /// Not an HTTP/1.x response (or its body's framing was broken).
    BadResponse,
    /// A status `HealthCheckExpect` does not accept.
    Status(u16),
    /// The body does not contain `HealthCheckExpect`'s text.
    BodyMismatch,
    /// An `https://` server's TLS handshake failed (its certificate, name or protocol).
    Tls,
}

/// Where the packed codes of users' failures start (see `Word::pack`).
const REQUESTS_BASE: u64 = 16;

impl ProbeFailure {
    /// A short text for logs and statistics: `connection refused`, `status 503`, ….
    pub fn describe(self) -> String {
        match self {
            ProbeFailure::Refused => "connection refused".into(),
            ProbeFailure::ConnectTimeout => "connect timeout".into(),
            ProbeFailure::Timeout => "timeout".into(),
            ProbeFailure::Reset => "connection closed before the answer".into(),
            ProbeFailure::BadResponse => "bad response".into(),
            ProbeFailure::Status(code) => format!("status {code}"),
            ProbeFailure::BodyMismatch => "body mismatch".into(),
            ProbeFailure::Tls => "TLS handshake failed".into(),
        }
    }

    fn code(self) -> (u64, u64) {
        match self {
            ProbeFailure::Refused => (1, 0),
            ProbeFailure::ConnectTimeout => (2, 0),
            ProbeFailure::Timeout => (3, 0),
            ProbeFailure::Reset => (4, 0),
            ProbeFailure::BadResponse => (5, 0),
            ProbeFailure::Status(s) => (6, u64::from(s)),
            ProbeFailure::BodyMismatch => (7, 0),
            ProbeFailure::Tls => (8, 0),
        }
    }

    fn from_code(code: u64, extra: u64) -> Option<ProbeFailure> {
        Some(match code {
            1 => ProbeFailure::Refused,
            2 => ProbeFailure::ConnectTimeout,
            3 => ProbeFailure::Timeout,
            4 => ProbeFailure::Reset,
            5 => ProbeFailure::BadResponse,
            6 => ProbeFailure::Status(extra as u16),
            7 => ProbeFailure::BodyMismatch,
            8 => ProbeFailure::Tls,
            _ => return None,
        })
    }
}

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// It passed.
    Pass,
    /// It failed, this way.
    Fail(ProbeFailure),
}

impl ProbeResult {
    fn code(self) -> (u64, u64) {
        match self {
            ProbeResult::Pass => (0, 0),
            ProbeResult::Fail(f) => f.code(),
        }
    }
}

/// Why a server is down (or was, last).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No reason (never down).
    None,
    /// A probe failed so.
    Probe(ProbeFailure),
    /// Users' requests failed `failures` times in a row (`AttemptsCount`), the last so.
    Requests {
        /// Consecutive failed requests.
        failures: u32,
        /// The last one's failure.
        kind: FailureKind,
    },
}

impl Reason {
    /// Text for logs and statistics (empty for [`Reason::None`]).
    pub fn describe(self) -> String {
        match self {
            Reason::None => String::new(),
            Reason::Probe(f) => f.describe(),
            Reason::Requests { failures, kind } => format!(
                "{failures} failed request{}: {}",
                if failures == 1 { "" } else { "s" },
                kind.as_str()
            ),
        }
    }
}

/// The check policy of one entry: how many probes in a row change a server's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `HealthCheckRise`: passes that bring a down server up.
    pub rise: u32,
    /// `HealthCheckFall`: failures that take an up server down.
    pub fall: u32,
}

/// A status change, returned to the one caller whose update made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The server is up; it was `from` (checking or down), after `passes` passing probes.
    Up {
        /// The status before.
        from: Status,
        /// Consecutive passing probes.
        passes: u32,
    },
    /// The server is down for `reason`; it was `from` (checking or up).
    Down {
        /// The status before.
        from: Status,
        /// Why.
        reason: Reason,
        /// Consecutive failed probes (0 when requests took it down).
        fails: u32,
    },
}

impl Change {
    /// The log line for server `name`: `server 10.0.0.2:80 down: status 503 (3 failed
    /// checks)`, `server 10.0.0.2:80 up (2 passing checks)`.
    pub fn message(&self, name: &str) -> String {
        match *self {
            Change::Up {
                from: Status::Checking,
                ..
            } => format!("server {name} up: first check passed"),
            Change::Up { passes, .. } => format!(
                "server {name} up again after {passes} passing check{}",
                plural(passes)
            ),
            Change::Down {
                reason: reason @ Reason::Requests { .. },
                ..
            } => format!("server {name} down: {}", reason.describe()),
            Change::Down { reason, fails, .. } => format!(
                "server {name} down: {} ({fails} failed check{})",
                reason.describe(),
                plural(fails)
            ),
        }
    }

    /// Whether the line is a warning (down) rather than information (up).
    pub fn is_warning(&self) -> bool {
        matches!(self, Change::Down { .. })
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The packed state: status, consecutive passes and failures of probes, the reason of the
/// last time it went down. A plain value: [`Word::step`] is the state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    /// The status.
    pub status: Status,
    /// Probes passed in a row (saturating at 65 535).
    pub passes: u32,
    /// Probes failed in a row (saturating at 65 535).
    pub fails: u32,
    /// Why it is (or was last) down.
    pub reason: Reason,
}

/// What happened to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A probe's outcome.
    Probe(ProbeResult),
    /// Users' requests failed `failures` times in a row (`AttemptsCount` reached).
    Requests {
        /// Consecutive failed requests.
        failures: u32,
        /// The last one's failure.
        kind: FailureKind,
    },
    /// Back from maintenance (no probes were sent meanwhile): no result any more.
    Recheck,
}

impl Word {
    /// A server with no result yet.
    pub const CHECKING: Word = Word {
        status: Status::Checking,
        passes: 0,
        fails: 0,
        reason: Reason::None,
    };

    /// The state after `event`, and the change it makes, if any.
    pub fn step(self, event: Event, t: Thresholds) -> (Word, Option<Change>) {
        let mut w = self;
        let change = match event {
            Event::Probe(ProbeResult::Pass) => {
                w.passes = (w.passes + 1).min(u32::from(u16::MAX));
                w.fails = 0;
                let up = match w.status {
                    Status::Checking => true,
                    Status::Down => w.passes >= t.rise.max(1),
                    Status::Up => false,
                };
                up.then(|| {
                    let from = w.status;
                    w.status = Status::Up;
                    Change::Up {
                        from,
                        passes: w.passes,
                    }
                })
            }
            Event::Probe(ProbeResult::Fail(f)) => {
                w.fails = (w.fails + 1).min(u32::from(u16::MAX));
                w.passes = 0;
                let down = match w.status {
                    Status::Checking => true,
                    Status::Up => w.fails >= t.fall.max(1),
                    Status::Down => {
                        // Still down: the reason follows the latest failure (no change).
                        w.reason = Reason::Probe(f);
                        false
                    }
                };
                down.then(|| {
                    let from = w.status;
                    w.status = Status::Down;
                    w.reason = Reason::Probe(f);
                    Change::Down {
                        from,
                        reason: w.reason,
                        fails: w.fails,
                    }
                })
            }
            Event::Requests { failures, kind } => (w.status != Status::Down).then(|| {
                let from = w.status;
                w.status = Status::Down;
                w.passes = 0;
                w.reason = Reason::Requests {
                    failures: failures.min(u32::from(u16::MAX)),
                    kind,
                };
                Change::Down {
                    from,
                    reason: w.reason,
                    fails: 0,
                }
            }),
            Event::Recheck => {
                w = Word::CHECKING;
                None
            }
        };
        (w, change)
    }

    /// The packed reason kind of users' failures: `REQUESTS_BASE` + the failure kind's index
    /// (a 6-bit field, so up to 48 kinds); below it, a probe failure's code.
    fn pack(self) -> u64 {
        let status = match self.status {
            Status::Checking => 0,
            Status::Up => 1,
            Status::Down => 2,
        };
        let (kind, extra) = match self.reason {
            Reason::None => (0, 0),
            Reason::Probe(f) => f.code(),
            Reason::Requests { failures, kind } => {
                let k = FailureKind::ALL
                    .iter()
                    .position(|&x| x == kind)
                    .unwrap_or(0) as u64;
                // Above every probe failure's code (1..=15 kept for them).
                (REQUESTS_BASE + k, u64::from(failures))
            }
        };
        status
            | u64::from(self.passes) << 2
            | u64::from(self.fails) << 18
            | kind << 34
            | extra << 40
    }

    fn unpack(v: u64) -> Word {
        let status = match v & 3 {
            0 => Status::Checking,
            1 => Status::Up,
            _ => Status::Down,
        };
        let (kind, extra) = (v >> 34 & 0x3f, v >> 40 & 0xffff);
        let reason = match kind {
            0 => Reason::None,
            k if k >= REQUESTS_BASE => Reason::Requests {
                failures: extra as u32,
                kind: FailureKind::ALL
                    [((k - REQUESTS_BASE) as usize).min(FailureKind::ALL.len() - 1)],
            },
            k => ProbeFailure::from_code(k, extra).map_or(Reason::None, Reason::Probe),
        };
        Word {
            status,
            passes: (v >> 2 & 0xffff) as u32,
            fails: (v >> 18 & 0xffff) as u32,
            reason,
        }
    }
}

/// The last probe's outcome, as statistics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastProbe {
    /// When it ended.
    pub at: Millis,
    /// How it ended.
    pub result: ProbeResult,
    /// How long it took.
    pub latency: Duration,
}

/// A read-only copy of a [`CheckState`] for statistics (fields read one by one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSnapshot {
    /// The packed state.
    pub word: Word,
    /// The last probe, if any has ended.
    pub last: Option<LastProbe>,
    /// When the status last changed (0: never).
    pub changed_at: Millis,
    /// Time spent down before the current down period, plus the current one up to `now`.
    pub downtime: Duration,
    /// Probes whose outcome was recorded.
    pub probes: u64,
}

/// One server's check state in one entry, shared by every worker and the prober (see the
/// module documentation). Kept across reloads with the server.
#[derive(Debug)]
pub struct CheckState {
    word: AtomicU64,
    /// When the last probe ended (0: none yet), its outcome and latency.
    last_at: AtomicU64,
    last_result: AtomicU32,
    last_latency_us: AtomicU32,
    changed_at: AtomicU64,
    /// When the current down period began (0 while not down).
    down_since: AtomicU64,
    /// Milliseconds spent down in earlier periods.
    downtime_ms: AtomicU64,
    /// Probes whose outcome was recorded.
    probes: AtomicU64,
}

impl Default for CheckState {
    fn default() -> CheckState {
        CheckState {
            word: AtomicU64::new(Word::CHECKING.pack()),
            last_at: AtomicU64::new(0),
            last_result: AtomicU32::new(0),
            last_latency_us: AtomicU32::new(0),
            changed_at: AtomicU64::new(0),
            down_since: AtomicU64::new(0),
            downtime_ms: AtomicU64::new(0),
            probes: AtomicU64::new(0),
        }
    }
}

impl CheckState {
    /// The status now (one relaxed load: the request path reads it).
    #[inline]
    pub fn status(&self) -> Status {
        match self.word.load(Ordering::Relaxed) & 3 {
            0 => Status::Checking,
            1 => Status::Up,
            _ => Status::Down,
        }
    }

    /// The packed state now.
    pub fn word(&self) -> Word {
        Word::unpack(self.word.load(Ordering::Acquire))
    }

    /// Applies `event` at `now`; returns the change it made, to exactly one caller.
    pub fn apply(&self, event: Event, t: Thresholds, now: Millis) -> Option<Change> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            let (next, change) = Word::unpack(current).step(event, t);
            let packed = next.pack();
            if packed == current {
                return None;
            }
            match self.word.compare_exchange_weak(
                current,
                packed,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(change) = change {
                        self.changed(change, now);
                    } else if event == Event::Recheck {
                        // Maintenance is no downtime: a down period ends when it begins.
                        self.end_down(now);
                    }
                    return change;
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Records a probe's outcome (for statistics) and applies it.
    pub fn probed(
        &self,
        result: ProbeResult,
        latency: Duration,
        t: Thresholds,
        now: Millis,
    ) -> Option<Change> {
        let (code, extra) = result.code();
        self.last_result
            .store((code as u32) << 16 | extra as u32, Ordering::Relaxed);
        self.last_latency_us.store(
            latency.as_micros().min(u128::from(u32::MAX)) as u32,
            Ordering::Relaxed,
        );
        self.last_at.store(now.max(1), Ordering::Release);
        self.probes.fetch_add(1, Ordering::Relaxed);
        self.apply(Event::Probe(result), t, now)
    }

    /// Sets the status without a probe (checks turned on by a reload for a server already in
    /// service: `up` as it was serving, or `down` for `reason`).
    pub fn adopt(&self, up: bool, reason: Reason, now: Millis) {
        let word = Word {
            status: if up { Status::Up } else { Status::Down },
            passes: 0,
            fails: 0,
            reason,
        };
        self.word.store(word.pack(), Ordering::Release);
        if !up {
            self.down_since.store(now.max(1), Ordering::Relaxed);
        }
    }

    fn changed(&self, change: Change, now: Millis) {
        self.changed_at.store(now.max(1), Ordering::Relaxed);
        match change {
            Change::Down { .. } => self.down_since.store(now.max(1), Ordering::Relaxed),
            Change::Up { .. } => self.end_down(now),
        }
    }

    /// Ends the current down period, if any, adding it to the downtime.
    fn end_down(&self, now: Millis) {
        let since = self.down_since.swap(0, Ordering::Relaxed);
        if since != 0 {
            self.downtime_ms
                .fetch_add(now.saturating_sub(since), Ordering::Relaxed);
        }
    }

    /// A read-only copy at `now`.
    pub fn snapshot(&self, now: Millis) -> CheckSnapshot {
        let at = self.last_at.load(Ordering::Acquire);
        let last = (at != 0).then(|| {
            let r = self.last_result.load(Ordering::Relaxed);
            let result = ProbeFailure::from_code(u64::from(r >> 16), u64::from(r & 0xffff))
                .map_or(ProbeResult::Pass, ProbeResult::Fail);
            LastProbe {
                at,
                result,
                latency: Duration::from_micros(u64::from(
                    self.last_latency_us.load(Ordering::Relaxed),
                )),
            }
        });
        let since = self.down_since.load(Ordering::Relaxed);
        let current = if since == 0 {
            0
        } else {
            now.saturating_sub(since)
        };
        CheckSnapshot {
            word: self.word(),
            last,
            changed_at: self.changed_at.load(Ordering::Relaxed),
            downtime: Duration::from_millis(self.downtime_ms.load(Ordering::Relaxed) + current),
            probes: self.probes.load(Ordering::Relaxed),
        }
    }
}

/// Delay before the next probe of a server after one started: `interval` less up to 10 %,
/// drawn from `random` (so that probes of many servers spread out instead of marching in
/// step, and never later than the interval, which bounds detection times).
pub fn next_delay(interval: Duration, random: u32) -> Duration {
    let tenth = interval / 10;
    let off = tenth.mul_f64(f64::from(random) / f64::from(u32::MAX));
    interval - off.min(tenth)
}

/// Delay before the first probe of a server the prober has never probed: within the first
/// half of the interval, at most 0.5 s, so that new servers leave `checking` quickly while
/// many servers are not all probed at the same instant.
pub fn first_delay(interval: Duration, random: u32) -> Duration {
    let window = (interval / 2).min(Duration::from_millis(500));
    window.mul_f64(f64::from(random) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds { rise: 2, fall: 3 };
    const PASS: Event = Event::Probe(ProbeResult::Pass);
    const FAIL: Event = Event::Probe(ProbeResult::Fail(ProbeFailure::Refused));

    fn run(events: &[Event]) -> (Word, Vec<Change>) {
        let mut w = Word::CHECKING;
        let mut changes = Vec::new();
        for &e in events {
            let (next, c) = w.step(e, T);
            w = next;
            changes.extend(c);
        }
        (w, changes)
    }

    #[test]
    fn a_checking_server_is_decided_by_its_first_result() {
        let (w, c) = run(&[PASS]);
        assert_eq!(w.status, Status::Up);
        assert_eq!(
            c,
            [Change::Up {
                from: Status::Checking,
                passes: 1
            }]
        );
        let (w, c) = run(&[FAIL]);
        assert_eq!(w.status, Status::Down);
        assert_eq!(c.len(), 1);
        assert_eq!(w.reason, Reason::Probe(ProbeFailure::Refused));
    }

    #[test]
    fn fall_failures_in_a_row_take_it_down_and_rise_passes_bring_it_back() {
        // Up, then two failures (not enough), a pass resets the count.
        let (w, c) = run(&[PASS, FAIL, FAIL, PASS, FAIL, FAIL]);
        assert_eq!((w.status, w.fails, c.len()), (Status::Up, 2, 1));
        // The third in a row takes it down, once.
        let (w, c) = run(&[PASS, FAIL, FAIL, FAIL, FAIL]);
        assert_eq!(w.status, Status::Down);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(
            c[1],
            Change::Down {
                from: Status::Up,
                reason: Reason::Probe(ProbeFailure::Refused),
                fails: 3
            }
        );
        // One pass is not enough to come back; a failure between restarts the count.
        let (w, _) = run(&[PASS, FAIL, FAIL, FAIL, PASS, FAIL, PASS]);
        assert_eq!((w.status, w.passes), (Status::Down, 1));
        let (w, c) = run(&[PASS, FAIL, FAIL, FAIL, PASS, PASS, PASS]);
        assert_eq!((w.status, w.passes), (Status::Up, 3));
        assert_eq!(
            c.last(),
            Some(&Change::Up {
                from: Status::Down,
                passes: 2
            })
        );
    }

    #[test]
    fn users_failures_take_a_server_down_and_only_probes_bring_it_back() {
        let req = Event::Requests {
            failures: 2,
            kind: FailureKind::ConnectRefused,
        };
        let (w, c) = run(&[PASS, PASS, req]);
        assert_eq!(w.status, Status::Down);
        assert_eq!(
            c[1].message("h:1"),
            "server h:1 down: 2 failed requests: connection refused"
        );
        // Already down: no second change.
        let (_, c) = run(&[PASS, req, req]);
        assert_eq!(c.len(), 2);
        let (w, c) = run(&[PASS, req, PASS, PASS]);
        assert_eq!(w.status, Status::Up);
        assert_eq!(c.len(), 3);
        // A checking server that users' requests fail on is down too.
        assert_eq!(run(&[req]).0.status, Status::Down);
    }

    #[test]
    fn while_down_the_reason_follows_the_latest_failure() {
        let status = Event::Probe(ProbeResult::Fail(ProbeFailure::Status(503)));
        let (w, c) = run(&[FAIL, status]);
        assert_eq!(w.reason, Reason::Probe(ProbeFailure::Status(503)));
        assert_eq!(c.len(), 1);
        assert_eq!(w.reason.describe(), "status 503");
    }

    #[test]
    fn recheck_forgets_everything() {
        let (w, _) = run(&[PASS, Event::Recheck]);
        assert_eq!(w, Word::CHECKING);
    }

    #[test]
    fn words_pack_and_unpack() {
        let words = [
            Word::CHECKING,
            Word {
                status: Status::Down,
                passes: 65_535,
                fails: 7,
                reason: Reason::Probe(ProbeFailure::Status(599)),
            },
            Word {
                status: Status::Up,
                passes: 3,
                fails: 65_535,
                reason: Reason::Requests {
                    failures: 12,
                    kind: FailureKind::BodyTimeout,
                },
            },
            Word {
                status: Status::Down,
                passes: 0,
                fails: 1,
                reason: Reason::Probe(ProbeFailure::BodyMismatch),
            },
        ];
        for w in words {
            assert_eq!(Word::unpack(w.pack()), w);
        }
        for kind in FailureKind::ALL {
            let w = Word {
                reason: Reason::Requests { failures: 1, kind },
                ..Word::CHECKING
            };
            assert_eq!(Word::unpack(w.pack()), w);
        }
        // Every probe failure keeps its own reason (a TLS failure once read back as "0
        // failed requests").
        for f in [
            ProbeFailure::Refused,
            ProbeFailure::ConnectTimeout,
            ProbeFailure::Timeout,
            ProbeFailure::Reset,
            ProbeFailure::BadResponse,
            ProbeFailure::Status(503),
            ProbeFailure::BodyMismatch,
            ProbeFailure::Tls,
        ] {
            let w = Word {
                reason: Reason::Probe(f),
                ..Word::CHECKING
            };
            assert_eq!(Word::unpack(w.pack()), w, "{f:?}");
        }
    }

    #[test]
    fn the_atomic_state_counts_downtime_and_reports_each_change_once() {
        let s = CheckState::default();
        let ms = Duration::from_millis;
        assert_eq!(s.status(), Status::Checking);
        assert!(s.snapshot(5).last.is_none());
        assert!(s.probed(ProbeResult::Pass, ms(3), T, 1_000).is_some());
        let fail = ProbeResult::Fail(ProbeFailure::Timeout);
        assert!(s.probed(fail, ms(1000), T, 2_000).is_none());
        assert!(s.probed(fail, ms(1000), T, 3_000).is_none());
        assert!(s.probed(fail, ms(1000), T, 4_000).is_some());
        assert_eq!(s.status(), Status::Down);
        let snap = s.snapshot(6_000);
        assert_eq!(snap.downtime, ms(2_000));
        assert_eq!(snap.changed_at, 4_000);
        assert_eq!(
            snap.last,
            Some(LastProbe {
                at: 4_000,
                result: fail,
                latency: ms(1000)
            })
        );
        s.probed(ProbeResult::Pass, ms(1), T, 7_000);
        assert!(s.probed(ProbeResult::Pass, ms(1), T, 8_000).is_some());
        assert_eq!(s.snapshot(20_000).downtime, ms(4_000));
        assert_eq!(s.snapshot(20_000).last.unwrap().result, ProbeResult::Pass);
        // Down again at 21 s, into maintenance at 22 s: maintenance is no downtime.
        s.apply(
            Event::Requests {
                failures: 2,
                kind: FailureKind::ConnectRefused,
            },
            T,
            21_000,
        );
        s.apply(Event::Recheck, T, 22_000);
        assert_eq!(s.status(), Status::Checking);
        assert_eq!(s.snapshot(90_000).downtime, ms(5_000));
    }

    #[test]
    fn many_threads_racing_on_one_server_report_the_change_once() {
        let s = std::sync::Arc::new(CheckState::default());
        s.probed(ProbeResult::Pass, Duration::ZERO, T, 1);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| {
                            s.apply(
                                Event::Requests {
                                    failures: 2,
                                    kind: FailureKind::ReadTimeout,
                                },
                                T,
                                2,
                            )
                            .is_some()
                        })
                        .count()
                })
            })
            .collect();
        let changes: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        assert_eq!(changes, 1);
    }

    #[test]
    fn probe_delays_stay_within_their_bounds() {
        let i = Duration::from_secs(2);
        for r in [0, 1, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
            let d = next_delay(i, r);
            assert!(d <= i && d >= i - i / 10, "{d:?}");
            let f = first_delay(i, r);
            assert!(f <= Duration::from_millis(500), "{f:?}");
        }
        assert_eq!(next_delay(i, 0), i);
        assert_eq!(next_delay(i, u32::MAX), i - i / 10);
        assert!(first_delay(Duration::from_millis(200), u32::MAX) <= Duration::from_millis(100));
        // Spread: a thousand draws cover the window, not one point of it.
        let mut x: u32 = 7;
        let draws: Vec<Duration> = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                next_delay(i, x)
            })
            .collect();
        let (lo, hi) = (draws.iter().min().unwrap(), draws.iter().max().unwrap());
        assert!(*hi - *lo > i / 20, "{lo:?}..{hi:?}");
    }
}
