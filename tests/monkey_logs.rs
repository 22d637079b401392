//! The logs through a real Monkey v1.8 (`MONKEY_BIN`; without it every test is reported
//! ignored): each failed request writes one line in Monkey's log, a flood of failures a
//! bounded number of them, and the access log one line per request. The stand-in host runs
//! the same scenarios in `tests/logs.rs`.

mod common;
mod e2e;
mod logs_support;

use std::time::{Duration, Instant};

use common::*;
use e2e::*;
use logs_support::*;

/// Polls Monkey's log until `done` holds for it (at most 10 s), then gives it a moment more;
/// returns its lines.
fn log_lines(monkey: &Monkey, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<String> = monkey.log().lines().map(String::from).collect();
        if done(&lines) {
            break;
        }
        assert!(
            Instant::now() < until,
            "not in Monkey's log within 10 s: {what}\n{}",
            monkey.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    monkey.log().lines().map(String::from).collect()
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_502_a_504_and_a_cut_body_each_write_one_line_in_monkey_s_log() {
    let dead = dead_addr();
    let mute = mute_origin();
    let cut = raw_origin(CUT_REPLY);
    let conf = format!(
        "{}{}{}",
        named_conf("refused", &[dead], "").replace("Match ^/", "Match ^/refused"),
        named_conf("mute", &[mute], "    ReadTimeout 1\n").replace("Match ^/", "Match ^/mute"),
        named_conf("cut", &[cut], "").replace("Match ^/", "Match ^/cut"),
    );
    let mut monkey = Monkey::start(&conf);
    assert_eq!(get_raw(monkey.addr(), "/refused?x=1").0, Some(502));
    let began = Instant::now();
    assert_eq!(get_raw(monkey.addr(), "/mute").0, Some(504));
    assert!(began.elapsed() >= Duration::from_millis(900));
    let (status, body) = get_raw(monkey.addr(), "/cut/file");
    assert_eq!(status, Some(200));
    assert!(body.ends_with(b"short"));
    let lines = log_lines(&monkey, "three failed-request lines", |l| {
        ["refused", "mute", "cut"]
            .iter()
            .all(|e| !failed_of(l, e).is_empty())
    });
    let one = |entry: &str| {
        let found = failed_of(&lines, entry);
        assert_eq!(found.len(), 1, "{entry}: {found:?}\n{}", lines.join("\n"));
        found.into_iter().next().unwrap()
    };
    assert_fields(
        &one("refused"),
        &[
            ("status", "502"),
            ("what", "connect_refused"),
            ("server", &dead.to_string()),
            ("method", "GET"),
            ("path", "/refused?x=1"),
            ("attempts", "1"),
        ],
        &["total_ms"],
    );
    assert_fields(
        &one("mute"),
        &[
            ("status", "504"),
            ("what", "read_timeout"),
            ("server", &mute.to_string()),
            ("first_byte_ms", "-"),
        ],
        &["connect_ms", "total_ms"],
    );
    assert_fields(
        &one("cut"),
        &[
            ("status", "200"),
            ("what", "response_cut"),
            ("path", "/cut/file"),
        ],
        &["connect_ms", "first_byte_ms", "total_ms"],
    );
    let line = lines
        .iter()
        .find(|l| l.contains("entry cut: failed request"))
        .unwrap();
    assert!(line.contains("[proxy_reverse] entry cut: "), "{line}");
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn ten_thousand_failures_write_about_ten_lines_a_second() {
    let dead = dead_addr();
    let mut monkey = Monkey::start(&named_conf("flood", &[dead], "    OfflineTimeOut 0\n"));
    let began = Instant::now();
    let statuses = load(monkey.addr(), "/f", 10, 1000);
    let elapsed = began.elapsed();
    assert_eq!(statuses.get(&502), Some(&10_000), "{statuses:?}");
    // One more failure in a later second reports what the last one kept quiet.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(get_raw(monkey.addr(), "/f").0, Some(502));
    let lines = log_lines(&monkey, "every failure written or counted", |l| {
        failed_of(l, "flood").len() as u64 + suppressed_of(l, "flood").iter().sum::<u64>() >= 10_001
    });
    let written = failed_of(&lines, "flood").len() as u64;
    let suppressed = suppressed_of(&lines, "flood");
    let total_lines = written + suppressed.len() as u64;
    println!(
        "10 000 failures in {elapsed:.2?}: {written} failed-request lines, {} suppressed lines \
         (counting {})",
        suppressed.len(),
        suppressed.iter().sum::<u64>()
    );
    assert_eq!(
        written + suppressed.iter().sum::<u64>(),
        10_001,
        "each failure written or counted"
    );
    // At most 10 lines a second and one suppressed line per second that follows one.
    let seconds = elapsed.as_secs() + 3;
    assert!(
        total_lines <= 11 * seconds,
        "{total_lines} lines in {elapsed:?}"
    );
    if elapsed <= Duration::from_secs(5) {
        assert!(
            total_lines <= 70,
            "{total_lines} lines for 10 000 failures in {elapsed:?}"
        );
    }
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn with_an_access_log_ten_thousand_requests_write_exactly_one_line_each() {
    let log_file = temp_log("monkey");
    let origin = Origin::start("m");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL /stats\n    AccessLog {}\n{}",
        log_file.display(),
        named_conf("logged", &[origin.addr], "")
    );
    let mut monkey = Monkey::start(&conf);
    let statuses = load(monkey.addr(), "/id", 10, 1000);
    assert_eq!(statuses.get(&200), Some(&10_000), "{statuses:?}");
    let until = Instant::now() + Duration::from_secs(10);
    let count = || std::fs::read_to_string(&log_file).map_or(0, |t| t.lines().count());
    while count() < 10_000 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let lines = access_lines(&log_file);
    assert_eq!(lines.len(), 10_000, "one line per request");
    assert!(lines.iter().all(|l| l["status"] == "200"
        && l["target"] == "/id"
        && l["upstream_addr"] == origin.addr.to_string()
        && l["entry"] == "logged"));
    let r = Client::connect(monkey.addr()).get("/stats?format=json");
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(
        json["totals"]["access_log_lines"], 10_000,
        "{}",
        json["totals"]
    );
    assert_eq!(
        json["totals"]["access_log_dropped"], 0,
        "{}",
        json["totals"]
    );
    monkey.assert_alive();
    monkey.stop();
    let _ = std::fs::remove_file(&log_file);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn an_access_log_that_cannot_be_opened_stops_monkey_naming_its_line() {
    let origin = Origin::start("n");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    AccessLog /nonexistent-dir-for-proxy-reverse/a.log\n{}",
        named_conf("never", &[origin.addr], "")
    );
    let (code, ran, log) = Monkey::start_expecting_refusal(&conf);
    assert_eq!(code, Some(1), "{log}");
    assert!(ran < Duration::from_secs(5), "{ran:?}");
    assert!(
        log.contains("proxy_reverse.conf:2: AccessLog `/nonexistent-dir-for-proxy-reverse/a.log` cannot be opened"),
        "{log}"
    );
}
