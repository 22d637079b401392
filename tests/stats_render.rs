//! The three renderers: HTML for people, JSON and Prometheus for machines.

mod common;
mod stats_support;

use proxy_reverse::stats::{html, json, prometheus, render, Format, ServerLive};
use serde_json::Value;

#[test]
fn snapshot_carries_counters_live_view_and_summary() {
    let s = stats_support::snapshot();
    assert_eq!(s.uptime_secs, 65);
    assert_eq!(s.statistics_url.as_deref(), Some("/proxy-stats"));
    assert_eq!(s.totals.requests, 34);
    let e = &s.entries[0];
    assert_eq!((e.index, e.line, e.balancer.as_str()), (1, 3, "RoundRobin"));
    assert_eq!(e.matches, ["^/api/", "\\.php$"]);
    assert_eq!(e.counters.requests, 31);
    // In flight: server 1 has one, server 0 none, offline server 2 none.
    assert_eq!(e.in_flight, 1);
    let shares: f64 = e.servers.iter().map(|s| s.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    assert_eq!(e.servers[2].live.state, "offline");
    assert_eq!(e.servers[1].weight, 2);
    assert_eq!(s.entries[1].no_server, 1);
}

#[test]
fn html_shows_every_server_and_state_and_escapes_text() {
    let snap = stats_support::snapshot();
    let page = html(&snap, None);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("name=\"viewport\""));
    assert!(!page.contains("http-equiv=\"refresh\""));
    for e in &snap.entries {
        assert!(page.contains(&format!("<h2>{} ", e.name)), "{}", e.name);
        for s in &e.servers {
            assert!(page.contains(&s.name), "{}", s.name);
        }
    }
    assert!(page.contains("RoundRobin") && page.contains("FirstAlive"));
    assert!(page.contains("class=\"badge up\">up<"));
    assert!(page.contains("class=\"badge offline\">offline<"));
    assert!(page.contains("retry in 7 s"));
    // Shares as bar widths: 11, 10 and 11 of 32 attempts.
    assert!(
        page.contains("width:34.4%") && page.contains("width:31.2%"),
        "{page}"
    );
    // Hostile pattern and reason come out as text, never as markup.
    assert!(!page.contains("<script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;script&gt;alert(&#39;x&#39;)"));
    // Self-contained: no external stylesheet, script or image.
    for needle in ["<link", "<script", "<img", "src=", "http://", "https://"] {
        assert!(!page.contains(needle), "{needle}");
    }
}

#[test]
fn html_auto_refresh_from_query() {
    let snap = stats_support::snapshot();
    let page = render(&snap, Format::Html, "refresh=10");
    assert!(page.contains("<meta http-equiv=\"refresh\" content=\"10\">"));
    let page = render(&snap, Format::Html, "refresh=junk");
    assert!(!page.contains("http-equiv"));
}

#[test]
fn json_parses_with_the_documented_fields() {
    let snap = stats_support::snapshot();
    let v: Value = serde_json::from_str(&json(&snap)).expect("valid JSON");
    assert_eq!(v["schema"], 1);
    assert_eq!(v["uptime_secs"], 65);
    assert_eq!(v["statistics_url"], "/proxy-stats");
    assert!(v["config_file"]
        .as_str()
        .unwrap()
        .ends_with("proxy_reverse.conf"));
    assert_eq!(v["latency_bounds_seconds"].as_array().unwrap().len(), 19);
    for k in [
        "requests",
        "bad_requests",
        "not_found",
        "statistics",
        "forbidden",
    ] {
        assert!(v["totals"][k].is_u64(), "totals.{k}");
    }
    let e = &v["entries"][0];
    for k in ["index", "line", "no_server", "left_early", "in_flight"] {
        assert!(e[k].is_u64(), "entry.{k}");
    }
    assert_eq!(e["matches"][1], "\\.php$");
    assert_eq!(e["balancer"], "RoundRobin");
    let s = &e["servers"][2];
    assert_eq!(s["name"], "[::1]:8082");
    assert_eq!(s["state"], "offline");
    assert_eq!(s["offline_for_secs"], 7);
    assert_eq!(s["consecutive_failures"], 2);
    assert!(s["reason"].as_str().unwrap().contains("<script>"));
    assert!(s["share"].is_f64());
    assert_eq!(e["servers"][0]["offline_for_secs"], Value::Null);
    let c = &s["counters"];
    for k in [
        "requests",
        "retries",
        "failovers",
        "bytes_to_backend",
        "bytes_from_backend",
        "connections_opened",
        "connections_reused",
    ] {
        assert!(c[k].is_u64(), "counters.{k}");
    }
    for k in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
        assert!(c["responses"][k].is_u64(), "responses.{k}");
    }
    assert_eq!(c["failures"]["connect_refused"], 1);
    assert_eq!(c["failovers"], 1);
    for h in ["head_latency", "total_latency"] {
        let h = &c[h];
        assert_eq!(h["count"], 10);
        assert!(h["sum_seconds"].is_f64());
        assert!(h["p50"].is_f64() && h["p90"].is_f64() && h["p99"].is_f64());
        assert_eq!(h["counts"].as_array().unwrap().len(), 20);
    }
    // Without observations the quantiles are null.
    let empty = &v["entries"][1]["counters"]["head_latency"];
    assert_eq!(empty["p50"], Value::Null);
}

