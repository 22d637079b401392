//! The relay behind a TLS listener, through the stand-in host's rustls listener (which
//! hands the relay a transport over each connection's TLS state, as the plugin hands it
//! Monkey's TLS layer): the scenarios `tests/monkey_tls.rs` runs in a real Monkey.

mod admin_support;
mod common;
mod tls_support;

use std::io::Read;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use proxy_reverse::host::Host;
use tls_support::{trusting, TlsClient};

/// A TLS stand-in host for the configuration text `conf`, and a client configuration
/// trusting it.
fn tls_host(conf: &str) -> (Host, Arc<rustls::ClientConfig>) {
    let (server, cert) = tls_support::self_signed_server();
    let host = Host::start_tls(Arc::new(proxy_from_conf(conf)), server).unwrap();
    (host, trusting(&cert))
}

#[test]
fn exact_bodies_keep_alive_and_pipelining_over_a_tls_listener() {
    let origin = Origin::start("a");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL /proxy-stats\n\n{}",
        conf_for(&[origin.addr], "")
    );
    let (host, config) = tls_host(&conf);
    tls_support::assert_exact_bodies_keep_alive_and_pipelining(host.addr(), &config, &origin.conns);
}

#[test]
fn a_tunnel_echoes_over_a_tls_listener() {
    let echo = admin_support::upgrade_echo_origin();
    let (host, config) = tls_host(&conf_for(&[echo], ""));
    tls_support::assert_tunnel_echoes(host.addr(), &config);
}

/// A client that reads slowly: the relay holds one buffer and stops reading the backend
/// while the TLS writes block; every byte arrives.
#[test]
fn a_slow_tls_client_gets_every_byte_in_bounded_memory() {
    let origin = Origin::start("a");
    let (host, config) = tls_host(&conf_for(&[origin.addr], ""));
    let mut c = TlsClient::connect(host.addr(), &config);
    let n = 20 * 1024 * 1024;
    c.send(format!("GET /stream/{n} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
    // The head, then the body read slowly at first.
    let r = {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut c.reader, &mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
        loop {
            let mut h = String::new();
            std::io::BufRead::read_line(&mut c.reader, &mut h).unwrap();
            if h == "\r\n" {
                break;
            }
        }
        let mut body = Vec::with_capacity(n);
        let mut buf = vec![0u8; 16 * 1024];
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut most_buffers = 0;
        while body.len() < n {
            let k = c.reader.read(&mut buf).unwrap();
            assert!(k > 0, "the body ended after {} bytes", body.len());
            body.extend_from_slice(&buf[..k]);
            if body.len() < 2 * 1024 * 1024 {
                thread::sleep(Duration::from_millis(1));
                most_buffers = most_buffers.max(host.buffers_in_use());
            }
            assert!(Instant::now() < deadline, "too slow");
        }
        assert!(
            most_buffers <= 2,
            "{most_buffers} relay buffers for one slow client"
        );
        body
    };
    assert!(r == body_of(n), "the body differs");
    // Written ahead of the client: at most socket buffers and a relay buffer, not the body.
    let ahead = origin.written.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(ahead, n as u64);
}

#[test]
fn many_tls_clients_at_once_are_all_answered() {
    let origin = Origin::start("a");
    let (host, config) = tls_host(&conf_for(&[origin.addr], ""));
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let (addr, config) = (host.addr(), config.clone());
            thread::spawn(move || {
                let mut c = TlsClient::connect(addr, &config);
                for k in 0..20 {
                    let n = 100 + 997 * ((i * 20 + k) % 70);
                    let r = c.get(&format!("/stream/{n}"));
                    assert_eq!(r.status, 200);
                    assert!(r.body == body_of(n), "client {i} request {k}");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while host.open_connections() > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
}
