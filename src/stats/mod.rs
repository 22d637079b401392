//! Plugin statistics: counters shared by all workers, a plain [`Snapshot`] of them, and three
//! renderers (HTML for people, JSON and Prometheus for machines) served at `StatisticsURL`.
//!
//! The request path only ever touches relaxed atomics through the `record_*` methods of
//! [`Stats`]: no allocation, no lock. Everything that allocates (snapshot, rendering) runs
//! only when someone asks for the statistics page.
//!
//! Indices are the relay's: `entry` is the 0-based position of the `[PROXY_ENTRY]` in
//! `Config::entries`, `server` the 0-based position in that entry's `servers`. They come from
//! the same `Config` the registry was built from, so an out-of-range index is a bug and panics.

mod access;
mod counters;
mod format;
pub mod histogram;
mod html;
mod json;
mod prometheus;
mod queue;
mod snapshot;

pub use access::allowed;
pub use counters::{
    Classes, CounterSnapshot, Counters, EntryStats, Exchange, Failure, Failures, GlobalSnapshot,
    GlobalStats, ServerStats,
};
pub use format::{choose_format, content_type, query_param, refresh_secs, render, Format};
pub use histogram::{Histogram, HistogramSnapshot};
pub use html::html;
pub use json::json;
pub use prometheus::prometheus;
pub use queue::{QueueSnapshot, Waited};
pub use snapshot::{
    CheckLive, EntrySnapshot, LastCheck, ServerLive, ServerSnapshot, Snapshot, SCHEMA_VERSION,
};

use std::sync::atomic::Ordering::Relaxed;

use std::sync::Arc;

use crate::clock::{now_ms, Millis};
use crate::config::Config;

/// The registry of every counter, built once from the configuration and shared by all
/// workers (`Stats` is `Sync`; put it in an `Arc` or a `static`).
#[derive(Debug)]
pub struct Stats {
    entries: Box<[EntryStats]>,
    global: Arc<GlobalStats>,
}

impl Stats {
    /// Zeroed counters for every entry and server of `config`, started now.
    pub fn new(config: &Config) -> Stats {
        Stats::started_at(config, now_ms())
    }

    /// Like [`Stats::new`] with an explicit start instant (tests inject their clock).
    pub fn started_at(config: &Config, started: Millis) -> Stats {
        let global = Arc::new(GlobalStats {
            started,
            ..GlobalStats::default()
        });
        Stats::with_global(config, global, None)
    }

    /// The counters for `config` after a reload: those of `previous` carry on for entries
    /// of the same name and, within them, servers of the same `host:port`; the rest start
    /// at zero. The plugin-wide counters (and the start time) carry on whole.
    pub fn carried(config: &Config, previous: &Stats, previous_config: &Config) -> Stats {
        Stats::with_global(
            config,
            previous.global.clone(),
            Some((previous, previous_config)),
        )
    }

    fn with_global(
        config: &Config,
        global: Arc<GlobalStats>,
        previous: Option<(&Stats, &Config)>,
    ) -> Stats {
        let entries = config
            .entries
            .iter()
            .map(|e| {
                let old = previous.and_then(|(stats, old_config)| {
                    let i = old_config.entries.iter().position(|o| o.name == e.name)?;
                    Some((&stats.entries[i], &old_config.entries[i]))
                });
                let servers = e
                    .servers
                    .iter()
                    .map(|s| {
                        old.and_then(|(stats, entry)| {
                            let j = entry.servers.iter().position(|o| o.name == s.name)?;
                            Some(stats.servers[j].clone())
                        })
                        .unwrap_or_default()
                    })
                    .collect();
                EntryStats {
                    totals: old
                        .map(|(stats, _)| stats.totals.clone())
                        .unwrap_or_default(),
                    servers,
                }
            })
            .collect();
        Stats { entries, global }
    }

    /// Entry `entry`'s counters.
    pub fn entry(&self, entry: usize) -> &EntryStats {
        &self.entries[entry]
    }

    /// Server `server` of entry `entry`.
    pub fn server(&self, entry: usize, server: usize) -> &ServerStats {
        &self.entries[entry].servers[server]
    }

    /// The plugin-wide counters.
    pub fn global(&self) -> &GlobalStats {
        &self.global
    }

    /// Number of entries.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Both counter blocks an attempt on `server` updates.
    fn pair(&self, entry: usize, server: usize) -> (&Counters, &Counters) {
        let e = &self.entries[entry];
        (&e.counters, &e.servers[server].counters)
    }

    /// A client request was routed to `entry` (counted once, however many attempts follow).
    pub fn record_request(&self, entry: usize) {
        self.global.requests.fetch_add(1, Relaxed);
        self.entries[entry].counters.attempt();
    }

