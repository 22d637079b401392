//! The Prometheus rendering: text exposition format 0.0.4.
//!
//! Each metric family is written once, with its `# HELP` and `# TYPE`, followed by all its
//! samples — the format forbids a family appearing in two places. Server-level counters carry
//! `entry` (the entry's `Name`) and `server` labels; entry totals are not repeated as
//! separate series because `sum by (entry)` gives them and duplicates would double-count.

use std::fmt::{Display, Write};

use super::counters::CounterSnapshot;
use super::histogram::{HistogramSnapshot, BOUNDS_MICROS, BUCKETS};
use super::snapshot::{EntrySnapshot, ServerSnapshot};
use super::QueueSnapshot;
use super::Snapshot;

const P: &str = "proxy_reverse_";

/// Renders `snapshot` in the Prometheus text format.
pub fn prometheus(snap: &Snapshot) -> String {
    let mut w = Writer(String::with_capacity(16 * 1024));

    w.family(
        "uptime_seconds",
        "gauge",
        "Seconds since the plugin started.",
    );
    w.sample("uptime_seconds", &[], snap.uptime_secs);
    w.family(
        "plugin_requests_total",
        "counter",
        "Requests handled by the plugin, proxied or answered locally.",
    );
    w.sample("plugin_requests_total", &[], snap.totals.requests);
    w.family(
        "local_responses_total",
        "counter",
        "Requests the plugin answered itself with an error, by status code.",
    );
    for (code, n) in [
        ("400", snap.totals.bad_requests),
        ("403", snap.totals.forbidden),
        ("404", snap.totals.not_found),
    ] {
        w.sample("local_responses_total", &[("code", code)], n);
    }
    w.family(
        "statistics_requests_total",
        "counter",
        "Requests for the statistics URL, allowed or refused.",
    );
    w.sample("statistics_requests_total", &[], snap.totals.statistics);
    w.family(
        "access_log_lines_total",
        "counter",
        "Lines written to the access log.",
    );
    w.sample("access_log_lines_total", &[], snap.totals.access_log_lines);
    w.family(
        "access_log_dropped_lines_total",
        "counter",
        "Access log lines lost: its queue was full, or the file refused them.",
    );
    w.sample(
        "access_log_dropped_lines_total",
        &[],
        snap.totals.access_log_dropped,
    );
    w.family(
        "log_dropped_lines_total",
        "counter",
        "Lines for Monkey's log dropped because the log queue was full.",
    );
    w.sample(
        "log_dropped_lines_total",
        &[],
        snap.totals.log_lines_dropped,
    );

    entry_families(&mut w, snap);
    server_families(&mut w, snap);
    w.0
}

fn entry_families(w: &mut Writer, snap: &Snapshot) {
    w.family(
        "entry_info",
        "gauge",
        "Configured entries (always 1): balancer and line of the [PROXY_ENTRY] header.",
    );
    for e in &snap.entries {
        let line = e.line.to_string();
        let labels = [
            ("entry", e.name.as_str()),
            ("balancer", e.balancer.as_str()),
            ("line", line.as_str()),
        ];
        w.sample("entry_info", &labels, 1);
    }
    let per_entry: [EntryMetric; 3] = [
        (
            "entry_requests_total",
            "Client requests routed to the entry (however many attempts each took).",
            |e| e.counters.requests,
        ),
        (
            "no_server_total",
            "Requests answered 503 because no server of the entry was available.",
            |e| e.no_server,
        ),
        (
            "client_left_early_total",
            "Requests whose client had left before any server of the entry was tried.",
            |e| e.left_early,
        ),
    ];
    for (name, help, get) in per_entry {
        w.family(name, "counter", help);
        for e in &snap.entries {
            w.sample(name, &[("entry", e.name.as_str())], get(e));
        }
    }
    queue_families(w, snap);
}

/// A queue metric: name, type, help, value.
type QueueMetric<T> = (
    &'static str,
    &'static str,
    &'static str,
    fn(&QueueSnapshot) -> T,
);

