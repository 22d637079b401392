//! Property test of the relay through the stand-in host: random responses (every framing,
//! bodies around the relay buffer's size, random chunking, extensions and trailers, interim
//! responses) sent by the origin in random pieces, to random clients — see
//! `exchange_support` for the cases and what must hold for each.

mod common;
mod exchange_support;

use std::time::{Duration, Instant};

use common::*;
use exchange_support::*;
use proxy_reverse::relay::BUFFER_SIZE;

#[test]
fn random_responses_reach_every_kind_of_client_exactly() {
    let origin = ScriptedOrigin::start();
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let settled = || {
        // The client has closed: its connection and every relay buffer must be released.
        let t = Instant::now();
        while (host.open_connections() > 0 || host.buffers_in_use() > 0)
            && t.elapsed() < Duration::from_secs(5)
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        match (host.open_connections(), host.buffers_in_use()) {
            (0, 0) => Ok(()),
            (c, b) => Err(format!("{c} connections and {b} buffers left open")),
        }
    };
    check_random_exchanges(
        host.addr(),
        &origin,
        BUFFER_SIZE,
        Limits::NONE,
        256,
        &settled,
    );
}
