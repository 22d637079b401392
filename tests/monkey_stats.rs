//! The statistics page through a real Monkey v1.8 (`MONKEY_BIN`): known traffic, then the
//! three formats fetched from `StatisticsURL` must count exactly that traffic.
//!
//! Without `MONKEY_BIN` every test is reported ignored. `promtool` (Debian package
//! `prometheus`) and `chromium` are used when installed, and their checks are skipped with a
//! message otherwise. Screenshots of the HTML page go to `target/test-artifacts/`.
//! Run: `MONKEY_BIN=/path/to/monkey cargo test --test monkey_stats`.

mod common;
mod e2e;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use e2e::*;

const STATS_URL: &str = "/proxy-status";

/// Requests to entry 1 (round robin over two live origins): `/size/64` answered 200 ...
const ENTRY1_OK: u64 = 36;
/// ... and `/missing`, answered 404 by the origin (a 4xx that is still a response).
const ENTRY1_404: u64 = 4;
/// Requests to entry 2 (first alive: a dead server first, then origin b).
const ENTRY2: u64 = 10;
/// `AttemptsCount` of entry 2: the dead server is tried this many times, then goes offline
/// (for `OfflineTimeOut 60`, far longer than the test) and is skipped.
const ATTEMPTS: u64 = 2;

/// Two entries: `^/size/` and `^/missing` → origins a and b, round robin, never offline;
/// `^/id$` → a dead server, then b, first alive.
fn stats_conf(a: SocketAddr, b: SocketAddr, dead: SocketAddr, allow: &str) -> String {
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS_URL}\n{allow}\n\
         [PROXY_ENTRY]\n    Match ^/size/\n    Match ^/missing\n    ServerList {a} {b}\n    \
         LoadBalancer RoundRobin\n    OfflineTimeOut 0\n\n\
         [PROXY_ENTRY]\n    Match ^/id$\n    ServerList {dead} {b}\n    LoadBalancer FirstAlive\n    \
         AttemptsCount {ATTEMPTS}\n    OfflineTimeOut 60\n"
    )
}

/// Sends the known traffic on one keep-alive connection, one request at a time (sequential,
/// so the health transitions of the dead server happen in a known order).
fn send_traffic(monkey: &Monkey) {
    let mut c = Client::connect(monkey.addr());
    for i in 0..ENTRY1_OK + ENTRY1_404 {
        // Spread the 404s among the 200s.
        if i % 10 == 9 {
            let r = c.get("/missing");
            assert_eq!(r.status, 404, "request {i}; log:\n{}", monkey.log());
        } else {
            let r = c.get("/size/64");
            assert_eq!(r.status, 200, "request {i}; log:\n{}", monkey.log());
            assert_eq!(r.body, body_of(64));
        }
    }
    for i in 0..ENTRY2 {
        let r = c.get("/id");
        assert_eq!(r.status, 200, "entry 2 request {i}; log:\n{}", monkey.log());
        assert_eq!(r.body, b"b", "entry 2 request {i}");
    }
}

/// `GET path` with extra header lines; the response.
fn fetch(monkey: &Monkey, path: &str, headers: &str) -> Response {
    let mut c = Client::connect(monkey.addr());
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}\r\n").as_bytes());
    c.read_response(false)
        .unwrap_or_else(|| panic!("no response to {path}; log:\n{}", monkey.log()))
}

fn u(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer in {v:#}"))
}

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {v:#}"))
}

/// The server object named `name` in entry `entry` (1-based) of the JSON document.
fn server<'a>(doc: &'a Value, entry: usize, name: &str) -> &'a Value {
    doc["entries"][entry - 1]["servers"]
        .as_array()
        .expect("servers array")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no server {name} in entry {entry}: {doc:#}"))
}

/// Prometheus samples: metric name → list of (labels, value).
type Samples = BTreeMap<String, Vec<(BTreeMap<String, String>, f64)>>;

/// Parses the text exposition format (enough of it for the plugin's output: no escaped
/// quotes or commas inside label values, which `host:port` and numbers never have).
fn parse_prometheus(text: &str) -> Samples {
    let mut out = Samples::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample line without value: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| {
                        let (k, v) = p.split_once('=').expect("label=value");
                        (k.to_string(), v.trim_matches('"').to_string())
                    })
                    .collect();
                (name, labels)
            }
            None => (series, BTreeMap::new()),
        };
        out.entry(name.to_string())
            .or_default()
            .push((labels, value));
    }
    out
}