/// The queue and the retry budget of each entry.
fn queue_families(w: &mut Writer, snap: &Snapshot) {
    let counts: [QueueMetric<u64>; 7] = [
        (
            "queue_waiting",
            "gauge",
            "Requests waiting now for a server under MaxConnections.",
            |q| q.waiting,
        ),
        (
            "queue_waits_total",
            "counter",
            "Requests that waited in the entry's queue.",
            |q| q.waits,
        ),
        (
            "queue_served_total",
            "counter",
            "Waits that ended with a server taking the request.",
            |q| q.served,
        ),
        (
            "queue_timeouts_total",
            "counter",
            "Waits that ran out (QueueTimeout), answered 503.",
            |q| q.timeouts,
        ),
        (
            "queue_left_total",
            "counter",
            "Waits that ended with the client leaving.",
            |q| q.left,
        ),
        (
            "queue_full_total",
            "counter",
            "Requests answered 503 at once: every server at MaxConnections, the queue full.",
            |q| q.full,
        ),
        (
            "retry_budget_refused_total",
            "counter",
            "Retries RetryBudget refused (the client got the failure).",
            |q| q.retries_refused,
        ),
    ];
    for (name, kind, help, get) in counts {
        w.family(name, kind, help);
        for e in &snap.entries {
            w.sample(name, &[("entry", e.name.as_str())], get(&e.queue));
        }
    }
    let times: [QueueMetric<f64>; 2] = [
        (
            "queue_wait_seconds_total",
            "counter",
            "Time spent in the queue by the waits that ended.",
            |q| q.wait_seconds_total,
        ),
        (
            "queue_wait_max_seconds",
            "gauge",
            "The longest wait in the queue so far.",
            |q| q.wait_max_seconds,
        ),
    ];
    for (name, kind, help, get) in times {
        w.family(name, kind, help);
        for e in &snap.entries {
            w.sample(name, &[("entry", e.name.as_str())], get(&e.queue));
        }
    }
}

/// Every state a server can be in (`server_state`'s `state` label).
const STATES: [&str; 7] = [
    "up", "offline", "probing", "down", "checking", "ejected", "backup",
];

/// An entry-level counter: name, help, value.
type EntryMetric = (&'static str, &'static str, fn(&EntrySnapshot) -> u64);

/// A server-level histogram: name, help, which histogram.
type HistogramMetric = (
    &'static str,
    &'static str,
    fn(&CounterSnapshot) -> &HistogramSnapshot,
);

/// A server-level metric: name, type, help, value.
type ServerMetric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ServerSnapshot) -> u64,
);

