//! A plain-data copy of the configuration summary, the live health view and every counter,
//! taken once per statistics request and handed to a renderer.
//!
//! The health state and in-flight counts live with the upstream/health modules; collecting
//! takes them through a closure returning [`ServerLive`], so this module depends on no
//! particular health API and tests can feed any state.

use serde::Serialize;

use super::counters::{CounterSnapshot, GlobalSnapshot};
use super::histogram::bounds_seconds;
use super::Stats;
use crate::clock::Millis;
use crate::config::Config;

/// Version of the JSON document ([`super::json`](fn@super::json)); bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

/// What the health table says about one server right now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerLive {
    /// Without active checks: `up`, `offline` or `probing` (passive health); with
    /// `HealthCheck`: `up`, `down` or `checking` (configured, no result yet). Either way
    /// `ejected` while outlier detection keeps it out, and `backup` for a backup server
    /// that is idle because a primary is usable.
    pub state: &'static str,
    /// While offline or probing: seconds until the offline period ends, 0 once it is over
    /// (the next request that picks the server probes it).
    pub offline_for_secs: Option<u64>,
    /// Why the server is not up: the failure that took it offline or down (e.g. `connect
    /// timeout`, `status 503`, `2 failed requests: connection refused`), or why it was
    /// ejected; empty for an up server ([`Snapshot::collect`] clears it).
    pub reason: String,
    /// Users' failed attempts since the last success.
    pub consecutive_failures: u32,
    /// Requests in flight on the server, across all workers.
    pub in_flight: u32,
    /// What an operator set it to: `ready`, `drain` or `maint` (the admin endpoint).
    pub admin: &'static str,
    /// Whether it is a backup server (`backup` in `ServerList`).
    pub backup: bool,
    /// Its active checks (`null` without `HealthCheck`).
    pub check: Option<CheckLive>,
    /// While ejected: seconds until it returns.
    pub ejected_for_secs: Option<u64>,
    /// Times outlier detection ejected it.
    pub ejections: u32,
    /// Its effective weight in percent of its configured weight: below 100 while it ramps
    /// up after coming back (`SlowStart`).
    pub effective_weight_percent: u32,
}

/// A server's active checks, as the statistics show them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckLive {
    /// The last probe (`null` before the first one ended).
    pub last: Option<LastCheck>,
    /// Probes passed in a row.
    pub consecutive_passes: u32,
    /// Probes failed in a row.
    pub consecutive_fails: u32,
    /// Probes of the server so far.
    pub probes: u64,
    /// Seconds since its state last changed (`null`: not since the plugin started).
    pub changed_secs_ago: Option<u64>,
    /// Seconds spent `down` in all, the current period included.
    pub downtime_secs: u64,
}

/// The outcome of a server's last probe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LastCheck {
    /// `pass` or `fail`.
    pub result: &'static str,
    /// For a failure, how (`connection refused`, `timeout`, `status 503`, `body mismatch`,
    /// …); empty for a pass.
    pub reason: String,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// How long ago it ended, in seconds.
    pub secs_ago: u64,
}

impl Default for ServerLive {
    /// An idle server that never failed.
    fn default() -> ServerLive {
        ServerLive {
            state: "up",
            offline_for_secs: None,
            reason: String::new(),
            consecutive_failures: 0,
            in_flight: 0,
            admin: "ready",
            backup: false,
            check: None,
            ejected_for_secs: None,
            ejections: 0,
            effective_weight_percent: 100,
        }
    }
}

/// Everything the renderers show (also the JSON document, field for field).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// [`SCHEMA_VERSION`].
    pub schema: u32,
    /// Seconds since the plugin started.
    pub uptime_secs: u64,
    /// The configuration file.
    pub config_file: String,
    /// `StatisticsURL`, if set.
    pub statistics_url: Option<String>,
    /// Upper bounds in seconds of the exported latency histogram buckets (all histograms
    /// share them; each histogram's `counts` has one more element, the overflow bucket).
    pub latency_bounds_seconds: Vec<f64>,
    /// Plugin-wide counters.
    pub totals: GlobalSnapshot,
    /// The entries in file order.
    pub entries: Vec<EntrySnapshot>,
}

