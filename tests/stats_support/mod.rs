//! A small configuration and a populated statistics registry shared by the stats tests.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use proxy_reverse::config::{Config, Entry, MatchRule, ServerSpec};
use proxy_reverse::health::FailureKind;
use proxy_reverse::stats::{Exchange, Failure, ServerLive, Snapshot, Stats};

/// Two entries: the first with three servers (one with a hostile name in its reason), the
/// second with one server and a pattern that needs escaping everywhere.
pub fn config() -> Config {
    let server = |name: &str, weight| ServerSpec {
        name: name.to_string(),
        addr: name.parse().unwrap(),
        weight,
        tls: false,
        backup: false,
    };
    let rule = |p: &str, line| MatchRule {
        pattern: p.to_string(),
        line,
    };
    let mut first = Entry::with_defaults(
        3,
        vec![rule("^/api/", 4), rule("\\.php$", 5)],
        vec![
            server("127.0.0.1:8080", 1),
            server("127.0.0.1:8081", 2),
            server("[::1]:8082", 1),
        ],
    );
    first.balancer = "RoundRobin".to_string();
    first.name = "api".to_string();
    let mut second = Entry::with_defaults(
        9,
        vec![rule("^/x\"<script>alert(1)</script>\\", 10)],
        vec![server("10.0.0.5:80", 1)],
    );
    second.name = "entry-2".to_string();
    Config {
        file: PathBuf::from("/etc/monkey/plugins/proxy_reverse/proxy_reverse.conf"),
        statistics_url: Some("/proxy-stats".to_string()),
        statistics_allow: Vec::new(),
        admin_url: None,
        admin_allow: Vec::new(),
        access_log: None,
        entries: vec![first, second],
    }
}

/// Some traffic on every kind of counter.
pub fn populate(stats: &Stats) {
    let ok = |status, ms| Exchange {
        status,
        bytes_to_backend: 100,
        bytes_from_backend: 1000,
        head_latency: Duration::from_millis(ms),
        total_latency: Duration::from_millis(ms * 2),
    };
    for i in 0..30u64 {
        stats.record_request(0);
        let s = (i % 3) as usize;
        stats.record_attempt(0, s);
        stats.record_connection(0, s, i >= 3);
        stats.record_response(0, s, &ok(if i % 10 == 0 { 503 } else { 200 }, 1 + i));
    }
    stats.record_request(0);
    stats.record_attempt(0, 2);
    stats.record_failure(0, 2, FailureKind::ConnectRefused);
    stats.record_retry(0, 2, true);
    stats.record_attempt(0, 0);
    stats.record_failure(0, 0, Failure::ClientAbort);
    stats.record_bytes(0, 0, 50, 7);
    stats.record_request(1);
    stats.record_no_server(1);
    stats.record_local(404);
    stats.record_local(400);
}

/// Live view: entry 0 server 2 offline with a hostile reason, entry 0 server 1 drained by an
/// operator, everything else up and ready.
pub fn live(entry: usize, server: usize) -> ServerLive {
    if (entry, server) == (0, 2) {
        ServerLive {
            state: "offline",
            offline_for_secs: Some(7),
            reason: "<script>alert('x')</script> connection refused".to_string(),
            consecutive_failures: 2,
            in_flight: 0,
            admin: "ready",
            ..ServerLive::default()
        }
    } else if (entry, server) == (0, 1) {
        ServerLive {
            in_flight: 1,
            admin: "drain",
            ..ServerLive::default()
        }
    } else {
        ServerLive {
            in_flight: server as u32,
            ..ServerLive::default()
        }
    }
}

/// A snapshot of [`populate`]d counters, 65 s after start.
pub fn snapshot() -> Snapshot {
    snapshot_with(&live)
}

/// Like [`snapshot`], with another live view.
pub fn snapshot_with(live: &dyn Fn(usize, usize) -> ServerLive) -> Snapshot {
    let config = config();
    let stats = Stats::started_at(&config, 1_000);
    populate(&stats);
    Snapshot::collect(&config, &stats, 66_000, live)
}

/// The table row (`<tr>…</tr>`) of the server named `name` in an HTML page.
pub fn row<'p>(page: &'p str, name: &str) -> &'p str {
    let rows: Vec<&str> = page
        .split("<tr>")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .filter(|r| r.contains(&format!(">{name} <small>")))
        .collect();
    assert_eq!(rows.len(), 1, "rows for {name} in:\n{page}");
    rows[0]
}

/// The content of the cell labelled `label` (a column heading) in a table row.
pub fn cell<'r>(row: &'r str, label: &str) -> &'r str {
    let start = format!("<td data-label=\"{label}\"><span>");
    let at = row
        .find(&start)
        .unwrap_or_else(|| panic!("no {label} cell in {row}"));
    let rest = &row[at + start.len()..];
    // The first wrapper end: a cell's own spans close before it.
    &rest[..rest.find("</span></td>").expect("cell end")]
}
