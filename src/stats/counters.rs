//! The per-server, per-entry and plugin-wide counters (all relaxed atomics).
//!
//! Relaxed ordering is enough: every counter is independent, nothing is published through
//! them, and a reader only needs each value to be eventually exact. Each server's block is
//! aligned to 128 bytes so that two servers hammered by different workers never share a
//! cache line (128 covers the adjacent-line prefetcher on x86 and the line size on Apple M).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use serde::Serialize;

use super::histogram::{Histogram, HistogramSnapshot, Sample};
use crate::clock::Millis;
use crate::health::FailureKind;

/// Why an attempt ended without a complete exchange: a backend failure (the health
/// module's [`FailureKind`]) or the client going away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The backend failed (counts toward its health as well, elsewhere).
    Backend(FailureKind),
    /// The client closed its connection before the exchange was complete.
    ClientAbort,
}

impl From<FailureKind> for Failure {
    fn from(kind: FailureKind) -> Failure {
        Failure::Backend(kind)
    }
}

impl Failure {
    /// All kinds, in the order of [`Failures`]' fields.
    pub const ALL: [Failure; 9] = [
        Failure::Backend(FailureKind::ConnectRefused),
        Failure::Backend(FailureKind::ConnectTimeout),
        Failure::Backend(FailureKind::ResetBeforeResponse),
        Failure::Backend(FailureKind::ReadTimeout),
        Failure::Backend(FailureKind::BadResponse),
        Failure::Backend(FailureKind::ResponseCut),
        Failure::Backend(FailureKind::BodyTimeout),
        Failure::Backend(FailureKind::TlsHandshake),
        Failure::ClientAbort,
    ];

    /// Slot in the counter array.
    fn slot(self) -> usize {
        match self {
            Failure::Backend(FailureKind::ConnectRefused) => 0,
            Failure::Backend(FailureKind::ConnectTimeout) => 1,
            Failure::Backend(FailureKind::ResetBeforeResponse) => 2,
            Failure::Backend(FailureKind::ReadTimeout) => 3,
            Failure::Backend(FailureKind::BadResponse) => 4,
            Failure::Backend(FailureKind::ResponseCut) => 5,
            Failure::Backend(FailureKind::BodyTimeout) => 6,
            Failure::Backend(FailureKind::TlsHandshake) => 7,
            Failure::ClientAbort => 8,
        }
    }

    /// The `snake_case` name used as JSON field and Prometheus `kind` label.
    pub fn name(self) -> &'static str {
        FAILURE_NAMES[self.slot()]
    }
}

/// Names of the failure kinds, by slot.
const FAILURE_NAMES: [&str; 9] = [
    "connect_refused",
    "connect_timeout",
    "reset_before_response",
    "read_timeout",
    "bad_response",
    "response_cut",
    "body_timeout",
    "tls_handshake",
    "client_abort",
];

/// What one completed exchange with a backend looked like (argument of
/// [`Stats::record_response`](super::Stats::record_response)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exchange {
    /// The backend's final status code (100–599; others count in no class).
    pub status: u16,
    /// Bytes written to the backend (request head and body).
    pub bytes_to_backend: u64,
    /// Bytes read from the backend (response head and body).
    pub bytes_from_backend: u64,
    /// From the start of the attempt until the response head was complete.
    pub head_latency: std::time::Duration,
    /// From the start of the attempt until the last response byte.
    pub total_latency: std::time::Duration,
}

/// An [`Exchange`] with what its counters need worked out once, for the server's and the
/// entry's counters alike (the status class, the latencies' histogram buckets).
#[derive(Debug, Clone, Copy)]
pub(super) struct Observed {
    class: Option<usize>,
    bytes_to_backend: u64,
    bytes_from_backend: u64,
    head: Sample,
    total: Sample,
}

impl Observed {
    pub(super) fn of(x: &Exchange) -> Observed {
        Observed {
            class: (x.status / 100).checked_sub(1).map(usize::from),
            bytes_to_backend: x.bytes_to_backend,
            bytes_from_backend: x.bytes_from_backend,
            head: Sample::of(x.head_latency),
            total: Sample::of(x.total_latency),
        }
    }
}

/// The counters kept for each server and, summed, for each entry.
#[derive(Debug, Default)]
pub struct Counters {
    requests: AtomicU64,
    responses: [AtomicU64; 5],
    failures: [AtomicU64; 9],
    retries: AtomicU64,
    failovers: AtomicU64,
    bytes_to_backend: AtomicU64,
    bytes_from_backend: AtomicU64,
    connections_opened: AtomicU64,
    connections_reused: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    head_latency: Histogram,
    total_latency: Histogram,
}

impl Counters {
    pub(super) fn attempt(&self) {
        self.requests.fetch_add(1, Relaxed);
    }

    pub(super) fn response(&self, x: &Observed) {
        if let Some(c) = x.class.and_then(|class| self.responses.get(class)) {
            c.fetch_add(1, Relaxed);
        }
        self.bytes(x.bytes_to_backend, x.bytes_from_backend);
        self.head_latency.add(x.head);
        self.total_latency.add(x.total);
    }