/// Checks the text format line by line: every sample's family was declared once by HELP
/// and TYPE before it, names and labels are well-formed, values parse.
fn check_exposition(text: &str) {
    let mut declared: Vec<String> = Vec::new();
    let mut typed = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(!declared.contains(&name), "family {name} declared twice");
            declared.push(name);
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert_eq!(declared.last().map(String::as_str), Some(name));
            assert!(["counter", "gauge", "histogram"].contains(&kind));
            typed.insert(name.to_string(), kind.to_string());
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        assert!(value == "+Inf" || value.parse::<f64>().is_ok(), "{line}");
        let name = series.split('{').next().unwrap();
        assert!(name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'));
        let family = declared.last().expect("sample before HELP");
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|b| b == family))
            .unwrap_or(name);
        assert_eq!(base, family, "sample outside its family: {line}");
        if typed[family] == "counter" {
            assert!(family.ends_with("_total"), "{family}");
        }
        if let Some(labels) = series.strip_prefix(name) {
            if !labels.is_empty() {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
            }
        }
    }
}

#[test]
fn prometheus_text_is_well_formed() {
    let snap = stats_support::snapshot();
    let text = prometheus(&snap);
    check_exposition(&text);
    assert!(
        text.contains("proxy_reverse_requests_total{entry=\"api\",server=\"127.0.0.1:8080\"} 11\n")
    );
    assert!(text.contains("# TYPE proxy_reverse_response_duration_seconds histogram\n"));
    assert!(text.contains(
        "proxy_reverse_response_duration_seconds_bucket{entry=\"api\",server=\"[::1]:8082\",le=\"+Inf\"} 10\n"
    ));
    assert!(text.contains(
        "proxy_reverse_response_duration_seconds_count{entry=\"api\",server=\"[::1]:8082\"} 10\n"
    ));
    assert!(text.contains("proxy_reverse_server_up{entry=\"api\",server=\"[::1]:8082\"} 0\n"));
    assert!(text.contains(
        "proxy_reverse_failures_total{entry=\"api\",server=\"[::1]:8082\",kind=\"connect_refused\"} 1\n"
    ));
    assert!(text.contains("proxy_reverse_no_server_total{entry=\"entry-2\"} 1\n"));
    assert!(text.contains("proxy_reverse_local_responses_total{code=\"404\"} 1\n"));
    // Buckets are cumulative.
    let mut last = 0u64;
    for line in text.lines().filter(|l| {
        l.starts_with(
            "proxy_reverse_response_head_seconds_bucket{entry=\"api\",server=\"127.0.0.1:8080\"",
        )
    }) {
        let n: u64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!(n >= last, "{line}");
        last = n;
    }
    assert_eq!(last, 10);
}

#[test]
fn prometheus_label_values_are_escaped() {
    let mut snap = stats_support::snapshot();
    snap.entries[0].servers[0].name = "a\"b\\c\nd".to_string();
    snap.entries[0].balancer = "x\"y".to_string();
    let text = prometheus(&snap);
    check_exposition(&text);
    assert!(text.contains("server=\"a\\\"b\\\\c\\nd\""));
    assert!(text.contains("balancer=\"x\\\"y\""));
}

