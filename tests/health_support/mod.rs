//! Active health checks, backups, outlier ejection and slow start (#16), written once against
//! any host: the stand-in host (`tests/health_checks.rs`) and a real Monkey
//! (`tests/monkey_health.rs`) run the same scenarios, reading every state from the JSON
//! statistics.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::Client;

/// Where every scenario's statistics are.
pub const STATS: &str = "/proxy-stats";

/// A host the scenarios drive: where clients connect.
pub trait Target {
    /// The proxy's address.
    fn addr(&self) -> SocketAddr;
}

/// A host whose configuration file can be replaced and reloaded.
pub trait Reloadable: Target {
    /// Writes `conf` as the configuration file and asks for a reload (the scenarios wait
    /// until the statistics show it).
    fn reload(&self, conf: &str);
}

/// An origin whose answers a test sets: `/healthz` answers `health` (200 at first), every
/// other path `status` (200 at first) with the origin's name as body. Keep-alive, a thread
/// per connection; counts health checks and other requests.
pub struct HealthOrigin {
    pub addr: SocketAddr,
    pub name: String,
    health: Arc<AtomicU16>,
    status: Arc<AtomicU16>,
    checks: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl HealthOrigin {
    /// On a free loopback port.
    pub fn start(name: &str) -> HealthOrigin {
        HealthOrigin::start_on("127.0.0.1:0".parse().unwrap(), name)
    }

    /// On `addr` (to restart a killed one in place; bounded retry while the old listener
    /// closes).
    pub fn start_on(addr: SocketAddr, name: &str) -> HealthOrigin {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(_) if tries < 100 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let mut o = HealthOrigin {
            addr,
            name: name.to_string(),
            health: Arc::new(AtomicU16::new(200)),
            status: Arc::new(AtomicU16::new(200)),
            checks: Arc::new(AtomicU64::new(0)),
            requests: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
            open: Arc::new(Mutex::new(HashMap::new())),
            acceptor: None,
        };
        let shared = (
            o.health.clone(),
            o.status.clone(),
            o.checks.clone(),
            o.requests.clone(),
            o.stop.clone(),
            o.open.clone(),
            o.name.clone(),
        );
        let acceptor = thread::spawn(move || {
            let (health, status, checks, requests, stop, open, name) = shared;
            for (id, stream) in (0u64..).zip(listener.incoming()) {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    open.lock().unwrap().insert(id, clone);
                }
                let (h, s, c, r, o, n) = (
                    health.clone(),
                    status.clone(),
                    checks.clone(),
                    requests.clone(),
                    open.clone(),
                    name.clone(),
                );
                thread::spawn(move || {
                    serve(stream, &n, &h, &s, &c, &r);
                    o.lock().unwrap().remove(&id);
                });
            }
        });
        o.acceptor = Some(acceptor);
        o
    }

    /// What `/healthz` answers from now on.
    pub fn set_health(&self, status: u16) {
        self.health.store(status, Ordering::SeqCst);
    }

    /// What every other path answers from now on.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// `/healthz` requests answered so far.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::SeqCst)
    }

    /// Other requests answered so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// A crash seen from outside: the listener closes and every connection is shut down.
    pub fn kill(mut self) -> SocketAddr {
        self.halt();
        self.addr
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
        for (_, s) in self.open.lock().unwrap().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for HealthOrigin {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.halt();
        }
    }
}