    pub(super) fn bytes(&self, to_backend: u64, from_backend: u64) {
        // Skip the shared-line write when there is nothing to add.
        if to_backend > 0 {
            self.bytes_to_backend.fetch_add(to_backend, Relaxed);
        }
        if from_backend > 0 {
            self.bytes_from_backend.fetch_add(from_backend, Relaxed);
        }
    }

    pub(super) fn failure(&self, f: Failure) {
        self.failures[f.slot()].fetch_add(1, Relaxed);
    }

    pub(super) fn retry(&self, failover: bool) {
        self.retries.fetch_add(1, Relaxed);
        if failover {
            self.failovers.fetch_add(1, Relaxed);
        }
    }

    pub(super) fn connection(&self, reused: bool) {
        let c = if reused {
            &self.connections_reused
        } else {
            &self.connections_opened
        };
        c.fetch_add(1, Relaxed);
    }

    pub(super) fn tls_handshake(&self, resumed: bool) {
        self.tls_handshakes.fetch_add(1, Relaxed);
        if resumed {
            self.tls_resumed.fetch_add(1, Relaxed);
        }
    }

    /// A plain copy of every counter.
    pub fn snapshot(&self) -> CounterSnapshot {
        let r = |i: usize| self.responses[i].load(Relaxed);
        let f = |i: usize| self.failures[i].load(Relaxed);
        CounterSnapshot {
            requests: self.requests.load(Relaxed),
            responses: Classes {
                c1xx: r(0),
                c2xx: r(1),
                c3xx: r(2),
                c4xx: r(3),
                c5xx: r(4),
            },
            failures: Failures {
                connect_refused: f(0),
                connect_timeout: f(1),
                reset_before_response: f(2),
                read_timeout: f(3),
                bad_response: f(4),
                response_cut: f(5),
                body_timeout: f(6),
                tls_handshake: f(7),
                client_abort: f(8),
            },
            retries: self.retries.load(Relaxed),
            failovers: self.failovers.load(Relaxed),
            bytes_to_backend: self.bytes_to_backend.load(Relaxed),
            bytes_from_backend: self.bytes_from_backend.load(Relaxed),
            connections_opened: self.connections_opened.load(Relaxed),
            connections_reused: self.connections_reused.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
            tls_resumed: self.tls_resumed.load(Relaxed),
            head_latency: self.head_latency.snapshot(),
            total_latency: self.total_latency.snapshot(),
        }
    }
}

/// One server's counters, alone on its cache lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ServerStats {
    /// Attempts sent to this server and what came of them.
    pub counters: Counters,
    /// Why the last TLS handshake with this server failed ("" if none did).
    pub(super) tls_failure: parking_lot::Mutex<String>,
}

impl ServerStats {
    /// Why the last TLS handshake with this server failed ("" if none did).
    pub fn last_tls_failure(&self) -> String {
        self.tls_failure.lock().clone()
    }

    /// Notes a failed handshake's reason (failures only: the lock is never on a response's
    /// path).
    pub(super) fn tls_failure(&self, reason: &str) {
        let mut last = self.tls_failure.lock();
        if *last != reason {
            last.clear();
            last.push_str(reason);
        }
    }
}

/// One entry's own counters: its servers' counters summed, plus what only an entry sees.
/// Kept across reloads for an entry of the same name.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct EntryTotals {
    /// Sum of the servers' counters, except `requests`, which counts client requests routed
    /// to the entry (one request retried on two servers is one entry request, two attempts).
    pub counters: Counters,
    pub(super) no_server: AtomicU64,
    pub(super) left_early: AtomicU64,
    /// The queue and the retry budget.
    pub(super) queue: super::queue::QueueCounters,
}

impl EntryTotals {
    /// Requests answered 503 because no server was available.
    pub fn no_server(&self) -> u64 {
        self.no_server.load(Relaxed)
    }

    /// Requests whose client had left before any server was tried (also counted as the
    /// entry's client aborts).
    pub fn left_early(&self) -> u64 {
        self.left_early.load(Relaxed)
    }

    /// The queue and retry budget counters.
    pub fn queue(&self) -> super::QueueSnapshot {
        self.queue.snapshot()
    }
}

/// One entry's counters in one generation of the configuration: its totals and its
/// servers', each kept across reloads for as long as the entry and the server stay.
#[derive(Debug, Default)]
pub struct EntryStats {
    pub(super) totals: Arc<EntryTotals>,
    pub(super) servers: Box<[Arc<ServerStats>]>,
}

impl EntryStats {
    /// The servers' counters, in configuration order.
    pub fn servers(&self) -> &[Arc<ServerStats>] {
        &self.servers
    }
}

/// The totals' fields read as the entry's own (`entry.counters`, `entry.no_server()`).
impl std::ops::Deref for EntryStats {
    type Target = EntryTotals;

    fn deref(&self) -> &EntryTotals {
        &self.totals
    }
}

