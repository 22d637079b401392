//! The relay path through the stand-in mio host against real loopback origins.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;

/// Runs `check` against the stand-in host in front of one [`Origin`].
fn with_origin_behind_host(check: fn(std::net::SocketAddr)) {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    check(host.addr());
}

#[test]
fn client_leaving_releases_the_backend_at_once() {
    let (addr, backend) = silent_backend();
    let mut entry = entry_for(&[addr]);
    entry.read_timeout = Duration::from_secs(30);
    let host = host_for(vec![entry]);
    assert_client_leaving_releases_the_backend(host.addr(), backend);
}

#[test]
fn encoded_paths_route_by_their_decoded_form() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let host = host_for(vec![
        entry_matching("^/m/a/", &[a.addr]),
        entry_matching("^/", &[b.addr]),
    ]);
    assert_encoded_paths_route_by_their_decoded_form(host.addr());
}

#[test]
fn source_hash_follows_the_client_a_trusted_proxy_names() {
    let origins = [Origin::start("a"), Origin::start("b"), Origin::start("c")];
    let addrs: Vec<_> = origins.iter().map(|o| o.addr).collect();
    let mut entry = entry_for(&addrs);
    entry.balancer = "SourceHash".into();
    entry.trusted_proxies = vec![proxy_reverse::config::Cidr {
        addr: "127.0.0.1".parse().unwrap(),
        prefix: 32,
    }];
    let host = host_for(vec![entry]);
    assert_source_hash_follows_the_forwarded_client(host.addr());
}

#[test]
fn exact_bytes_1_kib() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let r = Client::connect(host.addr()).get("/size/1024");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body_of(1024));
    assert_eq!(r.header("x-backend"), Some("a"));
}

#[test]
fn exact_bytes_10_mib() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let n = 10 * 1024 * 1024;
    let r = Client::connect(host.addr()).get(&format!("/size/{n}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body.len(), n);
    assert!(r.body == body_of(n), "10 MiB body differs");
}

#[test]
fn chunked_response_passes_through() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    let r = c.get("/chunked/100000");
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.body, body_of(100000));
    // The connection is still usable afterwards.
    assert_eq!(c.get("/size/10").body, body_of(10));
}

#[test]
fn chunked_response_is_dechunked_for_http_1_0() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    c.send(b"GET /chunked/5000 HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body, body_of(5000));
}

#[test]
fn close_delimited_response_goes_chunked_and_the_client_keeps_its_connection() {
    with_origin_behind_host(assert_close_delimited_bodies_go_chunked);
}

#[test]
fn close_delimited_response_closes_http_1_0_and_closing_clients() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    for request in [
        &b"GET /close/3000 HTTP/1.0\r\n\r\n"[..],
        b"GET /close/3000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ] {
        let mut c = Client::connect(host.addr());
        c.send(request);
        let r = c.read_response(false).unwrap();
        assert_eq!(r.header("transfer-encoding"), None);
        assert_eq!(r.header("connection"), Some("close"));
        assert_eq!(r.body, body_of(3000));
    }
}

#[test]
fn close_delimited_body_cut_by_a_reset_is_not_completed_for_the_client() {
    // The origin sends a head without a length, some body, then resets the connection: the
    // client was promised chunked framing, so it must not get a last-chunk that would make
    // the truncated body look complete.
    let origin = raw_origin_reset_after(b"HTTP/1.1 200 OK\r\n\r\npartial body");
    let host = host_for(vec![entry_for(&[origin])]);
    assert_cut_body_closes_the_client(host.addr());
}

#[test]
fn head_has_no_body_and_keeps_the_connection() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    c.send(b"HEAD /size/5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("5000"));
    let r = c.get("/size/7");
    assert_eq!(r.body, body_of(7));
}

#[test]
fn post_body_is_forwarded() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    let body = body_of(20000);
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    c.send(&body);
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, body);
}

#[test]
fn chunked_request_body_is_forwarded() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    let r = c.read_response(false).unwrap();
    assert_eq!(r.body, b"hello world");
}

#[test]
fn keep_alive_across_three_requests_reuses_one_upstream_connection() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    for n in [10, 20, 30] {
        let r = c.get(&format!("/size/{n}"));
        assert_eq!(r.body, body_of(n));
        assert_eq!(r.header("connection"), None);
    }
    assert_eq!(
        origin.conns.load(Ordering::SeqCst),
        1,
        "one upstream connection for three requests"
    );
}