fn serve(
    stream: TcpStream,
    name: &str,
    health: &AtomicU16,
    status: &AtomicU16,
    checks: &AtomicU64,
    requests: &AtomicU64,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut close = false;
        loop {
            let mut h = String::new();
            match reader.read_line(&mut h) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if h == "\r\n" || h == "\n" {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        let (code, body) = if path.starts_with("/healthz") {
            checks.fetch_add(1, Ordering::SeqCst);
            let code = health.load(Ordering::SeqCst);
            (code, if code < 400 { "ok\n" } else { "bad\n" }.to_string())
        } else {
            requests.fetch_add(1, Ordering::SeqCst);
            (status.load(Ordering::SeqCst), format!("{name}\n"))
        };
        let head = format!(
            "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        let mut out = head.into_bytes();
        if method != "HEAD" {
            out.extend_from_slice(body.as_bytes());
        }
        if writer.write_all(&out).is_err() || close {
            return;
        }
    }
}

/// `[PROXY_DEFAULTS]` with the statistics on, then `entries`.
pub fn conf_with(entries: &str) -> String {
    format!("[PROXY_DEFAULTS]\n    StatisticsURL {STATS}\n\n{entries}")
}

/// One entry section named `name` matching everything under `pattern`, round robin, its
/// `ServerList` as written in `servers`, then `extra` key lines (each `    Key Value\n`).
pub fn entry(name: &str, pattern: &str, servers: &str, extra: &str) -> String {
    let balancer = if extra.contains("LoadBalancer") {
        ""
    } else {
        "    LoadBalancer RoundRobin\n"
    };
    format!(
        "[PROXY_ENTRY]\n    Name {name}\n    Match {pattern}\n    ServerList {servers}\n{balancer}{extra}\n"
    )
}

/// Fast checks for tests: `GET /healthz` every `interval` s, timeout 0.5 s, `rise`/`fall`.
pub fn checks(interval: &str, rise: u32, fall: u32) -> String {
    format!(
        "    HealthCheck GET /healthz\n    HealthCheckInterval {interval}\n    \
         HealthCheckTimeout 0.5\n    HealthCheckRise {rise}\n    HealthCheckFall {fall}\n"
    )
}

/// `GET path` on a fresh connection: status and body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut c = Client::connect(addr);
    c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes());
    let r = c
        .read_response(false)
        .unwrap_or_else(|| panic!("no response to GET {path}"));
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

/// The JSON statistics.
pub fn stats(addr: SocketAddr) -> Value {
    let (status, body) = get(addr, &format!("{STATS}?format=json"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Server `server` of entry `entry` in a statistics document.
pub fn server_in<'a>(doc: &'a Value, entry: &str, server: SocketAddr) -> &'a Value {
    let name = server.to_string();
    doc["entries"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == entry))
        .and_then(|e| e["servers"].as_array())
        .and_then(|ss| ss.iter().find(|s| s["name"] == name.as_str()))
        .unwrap_or_else(|| panic!("no server {name} in entry {entry}: {doc:#}"))
}

/// The state (`up`, `down`, …) the statistics show now.
pub fn state_of(addr: SocketAddr, entry: &str, server: SocketAddr) -> String {
    server_in(&stats(addr), entry, server)["state"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

/// Polls the statistics every 50 ms until `server` of `entry` is in `state`, for at most
/// `within`; returns how long it took (panics with the last document otherwise).
pub fn wait_state(
    addr: SocketAddr,
    entry: &str,
    server: SocketAddr,
    state: &str,
    within: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let doc = stats(addr);
        if server_in(&doc, entry, server)["state"] == state {
            return start.elapsed();
        }
        if start.elapsed() > within {
            panic!(
                "{server} of {entry} not {state} within {within:?}: {:#}",
                server_in(&doc, entry, server)
            );
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Counts of `n` requests for `path` on fresh connections by answer body; panics on any
/// status but 200.
pub fn spread(addr: SocketAddr, path: &str, n: usize) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    let mut c = Client::connect(addr);
    for _ in 0..n {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        let r = c.read_response(false).expect("a response");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        *out.entry(String::from_utf8_lossy(&r.body).trim().to_string())
            .or_default() += 1;
    }
    out
}

/// A client sending requests for `path` one after another on a keep-alive connection (a
/// new one after an error), counting answers by body and errors, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<String, u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    /// `clients` such clients.
    pub fn start(addr: SocketAddr, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, seen, errors, path) =
                    (stop.clone(), seen.clone(), errors.clone(), path.to_string());
                thread::spawn(move || {
                    let mut c: Option<Client> = None;
                    while !stop.load(Ordering::SeqCst) {
                        let client = c.get_or_insert_with(|| Client::connect(addr));
                        client.send(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes());
                        match client.read_response(false) {
                            Some(r) if r.status == 200 => {
                                let body = String::from_utf8_lossy(&r.body).trim().to_string();
                                *seen.lock().unwrap().entry(body).or_default() += 1;
                            }
                            Some(r) => {
                                errors.lock().unwrap().push(format!(
                                    "{} {}",
                                    r.status,
                                    String::from_utf8_lossy(&r.body)
                                ));
                                c = None;
                            }
                            None => {
                                errors.lock().unwrap().push("no response".into());
                                c = None;
                            }
                        }
                        thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        Load {
            stop,
            seen,
            errors,
            threads,
        }
    }

    /// Answers so far from the origin named `name`.
    pub fn from(&self, name: &str) -> u64 {
        self.seen.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// Answers so far by origin.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.seen.lock().unwrap().clone()
    }

    /// Errors so far.
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }

    /// Waits until `more` further answers from `name` came (at most 10 s).
    pub fn wait_for(&self, name: &str, more: u64) {
        let target = self.from(name) + more;
        let start = Instant::now();
        while self.from(name) < target {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {more} answers from {name}: {:?}, errors {:?}",
                self.counts(),
                self.errors()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the clients; the errors they saw.
    pub fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.errors()
    }
}

/// The configuration of [`assert_dead_server_goes_down_and_comes_back_without_traffic`]:
/// entry `web` on `a` and `b`, checked every second, rise 2, fall 2, timeout 0.5 s.
pub fn no_traffic_conf(a: SocketAddr, b: SocketAddr) -> String {
    conf_with(&entry("web", "^/", &format!("{a} {b}"), &checks("1", 2, 2)))
}

/// Issue #16's first acceptance item, with no user request at all: `b` killed is `down`
/// within Fall × Interval + Timeout (+1 s), restarted it is `up` within Rise × Interval
/// (+1 s), read from the JSON statistics. Returns the measured (down, up) times.
pub fn assert_dead_server_goes_down_and_comes_back_without_traffic(
    t: &dyn Target,
    a: &HealthOrigin,
    b: HealthOrigin,
) -> (Duration, Duration) {
    let addr = t.addr();
    // New servers are `checking` until their first probe (within half an interval).
    wait_state(addr, "web", a.addr, "up", Duration::from_secs(3));
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(3));
    let name = b.name.clone();
    let b_addr = b.kill();
    let down = wait_state(addr, "web", b_addr, "down", Duration::from_millis(3_500));
    let doc = stats(addr);
    let s = server_in(&doc, "web", b_addr);
    assert_eq!(s["reason"], "connection refused", "{s:#}");
    assert_eq!(s["check"]["last"]["result"], "fail", "{s:#}");
    assert!(
        s["check"]["consecutive_fails"].as_u64().unwrap() >= 2,
        "{s:#}"
    );
    assert!(!doc.to_string().contains("retry in 0"), "{doc:#}");
    let b = HealthOrigin::start_on(b_addr, &name);
    let up = wait_state(addr, "web", b_addr, "up", Duration::from_millis(3_000));
    let doc = stats(addr);
    let s = server_in(&doc, "web", b_addr);
    assert!(
        s["check"]["consecutive_passes"].as_u64().unwrap() >= 2,
        "{s:#}"
    );
    assert!(s["check"]["downtime_secs"].as_u64().unwrap() >= 1, "{s:#}");
    assert!(s["check"]["changed_secs_ago"].as_u64().is_some(), "{s:#}");
    assert!(
        s["check"]["last"]["latency_ms"].as_f64().unwrap() >= 0.0,
        "{s:#}"
    );
    assert_eq!(a.requests() + b.requests(), 0, "no user request was sent");
    assert!(a.checks() >= 3, "a is probed: {}", a.checks());
    (down, up)
}

/// `b`'s `/healthz` answers 503 although it accepts connections: `b` goes `down` (reason
/// `status 503`) and takes no request; answering 200 again it comes back.
pub fn assert_failing_health_endpoint_takes_a_server_out(
    t: &dyn Target,
    a: &HealthOrigin,
    b: &HealthOrigin,
) {
    let addr = t.addr();
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(3));
    b.set_health(503);
    wait_state(addr, "web", b.addr, "down", Duration::from_millis(3_500));
    let doc = stats(addr);
    assert_eq!(server_in(&doc, "web", b.addr)["reason"], "status 503");
    let before = b.requests();
    let seen = spread(addr, "/id", 20);
    assert_eq!(seen.get(&a.name), Some(&20), "{seen:?}");
    assert_eq!(b.requests(), before, "b takes no request while down");
    b.set_health(200);
    wait_state(addr, "web", b.addr, "up", Duration::from_millis(3_000));
    let seen = spread(addr, "/id", 20);
    assert!(seen.get(&b.name).copied().unwrap_or(0) >= 5, "{seen:?}");
}

/// The configuration of [`assert_backup_takes_over_and_gives_back`]: primaries `p1`, `p2`
/// and backup `bk` in entry `web`, checked every 0.5 s, rise 1, fall 1.
pub fn backup_conf(p1: SocketAddr, p2: SocketAddr, bk: SocketAddr) -> String {
    conf_with(&entry(
        "web",
        "^/",
        &format!("{p1} {p2} {bk} backup"),
        &checks("0.5", 1, 1),
    ))
}

/// Only primaries serve while one is up; with both killed the backup serves; a primary
/// back takes the traffic again — with 0 client errors throughout.
pub fn assert_backup_takes_over_and_gives_back(
    t: &dyn Target,
    p1: HealthOrigin,
    p2: HealthOrigin,
    bk: &HealthOrigin,
) {
    let addr = t.addr();
    for s in [p1.addr, p2.addr] {
        wait_state(addr, "web", s, "up", Duration::from_secs(3));
    }
    wait_state(addr, "web", bk.addr, "backup", Duration::from_secs(3));
    let load = Load::start(addr, "/id", 4);
    load.wait_for(&p1.name, 50);
    load.wait_for(&p2.name, 50);
    assert_eq!(
        load.from(&bk.name),
        0,
        "the backup idles: {:?}",
        load.counts()
    );
    let (n1, n2) = (p1.name.clone(), p2.name.clone());
    let a1 = p1.kill();
    let a2 = p2.kill();
    load.wait_for(&bk.name, 100);
    wait_state(addr, "web", a1, "down", Duration::from_secs(3));
    wait_state(addr, "web", a2, "down", Duration::from_secs(3));
    wait_state(addr, "web", bk.addr, "up", Duration::from_secs(1));
    let p1 = HealthOrigin::start_on(a1, &n1);
    wait_state(addr, "web", a1, "up", Duration::from_secs(3));
    wait_state(addr, "web", bk.addr, "backup", Duration::from_secs(1));
    // Give the requests planned before the change a moment, then the backup must idle.
    thread::sleep(Duration::from_millis(200));
    let idle = load.from(&bk.name);
    load.wait_for(&p1.name, 100);
    assert_eq!(load.from(&bk.name), idle, "{:?}", load.counts());
    assert_eq!(load.from(&n2), load.counts().get(&n2).copied().unwrap_or(0));
    let errors = load.finish();
    assert!(errors.is_empty(), "client errors: {errors:?}");
    drop(p1);
}

/// The configuration of [`assert_outliers_are_ejected_and_return`]: `a`, `b`, `c` in entry
/// `web`, ejected after 5 consecutive 5xx for 2 s (growing), at most 50 % of them.
pub fn outlier_conf(a: SocketAddr, b: SocketAddr, c: SocketAddr) -> String {
    conf_with(&entry(
        "web",
        "^/",
        &format!("{a} {b} {c}"),
        "    OutlierConsecutive5xx 5\n    OutlierEjectionTime 2\n    OutlierMaxEjectionPercent 50\n",
    ))
}

/// Sends `n` requests for `/id` one after another; statuses by origin body.
fn statuses(addr: SocketAddr, n: usize) -> HashMap<(String, u16), usize> {
    let mut out = HashMap::new();
    let mut c = Client::connect(addr);
    for _ in 0..n {
        c.send(b"GET /id HTTP/1.1\r\nHost: test\r\n\r\n");
        let r = c.read_response(false).expect("a response");
        let body = String::from_utf8_lossy(&r.body).trim().to_string();
        *out.entry((body, r.status)).or_default() += 1;
    }
    out
}

/// `c` answers 500 to everything: ejected after exactly 5 of them (requests sent one after
/// another), back after the ejection time; with `b` failing too, only one of the two (50 %
/// of three servers is one) is ejected at a time.
pub fn assert_outliers_are_ejected_and_return(
    t: &dyn Target,
    a: &HealthOrigin,
    b: &HealthOrigin,
    c: &HealthOrigin,
) {
    let addr = t.addr();
    c.set_status(500);
    let seen = statuses(addr, 30);
    assert_eq!(seen.get(&(c.name.clone(), 500)), Some(&5), "{seen:?}");
    let doc = stats(addr);
    let s = server_in(&doc, "web", c.addr);
    assert_eq!(s["state"], "ejected", "{s:#}");
    assert_eq!(s["ejections"], 1, "{s:#}");
    assert!(s["ejected_for_secs"].as_u64().unwrap() <= 2, "{s:#}");
    assert_eq!(s["reason"], "5 consecutive 5xx responses", "{s:#}");
    let back = wait_state(addr, "web", c.addr, "up", Duration::from_secs(4));
    assert!(
        back > Duration::from_millis(1_000),
        "ejected for 2 s: back after {back:?}"
    );
    // Both b and c fail now: one is ejected, never both.
    b.set_status(500);
    let seen = statuses(addr, 60);
    let doc = stats(addr);
    let states: Vec<String> = [a.addr, b.addr, c.addr]
        .iter()
        .map(|&s| {
            server_in(&doc, "web", s)["state"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(states[0], "up", "{states:?}");
    assert_eq!(
        states.iter().filter(|s| *s == "ejected").count(),
        1,
        "{states:?} {seen:?}"
    );
    let total_ejections: u64 = [b.addr, c.addr]
        .iter()
        .map(|&s| server_in(&doc, "web", s)["ejections"].as_u64().unwrap())
        .sum();
    assert!(total_ejections >= 2, "{doc:#}");
    b.set_status(200);
    c.set_status(200);
}

/// The configuration of [`assert_slow_start_ramps_a_returning_server`]: `a` and `b` round
/// robin, checked every 0.2 s (rise 1, fall 1), slow start over 4 s.
pub fn slow_start_conf(a: SocketAddr, b: SocketAddr) -> String {
    conf_with(&entry(
        "web",
        "^/",
        &format!("{a} {b}"),
        &format!("{}    SlowStart 4\n", checks("0.2", 1, 1)),
    ))
}

/// `b` comes back after a failure: its effective weight (statistics) starts near 10 % and
/// grows to 100 % over `SlowStart`, and its measured share of requests (from the
/// statistics' counters, window by window) grows with it.
pub fn assert_slow_start_ramps_a_returning_server(t: &dyn Target, b: &HealthOrigin) {
    let addr = t.addr();
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(3));
    // Wait out the ramp of the first pass.
    let start = Instant::now();
    while server_in(&stats(addr), "web", b.addr)["effective_weight_percent"] != 100 {
        assert!(start.elapsed() < Duration::from_secs(6), "no full weight");
        thread::sleep(Duration::from_millis(100));
    }
    b.set_health(503);
    wait_state(addr, "web", b.addr, "down", Duration::from_secs(2));
    b.set_health(200);
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(2));
    let attempts = |doc: &Value, s: SocketAddr| {
        server_in(doc, "web", s)["counters"]["requests"]
            .as_u64()
            .unwrap()
    };
    let entry_attempts = |doc: &Value| -> u64 {
        doc["entries"][0]["servers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["counters"]["requests"].as_u64().unwrap())
            .sum()
    };
    let mut weights = Vec::new();
    let mut shares = Vec::new();
    let mut doc = stats(addr);
    let ramp_start = Instant::now();
    while ramp_start.elapsed() < Duration::from_millis(5_500) {
        let window = Instant::now();
        while window.elapsed() < Duration::from_millis(500) {
            spread(addr, "/id", 10);
        }
        let next = stats(addr);
        let total = entry_attempts(&next) - entry_attempts(&doc);
        let mine = attempts(&next, b.addr) - attempts(&doc, b.addr);
        shares.push(mine as f64 / total.max(1) as f64);
        weights.push(
            server_in(&next, "web", b.addr)["effective_weight_percent"]
                .as_u64()
                .unwrap(),
        );
        doc = next;
    }
    eprintln!("slow start: effective weight % {weights:?}, shares {shares:.2?}");
    assert!(weights[0] <= 50, "starts low: {weights:?}");
    assert!(
        weights.windows(2).all(|w| w[0] <= w[1]),
        "grows: {weights:?}"
    );
    assert_eq!(weights.last(), Some(&100), "{weights:?}");
    let early = shares[0];
    let late = *shares.last().unwrap();
    // Expected about 0.15 at first and 0.5 at the end; the bounds leave room for a busy
    // machine, where a window holds few requests.
    assert!(early < 0.35, "a small share at first: {shares:.2?}");
    assert!(late > 0.35, "about half in the end: {shares:.2?}");
    assert!(late - early > 0.15, "the share grows: {shares:.2?}");
}

/// Two entries list `a` with the same check: it is probed once per interval, not twice.
pub fn shared_conf(a: SocketAddr, b: SocketAddr) -> String {
    conf_with(&format!(
        "{}{}",
        entry("one", "^/one/", &format!("{a} {b}"), &checks("0.5", 1, 1)),
        entry("two", "^/two/", &format!("{a}"), &checks("0.5", 1, 1)),
    ))
}

/// Counts `a`'s probes over `secs` seconds: about one per half second, whatever the
/// number of entries and workers.
pub fn assert_one_probe_per_server_per_interval(t: &dyn Target, a: &HealthOrigin) {
    let addr = t.addr();
    wait_state(addr, "one", a.addr, "up", Duration::from_secs(3));
    wait_state(addr, "two", a.addr, "up", Duration::from_secs(3));
    let before = a.checks();
    thread::sleep(Duration::from_secs(4));
    let n = a.checks() - before;
    // 4 s at 0.45–0.5 s apart: 8 or 9 (one more at an edge).
    assert!((7..=10).contains(&n), "{n} probes in 4 s at 0.5 s");
}

/// The configuration of [`assert_reload_keeps_health_and_the_prober_follows_it`]: entry
/// `web` on `servers`, checked every 0.5 s (rise 1, fall 1), with the admin endpoint.
pub fn reload_conf(servers: &[SocketAddr]) -> String {
    let list: Vec<String> = servers.iter().map(|s| s.to_string()).collect();
    conf_with(&entry("web", "^/", &list.join(" "), &checks("0.5", 1, 1))).replace(
        "[PROXY_DEFAULTS]\n",
        "[PROXY_DEFAULTS]\n    AdminURL /proxy-admin\n",
    )
}

/// How many servers entry `web` has in the statistics now.
fn servers_of_web(addr: SocketAddr) -> usize {
    let doc = stats(addr);
    doc["entries"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == "web"))
        .and_then(|e| e["servers"].as_array())
        .map_or(0, Vec::len)
}

/// Waits (at most 5 s) until entry `web` lists `n` servers: the reload is in service.
pub fn wait_servers(addr: SocketAddr, n: usize) {
    let start = Instant::now();
    while servers_of_web(addr) != n {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no reload to {n} servers"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// A reload keeps the health of the servers that stay (a down one is not `checking` again),
/// and the prober follows the new configuration: a server the reload adds is probed and
/// comes up, one it removes is probed no more.
pub fn assert_reload_keeps_health_and_the_prober_follows_it(
    t: &dyn Reloadable,
    a: &HealthOrigin,
    b: &HealthOrigin,
    c: &HealthOrigin,
) {
    let addr = t.addr();
    wait_state(addr, "web", a.addr, "up", Duration::from_secs(3));
    b.set_health(503);
    wait_state(addr, "web", b.addr, "down", Duration::from_secs(3));
    t.reload(&reload_conf(&[a.addr, b.addr, c.addr]));
    wait_servers(addr, 3);
    let doc = stats(addr);
    assert_eq!(server_in(&doc, "web", b.addr)["state"], "down", "{doc:#}");
    assert_eq!(
        server_in(&doc, "web", b.addr)["reason"],
        "status 503",
        "{doc:#}"
    );
    assert_eq!(server_in(&doc, "web", a.addr)["state"], "up", "{doc:#}");
    wait_state(addr, "web", c.addr, "up", Duration::from_secs(3));
    let before = c.checks();
    thread::sleep(Duration::from_millis(1_200));
    assert!(c.checks() > before, "the new server is probed");
    b.set_health(200);
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(3));
    // A server the reload removes is no longer probed.
    t.reload(&reload_conf(&[a.addr]));
    wait_servers(addr, 1);
    thread::sleep(Duration::from_millis(700));
    let gone = c.checks();
    thread::sleep(Duration::from_millis(1_200));
    assert_eq!(c.checks(), gone, "a removed server is not probed");
}