#[test]
fn promtool_accepts_the_metrics() {
    common::assert_promtool_accepts(&prometheus(&stats_support::snapshot()));
}

/// Writes the three renderings to `$STATS_DUMP_DIR` when set (for looking at them by hand).
#[test]
fn dump_renderings_when_asked() {
    let Some(dir) = std::env::var_os("STATS_DUMP_DIR") else {
        return;
    };
    let snap = stats_support::snapshot();
    let dir = std::path::Path::new(&dir);
    for (name, format) in [
        ("stats.html", Format::Html),
        ("stats.json", Format::Json),
        ("stats.prom", Format::Prometheus),
    ] {
        std::fs::write(dir.join(name), render(&snap, format, "")).unwrap();
    }
}

/// A live view for the wording tests: entry 0's servers as given, entry 1's up and idle.
fn live_of(servers: [ServerLive; 3]) -> impl Fn(usize, usize) -> ServerLive {
    move |e, s| {
        if e == 0 {
            servers[s].clone()
        } else {
            ServerLive::default()
        }
    }
}

fn offline(secs: u64, failures: u32) -> ServerLive {
    ServerLive {
        state: "offline",
        offline_for_secs: Some(secs),
        reason: "connection refused".to_string(),
        consecutive_failures: failures,
        in_flight: 0,
        admin: "ready",
        ..ServerLive::default()
    }
}

#[test]
fn html_counts_consecutive_failures_in_the_right_number() {
    let up_with = |n| ServerLive {
        consecutive_failures: n,
        ..ServerLive::default()
    };
    let snap = stats_support::snapshot_with(&live_of([up_with(1), up_with(3), offline(7, 2)]));
    let page = html(&snap, None);
    let why = |name| stats_support::cell(stats_support::row(&page, name), "State").to_string();
    let one = why("127.0.0.1:8080");
    assert!(
        one.ends_with("<span class=\"why\">1 consecutive failure</span>"),
        "{one}"
    );
    let three = why("127.0.0.1:8081");
    assert!(three.ends_with(">3 consecutive failures</span>"), "{three}");
    let off = why("[::1]:8082");
    assert!(
        off.ends_with(">retry in 7 s · connection refused · 2 consecutive failures</span>"),
        "{off}"
    );
    assert!(!page.contains("1 consecutive failures"));
    // No failures: no count at all (and no stray separator).
    let quiet = why("10.0.0.5:80");
    assert!(quiet.ends_with("<span class=\"why\"></span>"), "{quiet}");
}

#[test]
fn a_recovered_server_shows_no_reason_in_the_page_or_the_json() {
    // The health table keeps "response received" as the reason of a recovery.
    let recovered = ServerLive {
        reason: "response received".to_string(),
        ..ServerLive::default()
    };
    // Read in the middle of going offline: still up, the failure already recorded.
    let racing = ServerLive {
        reason: "connect timeout".to_string(),
        consecutive_failures: 2,
        ..ServerLive::default()
    };
    let snap = stats_support::snapshot_with(&live_of([recovered, racing, offline(3, 1)]));
    let page = html(&snap, None);
    assert!(!page.contains("response received"), "{page}");
    let state = stats_support::cell(stats_support::row(&page, "127.0.0.1:8080"), "State");
    assert!(state.ends_with("<span class=\"why\"></span>"), "{state}");
    let state = stats_support::cell(stats_support::row(&page, "127.0.0.1:8081"), "State");
    assert!(state.ends_with(">2 consecutive failures</span>"), "{state}");
    // An offline server keeps the failure that took it offline.
    assert!(page.contains("retry in 3 s · connection refused · 1 consecutive failure<"));
    let v: Value = serde_json::from_str(&json(&snap)).unwrap();
    let servers = &v["entries"][0]["servers"];
    assert_eq!(servers[0]["reason"], "");
    assert_eq!(servers[1]["reason"], "");
    assert_eq!(servers[2]["reason"], "connection refused");
}