    /// The plugin answered a request itself with `status` without routing it: 400 (bad
    /// request), 404 (no entry matched), 403 (statistics refused) or 200 (statistics page).
    /// Other statuses only count in the plugin-wide total.
    pub fn record_local(&self, status: u16) {
        let g = &self.global;
        g.requests.fetch_add(1, Relaxed);
        match status {
            400 => g.bad_requests.fetch_add(1, Relaxed),
            404 => g.not_found.fetch_add(1, Relaxed),
            403 => {
                g.statistics.fetch_add(1, Relaxed);
                g.forbidden.fetch_add(1, Relaxed)
            }
            200 => g.statistics.fetch_add(1, Relaxed),
            _ => 0,
        };
    }

    /// No server of `entry` was available: the request was answered 503.
    pub fn record_no_server(&self, entry: usize) {
        self.entries[entry].no_server.fetch_add(1, Relaxed);
    }

    /// The client of a request routed to `entry` had left before any server was tried (it
    /// closed right behind its request): no attempt, counted as the entry's client abort and
    /// as left early, so that per entry attempts + left early = responses + failures.
    pub fn record_left_early(&self, entry: usize) {
        let e = &self.entries[entry];
        e.counters.failure(Failure::ClientAbort);
        e.left_early.fetch_add(1, Relaxed);
    }

    /// An attempt on `server` starts (its request is being sent to that server).
    pub fn record_attempt(&self, entry: usize, server: usize) {
        self.pair(entry, server).1.attempt();
    }

    /// The attempt got a connection: a new one (`reused == false`) or an idle pooled one.
    pub fn record_connection(&self, entry: usize, server: usize, reused: bool) {
        let (e, s) = self.pair(entry, server);
        e.connection(reused);
        s.connection(reused);
    }

    /// The attempt on `server` completed with a response; see [`Exchange`].
    pub fn record_response(&self, entry: usize, server: usize, exchange: &Exchange) {
        let (e, s) = self.pair(entry, server);
        let observed = counters::Observed::of(exchange);
        e.response(&observed);
        s.response(&observed);
    }

    /// The attempt on `server` failed (`FailureKind` converts into [`Failure`]).
    pub fn record_failure(&self, entry: usize, server: usize, failure: impl Into<Failure>) {
        let f = failure.into();
        let (e, s) = self.pair(entry, server);
        e.failure(f);
        s.failure(f);
    }

    /// A new connection to `server` completed its TLS handshake; `resumed` when it resumed
    /// an earlier session.
    pub fn record_tls_handshake(&self, entry: usize, server: usize, resumed: bool) {
        let (e, s) = self.pair(entry, server);
        e.tls_handshake(resumed);
        s.tls_handshake(resumed);
    }

    /// A TLS handshake with `server` failed for `reason` (the failure itself is counted by
    /// [`Stats::record_failure`]): kept as the server's last TLS failure (the request's
    /// failure line reads it from there).
    pub fn record_tls_failure(&self, entry: usize, server: usize, reason: &str) {
        self.entries[entry].servers[server].tls_failure(reason)
    }

    /// Bytes moved by an attempt that ended without [`Stats::record_response`] (a failure or
    /// client abort after some transfer); completed exchanges carry their bytes themselves.
    pub fn record_bytes(&self, entry: usize, server: usize, to_backend: u64, from_backend: u64) {
        let (e, s) = self.pair(entry, server);
        e.bytes(to_backend, from_backend);
        s.bytes(to_backend, from_backend);
    }

    /// A request of `entry` found every server at its `MaxConnections` and waits in the
    /// queue.
    pub fn record_queued(&self, entry: usize) {
        self.entries[entry].queue.queued();
    }

    /// A request of `entry` found every server at its limit and the queue full: 503.
    pub fn record_queue_full(&self, entry: usize) {
        self.entries[entry].queue.full();
    }

    /// A request of `entry` left the queue after `wait`, as `how` says.
    pub fn record_queue_wait(&self, entry: usize, wait: std::time::Duration, how: Waited) {
        self.entries[entry].queue.waited(wait, how);
    }

    /// `RetryBudget` refused a retry of a request of `entry`.
    pub fn record_retry_refused(&self, entry: usize) {
        self.entries[entry].queue.retry_refused();
    }

    /// The failed attempt on `from` is being retried; `failover` when the next attempt goes
    /// to a different server. Counted on the server that was left, as HAProxy does.
    pub fn record_retry(&self, entry: usize, from: usize, failover: bool) {
        let (e, s) = self.pair(entry, from);
        e.retry(failover);
        s.retry(failover);
    }
}
