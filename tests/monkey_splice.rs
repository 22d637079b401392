//! Large bodies through splice(2) in a real Monkey v1.8 (`MONKEY_BIN`; without it every test
//! is reported ignored): the scenarios `tests/splice.rs` runs on the stand-in host. That a
//! body is spliced shows in Monkey's descriptors: a pipe (two `pipe:` fds) per worker that
//! spliced, held while a slow client reads and closed when one leaves mid-body.
//!
//! A test binary of its own: the 200 MiB read loads the machine, and test binaries run one
//! after another.

mod common;
mod e2e;
mod logs_support;
mod splice_support;
mod tls_support;

use std::io::Read;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use e2e::*;
use logs_support::{access_lines, failed_of, named_conf, temp_log};
use splice_support::*;

fn finish(mut monkey: Monkey) {
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn large_bodies_are_spliced_exactly_with_keep_alive_and_pipelining() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&conf_for(&[origin.addr], ""));
    let before = monkey.pipe_fd_count();
    assert_large_bodies_exact_on_one_connection(monkey.addr());
    // The worker that served them keeps one empty pipe for its next spliced body.
    assert_eq!(
        monkey.pipe_fd_count(),
        before + 2,
        "one kept pipe: {:#?}",
        monkey.fd_targets()
    );
    assert_eq!(origin.conns.load(Ordering::SeqCst), 1);
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn bytes_behind_a_spliced_body_never_reach_the_client_nor_a_later_request() {
    let (addr, conns) = keep_alive_raw_origin(sized_response_then_forged(LARGE[1]), None);
    let monkey = Monkey::start(&conf_for(&[addr], ""));
    assert_bytes_behind_a_spliced_body_never_reach_the_client(monkey.addr(), &conns);
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_slow_client_reading_200_mib_gets_every_byte_with_monkey_s_memory_bounded() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&conf_for(&[origin.addr], ""));
    // Warm: a spliced body and the worker's slabs, so the baseline holds what a steady load
    // keeps.
    let mut c = Client::connect(monkey.addr());
    for _ in 0..20 {
        assert_eq!(c.get(&format!("/size/{}", LARGE[1])).body.len(), LARGE[1]);
    }
    drop(c);
    thread::sleep(Duration::from_millis(300));
    let rss_before = monkey.rss_kib();
    let n: u64 = 200 * 1024 * 1024;
    let mut reader = start_stream(monkey.addr(), n);
    let mut first = [0u8; 1024];
    reader.read_exact(&mut first).unwrap();
    thread::sleep(Duration::from_millis(500));
    let written = origin.written.load(Ordering::SeqCst);
    assert!(
        written < 64 * 1024 * 1024,
        "origin wrote {written} bytes for a client that read 1 KiB"
    );
    let mut most = 0;
    read_stream_slowly(&mut reader, 1024, n, Duration::from_millis(2), |_| {
        most = most.max(monkey.rss_kib())
    });
    eprintln!("Monkey's RSS: {rss_before} KiB before, at most {most} KiB while reading");
    assert!(
        most < rss_before + 4 * 1024,
        "RSS grew from {rss_before} KiB to {most} KiB for one slow client"
    );
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_client_leaving_mid_body_releases_every_descriptor_and_the_backend_connection() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&conf_for(&[origin.addr], ""));
    let baseline = monkey.fd_count();
    let mut reader = start_stream(monkey.addr(), 100 * 1024 * 1024);
    let mut some = vec![0u8; 256 * 1024];
    reader.read_exact(&mut some).unwrap();
    thread::sleep(Duration::from_millis(300));
    assert!(
        monkey.pipe_fd_count() >= 2,
        "a pipe while the body is on its way: {:#?}",
        monkey.fd_targets()
    );
    drop(reader);
    // The pipe held bytes: it is closed, not kept; the backend connection is not pooled.
    let now = monkey.wait_fds_at_most(baseline, Duration::from_secs(5));
    assert!(
        now <= baseline,
        "{now} fds after the client left, {baseline} before: {:#?}",
        monkey.fd_targets()
    );
    let mut c = Client::connect(monkey.addr());
    assert_eq!(c.get("/conns").body, b"2", "a new backend connection");
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_backend_cutting_a_spliced_body_closes_the_client_and_writes_a_failed_request_line() {
    let (total, sent) = (10 * 1024 * 1024, 3 * 1024 * 1024 + 5);
    let origin = cutting_origin(total, sent);
    let monkey = Monkey::start(&named_conf("splicecut", &[origin], ""));
    assert_cut_spliced_body_closes_the_client(monkey.addr(), total, sent);
    let until = Instant::now() + Duration::from_secs(10);
    while failed_of(&monkey.log().lines().collect::<Vec<_>>(), "splicecut").is_empty() {
        assert!(
            Instant::now() < until,
            "no failed-request line:\n{}",
            monkey.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(300));
    let failed = failed_of(&monkey.log().lines().collect::<Vec<_>>(), "splicecut");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["what"], "response_cut");
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn the_access_log_counts_a_spliced_body_s_bytes() {
    let log_file = temp_log("monkey_splice");
    let origin = Origin::start("o");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    AccessLog {}\n{}",
        log_file.display(),
        named_conf("site", &[origin.addr], "")
    );
    let monkey = Monkey::start(&conf);
    let mut c = Client::connect(monkey.addr());
    let sizes = [LARGE[1], 1000, LARGE[2]];
    for n in sizes {
        assert_eq!(c.get(&format!("/size/{n}")).body.len(), n);
    }
    let until = Instant::now() + Duration::from_secs(10);
    let count = || std::fs::read_to_string(&log_file).map_or(0, |t| t.lines().count());
    while count() < sizes.len() && Instant::now() < until {
        thread::sleep(Duration::from_millis(20));
    }
    let lines = access_lines(&log_file);
    assert_eq!(lines.len(), sizes.len());
    for (line, n) in lines.iter().zip(sizes) {
        assert_eq!(line["body_bytes_sent"], n.to_string(), "{line:?}");
    }
    finish(monkey);
    let _ = std::fs::remove_file(&log_file);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_tls_listener_s_large_bodies_are_copied_exactly() {
    let origin = Origin::start("a");
    let monkey = Monkey::start_tls(&conf_for(&[origin.addr], ""));
    let before = monkey.pipe_fd_count();
    let config = tls_support::trusting(monkey.tls_cert().unwrap());
    let mut c = tls_support::TlsClient::connect(monkey.addr(), &config);
    for n in LARGE {
        let r = c.get(&format!("/size/{n}"));
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    assert_eq!(
        monkey.pipe_fd_count(),
        before,
        "no pipe: TLS bytes go through Monkey's layer"
    );
    finish(monkey);
}
