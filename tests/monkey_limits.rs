//! Per-server limits, the queue and the retry budget (#19) in a real Monkey (2 workers, so the
//! queue and the budget are shared across workers): the scenarios the stand-in host runs
//! (`tests/limits.rs`), then the load items under wrk.

mod common;
mod e2e;
mod limits_support;

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{parse_wrk, wrk_available, Monkey};
use limits_support::*;

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_limit_holds_the_queue_waits_and_the_excess_gets_503_with_retry_after() {
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let mut monkey = Monkey::start(&limited_conf(origin.addr, 2));
    let f = assert_limit_queue_and_refusals(monkey.addr(), &origin);
    println!("monkey: {f:?}");
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_queued_client_that_leaves_frees_its_place() {
    let origin = CountingOrigin::start(Duration::from_secs(2), 200);
    let mut monkey = Monkey::start(&limited_conf(origin.addr, 10));
    assert_leaving_client_frees_its_place(monkey.addr(), &origin);
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_queued_keep_alive_clients_are_served_in_turn() {
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let mut monkey = Monkey::start(&limited_conf(origin.addr, 10));
    assert_keep_alive_clients_queue(monkey.addr(), &origin);
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_abandoned_requests_keep_their_slots_until_the_server_is_done() {
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let mut monkey = Monkey::start(&limited_conf(origin.addr, 10));
    assert_abandoned_requests_keep_their_slots(monkey.addr(), &origin);
    monkey.assert_alive();
}

/// The hand-over of a slot between Monkey's 2 workers: measured and printed (the figure
/// docs/limits.md gives); the queue was used.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_a_freed_slot_reaches_a_waiter_on_either_worker() {
    let origin = CountingOrigin::start(Duration::from_millis(100), 200);
    let mut monkey = Monkey::start(&one_slot_conf(origin.addr));
    let hand_over = measure_hand_over(monkey.addr(), &origin);
    let q = &entry_stats(monkey.addr())["queue"];
    println!("monkey: mean hand-over {hand_over:?}; queue {q}");
    assert!(q["waits"].as_u64().unwrap() >= 10, "{q}");
    assert_eq!(q["timeouts"], 0, "{q}");
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_statuses_are_retried_only_for_idempotent_requests_that_ask_for_it() {
    let bad = CountingOrigin::start(Duration::ZERO, 503);
    let good = CountingOrigin::start(Duration::ZERO, 200);
    let mut with_503 = Monkey::start(&retry_conf(&[bad.addr, good.addr], "RetryOn connect 503"));
    let mut default = Monkey::start(&retry_conf(&[bad.addr, good.addr], "RetryBudget 20"));
    assert_status_retries_only_where_allowed(with_503.addr(), default.addr(), &bad, &good);
    with_503.assert_alive();
    default.assert_alive();
}

/// The item: `MaxConnections 4`, `QueueSize 8`, `QueueTimeout 2`, a backend taking
/// 1 s per request and `wrk -c20` for 6 s: the backend never sees more than 4 at once, the
/// excess gets 503 (non-2xx), no request takes longer than the queue timeout and one request
/// (wrk's timeout, 5 s, is never reached: no socket errors), and the queue's figures are in
/// the statistics.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_wrk_c20_against_a_limited_slow_backend() {
    if !wrk_available() {
        return;
    }
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let mut monkey = Monkey::start(&limited_conf(origin.addr, 2));
    let out = Command::new("wrk")
        .args(["-t2", "-c20", "-d6s", "--timeout", "5s", "--latency"])
        .arg(monkey.url("/work"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("wrk");
    // wrk's last requests were abandoned at the origin: wait for the origin to finish them.
    common::wait_until("the origin is idle", || origin.in_flight() == 0);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let summary = parse_wrk(&text);
    let e = entry_stats(monkey.addr());
    println!("wrk: {summary:?}\n{text}\nqueue: {}", e["queue"]);
    assert!(origin.max_in_flight() <= 4, "{}", origin.max_in_flight());
    assert_eq!(origin.max_in_flight(), 4, "the limit is used");
    assert!(summary.requests > 20, "{text}");
    assert!(summary.non_2xx > 0, "the excess is refused: {text}");
    assert_eq!(
        summary.socket_errors, 0,
        "nothing hangs past wrk's 5 s: {text}"
    );
    let q = &e["queue"];
    assert!(q["waits"].as_u64().unwrap() > 0, "{q}");
    assert!(q["full"].as_u64().unwrap() > 0, "{q}");
    assert!(q["wait_max_seconds"].as_f64().unwrap() <= 2.5, "{q}");
    assert_eq!(q["waiting"], 0, "{q}");
    monkey.assert_alive();
}

/// The item: three servers that all answer 503 (after 20 ms), `RetryOn 503`,
/// `AttemptsCount 3`: one client at a time gets its 3 tries (the floor), and under
/// `wrk -c50` for 5 s the pool receives at most 1.2 × the requests (those wrk counted, plus
/// the 50 it left unanswered when it stopped).
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_retry_budget_keeps_a_failing_pool_under_1_2_x() {
    if !wrk_available() {
        return;
    }
    let origins: Vec<_> = (0..3)
        .map(|_| CountingOrigin::start(Duration::from_millis(20), 503))
        .collect();
    let addrs: Vec<_> = origins.iter().map(|o| o.addr).collect();
    let mut monkey = Monkey::start(&failing_pool_conf(&addrs));
    assert_sequential_retries_within_the_floor(monkey.addr(), &origins);
    let before: u64 = origins.iter().map(CountingOrigin::requests).sum();
    let out = Command::new("wrk")
        .args(["-t2", "-c50", "-d5s", "--timeout", "5s"])
        .arg(monkey.url("/x"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let summary = parse_wrk(&text);
    // Requests still in flight reach the origins when wrk stops.
    std::thread::sleep(Duration::from_millis(500));
    let received = origins.iter().map(CountingOrigin::requests).sum::<u64>() - before;
    let sent = summary.requests + 50;
    let ratio = received as f64 / summary.requests as f64;
    let e = entry_stats(monkey.addr());
    println!(
        "wrk: {summary:?}; origins received {received} ({ratio:.3} x); budget: {}",
        e["queue"]
    );
    assert!(summary.requests > 200, "{text}");
    assert_eq!(
        summary.non_2xx, summary.requests,
        "every answer is the pool's 503"
    );
    assert!(
        received as f64 <= 1.2 * sent as f64,
        "the pool received {received} for {} requests",
        summary.requests
    );
    assert!(e["queue"]["retries_refused"].as_u64().unwrap() > 0);
    monkey.assert_alive();
}
