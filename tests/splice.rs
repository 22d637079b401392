//! Large bodies through splice(2) on the stand-in host (`relay::splice`): exact bytes with
//! keep-alive and pipelining, backpressure and bounded memory for a slow client, a client
//! that leaves and a backend that cuts mid-body, the books and the access log's bytes, and
//! the TLS sides that must still copy. The same scenarios run through a real Monkey in
//! `tests/monkey_splice.rs`.

mod common;
mod logs_support;
mod splice_support;
mod tls_support;
mod upstream_tls_support;

use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use logs_support::{access_lines, captured, failed_of, lines, named_conf, temp_log};
use proxy_reverse::host::Host;
use splice_support::*;

fn wait_for_no_exchange(host: &Host) {
    wait_until("no exchange and no pipe held", || {
        host.open_connections() == 0 && host.pipes_in_use() == 0
    });
}

#[test]
fn large_bodies_are_spliced_exactly_with_keep_alive_and_pipelining() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    assert_large_bodies_exact_on_one_connection(host.addr());
    // Most of the large bodies skipped the relay's buffer (64 KiB ones may come with their
    // head in the first read, and then they are short of the threshold: copied).
    let large = 4 * LARGE[1] + LARGE[2];
    let spliced = host.bytes_spliced() as usize;
    assert!(
        spliced >= large - 2 * 32 * 1024,
        "{spliced} bytes spliced of {large}"
    );
    wait_for_no_exchange(&host);
    assert_eq!(host.buffers_in_use(), 0);
    // The response books count every byte from the backend, spliced or copied.
    let s = host.proxy().stats.server(0, 0).counters.snapshot();
    let bodies =
        (3 * LARGE[0] + 3 * LARGE[1] + LARGE[2] + 10 + 10 + 1024 + 1 + 3 * 1024 * 1024 + 17) as u64;
    assert!(
        s.bytes_from_backend > bodies && s.bytes_from_backend < bodies + 11 * 200,
        "{} bytes from the backend for {bodies} body bytes",
        s.bytes_from_backend
    );
    assert_eq!(s.connections_opened, 1, "one backend connection, reused");
}

#[test]
fn bytes_behind_a_spliced_body_never_reach_the_client_nor_a_later_request() {
    let (addr, conns) = keep_alive_raw_origin(sized_response_then_forged(LARGE[1]), None);
    let host = host_for(vec![entry_for(&[addr])]);
    assert_bytes_behind_a_spliced_body_never_reach_the_client(host.addr(), &conns);
    // At most one buffer's worth of each body is copied before the rest is spliced: the
    // head may arrive alone, and the next read then fills a whole 32 KiB buffer with body.
    let spliced = host.bytes_spliced();
    assert!(
        spliced >= 3 * (LARGE[1] as u64 - 32 * 1024),
        "{spliced} bytes spliced of three bodies of {}",
        LARGE[1]
    );
}

#[test]
fn a_slow_client_of_a_spliced_body_holds_one_pipe_no_buffer_and_gets_every_byte() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let n: u64 = 200 * 1024 * 1024;
    let mut reader = start_stream(host.addr(), n);
    let mut first = [0u8; 1024];
    reader.read_exact(&mut first).unwrap();
    thread::sleep(Duration::from_millis(500));
    // Backpressure: the backend is not read while the pipe waits for the client.
    let written = origin.written.load(Ordering::SeqCst);
    assert!(
        written < 64 * 1024 * 1024,
        "origin wrote {written} bytes for a client that read 1 KiB"
    );
    assert_eq!(
        (host.pipes_in_use(), host.buffers_in_use()),
        (1, 0),
        "what one slow reader of a spliced body holds"
    );
    assert!(first.iter().enumerate().all(|(i, b)| *b == pattern(i)));
    let mut most = 0;
    read_stream_slowly(&mut reader, 1024, n, Duration::from_millis(2), |_| {
        most = most.max(host.pipes_in_use() + host.buffers_in_use())
    });
    assert!(most <= 1, "{most} pipes and buffers for one client");
    assert!(host.bytes_spliced() > n - 64 * 1024);
    wait_until("the exchange ends", || host.open_connections() <= 1);
    assert_eq!(host.pipes_in_use(), 0);
}

