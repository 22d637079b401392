//! The plugin on a Monkey TLS listener (`Listen PORT tls`, Monkey's own TLS layer, a
//! self-signed certificate made at test time): responses, request bodies, keep-alive,
//! pipelining, tunnels, a slow client and wrk all go through Monkey's TLS layer, never as
//! plaintext on the socket (which used to reset every proxied request).

mod admin_support;
mod common;
mod e2e;
mod tls_support;

use std::io::{Read, Write};
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
    tls_support::assert_exact_bodies_keep_alive_and_pipelining(
        monkey.addr(),
        &config,
        &origin.conns,
    );
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_tunnel_echoes_over_a_tls_listener() {
    let echo = admin_support::upgrade_echo_origin();
    let mut monkey = Monkey::start_tls(&conf_for(&[echo], ""));
    let config = trusting(monkey.tls_cert().unwrap());
    tls_support::assert_tunnel_echoes(monkey.addr(), &config);
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