#[test]
fn bytes_queued_behind_a_buffer_filling_response_never_answer_the_next_request() {
    // The response ends exactly where the relay's read buffer does, and the backend sent a
    // forged response right behind it. The read that completed the response left those bytes
    // in the socket: the connection must not be reused, or they would answer the next request.
    let (origin, conns) = origin_out_of_step_behind_a_full_buffer();
    let host = host_for(vec![entry_for(&[origin])]);
    assert_queued_bytes_never_answer(host.addr(), &conns);
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    c.send(b"GET /size/3 HTTP/1.1\r\nHost: t\r\n\r\nGET /id HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, body_of(3));
    assert_eq!(c.read_response(false).unwrap().body, b"a");
}

#[test]
fn request_sent_during_a_stream_is_answered_after_it() {
    with_origin_behind_host(assert_request_sent_during_a_stream_is_answered_after_it);
}

#[test]
fn requests_pipelined_behind_bodies_are_answered() {
    with_origin_behind_host(assert_requests_pipelined_behind_bodies_are_answered);
}

#[test]
fn nothing_is_answered_after_a_closing_response() {
    with_origin_behind_host(assert_nothing_is_answered_after_a_closing_response);
}

#[test]
fn each_target_reaches_the_origin_as_sent() {
    with_origin_behind_host(assert_each_target_reaches_the_origin_as_sent);
}

#[test]
fn close_in_a_connection_list_closes() {
    with_origin_behind_host(assert_close_in_a_connection_list_closes);
}

#[test]
fn dead_backend_gives_502() {
    let host = host_for(vec![entry_for(&[dead_addr()])]);
    let r = Client::connect(host.addr()).get("/x");
    assert_eq!(r.status, 502);
}

#[test]
fn failover_to_the_next_server() {
    let origin = Origin::start("b");
    let host = host_for(vec![entry_for(&[dead_addr(), origin.addr])]);
    let r = Client::connect(host.addr()).get("/id");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"b");
}

// ---- timeouts, on the host's test clock ------------------------------------------------
//
// Each test brings the exchange into the state that waits first (the backend has the
// request, the response is half sent, the connection is idle), with the clock not moved
// since the exchange began; then it moves the clock to just before the timeout, sees that
// nothing happens, and moves it past. The real-Monkey versions (`monkey_http.rs`,
// `monkey_e2e.rs`) run on the real clock.

/// Moves `host`'s test clock on by `ms` milliseconds.
fn advance_ms(host: &proxy_reverse::host::Host, ms: u64) {
    host.advance(Duration::from_millis(ms));
}