/// The value of `name` whose labels include all of `want`; panics unless exactly one matches.
fn sample(samples: &Samples, name: &str, want: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = samples
        .get(name)
        .unwrap_or_else(|| panic!("no metric {name}"))
        .iter()
        .filter(|(l, _)| {
            want.iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{name}{want:?} matched {found:?}");
    found[0]
}

/// `target/test-artifacts/` (the test binary lives in `target/<profile>/deps/`).
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let target = exe
        .ancestors()
        .nth(3)
        .expect("target directory above target/<profile>/deps");
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir
}

/// The Chromium binary, if one is installed.
fn chromium() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// A headless screenshot of `url` at `width`×`height` into `png`, at most 60 s. Chromium runs
/// in its own process group, which is killed (by its id) if it does not finish in time.
fn screenshot(browser: &str, url: &str, width: u32, height: u32, png: &Path) {
    let profile = std::env::temp_dir().join(format!(
        "proxy_reverse_chromium_{}_{width}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(png);
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {browser}: {e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The group may keep helpers (zygote, GPU process) after the browser exits: end them all.
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&profile);
    assert!(
        status.is_some(),
        "{browser} did not finish a screenshot in 60 s"
    );
    let len = std::fs::metadata(png).map(|m| m.len()).unwrap_or(0);
    assert!(
        len > 1000,
        "{browser} exited ({status:?}) without a screenshot at {}",
        png.display()
    );
    println!("screenshot: {} ({len} bytes)", png.display());
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn all_three_formats_count_the_traffic_sent() {
    let a = Origin::start("a");
    let b = Origin::start("b");
    let dead = dead_addr();
    let monkey = Monkey::start(&stats_conf(a.addr, b.addr, dead, ""));
    send_traffic(&monkey);
    let (na, nb, nd) = (a.addr.to_string(), b.addr.to_string(), dead.to_string());

    // --- JSON (first statistics request: the totals include it and nothing else local) ---
    let r = fetch(&monkey, &format!("{STATS_URL}?format=json"), "");
    assert_eq!(r.status, 200, "log:\n{}", monkey.log());
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc: Value = serde_json::from_slice(&r.body).expect("statistics JSON parses");
    let routed = ENTRY1_OK + ENTRY1_404 + ENTRY2;
    assert_eq!(u(&doc, "/schema"), 1);
    assert_eq!(s(&doc, "/statistics_url"), STATS_URL);
    assert_eq!(u(&doc, "/totals/requests"), routed + 1, "{doc:#}");
    assert_eq!(u(&doc, "/totals/statistics"), 1);
    assert_eq!(u(&doc, "/totals/forbidden"), 0);
    assert_eq!(u(&doc, "/totals/not_found"), 0);
    assert_eq!(u(&doc, "/totals/bad_requests"), 0);
    assert_eq!(doc["entries"].as_array().map(Vec::len), Some(2));

    // Entry 1: every request answered by a live origin, alternating.
    let e1 = &doc["entries"][0];
    assert_eq!(u(e1, "/index"), 1);
    assert_eq!(s(e1, "/balancer"), "RoundRobin");
    assert_eq!(u(e1, "/counters/requests"), ENTRY1_OK + ENTRY1_404);
    assert_eq!(u(e1, "/counters/responses/2xx"), ENTRY1_OK);
    assert_eq!(u(e1, "/counters/responses/4xx"), ENTRY1_404);
    for class in ["1xx", "3xx", "5xx"] {
        assert_eq!(u(e1, &format!("/counters/responses/{class}")), 0);
    }
    for kind in [
        "connect_refused",
        "connect_timeout",
        "reset_before_response",
        "read_timeout",
        "bad_response",
        "client_abort",
    ] {
        assert_eq!(u(e1, &format!("/counters/failures/{kind}")), 0, "{kind}");
    }
    assert_eq!(u(e1, "/counters/retries"), 0);
    assert_eq!(u(e1, "/no_server"), 0);
    let mut sum_4xx = 0;
    for name in [&na, &nb] {
        let sv = server(&doc, 1, name);
        let attempts = u(sv, "/counters/requests");
        assert_eq!(
            attempts,
            (ENTRY1_OK + ENTRY1_404) / 2,
            "round robin share of {name}"
        );
        let ok = u(sv, "/counters/responses/2xx");
        let nf = u(sv, "/counters/responses/4xx");
        assert_eq!(ok + nf, attempts, "{name}: every attempt got a response");
        sum_4xx += nf;
        assert_eq!(s(sv, "/state"), "up");
        assert_eq!(u(sv, "/in_flight"), 0);
        assert_eq!(u(sv, "/counters/total_latency/count"), attempts);
        assert_eq!(u(sv, "/counters/head_latency/count"), attempts);
        assert_eq!(
            u(sv, "/counters/connections_opened") + u(sv, "/counters/connections_reused"),
            attempts,
            "{name}: one connection per attempt"
        );
        assert!(u(sv, "/counters/bytes_to_backend") > 0);
        // 64-byte bodies (and the 404s' bodies) plus heads.
        assert!(u(sv, "/counters/bytes_from_backend") >= ok * 64);
        let share = sv["share"].as_f64().expect("share");
        assert!((share - 0.5).abs() < 1e-9, "{name} share {share}");
    }
    assert_eq!(sum_4xx, ENTRY1_404);

    // Entry 2: the dead server fails ATTEMPTS times (each time the request fails over to b),
    // then is offline and skipped; b answers every request.
    let e2 = &doc["entries"][1];
    assert_eq!(s(e2, "/balancer"), "FirstAlive");
    assert_eq!(u(e2, "/counters/requests"), ENTRY2);
    assert_eq!(u(e2, "/counters/responses/2xx"), ENTRY2);
    assert_eq!(u(e2, "/counters/failures/connect_refused"), ATTEMPTS);
    assert_eq!(u(e2, "/no_server"), 0);
    let d = server(&doc, 2, &nd);
    assert_eq!(u(d, "/counters/requests"), ATTEMPTS);
    assert_eq!(u(d, "/counters/failures/connect_refused"), ATTEMPTS);
    assert_eq!(u(d, "/counters/responses/2xx"), 0);
    assert_eq!(s(d, "/state"), "offline", "{d:#}");
    assert!(
        d["offline_for_secs"]
            .as_u64()
            .is_some_and(|n| n > 0 && n <= 60),
        "{d:#}"
    );
    assert_eq!(u(d, "/consecutive_failures"), ATTEMPTS);
    let lb = server(&doc, 2, &nb);
    assert_eq!(u(lb, "/counters/requests"), ENTRY2);
    assert_eq!(u(lb, "/counters/responses/2xx"), ENTRY2);
    assert_eq!(s(lb, "/state"), "up");
    // Retries and failovers: each failed attempt on the dead server was retried on b.
    let failovers = u(d, "/counters/failovers");
    let retries = u(d, "/counters/retries");
    println!("entry 2 dead server: retries {retries}, failovers {failovers}");
    assert_eq!(
        failovers, ATTEMPTS,
        "every failed attempt on {nd} moved the request to {nb}: {d:#}"
    );
    assert_eq!(u(e2, "/counters/failovers"), ATTEMPTS);

    // --- Prometheus (second statistics request) ---
    let r = fetch(&monkey, &format!("{STATS_URL}?format=prometheus"), "");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.header("content-type")
    );
    let text = String::from_utf8(r.body).expect("UTF-8 metrics");
    match promtool_check(&text) {
        Some((ok, report)) => assert!(ok, "promtool check metrics failed:\n{report}\n{text}"),
        None => println!("skipped: promtool not installed (Debian package `prometheus`)"),
    }
    let m = parse_prometheus(&text);
    assert_eq!(
        sample(&m, "proxy_reverse_plugin_requests_total", &[]),
        (routed + 2) as f64
    );
    assert_eq!(
        sample(&m, "proxy_reverse_statistics_requests_total", &[]),
        2.0
    );
    assert_eq!(
        sample(
            &m,
            "proxy_reverse_entry_requests_total",
            &[("entry", "entry-1")]
        ),
        (ENTRY1_OK + ENTRY1_404) as f64
    );
    assert_eq!(
        sample(
            &m,
            "proxy_reverse_entry_requests_total",
            &[("entry", "entry-2")]
        ),
        ENTRY2 as f64
    );
    for (entry, name) in [(1, &na), (1, &nb), (2, &nd), (2, &nb)] {
        let sv = server(&doc, entry, name);
        let label = format!("entry-{entry}");
        let l = [("entry", label.as_str()), ("server", name.as_str())];
        assert_eq!(
            sample(&m, "proxy_reverse_requests_total", &l),
            u(sv, "/counters/requests") as f64,
            "{l:?}"
        );
        for class in ["1xx", "2xx", "3xx", "4xx", "5xx"] {
            let with = [l[0], l[1], ("class", class)];
            assert_eq!(
                sample(&m, "proxy_reverse_responses_total", &with),
                u(sv, &format!("/counters/responses/{class}")) as f64,
                "{with:?}"
            );
        }
        let with = [l[0], l[1], ("kind", "connect_refused")];
        assert_eq!(
            sample(&m, "proxy_reverse_failures_total", &with),
            u(sv, "/counters/failures/connect_refused") as f64,
            "{with:?}"
        );
        assert_eq!(
            sample(&m, "proxy_reverse_failovers_total", &l),
            u(sv, "/counters/failovers") as f64,
            "{l:?}"
        );
        assert_eq!(
            sample(&m, "proxy_reverse_response_duration_seconds_count", &l),
            u(sv, "/counters/total_latency/count") as f64,
            "{l:?}"
        );
        let up = if s(sv, "/state") == "up" { 1.0 } else { 0.0 };
        assert_eq!(sample(&m, "proxy_reverse_server_up", &l), up, "{l:?}");
    }

    // --- HTML (the default; and Accept: application/json still gives JSON) ---
    let r = fetch(&monkey, STATS_URL, "Accept: text/html\r\n");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        r.header("content-type")
    );
    let html = String::from_utf8(r.body).expect("UTF-8 page");
    for (name, state) in [(&na, "up"), (&nb, "up"), (&nd, "offline")] {
        let rows: Vec<&str> = html
            .split("<tr>")
            .filter(|row| row.contains(name.as_str()))
            .collect();
        assert!(!rows.is_empty(), "no row for {name} in the page:\n{html}");
        for row in rows {
            assert!(
                row.contains(&format!("class=\"badge {state}\">{state}<")),
                "{name} is not shown as {state}: {row}"
            );
        }
    }
    let r = fetch(&monkey, STATS_URL, "Accept: application/json\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    serde_json::from_slice::<Value>(&r.body).expect("JSON by Accept");

    // --- Screenshots of the page as a browser shows it (artefacts, not assertions on pixels) ---
    match chromium() {
        Some(browser) => {
            let dir = artifacts_dir();
            let url = monkey.url(STATS_URL);
            screenshot(browser, &url, 1280, 900, &dir.join("statistics-1280.png"));
            screenshot(browser, &url, 390, 844, &dir.join("statistics-390.png"));
        }
        None => println!("skipped: screenshots (chromium is not installed)"),
    }

    let mut monkey = monkey;
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn statistics_allow_parses_and_loopback_stays_allowed() {
    // Listing other clients must not take the page away from the machine itself. (A refused
    // non-loopback client is covered in tests/stats_page.rs: these tests use loopback only.)
    let a = Origin::start("a");
    let b = Origin::start("b");
    let dead = dead_addr();
    let allow = "    StatisticsAllow 10.0.0.0/8 192.168.0.0/16 2001:db8::/32\n";
    let mut monkey = Monkey::start(&stats_conf(a.addr, b.addr, dead, allow));
    for format in ["json", "prometheus", "html"] {
        let r = fetch(&monkey, &format!("{STATS_URL}?format={format}"), "");
        assert_eq!(r.status, 200, "{format}; log:\n{}", monkey.log());
    }
    let r = fetch(&monkey, &format!("{STATS_URL}?format=json"), "");
    let doc: Value = serde_json::from_slice(&r.body).expect("JSON");
    assert_eq!(u(&doc, "/totals/statistics"), 4);
    assert_eq!(u(&doc, "/totals/forbidden"), 0);
    // The statistics path is answered by the plugin, not proxied: no origin saw a request.
    assert_eq!(a.conns.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(b.conns.load(std::sync::atomic::Ordering::SeqCst), 0);
    monkey.assert_alive();
    monkey.stop();
}
