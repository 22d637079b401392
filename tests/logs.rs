//! The logs on the stand-in host: one line per request the proxy failed (502, 503, 504, a
//! cut body, a client abort), rate-limited per entry on the host's clock; the access log,
//! one line per proxied request, its queue, and reloads. The same scenarios run through a
//! real Monkey in `tests/monkey_logs.rs`.

mod common;
mod hardening_support;
mod logs_support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use logs_support::*;
use proxy_reverse::access::{AccessLog, Options};
use proxy_reverse::host::{Host, TestClock};
use proxy_reverse::proxy::Proxy;

/// Waits until entry `entry` has `n` failed-request lines, then a moment more, and returns
/// them all (so that one line too many is seen).
fn failed_lines(entry: &str, n: usize) -> Vec<std::collections::BTreeMap<String, String>> {
    wait_until(&format!("{n} failed-request lines of {entry}"), || {
        failed_of(&lines(), entry).len() >= n
    });
    thread::sleep(QUIET_WINDOW);
    failed_of(&lines(), entry)
}

fn host_on(conf: &str, clock: &TestClock) -> (Host, Arc<Proxy>) {
    captured();
    let proxy = Arc::new(proxy_from_conf(conf));
    (
        Host::start_with_clock(proxy.clone(), clock.clone()).unwrap(),
        proxy,
    )
}

fn host(conf: &str) -> (Host, Arc<Proxy>) {
    captured();
    let proxy = Arc::new(proxy_from_conf(conf));
    (Host::start(proxy.clone()).unwrap(), proxy)
}