const SERVER_METRICS: [ServerMetric; 21] = [
    (
        "server_up",
        "gauge",
        "Whether the server is up (1: up, or an idle backup) or not (0: offline, probing, down, checking, ejected).",
        |s| u64::from(matches!(s.live.state, "up" | "backup")),
    ),
    (
        "server_ejected_remaining_seconds",
        "gauge",
        "Seconds until an ejected server returns (0 when not ejected).",
        |s| s.live.ejected_for_secs.unwrap_or(0),
    ),
    (
        "server_ejections_total",
        "counter",
        "Times outlier detection ejected the server.",
        |s| u64::from(s.live.ejections),
    ),
    (
        "server_check_consecutive_passes",
        "gauge",
        "Health check probes passed in a row (servers with HealthCheck only).",
        |s| s.live.check.as_ref().map_or(0, |c| u64::from(c.consecutive_passes)),
    ),
    (
        "server_check_consecutive_failures",
        "gauge",
        "Health check probes failed in a row (servers with HealthCheck only).",
        |s| s.live.check.as_ref().map_or(0, |c| u64::from(c.consecutive_fails)),
    ),
    (
        "server_check_probes_total",
        "counter",
        "Health check probes of the server (servers with HealthCheck only).",
        |s| s.live.check.as_ref().map_or(0, |c| c.probes),
    ),
    (
        "server_downtime_seconds_total",
        "counter",
        "Seconds the server spent down by its health checks (servers with HealthCheck only).",
        |s| s.live.check.as_ref().map_or(0, |c| c.downtime_secs),
    ),
    (
        "server_admin_state",
        "gauge",
        "What an operator set the server to: 0 ready, 1 drain (no new requests), 2 maint (no probes either).",
        |s| match s.live.admin {
            "drain" => 1,
            "maint" => 2,
            _ => 0,
        },
    ),
    (
        "server_weight",
        "gauge",
        "Configured weight of the server.",
        |s| u64::from(s.weight),
    ),
    (
        "server_in_flight_requests",
        "gauge",
        "Requests in flight on the server.",
        |s| u64::from(s.live.in_flight),
    ),
    (
        "server_consecutive_failures",
        "gauge",
        "Failures since the last success.",
        |s| u64::from(s.live.consecutive_failures),
    ),
    (
        "server_offline_remaining_seconds",
        "gauge",
        "Seconds until an offline server is tried again.",
        |s| s.live.offline_for_secs.unwrap_or(0),
    ),
    (
        "requests_total",
        "counter",
        "Attempts sent to the server.",
        |s| s.counters.requests,
    ),
    (
        "retries_total",
        "counter",
        "Failed attempts on the server that were retried.",
        |s| s.counters.retries,
    ),
    (
        "failovers_total",
        "counter",
        "Retries that moved away from the server.",
        |s| s.counters.failovers,
    ),
    (
        "backend_sent_bytes_total",
        "counter",
        "Bytes written to the server.",
        |s| s.counters.bytes_to_backend,
    ),
    (
        "backend_received_bytes_total",
        "counter",
        "Bytes read from the server.",
        |s| s.counters.bytes_from_backend,
    ),
    (
        "upstream_connections_opened_total",
        "counter",
        "Connections opened to the server.",
        |s| s.counters.connections_opened,
    ),
    (
        "upstream_connections_reused_total",
        "counter",
        "Attempts that reused an idle connection.",
        |s| s.counters.connections_reused,
    ),
    (
        "tls_handshakes_total",
        "counter",
        "TLS handshakes completed with the server (full or resumed).",
        |s| s.counters.tls_handshakes,
    ),
    (
        "tls_resumed_handshakes_total",
        "counter",
        "TLS handshakes with the server that resumed a session.",
        |s| s.counters.tls_resumed,
    ),
];