/// One entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EntrySnapshot {
    /// The entry's `Name` (the `entry` label in Prometheus).
    pub name: String,
    /// Position in the file, counting from 1.
    pub index: usize,
    /// Line of the `[PROXY_ENTRY]` header.
    pub line: usize,
    /// The `Match` patterns as written.
    pub matches: Vec<String>,
    /// The balancer's canonical name.
    pub balancer: String,
    /// Requests answered 503 because no server was available.
    pub no_server: u64,
    /// Requests whose client had left before any server was tried (counted in
    /// `counters.failures.client_abort` as well, with no attempt).
    pub left_early: u64,
    /// Sum of the servers' in-flight requests.
    pub in_flight: u64,
    /// The queue (`MaxConnections`, `QueueSize`) and the retries `RetryBudget` refused.
    pub queue: super::QueueSnapshot,
    /// Counters summed over the servers, plus the client aborts of `left_early`; `requests`
    /// counts client requests.
    pub counters: CounterSnapshot,
    /// The servers in configuration order.
    pub servers: Vec<ServerSnapshot>,
}

/// One server of an entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerSnapshot {
    /// `host:port` as written in the configuration.
    pub name: String,
    /// Configured weight.
    pub weight: u32,
    /// Fraction (0–1) of the entry's attempts that went to this server.
    pub share: f64,
    /// Live health and load.
    #[serde(flatten)]
    pub live: ServerLive,
    /// Why the last TLS handshake with it failed ("" if none did, or it is not a TLS server).
    pub last_tls_failure: String,
    /// This server's counters (`requests` counts attempts).
    pub counters: CounterSnapshot,
}

/// The live view as the statistics show it. The health table keeps the reason of its last
/// state change, so an up server that recovered still carries one (a recovery's, or a
/// failure's when read while the server is going offline): an up server is shown without a
/// reason, rather than with words that read like a fault or a stale "back up".
fn shown(mut live: ServerLive) -> ServerLive {
    if live.state == "up" || live.state == "backup" {
        live.reason.clear();
    }
    live
}

impl Snapshot {
    /// Copies everything at `now`; `view(entry, server)` supplies each server's live state
    /// (an up server's reason is dropped, see [`ServerLive::reason`]).
    pub fn collect(
        config: &Config,
        stats: &Stats,
        now: Millis,
        view: &dyn Fn(usize, usize) -> ServerLive,
    ) -> Snapshot {
        let entries = config
            .entries
            .iter()
            .enumerate()
            .map(|(ei, entry)| {
                let es = stats.entry(ei);
                let mut servers: Vec<ServerSnapshot> = entry
                    .servers
                    .iter()
                    .enumerate()
                    .map(|(si, spec)| ServerSnapshot {
                        name: spec.name.clone(),
                        weight: spec.weight,
                        share: 0.0,
                        live: shown(view(ei, si)),
                        last_tls_failure: stats.server(ei, si).last_tls_failure(),
                        counters: stats.server(ei, si).counters.snapshot(),
                    })
                    .collect();
                let attempts: u64 = servers.iter().map(|s| s.counters.requests).sum();
                if attempts > 0 {
                    for s in &mut servers {
                        s.share = s.counters.requests as f64 / attempts as f64;
                    }
                }
                EntrySnapshot {
                    name: entry.name.clone(),
                    index: ei + 1,
                    line: entry.line,
                    matches: entry.matches.iter().map(|m| m.pattern.clone()).collect(),
                    balancer: entry.balancer.clone(),
                    no_server: es.no_server(),
                    left_early: es.left_early(),
                    queue: es.queue(),
                    in_flight: servers.iter().map(|s| u64::from(s.live.in_flight)).sum(),
                    counters: es.counters.snapshot(),
                    servers,
                }
            })
            .collect();
        Snapshot {
            schema: SCHEMA_VERSION,
            uptime_secs: now.saturating_sub(stats.global().started()) / 1000,
            config_file: config.file.display().to_string(),
            statistics_url: config.statistics_url.clone(),
            latency_bounds_seconds: bounds_seconds(),
            totals: stats.global().snapshot(),
            entries,
        }
    }
}