#[test]
fn an_offline_server_past_its_retry_time_says_retry_due() {
    let probing = |secs| ServerLive {
        state: "probing",
        offline_for_secs: Some(secs),
        reason: "read timeout".to_string(),
        consecutive_failures: 3,
        in_flight: 1,
        admin: "ready",
        ..ServerLive::default()
    };
    let snap = stats_support::snapshot_with(&live_of([offline(0, 2), probing(0), probing(4)]));
    let page = html(&snap, None);
    assert!(!page.contains("retry in 0 s"), "{page}");
    let state = stats_support::cell(stats_support::row(&page, "127.0.0.1:8080"), "State");
    assert!(
        state.ends_with(">retry due · connection refused · 2 consecutive failures</span>"),
        "{state}"
    );
    // A probe is under way (the badge says so): no retry time, due or not.
    for name in ["127.0.0.1:8081", "[::1]:8082"] {
        let state = stats_support::cell(stats_support::row(&page, name), "State");
        assert!(
            state.contains("class=\"badge probing\">probing<"),
            "{state}"
        );
        assert!(
            state.ends_with(">read timeout · 3 consecutive failures</span>"),
            "{state}"
        );
    }
    // The JSON keeps the number: 0 means the period is over.
    let v: Value = serde_json::from_str(&json(&snap)).unwrap();
    assert_eq!(v["entries"][0]["servers"][0]["offline_for_secs"], 0);
}

#[test]
fn html_client_aborts_have_their_own_column_next_to_the_errors() {
    let snap = stats_support::snapshot();
    let page = html(&snap, None);
    assert!(
        page.contains("<th>5xx</th><th>Errors</th><th>Client aborts</th><th>Retries</th>"),
        "{page}"
    );
    // Server 0 had one client abort and no backend failure; server 2 one refused connection.
    let r0 = stats_support::row(&page, "127.0.0.1:8080");
    assert_eq!(stats_support::cell(r0, "Errors"), "0");
    assert_eq!(stats_support::cell(r0, "Client aborts"), "1");
    let r2 = stats_support::row(&page, "[::1]:8082");
    assert_eq!(
        stats_support::cell(r2, "Errors"),
        "<span class=\"err\">1</span>"
    );
    assert_eq!(stats_support::cell(r2, "Client aborts"), "0");
    // Each row has one cell per heading, in order.
    for r in [r0, r2] {
        assert_eq!(r.matches("<td data-label=").count(), 13);
        let errors = r.find("data-label=\"Errors\"").unwrap();
        let aborts = r.find("data-label=\"Client aborts\"").unwrap();
        assert!(errors < aborts);
    }
}

#[test]
fn a_client_gone_before_any_attempt_shows_in_every_format() {
    // #21.6: a request whose client had left when its exchange was to start is the entry's
    // client abort with no attempt, and `left_early` says so.
    let config = stats_support::config();
    let stats = proxy_reverse::stats::Stats::started_at(&config, 1_000);
    stats.record_request(1);
    stats.record_left_early(1);
    let snap = proxy_reverse::stats::Snapshot::collect(&config, &stats, 2_000, &|_, _| {
        ServerLive::default()
    });
    let v: Value = serde_json::from_str(&json(&snap)).expect("valid JSON");
    let e = &v["entries"][1];
    assert_eq!(e["left_early"], 1, "{e}");
    assert_eq!(e["counters"]["requests"], 1, "{e}");
    assert_eq!(e["counters"]["failures"]["client_abort"], 1, "{e}");
    for s in e["servers"].as_array().unwrap() {
        assert_eq!(s["counters"]["requests"], 0, "no attempt: {s}");
        assert_eq!(s["counters"]["failures"]["client_abort"], 0, "{s}");
    }
    assert_eq!(v["entries"][0]["left_early"], 0);
    let text = prometheus(&snap);
    assert!(text.contains("# TYPE proxy_reverse_client_left_early_total counter\n"));
    assert!(text.contains("proxy_reverse_client_left_early_total{entry=\"entry-2\"} 1\n"));
    check_exposition(&text);
    let page = html(&snap, None);
    assert!(page.contains("<span>left early <b>1</b></span>"), "{page}");
}
