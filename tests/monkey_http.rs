//! The HTTP attack catalogue through a real Monkey v1.8 with the plugin loaded
//! (`MONKEY_BIN`): every case of `attack_support::cases`, one test each, named for the case,
//! as `relay_attacks.rs` runs them through the stand-in host; then the cases only a real
//! Monkey can run.
//!
//! Without `MONKEY_BIN` the tests are reported ignored. Run them with:
//! `MONKEY_BIN=/path/to/monkey cargo test --test monkey_http -- --test-threads=2`.
//! Every test ends by checking that each Monkey it started is still alive.

#[macro_use]
mod attack_support;
mod common;
mod e2e;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use attack_support::cases::through;
use attack_support::{parse_head, Harness, CL_AND_TE, NO_HOST};
use common::*;
use e2e::*;

/// A real Monkey as a catalogue [`Harness`]: each proxy a case starts is a Monkey with the
/// plugin and the configuration text as its `proxy_reverse.conf`.
#[derive(Default)]
struct RealMonkey {
    monkeys: RefCell<Vec<Monkey>>,
}

impl Harness for RealMonkey {
    fn host(&self) -> &'static str {
        "real Monkey"
    }

    fn start(&self, conf: &str) -> SocketAddr {
        let monkey = Monkey::start(conf);
        let addr = monkey.addr();
        self.monkeys.borrow_mut().push(monkey);
        addr
    }

    fn finish(&self) {
        for mut monkey in self.monkeys.borrow_mut().drain(..) {
            monkey.assert_alive();
            monkey.stop();
        }
    }

    fn report(&self) {
        for monkey in self.monkeys.borrow().iter() {
            eprintln!("Monkey on {}; log:\n{}", monkey.addr(), monkey.log());
        }
    }
}

attack_catalogue!(RealMonkey, {
    #[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
});

/// Ends a test: Monkey is still alive, then stopped.
fn finish(mut monkey: Monkey) {
    monkey.assert_alive();
    monkey.stop();
}

// ---- only through a real Monkey ---------------------------------------------------------
//
// Requests Monkey 1.8.9 answers itself, before the plugin sees them (`relay_attacks.rs` says
// what the stand-in host, which leaves them to the core, answers), and the read timeout on
// the real clock.

/// Runs `case` on a real Monkey, named `name` in a failure.
fn real_monkey(name: &str, case: fn(&dyn Harness)) {
    attack_support::run_case::<RealMonkey>(name, case);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn smuggling_cl_and_te_together_never_reaches_the_origin() {
    real_monkey(
        "smuggling_cl_and_te_together_never_reaches_the_origin",
        |h| {
            let origin = Origin::start("a");
            let proxy = h.start(&conf_for(&[origin.addr], ""));
            let mut c = Client::connect(proxy);
            c.reader
                .get_mut()
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            c.send(CL_AND_TE);
            // Monkey 1.8.9 itself holds a request with CL > 0 and chunked (until its own
            // timeout, then closes without an answer); whatever it answers, nothing may reach
            // the origin. The stand-in host answers 400 and closes.
            if let Some(r) = c.read_response(false) {
                assert_eq!(r.status, 400);
            }
            assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
        },
    );
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn http11_request_without_host_is_answered_by_monkey_itself() {
    // Monkey refuses it before stage 30 and keeps the connection (the stand-in host's core
    // closes it): the next request on it is served, and only that one reaches the origin.
    real_monkey(
        "http11_request_without_host_is_answered_by_monkey_itself",
        |h| {
            let origin = Origin::start("a");
            let proxy = h.start(&conf_for(&[origin.addr], ""));
            let (r, mut c) = through(proxy, NO_HOST);
            assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
            let r = c.get("/headers");
            assert_eq!(r.status, 200);
            let (line, _) = parse_head(&r.body);
            assert_eq!(line, "GET /headers HTTP/1.1");
            assert_eq!(origin.conns.load(Ordering::SeqCst), 1);
        },
    );
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_chunk_extension_never_reaches_the_origin() {
    // Monkey 1.8.9's chunked parser takes a bare hex size only: it closes the connection
    // without an answer, before the plugin sees the request (the stand-in host relays the
    // extension: `chunked_upload_with_extensions_reaches_the_origin_intact` there).
    real_monkey("a_chunk_extension_never_reaches_the_origin", |h| {
        let origin = Origin::start("a");
        let proxy = h.start(&conf_for(&[origin.addr], ""));
        let mut c = Client::connect(proxy);
        c.reader
            .get_mut()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        );
        let began = Instant::now();
        assert!(c.read_response(false).is_none(), "answered");
        assert!(began.elapsed() < Duration::from_secs(4), "held, not closed");
        assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
    });
}

// The stand-in host's read timeout is tested on its test clock (`relay.rs`); Monkey runs on
// the real one.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn slow_origin_gets_504_within_read_timeout() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&conf_for(&[origin.addr], "    ReadTimeout 0.5\n"));
    let t = Instant::now();
    let r = Client::connect(monkey.addr()).get("/never");
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert!(
        took >= Duration::from_millis(450),
        "504 after only {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "504 only after {took:?}"
    );
    finish(monkey);
}
