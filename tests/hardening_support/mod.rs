//! Scenarios of the hardening findings (issue #21) that both hosts run: the stand-in host in
//! `tests/hardening.rs`, a real Monkey in `tests/monkey_hardening.rs`. Each scenario gets the
//! address of a proxy set up with the configuration it asked for, and reads the outcome from
//! the proxy's own statistics JSON (`/proxy-status`), as an operator would.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::Client;

/// Where the scenarios read the statistics.
pub const STATS: &str = "/proxy-status";

/// A plugin configuration: the statistics page and one entry over `servers` with `extra`
/// settings (indented `Key Value` lines).
pub fn conf(servers: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS}\n[PROXY_ENTRY]\n    Match ^/\n    \
         ServerList {}\n{extra}",
        list.join(" ")
    )
}

/// The statistics as JSON.
pub fn stats(proxy: SocketAddr) -> serde_json::Value {
    let r = Client::connect(proxy).get(&format!("{STATS}?format=json"));
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).expect("statistics JSON")
}

/// The counters of server `i` of the first entry.
pub fn server(json: &serde_json::Value, i: usize) -> &serde_json::Value {
    &json["entries"][0]["servers"][i]
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// Checks the books of every server and of the entry: an attempt is one try of a request on
/// one connection, so attempts = responses + failures (client aborts included), and
/// connections opened + reused = attempts; per entry the requests whose client left before
/// any attempt (`left_early`) are client aborts without an attempt.
pub fn assert_attempts_balance(json: &serde_json::Value) {
    let entry = &json["entries"][0];
    let sum = |c: &serde_json::Value, key: &str| -> u64 {
        c[key].as_object().unwrap().values().map(n).sum()
    };
    let mut attempts = 0;
    for s in entry["servers"].as_array().unwrap() {
        let c = &s["counters"];
        let tries = n(&c["requests"]);
        attempts += tries;
        assert_eq!(
            tries,
            sum(c, "responses") + sum(c, "failures"),
            "server {}: attempts = responses + failures: {c}",
            s["name"]
        );
        assert_eq!(
            tries,
            n(&c["connections_opened"]) + n(&c["connections_reused"]),
            "server {}: connections = attempts: {c}",
            s["name"]
        );
    }
    let c = &entry["counters"];
    assert_eq!(
        attempts + n(&entry["left_early"]),
        sum(c, "responses") + sum(c, "failures"),
        "entry: attempts + left early = responses + failures: {entry}"
    );
    assert_eq!(
        attempts,
        n(&c["connections_opened"]) + n(&c["connections_reused"]),
        "entry: {c}"
    );
}

/// A backend that answers a head promising 2 000 bytes, sends 1 000, then resets.
pub fn cutting_origin() -> SocketAddr {
    crate::common::raw_origin_reset_after(CUT_REPLY)
}

const CUT_REPLY: &[u8] = &{
    const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n";
    let mut reply = [b'x'; HEAD.len() + 1000];
    let mut i = 0;
    while i < HEAD.len() {
        reply[i] = HEAD[i];
        i += 1;
    }
    reply
};

/// GET `/x` on a new connection; the response head's status and how many body bytes came
/// before the connection ended.
pub fn get_until_closed(proxy: SocketAddr) -> (u16, usize) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or(0, |(_, b)| b.len());
    (status, body)
}

/// #21.2: a response cut by the backend after its head is counted against the server
/// (`response_cut`), towards `AttemptsCount`, and shown as the reason it went offline.
pub fn assert_cut_responses_count_against_the_server(proxy: SocketAddr) {
    for _ in 0..2 {
        let (status, body) = get_until_closed(proxy);
        assert_eq!(status, 200);
        assert!(
            body < 2000,
            "a cut body must not look complete ({body} bytes)"
        );
    }
    let json = stats(proxy);
    let s = server(&json, 0);
    assert_eq!(s["counters"]["failures"]["response_cut"], 2, "{s}");
    assert_eq!(s["counters"]["responses"]["2xx"], 0, "{s}");
    assert_eq!(s["state"], "offline", "{s}");
    assert_eq!(s["reason"], "response cut", "{s}");
    assert_attempts_balance(&json);
}

/// A backend that sends a head promising 2 000 bytes and 1 000 of them, then nothing (the
/// connection stays open until the test ends). Returns its address and how many requests
/// it got.
pub fn stalling_origin() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let seen = got.clone();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let seen = seen.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                if s.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                let _ = s.write_all(CUT_REPLY);
                seen.fetch_add(1, Ordering::SeqCst);
                // Silent until the proxy gives up (end of file) or 30 s pass.
                let _ = s.read(&mut buf);
            });
        }
    });
    (addr, got)
}

