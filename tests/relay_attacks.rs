//! The HTTP attack catalogue through the stand-in mio host (runs everywhere, no Monkey
//! needed): every case of `attack_support::cases`, one test each, named for the case.
//! `monkey_http.rs` runs the same cases through a real Monkey.

#[macro_use]
mod attack_support;
mod common;

use std::cell::RefCell;
use std::net::SocketAddr;

use attack_support::cases::{refused_before_the_origin, through};
use attack_support::{Harness, CL_AND_TE, NO_HOST};
use common::{conf_for, host_from_conf, Origin};
use proxy_reverse::host::Host;

/// The stand-in host as a catalogue [`Harness`]: each proxy a case starts is a [`Host`] for
/// the parsed configuration text, on the system clock.
#[derive(Default)]
struct StandIn {
    hosts: RefCell<Vec<Host>>,
}

impl Harness for StandIn {
    fn host(&self) -> &'static str {
        "stand-in host"
    }

    fn start(&self, conf: &str) -> SocketAddr {
        let host = host_from_conf(conf);
        let addr = host.addr();
        self.hosts.borrow_mut().push(host);
        addr
    }

    fn finish(&self) {
        // Dropping a host stops its loop and closes what it holds.
        self.hosts.borrow_mut().clear();
    }

    fn report(&self) {}
}

attack_catalogue!(StandIn, {});

// ---- only through the stand-in host -----------------------------------------------------
//
// Requests Monkey answers differently before the plugin sees them (its own parser runs
// first); `monkey_http.rs` says what Monkey does with each.

/// Runs `case` on the stand-in host, named `name` in a failure.
fn stand_in(name: &str, case: fn(&dyn Harness)) {
    attack_support::run_case::<StandIn>(name, case);
}

#[test]
fn chunked_upload_with_extensions_reaches_the_origin_intact() {
    // Monkey 1.8.9's chunked parser takes a bare hex size only and drops the connection
    // (`a_chunk_extension_never_reaches_the_origin` there); a recipient must ignore the
    // extensions it does not know (RFC 9112 §7.1.1), and the core does.
    stand_in(
        "chunked_upload_with_extensions_reaches_the_origin_intact",
        |h| {
            let origin = Origin::start("a");
            let proxy = h.start(&conf_for(&[origin.addr], ""));
            let (r, _c) = through(
                proxy,
                b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
            );
            assert_eq!((r.status, r.body.as_slice()), (200, &b"hello world"[..]));
        },
    );
}

#[test]
fn smuggling_cl_and_te_together_gets_400_and_nothing_reaches_the_origin() {
    // Monkey 1.8.9 holds a request with a length above zero and chunked until its own
    // timeout (`smuggling_cl_and_te_together_never_reaches_the_origin` there).
    stand_in(
        "smuggling_cl_and_te_together_gets_400_and_nothing_reaches_the_origin",
        |h| refused_before_the_origin(h, CL_AND_TE),
    );
}

#[test]
fn http11_request_without_host_gets_400_and_close() {
    // Monkey answers this one itself and keeps the connection
    // (`http11_request_without_host_is_answered_by_monkey_itself` there).
    stand_in("http11_request_without_host_gets_400_and_close", |h| {
        refused_before_the_origin(h, NO_HOST)
    });
}