#[test]
fn a_client_leaving_mid_body_closes_the_pipe_and_the_backend_connection() {
    let origin = Origin::start("a");
    let host = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(host.addr());
    assert_eq!(c.get("/id").body, b"a", "one pooled backend connection");
    drop(c);
    let mut reader = start_stream(host.addr(), 100 * 1024 * 1024);
    let mut some = vec![0u8; 256 * 1024];
    reader.read_exact(&mut some).unwrap();
    thread::sleep(Duration::from_millis(200));
    assert_eq!(host.pipes_in_use(), 1);
    drop(reader);
    wait_for_no_exchange(&host);
    // The half-sent response's connection was closed, not pooled: the next request opens a
    // new one (a pooled one would answer with the rest of the body).
    let mut c = Client::connect(host.addr());
    assert_eq!(c.get("/conns").body, b"2");
    assert_eq!(origin.conns.load(Ordering::SeqCst), 2);
    let s = host.proxy().stats.entry(0).counters.snapshot();
    assert_eq!(s.failures.client_abort, 1, "{s:?}");
}

#[test]
fn a_backend_cutting_a_spliced_body_closes_the_client_with_a_failed_request_line() {
    captured();
    let (total, sent) = (10 * 1024 * 1024, 3 * 1024 * 1024 + 5);
    let origin = cutting_origin(total, sent);
    let host = host_from_conf(&named_conf("splicecut", &[origin], ""));
    assert_cut_spliced_body_closes_the_client(host.addr(), total, sent);
    assert!(
        host.bytes_spliced() > 2 * 1024 * 1024,
        "the body was spliced"
    );
    wait_for_no_exchange(&host);
    wait_until("a failed-request line", || {
        !failed_of(&lines(), "splicecut").is_empty()
    });
    let failed = failed_of(&lines(), "splicecut");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["what"], "response_cut");
    assert_eq!(failed[0]["status"], "200");
}

#[test]
fn the_access_log_counts_a_spliced_body_s_bytes() {
    let log_file = temp_log("splice");
    let origin = Origin::start("o");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    AccessLog {}\n{}",
        log_file.display(),
        named_conf("site", &[origin.addr], "")
    );
    let proxy = Arc::new(proxy_from_conf(&conf));
    let host = Host::start(proxy.clone()).unwrap();
    let mut c = Client::connect(host.addr());
    let sizes = [LARGE[1], 1000, LARGE[2]];
    for n in sizes {
        assert_eq!(c.get(&format!("/size/{n}")).body.len(), n);
    }
    assert!(host.bytes_spliced() > 0);
    drop(c);
    drop(host);
    assert!(proxy.access_log.flush(Duration::from_secs(10)));
    let lines = access_lines(&log_file);
    assert_eq!(lines.len(), sizes.len());
    for (line, n) in lines.iter().zip(sizes) {
        assert_eq!(line["body_bytes_sent"], n.to_string(), "{line:?}");
        let received: usize = line["upstream_bytes_received"].parse().unwrap();
        assert!(received > n && received < n + 200, "{line:?}");
    }
    let _ = std::fs::remove_file(&log_file);
}

#[test]
fn a_tls_listener_s_large_bodies_are_copied_exactly() {
    let origin = Origin::start("a");
    let (server, cert) = tls_support::self_signed_server();
    let host = Host::start_tls(
        Arc::new(proxy_from_conf(&conf_for(&[origin.addr], ""))),
        server,
    )
    .unwrap();
    let config = tls_support::trusting(&cert);
    let mut c = tls_support::TlsClient::connect(host.addr(), &config);
    for n in LARGE {
        let r = c.get(&format!("/size/{n}"));
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    assert_eq!(
        host.bytes_spliced(),
        0,
        "TLS bytes go through the TLS layer"
    );
}

#[test]
fn an_https_backend_s_large_bodies_are_copied_exactly() {
    use upstream_tls_support::*;
    let ca = Ca::new("splice test CA");
    let dir = TempDir::new("splice");
    dir.write("ca.pem", &ca.pem());
    let origin = TlsOrigin::start(server_config(&ca.issue(Kind::Good), None));
    let ca_line = format!(
        "    UpstreamCaFile {}\n",
        dir.path().join("ca.pem").display()
    );
    let host = host_from_conf(&conf_https(origin.addr, &ca_line));
    let mut c = Client::connect(host.addr());
    for n in LARGE {
        let r = c.get(&format!("/stream/{n}"));
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    assert_eq!(host.bytes_spliced(), 0, "TLS bytes are decrypted here");
}