/// A backend that answers the first request of each connection with `200` and resets the
/// connection at its second (closing with the request unread makes the kernel reset).
pub fn second_request_resetting_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
                // The next request arrives: leave it unread and close (a reset).
                let _ = s.peek(&mut buf);
            });
        }
    });
    addr
}

/// #21.3: five GETs on one client connection to a backend that resets the second request
/// of each of its connections: the client gets five 200s, and the books balance — the retry
/// on a fresh connection to the same server is an attempt of its own.
pub fn assert_retries_on_fresh_connections_are_attempts(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    for i in 0..5 {
        let r = c.get("/x");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]), "GET {i}");
    }
    let json = stats(proxy);
    let counters = &server(&json, 0)["counters"];
    assert_eq!(counters["requests"], 9, "{counters}");
    assert_eq!(counters["responses"]["2xx"], 5, "{counters}");
    assert_eq!(
        counters["failures"]["reset_before_response"], 4,
        "{counters}"
    );
    assert_eq!(counters["connections_opened"], 5, "{counters}");
    assert_eq!(counters["connections_reused"], 4, "{counters}");
    assert_eq!(counters["retries"], 4, "{counters}");
    assert_eq!(
        json["entries"][0]["counters"]["requests"], 5,
        "client requests"
    );
    assert_attempts_balance(&json);
}

/// Sends `GET /id` on a new connection and shuts its write side, with the request's last
/// byte and the client's FIN in one segment (the socket is corked until then): a client
/// that sends a request and leaves, as a busy server sees it. Returns the connection.
pub fn request_then_leave(proxy: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap();
    rustix::net::sockopt::set_tcp_cork(&s, true).unwrap();
    s.write_all(b"GET /id HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s
}

/// Clients of [`assert_clients_that_left_open_no_backend_connection`].
pub const LEAVERS: u64 = 200;

/// #21.6: clients that send a request and close right behind it (or half-close and wait)
/// open no connection to the origin (`origin`: a [`crate::common::Origin`] behind the
/// proxy), and count as client aborts of the entry before any attempt; a client that
/// half-closes and waits is closed without an answer. Clients that wait for their answers
/// reach the origin (the control).
pub fn assert_clients_that_left_open_no_backend_connection(
    proxy: SocketAddr,
    origin: &crate::common::Origin,
) {
    let entry_requests = |json: &serde_json::Value| n(&json["entries"][0]["counters"]["requests"]);
    // The control: each answered, each response body (`/id`: the origin's name) written.
    let written = origin.written.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(Client::connect(proxy).get("/id").status, 200);
    }
    let name = origin.name.len() as u64;
    assert_eq!(origin.written.load(Ordering::SeqCst) - written, 20 * name);
    let (conns, written) = (
        origin.conns.load(Ordering::SeqCst),
        origin.written.load(Ordering::SeqCst),
    );
    let before = entry_requests(&stats(proxy));
    for _ in 0..LEAVERS - 1 {
        drop(request_then_leave(proxy));
    }
    // The last one half-closes and waits: the proxy closes it without an answer.
    let mut waiting = request_then_leave(proxy);
    waiting
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let closed = waiting.read_to_end(&mut answer);
    assert!(closed.is_ok(), "not closed: {closed:?}");
    assert_eq!(String::from_utf8_lossy(&answer), "", "answered");
    let counted = wait_until(Duration::from_secs(10), || {
        entry_requests(&stats(proxy)) >= before + LEAVERS
    });
    let json = stats(proxy);
    let entry = &json["entries"][0];
    assert!(counted, "not all counted: {entry}");
    // Slack for a client whose end of file would come after its request was dispatched (a
    // busy machine); with the FIN in the request's segment there is normally none.
    let slack = LEAVERS / 10;
    let opened = (origin.conns.load(Ordering::SeqCst) - conns) as u64;
    let served = (origin.written.load(Ordering::SeqCst) - written) / name;
    assert!(
        opened <= slack,
        "{opened} origin connections for {LEAVERS} clients gone"
    );
    assert!(
        served <= slack,
        "{served} origin responses for {LEAVERS} clients gone"
    );
    let left = n(&entry["left_early"]);
    assert!(left >= LEAVERS - slack, "left early {left}: {entry}");
    assert!(
        n(&entry["counters"]["failures"]["client_abort"]) >= left,
        "{entry}"
    );
    assert_attempts_balance(&json);
}

/// Waits until `done` holds, polling for at most `within`.
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if done() {
            return true;
        }
        thread::sleep(Duration::from_millis(5));
    }
    done()
}
