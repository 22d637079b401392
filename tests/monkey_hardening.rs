//! The hardening findings of issue #21 through a real Monkey v1.8 (`MONKEY_BIN`; without it
//! every test is reported ignored). The scenarios are shared with `tests/hardening.rs`.

mod common;
mod e2e;
mod hardening_support;

use std::time::{Duration, Instant};

use common::*;
use e2e::*;
use hardening_support::*;

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn cut_responses_count_against_the_server() {
    let origin = cutting_origin();
    let mut monkey = Monkey::start(&conf(
        &[origin],
        "    AttemptsCount 2\n    OfflineTimeOut 30\n",
    ));
    assert_cut_responses_count_against_the_server(monkey.addr());
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_backend_silent_in_the_body_times_out_as_its_own_failure() {
    let (origin, _) = stalling_origin();
    let mut monkey = Monkey::start(&conf(&[origin], "    ReadTimeout 1\n"));
    let started = Instant::now();
    let (status, body) = get_until_closed(monkey.addr());
    assert_eq!(
        (status, body),
        (200, 1000),
        "the cut body ends with the connection"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    let json = stats(monkey.addr());
    let failures = &server(&json, 0)["counters"]["failures"];
    assert_eq!(failures["body_timeout"], 1, "{failures}");
    assert_eq!(failures["client_abort"], 0, "{failures}");
    assert_attempts_balance(&json);
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn retries_on_fresh_connections_are_attempts() {
    let origin = second_request_resetting_origin();
    let mut monkey = Monkey::start(&conf(&[origin], ""));
    assert_retries_on_fresh_connections_are_attempts(monkey.addr());
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_statistics_read_after_a_response_counts_it() {
    // #21.8: the statistics are read on a new connection (often served by Monkey's other
    // worker) the moment a response has fully arrived; the response must be in them. It
    // used to be recorded only after its last bytes were written, so a quick reader could
    // miss it (9 of 10 counted, once in a full run).
    let origin = Origin::start("a");
    let mut monkey = Monkey::start(&conf(&[origin.addr], ""));
    let mut client = Client::connect(monkey.addr());
    for i in 1..=300u64 {
        let r = client.get("/nope");
        assert_eq!(r.status, 404);
        let json = stats(monkey.addr());
        let counted = &json["entries"][0]["counters"]["responses"]["4xx"];
        assert_eq!(counted.as_u64(), Some(i), "after response {i}");
    }
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn clients_that_left_open_no_backend_connection() {
    let origin = Origin::start("a");
    let mut monkey = Monkey::start(&conf(&[origin.addr], ""));
    let fds = monkey.fd_count();
    assert_clients_that_left_open_no_backend_connection(monkey.addr(), &origin);
    // Every client connection closed (pooled origin connections may stay: at most a few).
    let now = monkey.wait_fds_at_most(fds + 4, Duration::from_secs(10));
    assert!(
        now <= fds + 4,
        "{now} fds, {fds} before: {:?}",
        monkey.fd_targets()
    );
    monkey.assert_alive();
    monkey.stop();
}
