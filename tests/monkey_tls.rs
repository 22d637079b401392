//! The plugin on a Monkey TLS listener (`Listen PORT tls`, Monkey's own TLS layer, a
//! self-signed certificate made at test time): responses, request bodies, keep-alive,
//! pipelining, tunnels, a slow client and wrk all go through Monkey's TLS layer, never as
//! plaintext on the socket (which used to reset every proxied request).

mod admin_support;
mod common;
mod e2e;
mod tls_support;

use std::io::{BufRead, Read, Write};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use e2e::{parse_wrk, wrk_available, Monkey};
use tls_support::{trusting, TlsClient};

/// A TLS Monkey in front of one origin, and a client configuration that trusts it.
fn tls_monkey(origin: &Origin) -> (Monkey, std::sync::Arc<rustls::ClientConfig>) {
    let conf = format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL /proxy-stats\n\n{}",
        conf_for(&[origin.addr], "")
    );
    let monkey = Monkey::start_tls(&conf);
    let config = trusting(monkey.tls_cert().expect("a TLS Monkey"));
    (monkey, config)
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn exact_bodies_keep_alive_and_pipelining_over_a_tls_listener() {
    let origin = Origin::start("a");
    let (mut monkey, config) = tls_monkey(&origin);
    let mut c = TlsClient::connect(monkey.addr(), &config);
    for n in [1024usize, 0, 10 * 1024 * 1024, 1024] {
        let r = c.get(&format!("/stream/{n}"));
        assert_eq!(r.status, 200, "size {n}");
        assert_eq!(r.body.len(), n);
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    // A chunked response and a close-delimited one (re-framed chunked for HTTP/1.1).
    assert_eq!(c.get("/chunked/5000").body, body_of(5000));
    assert_eq!(c.get("/close/3000").body, body_of(3000));
    // A POST body reaches the origin and comes back. (Monkey 1.8.9 itself answers 400 to a
    // request over 16 KiB on a TLS listener, for its own pages too: README's limits.)
    let body = body_of(12_000);
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body == body), (200, true));
    // Pipelined: two requests in one write, answered in order.
    c.send(b"GET /id HTTP/1.1\r\nHost: test\r\n\r\nGET /size/777 HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, b"a");
    assert_eq!(c.read_response(false).unwrap().body, body_of(777));
    // Local answers still go through Monkey's own response path.
    let stats = c.get("/proxy-stats?format=json");
    assert_eq!(stats.status, 200);
    assert!(String::from_utf8_lossy(&stats.body).contains("\"schema\""));
    // All of it on one connection; the origin saw few.
    assert!(origin.conns.load(std::sync::atomic::Ordering::SeqCst) <= 3);
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_tunnel_echoes_over_a_tls_listener() {
    let echo = admin_support::upgrade_echo_origin();
    let mut monkey = Monkey::start_tls(&conf_for(&[echo], ""));
    let config = trusting(monkey.tls_cert().unwrap());
    let mut c = TlsClient::connect(monkey.addr(), &config);
    // The first bytes ride behind the upgrade request, in the same TLS record.
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly\n");
    let mut status = String::new();
    c.reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status:?}");
    loop {
        let mut line = String::new();
        c.reader.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    let mut early = [0u8; 6];
    c.reader.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early\n");
    for round in 0..5 {
        let msg = format!("round {round} {}\n", "x".repeat(round * 20_000));
        c.send(msg.as_bytes());
        let mut back = vec![0u8; msg.len()];
        c.reader.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
    monkey.assert_alive();
}

/// A client reading a 200 MiB body slowly: the relay stops reading the backend while
/// Monkey's TLS layer cannot write, so Monkey's memory stays bounded.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_slow_tls_client_keeps_memory_bounded() {
    let origin = Origin::start("a");
    let (mut monkey, config) = tls_monkey(&origin);
    let before = monkey.rss_kib();
    let mut c = TlsClient::connect(monkey.addr(), &config);
    let n = 200 * 1024 * 1024;
    c.send(format!("GET /stream/{n} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0usize;
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    // Read the first 8 MiB slowly, then the rest at full speed.
    while got < n {
        let k = c.reader.read(&mut buf).unwrap();
        assert!(k > 0, "the body ended after {got} bytes");
        got += k;
        if got < 8 * 1024 * 1024 {
            thread::sleep(Duration::from_millis(2));
            peak = peak.max(monkey.rss_kib());
        }
        assert!(Instant::now() < deadline, "too slow: {got} bytes in 60 s");
    }
    println!("RSS before {before} KiB, peak while slow {peak} KiB");
    // The origin wrote ahead of the client by at most the socket buffers and one relay
    // buffer; Monkey grew by far less than the body.
    assert!(
        peak < before + 16 * 1024,
        "RSS grew from {before} to {peak} KiB"
    );
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn wrk_over_a_tls_listener_has_no_errors_and_leaves_no_descriptors() {
    if !wrk_available() {
        return;
    }
    let origin = Origin::start("a");
    let (mut monkey, config) = tls_monkey(&origin);
    // One request first, so the baseline includes the worker's lazily made descriptors.
    let _ = TlsClient::connect(monkey.addr(), &config).get("/id");
    thread::sleep(Duration::from_millis(300));
    let baseline = monkey.fd_count();
    let out = std::process::Command::new("wrk")
        .args(["-t2", "-c50", "-d10s", "--timeout", "5s"])
        .arg(format!("https://{}/size/1024", monkey.addr()))
        .output()
        .expect("run wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let s = parse_wrk(&text);
    assert!(s.requests > 1000, "{text}");
    assert_eq!((s.non_2xx, s.socket_errors), (0, 0), "{text}");
    // Pooled backend connections stay (up to one per client connection); client ones go.
    let after = monkey.wait_fds_at_most(baseline + 64, Duration::from_secs(10));
    assert!(
        after <= baseline + 64,
        "{after} fds against {baseline}: {:?}",
        monkey.fd_targets()
    );
    // A plain write to a TLS socket would have made curl-style clients fail: check one more.
    let mut c = TlsClient::connect(monkey.addr(), &config);
    assert_eq!(c.get("/id").body, b"a");
    let _ = c.reader.get_mut().flush();
    monkey.assert_alive();
}