/// Plugin-wide counters.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct GlobalStats {
    pub(super) requests: AtomicU64,
    pub(super) bad_requests: AtomicU64,
    pub(super) not_found: AtomicU64,
    pub(super) statistics: AtomicU64,
    pub(super) forbidden: AtomicU64,
    pub(super) started: Millis,
}

impl GlobalStats {
    /// A plain copy of the plugin-wide counters.
    pub fn snapshot(&self) -> GlobalSnapshot {
        GlobalSnapshot {
            requests: self.requests.load(Relaxed),
            bad_requests: self.bad_requests.load(Relaxed),
            not_found: self.not_found.load(Relaxed),
            statistics: self.statistics.load(Relaxed),
            forbidden: self.forbidden.load(Relaxed),
            // Kept by the logs, not here: the proxy fills them in (`Proxy::statistics_page`).
            access_log_lines: 0,
            access_log_dropped: 0,
            log_lines_dropped: 0,
        }
    }

    /// When the registry was created (process monotonic clock).
    pub fn started(&self) -> Millis {
        self.started
    }
}

/// Responses by status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Classes {
    /// 100–199.
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    /// 200–299.
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    /// 300–399.
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    /// 400–499.
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    /// 500–599.
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

impl Classes {
    /// `(label, count)` pairs in class order.
    pub fn pairs(&self) -> [(&'static str, u64); 5] {
        [
            ("1xx", self.c1xx),
            ("2xx", self.c2xx),
            ("3xx", self.c3xx),
            ("4xx", self.c4xx),
            ("5xx", self.c5xx),
        ]
    }
}

/// Failed attempts by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Failures {
    /// Connection refused or another socket error while connecting.
    pub connect_refused: u64,
    /// `ConnectTimeout` elapsed.
    pub connect_timeout: u64,
    /// The connection broke before any response byte.
    pub reset_before_response: u64,
    /// `ReadTimeout` elapsed.
    pub read_timeout: u64,
    /// The backend's response was malformed (head or body framing).
    pub bad_response: u64,
    /// The backend closed or reset after the response head, before the body's end.
    pub response_cut: u64,
    /// `ReadTimeout` elapsed while waiting for more of the body.
    pub body_timeout: u64,
    /// The TLS handshake failed (the reason is the server's `last_tls_failure`).
    pub tls_handshake: u64,
    /// The client went away mid-exchange (not the backend's fault).
    pub client_abort: u64,
}

impl Failures {
    /// `(name, count)` pairs in [`Failure::ALL`] order.
    pub fn pairs(&self) -> [(&'static str, u64); 9] {
        let v = [
            self.connect_refused,
            self.connect_timeout,
            self.reset_before_response,
            self.read_timeout,
            self.bad_response,
            self.response_cut,
            self.body_timeout,
            self.tls_handshake,
            self.client_abort,
        ];
        std::array::from_fn(|i| (FAILURE_NAMES[i], v[i]))
    }

    /// All failures together, client aborts included (every attempt ends in a response or
    /// one of these).
    pub fn total(&self) -> u64 {
        self.pairs().iter().map(|p| p.1).sum()
    }

    /// The failures that are the backend's: all but client aborts.
    pub fn backend(&self) -> u64 {
        self.total() - self.client_abort
    }
}

/// A plain copy of [`Counters`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct CounterSnapshot {
    /// Attempts (per server) or client requests (per entry).
    pub requests: u64,
    /// Backend responses by status class.
    pub responses: Classes,
    /// Failed attempts by kind.
    pub failures: Failures,
    /// Attempts that were followed by another attempt for the same request.
    pub retries: u64,
    /// Retries that went to a different server.
    pub failovers: u64,
    /// Bytes written to backends.
    pub bytes_to_backend: u64,
    /// Bytes read from backends.
    pub bytes_from_backend: u64,
    /// Upstream connections newly opened.
    pub connections_opened: u64,
    /// Attempts that reused an idle upstream connection.
    pub connections_reused: u64,
    /// TLS handshakes completed with backends (full and resumed).
    pub tls_handshakes: u64,
    /// TLS handshakes that resumed an earlier session.
    pub tls_resumed: u64,
    /// Time from the start of an attempt to the complete response head.
    pub head_latency: HistogramSnapshot,
    /// Time from the start of an attempt to the last response byte.
    pub total_latency: HistogramSnapshot,
}

/// A plain copy of [`GlobalStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct GlobalSnapshot {
    /// Every request the plugin handled (proxied or answered locally).
    pub requests: u64,
    /// Requests answered 400 locally (unparsable or refused before routing).
    pub bad_requests: u64,
    /// Requests answered 404 locally (no entry matched).
    pub not_found: u64,
    /// Requests for the statistics page itself (allowed or not).
    pub statistics: u64,
    /// Statistics requests refused with 403.
    pub forbidden: u64,
    /// Lines written to the access log (0 while it is off).
    pub access_log_lines: u64,
    /// Access log lines lost: dropped because its queue was full, or refused by the file.
    pub access_log_dropped: u64,
    /// Lines for Monkey's log dropped because the log queue was full.
    pub log_lines_dropped: u64,
}