#[test]
fn a_refused_backend_writes_one_502_line() {
    let dead = dead_addr();
    let (h, _) = host(&named_conf("refused", &[dead], ""));
    let (status, _) = get_raw(h.addr(), "/x/y?q=1");
    assert_eq!(status, Some(502));
    let lines = failed_lines("refused", 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_fields(
        &lines[0],
        &[
            ("status", "502"),
            ("what", "connect_refused"),
            ("server", &dead.to_string()),
            ("method", "GET"),
            ("path", "/x/y?q=1"),
            ("connect_ms", "-"),
            ("first_byte_ms", "-"),
            ("attempts", "1"),
        ],
        &["total_ms"],
    );
}

#[test]
fn an_entry_whose_servers_are_all_offline_writes_one_503_line() {
    let dead = dead_addr();
    let (h, _) = host(&named_conf(
        "offline",
        &[dead],
        "    AttemptsCount 1\n    OfflineTimeOut 60\n",
    ));
    // The first failure takes the server offline (so the request gets a 503, not a 502);
    // the next request tries it once more as its last resort.
    assert_eq!(get_raw(h.addr(), "/a").0, Some(503));
    assert_eq!(get_raw(h.addr(), "/b").0, Some(503));
    let lines = failed_lines("offline", 2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_fields(
        &lines[0],
        &[("status", "503"), ("path", "/a"), ("attempts", "1")],
        &[],
    );
    assert_fields(
        &lines[1],
        &[
            ("status", "503"),
            ("what", "no_server"),
            ("path", "/b"),
            ("server", &dead.to_string()),
            ("attempts", "1"),
        ],
        &["total_ms"],
    );
}

#[test]
fn a_read_timeout_writes_one_504_line_with_the_clock_s_times() {
    let clock = TestClock::new();
    let (addr, backend) = silent_backend();
    let (h, _) = host_on(
        &named_conf("slow504", &[addr], "    ReadTimeout 2\n"),
        &clock,
    );
    let client = thread::spawn({
        let a = h.addr();
        move || get_raw(a, "/wait").0
    });
    let mut held = accept_within(&backend);
    read_request_head(&mut held);
    h.advance(Duration::from_secs(3));
    assert_eq!(client.join().unwrap(), Some(504));
    let lines = failed_lines("slow504", 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_fields(
        &lines[0],
        &[
            ("status", "504"),
            ("what", "read_timeout"),
            ("server", &addr.to_string()),
            ("connect_ms", "0.000"),
            ("first_byte_ms", "-"),
            ("total_ms", "3000.000"),
            ("attempts", "1"),
        ],
        &[],
    );
}

#[test]
fn a_cut_body_writes_one_line_with_the_backend_s_status() {
    let origin = raw_origin(CUT_REPLY);
    let (h, _) = host(&named_conf("cut", &[origin], ""));
    let (status, all) = get_raw(h.addr(), "/big");
    assert_eq!(status, Some(200));
    assert!(
        all.ends_with(b"short"),
        "{:?}",
        String::from_utf8_lossy(&all)
    );
    let lines = failed_lines("cut", 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_fields(
        &lines[0],
        &[
            ("status", "200"),
            ("what", "response_cut"),
            ("path", "/big"),
        ],
        &["connect_ms", "first_byte_ms", "total_ms"],
    );
}

#[test]
fn a_client_that_leaves_while_the_backend_works_writes_one_line() {
    let (addr, backend) = silent_backend();
    let (h, _) = host(&named_conf("leaver", &[addr], ""));
    let mut c = std::net::TcpStream::connect(h.addr()).unwrap();
    use std::io::Write;
    c.write_all(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        .unwrap();
    let mut held = accept_within(&backend);
    read_request_head(&mut held);
    drop(c);
    let lines = failed_lines("leaver", 1);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_fields(
        &lines[0],
        &[
            ("status", "-"),
            ("what", "client_abort"),
            ("method", "POST"),
            ("first_byte_ms", "-"),
        ],
        &["connect_ms", "total_ms"],
    );
}

#[test]
fn responses_that_reach_the_client_whole_write_no_failure_line_even_a_backend_s_502() {
    let ok = Origin::start("fine");
    let own_502 = raw_origin(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 2\r\n\r\nno");
    let (h, _) = host(&format!(
        "{}[PROXY_ENTRY]\n    Name backend502\n    Match ^/own\n    ServerList {own_502}\n",
        named_conf("fine", &[ok.addr], "").replace("Match ^/", "Match ^/m/ok/")
    ));
    let mut c = Client::connect(h.addr());
    for _ in 0..3 {
        assert_eq!(c.get("/m/ok/size/100").status, 200);
    }
    assert_eq!(get_raw(h.addr(), "/own").0, Some(502));
    // A line would be queued as the exchange ends, right after its response.
    thread::sleep(QUIET_WINDOW);
    let all = lines();
    assert!(failed_of(&all, "fine").is_empty(), "{all:?}");
    assert!(failed_of(&all, "backend502").is_empty(), "{all:?}");
}

#[test]
fn ten_lines_a_second_per_entry_then_one_line_counts_the_rest() {
    let clock = TestClock::new();
    let dead = dead_addr();
    let (h, _) = host_on(
        &named_conf("flood", &[dead], "    OfflineTimeOut 0\n"),
        &clock,
    );
    let mut c = Client::connect(h.addr());
    for _ in 0..25 {
        assert_eq!(c.get("/f").status, 502);
    }
    let first = failed_lines("flood", 10);
    assert_eq!(
        first.len(),
        10,
        "at most 10 lines in one second of the clock"
    );
    assert!(suppressed_of(&lines(), "flood").is_empty());
    // The next second: the count of what was kept quiet, then the line.
    h.advance(Duration::from_secs(1));
    assert_eq!(c.get("/f").status, 502);
    let all = failed_lines("flood", 11);
    assert_eq!(all.len(), 11);
    assert_eq!(suppressed_of(&lines(), "flood"), [15]);
    let text = lines();
    let at = |needle: &str| text.iter().position(|l| l.contains(needle)).unwrap();
    let last_failed = text
        .iter()
        .rposition(|l| l.contains("entry flood: failed request"))
        .unwrap();
    assert!(
        at("entry flood: 15 similar lines suppressed") < last_failed,
        "the count comes before the line that follows it"
    );
    // Another entry has a budget of its own.
    let (other, _) = host_on(
        &named_conf("flood-2", &[dead], "    OfflineTimeOut 0\n"),
        &clock,
    );
    assert_eq!(get_raw(other.addr(), "/g").0, Some(502));
    assert_eq!(failed_lines("flood-2", 1).len(), 1);
}

// ---- the access log ----------------------------------------------------------------------

fn access_conf(log: &std::path::Path, entries: &str) -> String {
    format!(
        "[PROXY_DEFAULTS]\n    AccessLog {}\n{entries}",
        log.display()
    )
}

/// Stops the host (its worker hands over the lines it gathered) and waits until the
/// writer thread has written them.
fn stop_and_flush(h: Host, proxy: &Proxy) {
    drop(h);
    assert!(proxy.access_log.flush(Duration::from_secs(10)));
}

#[test]
fn the_access_log_has_one_line_per_proxied_request_with_its_fields() {
    let log_file = temp_log("fields");
    let origin = Origin::start("o");
    let dead = dead_addr();
    let entries = format!(
        "{}[PROXY_ENTRY]\n    Name gone\n    Match ^/gone\n    ServerList {dead}\n",
        named_conf("site", &[origin.addr], "").replace("Match ^/", "Match ^/m/site/")
    );
    let (h, proxy) = host(&access_conf(&log_file, &entries));
    let mut c = Client::connect(h.addr());
    c.send(
        b"GET /m/site/size/1000?a=b HTTP/1.1\r\nHost: t\r\nReferer: http://r/\"x\r\n\
          User-Agent: test-agent/1.0\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body.len()), (200, 1000));
    assert_eq!(c.get("/m/site/missing").status, 404, "the backend's 404");
    assert_eq!(
        c.get("/nowhere").status,
        404,
        "no entry: not proxied, not logged"
    );
    assert_eq!(c.get("/gone").status, 502);
    let n = 50;
    for _ in 0..n {
        assert_eq!(c.get("/m/site/id").status, 200);
    }
    drop(c);
    stop_and_flush(h, &proxy);
    let lines = access_lines(&log_file);
    assert_eq!(lines.len(), 3 + n, "one line per proxied request");
    let first = &lines[0];
    let want = [
        ("remote_addr", "127.0.0.1"),
        ("remote_user", "-"),
        ("method", "GET"),
        ("target", "/m/site/size/1000?a=b"),
        ("protocol", "HTTP/1.1"),
        ("status", "200"),
        ("body_bytes_sent", "1000"),
        ("referer", "http://r/\\x22x"),
        ("user_agent", "test-agent/1.0"),
        ("upstream_addr", &origin.addr.to_string()),
        ("upstream_status", "200"),
        ("attempts", "1"),
        ("entry", "site"),
    ];
    for (k, v) in want {
        assert_eq!(first[k], v, "{k}: {first:?}");
    }
    assert!(first["time_local"].ends_with(" +0000"), "{first:?}");
    for k in [
        "upstream_connect_time",
        "upstream_header_time",
        "upstream_response_time",
    ] {
        let v = &first[k];
        assert!(v.len() >= 5 && v.as_bytes()[v.len() - 4] == b'.', "{k}={v}");
    }
    let sent: u64 = first["upstream_bytes_sent"].parse().unwrap();
    let received: u64 = first["upstream_bytes_received"].parse().unwrap();
    assert!(sent > 30 && received > 1000, "{first:?}");
    assert_eq!(lines[1]["status"], "404");
    assert_eq!(lines[1]["upstream_status"], "404");
    let gone = &lines[2];
    assert_eq!(
        [
            &gone["status"],
            &gone["upstream_addr"],
            &gone["upstream_status"],
            &gone["upstream_header_time"],
            &gone["entry"]
        ],
        ["502", &dead.to_string(), "-", "-", "gone"]
    );
    assert!(lines[3..]
        .iter()
        .all(|l| l["target"] == "/m/site/id" && l["referer"] == "-"));
    assert_eq!(proxy.access_log.written(), 3 + n as u64);
    assert_eq!(proxy.access_log.dropped(), 0);
    let _ = std::fs::remove_file(&log_file);
}

/// A client that sends a request and leaves at once (#21.6: no exchange starts for it) still
/// gets its line, `499` as nginx writes it, so the file has one line per request the entry
/// counted.
#[test]
fn clients_that_left_right_behind_their_requests_are_logged_499() {
    let log_file = temp_log("left");
    let origin = Origin::start("o");
    let conf = access_conf(&log_file, &named_conf("site", &[origin.addr], "")).replace(
        "[PROXY_DEFAULTS]\n",
        "[PROXY_DEFAULTS]\n    StatisticsURL /s\n",
    );
    let (h, proxy) = host(&conf);
    let entry = |h: &Host| -> serde_json::Value {
        let r = Client::connect(h.addr()).get("/s?format=json");
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["entries"][0].clone()
    };
    let leavers = 30;
    for _ in 0..leavers {
        drop(hardening_support::request_then_leave(h.addr()));
    }
    let counted = hardening_support::wait_until(Duration::from_secs(10), || {
        entry(&h)["counters"]["requests"].as_u64() >= Some(leavers)
    });
    assert!(counted, "not every request was counted");
    let left_early = entry(&h)["left_early"].as_u64().unwrap();
    stop_and_flush(h, &proxy);
    let lines = access_lines(&log_file);
    assert_eq!(lines.len() as u64, leavers, "one line per request");
    assert!(lines.iter().all(|l| l["status"] == "499"), "{lines:?}");
    let without_upstream = lines.iter().filter(|l| l["upstream_addr"] == "-").count() as u64;
    assert_eq!(without_upstream, left_early, "{lines:?}");
    assert!(left_early > 0, "no client was seen to leave early");
    let _ = std::fs::remove_file(&log_file);
}

#[test]
fn a_full_queue_drops_lines_and_the_statistics_count_them() {
    let log_file = temp_log("full");
    let origin = Origin::start("q");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL /stats\n{}",
        named_conf("queued", &[origin.addr], "").replace("Match ^/", "Match ^/m/q/")
    );
    let mut proxy = proxy_from_conf(&conf);
    // A queue of two one-line batches, and a writer that reads nothing while paused.
    proxy.access_log = AccessLog::start_with(
        Some(&log_file),
        Options {
            queue: 2,
            batch_lines: 1,
        },
    )
    .unwrap();
    let proxy = Arc::new(proxy);
    captured();
    let h = Host::start(proxy.clone()).unwrap();
    let paused = proxy.access_log.pause().expect("the writer pauses");
    let mut c = Client::connect(h.addr());
    let started = std::time::Instant::now();
    for _ in 0..10 {
        assert_eq!(c.get("/m/q/id").status, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "requests waited for the log"
    );
    wait_until("8 lines dropped", || proxy.access_log.dropped() == 8);
    let stats = c.get("/stats?format=json");
    let json: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    assert_eq!(
        json["totals"]["access_log_dropped"], 8,
        "{}",
        json["totals"]
    );
    let prometheus = String::from_utf8(c.get("/stats?format=prometheus").body).unwrap();
    assert!(
        prometheus.contains("proxy_reverse_access_log_dropped_lines_total 8\n"),
        "{prometheus}"
    );
    let html = String::from_utf8(c.get("/stats").body).unwrap();
    assert!(html.contains("(dropped <b>8</b>)"), "{html}");
    drop(paused);
    drop(c);
    stop_and_flush(h, &proxy);
    assert_eq!(access_lines(&log_file).len(), 2, "what the queue held");
    assert_eq!(proxy.access_log.written(), 2);
    let _ = std::fs::remove_file(&log_file);
}

#[test]
fn a_reload_reopens_the_access_log_changes_it_or_turns_it_off() {
    let first = temp_log("reload-a");
    let second = temp_log("reload-b");
    let origin = Origin::start("r");
    let entry = named_conf("reloaded", &[origin.addr], "");
    let requests = |proxy: &Arc<Proxy>, n: usize| {
        let h = Host::start(proxy.clone()).unwrap();
        let mut c = Client::connect(h.addr());
        for _ in 0..n {
            assert_eq!(c.get("/id").status, 200);
        }
        drop(c);
        stop_and_flush(h, proxy);
    };
    let reload = |conf: &str, previous: &Proxy| {
        let no_dns = |host: &str, _: u16| Err(format!("no DNS ({host})"));
        let config =
            proxy_reverse::config::parse_str(conf, std::path::Path::new("r.conf"), &no_dns)
                .unwrap();
        Arc::new(Proxy::reloaded(config, previous).unwrap())
    };
    let a = Arc::new(proxy_from_conf(&access_conf(&first, &entry)));
    requests(&a, 3);
    assert_eq!(access_lines(&first).len(), 3);
    // logrotate: the file is moved away; the reload lets go of it and creates it again.
    let rotated = first.with_extension("log.1");
    std::fs::rename(&first, &rotated).unwrap();
    let b = reload(&access_conf(&first, &entry), &a);
    requests(&b, 2);
    assert_eq!(
        access_lines(&rotated).len(),
        3,
        "nothing more in the rotated file"
    );
    assert_eq!(access_lines(&first).len(), 2, "the new file");
    // Another file.
    let c = reload(&access_conf(&second, &entry), &b);
    requests(&c, 4);
    assert_eq!(access_lines(&second).len(), 4);
    assert_eq!(access_lines(&first).len(), 2);
    // Off: nothing is written any more; on again: the same thread takes up.
    let d = reload(&entry, &c);
    assert!(!d.access_log.is_on());
    requests(&d, 5);
    let e = reload(&access_conf(&second, &entry), &d);
    requests(&e, 1);
    assert_eq!(access_lines(&second).len(), 5);
    assert_eq!(e.access_log.written(), 3 + 2 + 4 + 1);
    // A file that cannot be opened refuses the reload; the one in service stays.
    let bad = std::path::Path::new("/nonexistent-dir-for-proxy-reverse/x.log");
    let no_dns = |host: &str, _: u16| Err(format!("no DNS ({host})"));
    let config = proxy_reverse::config::parse_str(
        &access_conf(bad, &entry),
        std::path::Path::new("r.conf"),
        &no_dns,
    )
    .unwrap();
    let refused = Proxy::reloaded(config, &e).unwrap_err();
    assert!(refused.contains("line 2: AccessLog"), "{refused}");
    requests(&e, 1);
    assert_eq!(access_lines(&second).len(), 6);
    for f in [&first, &second, &rotated] {
        let _ = std::fs::remove_file(f);
    }
}

#[test]
fn a_file_that_cannot_be_opened_is_a_configuration_error_at_its_line() {
    let dir = std::env::temp_dir().join(format!("proxy_reverse_conf_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.conf");
    std::fs::write(
        &file,
        "[PROXY_DEFAULTS]\n    StatisticsURL /s\n    AccessLog /nonexistent-dir-for-proxy-reverse/a.log\n\
         [PROXY_ENTRY]\n    Match ^/\n    ServerList 127.0.0.1:9\n",
    )
    .unwrap();
    let errors = proxy_reverse::config::load(&file).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let text = errors[0].to_string();
    assert!(
        text.starts_with(&format!(
            "{}:3: AccessLog `/nonexistent-dir-for-proxy-reverse/a.log` cannot be opened",
            file.display()
        )),
        "{text}"
    );
    std::fs::write(
        &file,
        "[PROXY_DEFAULTS]\n    AccessLog relative.log\n[PROXY_ENTRY]\n    Match ^/\n    ServerList 127.0.0.1:9\n",
    )
    .unwrap();
    let errors = proxy_reverse::config::load(&file).unwrap_err();
    assert!(
        errors[0]
            .to_string()
            .contains(":2: AccessLog must be an absolute path"),
        "{errors:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_documented_promtail_expression_is_the_one_the_tests_read_lines_with() {
    let doc = include_str!("../docs/logs.md");
    assert!(doc.contains(&format!("expression: '{ACCESS_REGEX}'")));
}
