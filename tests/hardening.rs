//! The hardening findings of issue #21 through the stand-in host (the scenarios are shared
//! with `tests/monkey_hardening.rs`, which runs them through a real Monkey).

mod common;
mod hardening_support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hardening_support::*;
use proxy_reverse::config::{parse_str, SystemResolver};
use proxy_reverse::host::{Host, TestClock};
use proxy_reverse::proxy::Proxy;

/// A stand-in host for configuration text, on `clock` if given.
fn host(text: &str, clock: Option<TestClock>) -> Host {
    let config = parse_str(text, Path::new("t.conf"), &SystemResolver)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    let proxy = Arc::new(Proxy::new(config).unwrap());
    match clock {
        Some(c) => Host::start_with_clock(proxy, c).unwrap(),
        None => Host::start(proxy).unwrap(),
    }
}

#[test]
fn cut_responses_count_against_the_server() {
    let origin = cutting_origin();
    let h = host(
        &conf(&[origin], "    AttemptsCount 2\n    OfflineTimeOut 30\n"),
        None,
    );
    assert_cut_responses_count_against_the_server(h.addr());
}

#[test]
fn a_backend_silent_in_the_body_times_out_as_its_own_failure() {
    let (origin, got) = stalling_origin();
    let clock = TestClock::new();
    let h = host(&conf(&[origin], "    ReadTimeout 5\n"), Some(clock));
    let client = std::thread::spawn({
        let addr = h.addr();
        move || get_until_closed(addr)
    });
    // The head and half the body are out; the backend says nothing more.
    assert!(wait_until(Duration::from_secs(10), || got
        .load(Ordering::SeqCst)
        == 1));
    std::thread::sleep(Duration::from_millis(50));
    h.advance(Duration::from_millis(4999));
    std::thread::sleep(Duration::from_millis(100));
    assert!(!client.is_finished(), "gave up before ReadTimeout");
    // Past the deadline by the timer's resolution (timeouts fire up to 50 ms late).
    h.advance(Duration::from_millis(60));
    let (status, body) = client.join().unwrap();
    assert_eq!(
        (status, body),
        (200, 1000),
        "the cut body ends with the connection"
    );
    let json = stats(h.addr());
    let failures = &server(&json, 0)["counters"]["failures"];
    assert_eq!(failures["body_timeout"], 1, "{failures}");
    assert_eq!(failures["client_abort"], 0, "{failures}");
    assert_attempts_balance(&json);
}

#[test]
fn retries_on_fresh_connections_are_attempts() {
    let origin = second_request_resetting_origin();
    let h = host(&conf(&[origin], ""), None);
    assert_retries_on_fresh_connections_are_attempts(h.addr());
}

#[test]
fn clients_that_left_open_no_backend_connection() {
    let origin = common::Origin::start("a");
    let h = host(&conf(&[origin.addr], ""), None);
    assert_clients_that_left_open_no_backend_connection(h.addr(), &origin);
}
