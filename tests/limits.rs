//! Per-server limits, the queue and the retry policy (#19) through the stand-in host: the
//! scenarios of `tests/limits_support` (also run through a real Monkey by
//! `tests/monkey_limits.rs`), and what needs the stand-in host's injected clock.

mod common;
mod limits_support;

use std::time::Duration;

use common::host_from_conf;
use limits_support::*;

#[test]
fn the_limit_holds_the_queue_waits_and_the_excess_gets_503_with_retry_after() {
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let host = host_from_conf(&limited_conf(origin.addr, 2));
    let f = assert_limit_queue_and_refusals(host.addr(), &origin);
    println!("stand-in: {f:?}");
    // The same figures in the other renderings.
    let prom = common::Client::connect(host.addr()).get(&format!("{STATS}?format=prometheus"));
    let text = String::from_utf8_lossy(&prom.body);
    let waits = text
        .lines()
        .find_map(|l| l.strip_prefix("proxy_reverse_queue_waits_total{entry=\"limited\"} "))
        .expect("queue_waits_total");
    assert!(waits.parse::<u64>().unwrap() >= 4, "{waits}");
    for name in [
        "queue_waiting",
        "queue_full_total",
        "queue_wait_max_seconds",
    ] {
        assert!(
            text.contains(&format!("proxy_reverse_{name}{{entry=\"limited\"}}")),
            "{name}"
        );
    }
    common::assert_promtool_accepts(&text);
    let html = common::Client::connect(host.addr()).get(STATS);
    assert!(String::from_utf8_lossy(&html.body).contains("queue: waiting"));
}

#[test]
fn a_queued_client_that_leaves_frees_its_place() {
    let origin = CountingOrigin::start(Duration::from_secs(2), 200);
    let host = host_from_conf(&limited_conf(origin.addr, 10));
    assert_leaving_client_frees_its_place(host.addr(), &origin);
}

#[test]
fn queued_keep_alive_clients_are_served_in_turn() {
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let host = host_from_conf(&limited_conf(origin.addr, 10));
    assert_keep_alive_clients_queue(host.addr(), &origin);
}

#[test]
fn a_failing_pool_is_retried_within_the_budget() {
    let origins: Vec<_> = (0..3)
        .map(|_| CountingOrigin::start(Duration::from_millis(20), 503))
        .collect();
    let addrs: Vec<_> = origins.iter().map(|o| o.addr).collect();
    let host = host_from_conf(&failing_pool_conf(&addrs));
    assert_sequential_retries_within_the_floor(host.addr(), &origins);
    let before: u64 = origins.iter().map(CountingOrigin::requests).sum();
    let base: Vec<_> = origins.iter().map(CountingOrigin::requests).collect();
    let sent = hammer(host.addr(), 50, 3);
    let received: u64 = origins.iter().map(CountingOrigin::requests).sum::<u64>() - before;
    println!(
        "stand-in: {sent} requests, {received} at the origins ({:.3} x), {:?} before",
        received as f64 / sent as f64,
        base
    );
    assert!(
        received as f64 <= 1.2 * sent as f64,
        "{received} for {sent}"
    );
}

#[test]
fn abandoned_requests_keep_their_slots_until_the_server_is_done() {
    let origin = CountingOrigin::start(Duration::from_secs(1), 200);
    let host = host_from_conf(&limited_conf(origin.addr, 10));
    assert_abandoned_requests_keep_their_slots(host.addr(), &origin);
    common::wait_until("the host is back to no exchange", || {
        host.open_connections() == 0
    });
}

#[test]
fn a_freed_slot_reaches_the_next_waiter_at_once() {
    let origin = CountingOrigin::start(Duration::from_millis(100), 200);
    let host = host_from_conf(&one_slot_conf(origin.addr));
    let hand_over = measure_hand_over(host.addr(), &origin);
    println!("stand-in: mean hand-over {hand_over:?}");
    let q = &entry_stats(host.addr())["queue"];
    assert!(q["waits"].as_u64().unwrap() >= 10, "{q}");
}

#[test]
fn statuses_are_retried_only_for_idempotent_requests_that_ask_for_it() {
    let bad = CountingOrigin::start(Duration::ZERO, 503);
    let good = CountingOrigin::start(Duration::ZERO, 200);
    let with_503 = host_from_conf(&retry_conf(&[bad.addr, good.addr], "RetryOn connect 503"));
    let default = host_from_conf(&retry_conf(&[bad.addr, good.addr], "RetryBudget 20"));
    assert_status_retries_only_where_allowed(with_503.addr(), default.addr(), &bad, &good);
}
