//! The proxy's own limits (descriptors) running out: the client gets a 503 and no server is
//! blamed. A test binary of its own, because it lowers the process's descriptor limit.

mod common;

use std::fs::File;
use std::sync::Arc;

use common::*;
use proxy_reverse::config::{Config, MatchRule};
use proxy_reverse::health::HealthState;
use proxy_reverse::host::Host;
use proxy_reverse::proxy::Proxy;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The highest descriptor number this process has open.
fn highest_fd() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap()
}

#[test]
fn out_of_descriptors_gets_503_and_takes_no_server_offline() {
    // Nothing listens at the server's address: it never gets that far, because the
    // backend socket cannot even be created. One failure counted against the server would
    // take it offline.
    let mut entry = entry_for(&[dead_addr()]);
    entry.matches = vec![MatchRule {
        pattern: "^/api/".into(),
        line: 1,
    }];
    entry.attempts_count = 1;
    let proxy = Arc::new(
        Proxy::new(Config {
            file: "test.conf".into(),
            statistics_url: None,
            statistics_allow: vec![],
            admin_url: None,
            admin_allow: Vec::new(),
            access_log: None,
            entries: vec![entry],
        })
        .unwrap(),
    );
    let host = Host::start(proxy.clone()).unwrap();
    let mut c = Client::connect(host.addr());
    // The proxy answers this one itself (no entry matches): the connection is accepted and
    // nothing else is left open or about to close.
    assert_eq!(c.get("/other").status, 404);

    // No free descriptor below a lowered soft limit but one, which the stand-in host's
    // per-request duplicate of the client socket takes (the plugin keeps its duplicate
    // between requests): creating the backend socket is what fails.
    let saved = getrlimit(Resource::Nofile);
    let limit = highest_fd() + 1;
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(limit),
            maximum: saved.maximum,
        },
    )
    .unwrap();
    let mut fillers = Vec::new();
    for _ in 0..limit {
        match File::open("/dev/null") {
            Ok(f) => fillers.push(f),
            Err(_) => break,
        }
    }
    fillers.pop();
    c.send(b"GET /api/x HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false);
    drop(fillers);
    setrlimit(Resource::Nofile, saved).unwrap();

    let r = r.expect("a response while out of descriptors");
    assert_eq!(r.status, 503, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("retry-after"), Some("1"));
    let health = proxy.upstreams[0].servers()[0].health.snapshot();
    assert_eq!(
        health.state,
        HealthState::Up,
        "the server was blamed: {health:?}"
    );
    assert_eq!(health.consecutive_failures, 0);
}