fn server_families(w: &mut Writer, snap: &Snapshot) {
    let servers = || {
        snap.entries
            .iter()
            .flat_map(|e| e.servers.iter().map(move |s| (e.name.clone(), s)))
    };
    w.family(
        "server_state",
        "gauge",
        "The server's state: 1 for the one it is in, 0 for the others.",
    );
    for (idx, s) in servers() {
        for state in STATES {
            let labels = [
                ("entry", idx.as_str()),
                ("server", &s.name),
                ("state", state),
            ];
            w.sample("server_state", &labels, u8::from(s.live.state == state));
        }
    }
    w.family(
        "server_effective_weight_ratio",
        "gauge",
        "The server's effective weight over its configured weight (below 1 during a slow start).",
    );
    for (idx, s) in servers() {
        let labels = [("entry", idx.as_str()), ("server", s.name.as_str())];
        let ratio = f64::from(s.live.effective_weight_percent) / 100.0;
        w.sample("server_effective_weight_ratio", &labels, ratio);
    }
    let last_checks = || {
        servers().filter_map(|(idx, s)| {
            let last = s.live.check.as_ref()?.last.as_ref()?;
            Some((idx, s, last))
        })
    };
    w.family(
        "server_check_latency_seconds",
        "gauge",
        "How long the server's last health check probe took.",
    );
    for (idx, s, last) in last_checks() {
        let labels = [("entry", idx.as_str()), ("server", s.name.as_str())];
        w.sample(
            "server_check_latency_seconds",
            &labels,
            last.latency_ms / 1e3,
        );
    }
    w.family(
        "server_check_last_seconds",
        "gauge",
        "Seconds since the server's last health check probe ended.",
    );
    for (idx, s, last) in last_checks() {
        let labels = [("entry", idx.as_str()), ("server", s.name.as_str())];
        w.sample("server_check_last_seconds", &labels, last.secs_ago);
    }
    w.family(
        "server_check_passing",
        "gauge",
        "Whether the server's last health check probe passed (1) or failed (0).",
    );
    for (idx, s, last) in last_checks() {
        let labels = [("entry", idx.as_str()), ("server", s.name.as_str())];
        w.sample(
            "server_check_passing",
            &labels,
            u8::from(last.result == "pass"),
        );
    }
    w.family(
        "server_state_changed_seconds",
        "gauge",
        "Seconds since the server's health check state last changed.",
    );
    for (idx, s) in servers() {
        if let Some(secs) = s.live.check.as_ref().and_then(|c| c.changed_secs_ago) {
            let labels = [("entry", idx.as_str()), ("server", s.name.as_str())];
            w.sample("server_state_changed_seconds", &labels, secs);
        }
    }
    for (name, kind, help, get) in SERVER_METRICS {
        w.family(name, kind, help);
        for (idx, s) in servers() {
            w.sample(
                name,
                &[("entry", idx.as_str()), ("server", s.name.as_str())],
                get(s),
            );
        }
    }
    w.family(
        "responses_total",
        "counter",
        "Responses from the server by status class.",
    );
    for (idx, s) in servers() {
        for (class, n) in s.counters.responses.pairs() {
            let labels = [
                ("entry", idx.as_str()),
                ("server", &s.name),
                ("class", class),
            ];
            w.sample("responses_total", &labels, n);
        }
    }
    w.family(
        "failures_total",
        "counter",
        "Failed attempts on the server by kind.",
    );
    for (idx, s) in servers() {
        for (kind, n) in s.counters.failures.pairs() {
            let labels = [("entry", idx.as_str()), ("server", &s.name), ("kind", kind)];
            w.sample("failures_total", &labels, n);
        }
    }
    let histograms: [HistogramMetric; 2] = [
        (
            "response_head_seconds",
            "Time from the start of an attempt to the complete response head.",
            |c| &c.head_latency,
        ),
        (
            "response_duration_seconds",
            "Time from the start of an attempt to the last response byte.",
            |c| &c.total_latency,
        ),
    ];
    for (name, help, get) in histograms {
        w.family(name, "histogram", help);
        for (idx, s) in servers() {
            w.histogram(
                name,
                &[("entry", idx.as_str()), ("server", s.name.as_str())],
                get(&s.counters),
            );
        }
    }
}

/// Accumulates exposition text.
struct Writer(String);

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        // HELP text escapes backslash and newline only.
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.0, "# HELP {P}{name} {help}\n# TYPE {P}{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.series(name, labels, None);
        let _ = writeln!(self.0, " {value}");
    }

    /// `name{labels[,le="…"]}` without the value.
    fn series(&mut self, name: &str, labels: &[(&str, &str)], le: Option<&str>) {
        self.0.push_str(P);
        self.0.push_str(name);
        let extra = le.map(|v| ("le", v));
        let all = labels.iter().copied().chain(extra);
        for (i, (k, v)) in all.enumerate() {
            self.0.push(if i == 0 { '{' } else { ',' });
            self.0.push_str(k);
            self.0.push_str("=\"");
            escape_label(&mut self.0, v);
            self.0.push('"');
        }
        if !labels.is_empty() || le.is_some() {
            self.0.push('}');
        }
    }

    /// Cumulative `_bucket` series ending with `+Inf`, then `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        // The exported buckets (exact sums of the fine ones); always every bucket, so `+Inf`
        // is present even for an empty snapshot.
        let counts = h.counts();
        for i in 0..BUCKETS {
            cumulative += counts.get(i).copied().unwrap_or(0);
            let le = match BOUNDS_MICROS.get(i) {
                Some(&b) => (b as f64 / 1e6).to_string(),
                None => "+Inf".to_string(),
            };
            self.series(&bucket, labels, Some(&le));
            let _ = writeln!(self.0, " {cumulative}");
        }
        self.sample(&format!("{name}_sum"), labels, h.sum_seconds());
        self.sample(&format!("{name}_count"), labels, cumulative);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
