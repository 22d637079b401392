//! The JSON rendering: the [`Snapshot`] serialised field for field.
//!
//! Schema (version 1; also in `docs/statistics.md`). Counts are integers, times are seconds
//! as numbers, absent values are `null`:
//!
//! ```text
//! {
//!   "schema": 1,
//!   "uptime_secs": u64,
//!   "config_file": string,
//!   "statistics_url": string | null,
//!   "latency_bounds_seconds": [f64; 19],        // exported histogram bucket upper bounds
//!   "totals": { "requests", "bad_requests", "not_found", "statistics", "forbidden",
//!                 "access_log_lines", "access_log_dropped", "log_lines_dropped": u64 },
//!   "entries": [ {
//!     "index": 1-based position in the file, "line": u64,
//!     "matches": [string], "balancer": string,
//!     "no_server": u64 (503s), "left_early": u64 (client gone before any attempt),
//!     "in_flight": u64,
//!     "queue": { "waiting" (now), "waits", "served", "timeouts", "left", "full",
//!                "retries_refused": u64, "wait_seconds_total", "wait_max_seconds": f64 },
//!     "counters": Counters (requests = client requests; client_abort includes left_early),
//!     "servers": [ {
//!       "name": "host:port", "weight": u32, "share": 0..1 of the entry's attempts,
//!       "state": "up" | "offline" | "probing" | "down" | "checking" | "ejected" | "backup",
//!       "offline_for_secs": u64 | null (null while up, 0 once the retry is due),
//!       "reason": string (why it is not up; "" while up),
//!       "consecutive_failures": u32, "in_flight": u32, "admin": string,
//!       "backup": bool, "ejections": u32, "ejected_for_secs": u64 | null,
//!       "effective_weight_percent": u32,
//!       "check": null | { "last": null | { "result", "reason", "latency_ms", "secs_ago" },
//!                         "consecutive_passes", "consecutive_fails", "probes",
//!                         "changed_secs_ago", "downtime_secs" },
//!       "last_tls_failure": string (why the last TLS handshake failed; "" if none did),
//!       "counters": Counters (requests = attempts)
//!     } ]
//!   } ]
//! }
//! Counters = {
//!   "requests": u64,
//!   "responses": { "1xx", "2xx", "3xx", "4xx", "5xx": u64 },
//!   "failures": { "connect_refused", "connect_timeout", "reset_before_response",
//!                 "read_timeout", "bad_response", "response_cut", "body_timeout",
//!                 "tls_handshake", "client_abort": u64 },
//!   "retries", "failovers", "bytes_to_backend", "bytes_from_backend",
//!   "connections_opened", "connections_reused": u64,
//!   "tls_handshakes", "tls_resumed": u64 (TLS handshakes with backends, and those resumed),
//!   "head_latency", "total_latency": Histogram
//! }
//! Histogram = { "count": u64, "sum_seconds": f64, "p50", "p90", "p99": f64 | null,
//!               "counts": [u64; 20] (per exported bucket, not cumulative, overflow last) }
//! (quantiles come from the fine buckets, see `histogram`)
//! ```

use super::Snapshot;

/// Renders `snapshot` as a pretty-printed JSON document (see the module documentation).
pub fn json(snapshot: &Snapshot) -> String {
    // Serialising plain structs of numbers and strings cannot fail; fall back to an error
    // object rather than panic inside a web server just in case.
    let mut out = serde_json::to_string_pretty(snapshot)
        .unwrap_or_else(|e| format!("{{\"error\":{}}}", serde_json::Value::String(e.to_string())));
    out.push('\n');
    out
}