#[test]
fn silent_backend_gives_504_after_read_timeout() {
    let (addr, backend) = silent_backend();
    let mut entry = entry_for(&[addr]);
    entry.read_timeout = Duration::from_millis(400);
    let (host, proxy) = host_on_test_clock(vec![entry]);
    let mut c = Client::connect(host.addr());
    c.send(b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n");
    // The backend has the request: the exchange waits for the response head.
    let mut upstream = accept_within(&backend);
    read_request_head(&mut upstream);
    advance_ms(&host, 399);
    assert_quiet(c.reader.get_mut(), "1 ms before the read timeout");
    advance_ms(&host, 2);
    c.reader.get_mut().set_read_timeout(Some(PROMPTLY)).unwrap();
    let r = c
        .read_response(false)
        .expect("a response past the read timeout");
    assert_eq!(r.status, 504);
    read_until_closed(
        &mut upstream,
        "after the 504: the backend connection is let go",
    );
    let failures = proxy.stats.entry(0).counters.snapshot().failures;
    assert_eq!(failures.read_timeout, 1, "{failures:?}");
}

#[test]
fn unanswering_backend_gives_504_after_connect_timeout() {
    let (addr, _listener, _queued) = unanswering_backend();
    let mut entry = entry_for(&[addr]);
    entry.connect_timeout = Duration::from_millis(500);
    let (host, proxy) = host_on_test_clock(vec![entry]);
    let mut c = Client::connect(host.addr());
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    // The connect has begun (it cannot complete): the exchange waits for it.
    let opened = || proxy.stats.entry(0).counters.snapshot().connections_opened;
    wait_until("the proxy starts connecting", || opened() == 1);
    advance_ms(&host, 499);
    assert_quiet(c.reader.get_mut(), "1 ms before the connect timeout");
    advance_ms(&host, 2);
    c.reader.get_mut().set_read_timeout(Some(PROMPTLY)).unwrap();
    let r = c
        .read_response(false)
        .expect("a response past the connect timeout");
    assert_eq!(r.status, 504, "{:?}", String::from_utf8_lossy(&r.body));
    let failures = proxy.stats.entry(0).counters.snapshot().failures;
    assert_eq!(failures.connect_timeout, 1, "{failures:?}");
    assert_eq!(opened(), 1, "tried again");
}

#[test]
fn backend_silent_in_the_middle_of_a_body_closes_the_client_after_read_timeout() {
    let (addr, backend) = silent_backend();
    let mut entry = entry_for(&[addr]);
    entry.read_timeout = Duration::from_millis(400);
    let (host, _proxy) = host_on_test_clock(vec![entry]);
    let mut client = TcpStream::connect(host.addr()).unwrap();
    client
        .write_all(b"GET /half HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut upstream = accept_within(&backend);
    read_request_head(&mut upstream);
    upstream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello")
        .unwrap();
    // Half the body has reached the client: the exchange waits for the rest.
    client.set_read_timeout(Some(PROMPTLY)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.ends_with(b"hello") {
        let n = client.read(&mut buf).expect("the head and half the body");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    advance_ms(&host, 399);
    assert_quiet(&mut client, "1 ms before the read timeout");
    assert_quiet(&mut upstream, "1 ms before the read timeout");
    advance_ms(&host, 2);
    // The body cannot be completed: the client sees it cut, the backend is let go.
    let rest = read_until_closed(&mut client, "past the read timeout");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    read_until_closed(&mut upstream, "past the read timeout");
    wait_until("the client connection is closed", || {
        host.open_connections() == 0
    });
}

#[test]
fn client_that_stops_reading_is_closed_after_read_timeout() {
    let origin = Origin::start("a");
    let mut entry = entry_for(&[origin.addr]);
    entry.read_timeout = Duration::from_millis(400);
    let (host, _proxy) = host_on_test_clock(vec![entry]);
    let mut client = TcpStream::connect(host.addr()).unwrap();
    client
        .write_all(b"GET /stream/268435456 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The client reads nothing: the sockets between fill and the proxy waits to write.
    // Bounded: the origin's writes stop within seconds (it writes only what the proxy reads).
    let until = std::time::Instant::now() + Duration::from_secs(20);
    let mut last = u64::MAX;
    let mut steady = 0;
    while steady < 5 {
        assert!(
            std::time::Instant::now() < until,
            "the response never stopped"
        );
        std::thread::sleep(Duration::from_millis(200));
        let now = origin.written.load(Ordering::SeqCst);
        steady = if now == last && now > 0 {
            steady + 1
        } else {
            0
        };
        last = now;
    }
    assert_eq!(host.open_connections(), 1);
    advance_ms(&host, 399);
    std::thread::sleep(QUIET_WINDOW);
    assert_eq!(
        host.open_connections(),
        1,
        "closed 1 ms before the read timeout"
    );
    assert_eq!(origin.written.load(Ordering::SeqCst), last);
    advance_ms(&host, 2);
    wait_until(
        "the client connection is closed past the read timeout",
        || host.open_connections() == 0,
    );
    let got = read_until_closed(&mut client, "past the read timeout");
    assert!(
        (got.len() as u64) < 268_435_456,
        "the whole body reached a client that stopped reading"
    );
}

#[test]
fn idle_pooled_connection_closes_after_keep_alive_timeout() {
    let (addr, backend) = silent_backend();
    let mut entry = entry_for(&[addr]);
    entry.keepalive_timeout = Duration::from_secs(2);
    let (host, _proxy) = host_on_test_clock(vec![entry]);
    let mut c = Client::connect(host.addr());
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut upstream = accept_within(&backend);
    read_request_head(&mut upstream);
    upstream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        .unwrap();
    // The response is complete: the backend connection waits in the pool.
    let r = c.read_response(false).expect("the response");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
    advance_ms(&host, 1999);
    assert_quiet(&mut upstream, "1 ms before the keep-alive timeout");
    advance_ms(&host, 2);
    read_until_closed(&mut upstream, "past the keep-alive timeout");
    // The next request needs a new connection.
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut second = accept_within(&backend);
    read_request_head(&mut second);
}

#[test]
fn offline_server_is_tried_again_after_offline_timeout() {
    let first = dead_addr();
    let b = Origin::start("b");
    let mut entry = entry_for(&[first, b.addr]);
    entry.attempts_count = 1;
    entry.offline_timeout = Duration::from_secs(10);
    let (host, _proxy) = host_on_test_clock(vec![entry]);
    let mut c = Client::connect(host.addr());
    // The first server refuses: it goes offline and the request fails over.
    assert_eq!(c.get("/id").body, b"b");
    // Back up, but offline still: skipped.
    let a = Origin::start_on(first, "a");
    assert_eq!(c.get("/id").body, b"b");
    advance_ms(&host, 9_999);
    assert_eq!(
        c.get("/id").body,
        b"b",
        "tried 1 ms before the offline timeout"
    );
    assert_eq!(a.conns.load(Ordering::SeqCst), 0);
    advance_ms(&host, 2);
    assert_eq!(
        c.get("/id").body,
        b"a",
        "not tried past the offline timeout"
    );
}

#[test]
fn garbage_from_the_backend_gives_502() {
    let addr = raw_origin(b"this is not http\r\n\r\n");
    let host = host_for(vec![entry_for(&[addr])]);
    assert_eq!(Client::connect(host.addr()).get("/x").status, 502);
}

#[test]
fn streaming_is_not_buffered() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut s = TcpStream::connect(host.addr()).unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("part 0") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert!(
        t.elapsed() < Duration::from_millis(300),
        "first part arrived only after {:?}",
        t.elapsed()
    );
}

#[test]
fn slow_client_keeps_proxy_memory_bounded() {
    // The origin can only write as fast as the proxy forwards; if the proxy buffered the
    // response, the origin would finish long before the client reads anything.
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let n: u64 = 256 * 1024 * 1024;
    let mut s = TcpStream::connect(host.addr()).unwrap();
    s.write_all(format!("GET /size/{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut buf = [0u8; 1024];
    s.read_exact(&mut buf).unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let written = origin.written.load(Ordering::SeqCst);
    // Kernel socket buffers on loopback hold a few MiB per socket; the proxy holds 32 KiB.
    assert!(
        written < 64 * 1024 * 1024,
        "origin wrote {written} bytes for a client that read 1 KiB"
    );
    drop(s);
    let t = Instant::now();
    while host.open_connections() > 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(host.open_connections(), 0);
}

#[test]
fn exchanges_waiting_for_a_backend_hold_no_buffer() {
    // Memory per waiting request is its context and request, not a relay buffer: a buffer is
    // held only while response bytes are in transit.
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut waiting: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut s = TcpStream::connect(host.addr()).unwrap();
            s.write_all(b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    let t = Instant::now();
    while host.open_connections() < 20 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(host.open_connections(), 20);
    // A streamed response between its parts holds none either.
    let mut slow = TcpStream::connect(host.addr()).unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 256];
    assert!(slow.read(&mut buf).unwrap() > 0);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        host.buffers_in_use(),
        0,
        "buffers held by waiting exchanges"
    );
    // A slow reader of a large body holds exactly one: a buffer, or the pipe its body is
    // spliced through (`relay::splice`), which stands for it.
    let mut reader = TcpStream::connect(host.addr()).unwrap();
    reader
        .write_all(b"GET /size/67108864 HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert!(reader.read(&mut buf).unwrap() > 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        (host.buffers_in_use(), host.pipes_in_use()),
        (0, 1),
        "buffers and pipes held with one slow reader"
    );
    waiting.clear();
    drop((slow, reader));
    let t = Instant::now();
    while host.open_connections() > 0 && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(host.open_connections(), 0);
    assert_eq!(host.buffers_in_use(), 0);
    assert_eq!(host.pipes_in_use(), 0);
}

#[test]
fn every_server_offline_gives_503_with_retry_after() {
    let mut entry = entry_for(&[dead_addr()]);
    entry.attempts_count = 1;
    entry.offline_timeout = Duration::from_secs(30);
    let host = host_for(vec![entry]);
    let mut c = Client::connect(host.addr());
    // The first failure takes the only server offline; the proxy still tries it as the last
    // resort, then tells the client when to come back.
    let r = c.get("/x");
    assert_eq!(r.status, 503);
    let after: u64 = r
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=30).contains(&after), "Retry-After {after}");
}

#[test]
fn dead_server_is_skipped_once_offline() {
    let origin = Origin::start("b");
    let mut entry = entry_for(&[dead_addr(), origin.addr]);
    entry.attempts_count = 1;
    let host = host_for(vec![entry]);
    let mut c = Client::connect(host.addr());
    for _ in 0..5 {
        let r = c.get("/id");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"b"[..]));
    }
}

#[test]
fn stale_pooled_connection_is_retried_for_get_and_skipped_for_post() {
    // This origin answers one request per connection and then closes without saying so:
    // every pooled connection to it is stale when reused.
    let addr = raw_origin(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let host = host_for(vec![entry_for(&[addr])]);
    for _ in 0..3 {
        let r = Client::connect(host.addr()).get("/x");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        std::thread::sleep(Duration::from_millis(50));
    }
    for _ in 0..3 {
        let mut c = Client::connect(host.addr());
        c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nz");
        let r = c.read_response(false).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"ok"[..]),
            "POST never meets a stale connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A backend's heads that repeat (the worker's memo of its previous head recognises them)
/// reach the client as each was sent ([`RepeatingHeads`]).
#[test]
fn repeated_response_heads_reach_the_client_as_each_was_sent() {
    let origin = RepeatingHeads::start();
    let host = host_for(vec![entry_for(&[origin.addr])]);
    origin.check(host.addr());
}
