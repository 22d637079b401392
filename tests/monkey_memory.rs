//! Memory through a real Monkey v1.8 (`MONKEY_BIN`; without it the test is reported ignored).
//!
//! A test binary of its own: its bursts load the machine, and test binaries run one after
//! another, so no timing-sensitive test of another file runs beside them.

mod common;
mod e2e;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use e2e::*;

/// Resident memory of process `pid` (`VmRSS`), in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Connection churn: `clients` threads, each opening a connection, sending `GET path` with
/// `Connection: close` and reading to the end, again and again until `lasting` has passed.
/// Returns the responses that arrived complete.
fn churn(addr: std::net::SocketAddr, clients: usize, lasting: Duration, path: &str) -> u64 {
    let until = Instant::now() + lasting;
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let request = request.clone();
            std::thread::spawn(move || {
                let mut answered = 0u64;
                while Instant::now() < until {
                    let Ok(mut s) = TcpStream::connect(addr) else {
                        continue;
                    };
                    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut reply = Vec::new();
                    if s.write_all(request.as_bytes()).is_ok()
                        && s.read_to_end(&mut reply).is_ok()
                        && reply.starts_with(b"HTTP/1.1 200 ")
                    {
                        answered += 1;
                    }
                }
                answered
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap_or(0)).sum()
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn memory_goes_back_down_after_bursts_of_closing_connections() {
    // #21.7: glibc kept what bursts of short connections left free in the worker arenas, so
    // Monkey's resident size stayed near its peak: 1.0–2.1 MiB above where it started after
    // 2 s bursts of 200 closing clients here, against at most 0.7 MiB now that a worker trims
    // once it is quiet (`src/monkey/trim.rs`).
    let origin = Origin::start("a");
    let mut monkey = Monkey::start(&conf_for(&[origin.addr], ""));
    // Warm: what a steady load keeps (slabs, pools, cached duplicates) is in the baseline.
    let mut c = Client::connect(monkey.addr());
    for _ in 0..200 {
        assert_eq!(c.get("/id").status, 200);
    }
    drop(c);
    std::thread::sleep(Duration::from_millis(1500));
    let before = rss_kib(monkey.pid());
    let limit = before + 1024;
    // (answered, kB when the burst ended, kB once quiet)
    let mut bursts = Vec::new();
    for _ in 0..5 {
        let answered = churn(monkey.addr(), 200, Duration::from_secs(2), "/id");
        let peak = rss_kib(monkey.pid());
        // A worker trims about a second after its last exchange ended; a busy machine may
        // take longer. Without the trim the size does not go down with time.
        std::thread::sleep(Duration::from_millis(1500));
        let quiet_from = Instant::now();
        let mut quiet = rss_kib(monkey.pid());
        while quiet > limit && quiet_from.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(100));
            quiet = rss_kib(monkey.pid());
        }
        bursts.push((answered, peak, quiet));
    }
    eprintln!("{before} kB before; bursts (answered, kB at the end, kB once quiet): {bursts:?}");
    for (i, &(answered, _, quiet)) in bursts.iter().enumerate() {
        assert!(answered > 0, "burst {}: nothing answered", i + 1);
        assert!(
            quiet <= limit,
            "burst {}: {quiet} kB once quiet, {before} kB before the bursts: {bursts:?}",
            i + 1
        );
    }
    monkey.assert_alive();
    monkey.stop();
}
