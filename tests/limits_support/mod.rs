//! Per-server limits, the queue and the retry budget (#19), written once against any host: the
//! stand-in host (`tests/limits.rs`) and a real Monkey (`tests/monkey_limits.rs`) run the same
//! scenarios, reading the proxy's side from its JSON statistics and the backends' side from
//! the origins' own counts.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{read_response, Client, Response};

/// Where every scenario's statistics are.
pub const STATS: &str = "/proxy-stats";

/// An origin that counts what it serves: requests in flight now and at most, requests in all.
/// Every request waits `delay_ms` and then gets `status` (keep-alive, a thread per
/// connection).
pub struct CountingOrigin {
    pub addr: SocketAddr,
    state: Arc<Counts>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Counts {
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    requests: AtomicU64,
    delay_ms: AtomicU64,
    status: AtomicU16,
}

impl CountingOrigin {
    /// On a free loopback port.
    pub fn start(delay: Duration, status: u16) -> CountingOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Counts::default());
        state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
        state.status.store(status, Ordering::SeqCst);
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (st, sp, op) = (state.clone(), stop.clone(), open.clone());
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if let Ok(clone) = stream.try_clone() {
                    op.lock().unwrap().push(clone);
                }
                let st = st.clone();
                thread::spawn(move || serve(stream, &st));
            }
        });
        CountingOrigin {
            addr,
            state,
            stop,
            open,
            acceptor: Some(acceptor),
        }
    }

    /// The most requests it ever had in flight at once.
    pub fn max_in_flight(&self) -> u64 {
        self.state.max_in_flight.load(Ordering::SeqCst)
    }

    /// Requests in flight now.
    pub fn in_flight(&self) -> u64 {
        self.state.in_flight.load(Ordering::SeqCst)
    }

    /// Requests received so far.
    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }
}

impl Drop for CountingOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn serve(stream: TcpStream, counts: &Counts) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(stream);
    loop {
        // The head; requests carry no body.
        let mut line = String::new();
        let mut got_any = false;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" && got_any {
                break;
            }
            got_any = true;
        }
        let now = counts.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        counts.max_in_flight.fetch_max(now, Ordering::SeqCst);
        counts.requests.fetch_add(1, Ordering::SeqCst);
        thread::sleep(Duration::from_millis(
            counts.delay_ms.load(Ordering::SeqCst),
        ));
        counts.in_flight.fetch_sub(1, Ordering::SeqCst);
        let status = counts.status.load(Ordering::SeqCst);
        let answer =
            format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok");
        if reader.get_mut().write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The entry's `queue` object and `counters` from the JSON statistics of the proxy at
/// `proxy` (the first entry).
pub fn entry_stats(proxy: SocketAddr) -> Value {
    let r = Client::connect(proxy).get(&format!("{STATS}?format=json"));
    assert_eq!(
        r.status,
        200,
        "statistics: {}",
        String::from_utf8_lossy(&r.body)
    );
    let v: Value = serde_json::from_slice(&r.body).expect("JSON statistics");
    v["entries"][0].clone()
}

/// A limited entry: `MaxConnections 4`, `QueueSize 8`, `QueueTimeout` `timeout` seconds, for
/// `server`.
pub fn limited_conf(server: SocketAddr, timeout: u32) -> String {
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS}\n\n[PROXY_ENTRY]\n    Name limited\n    \
         Match ^/\n    ServerList {server}\n    MaxConnections 4\n    QueueSize 8\n    \
         QueueTimeout {timeout}\n"
    )
}

/// An entry of three servers answering 503, retried: `RetryOn 503`, `AttemptsCount 3`.
pub fn failing_pool_conf(servers: &[SocketAddr]) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS}\n\n[PROXY_ENTRY]\n    Name pool\n    \
         Match ^/\n    ServerList {}\n    LoadBalancer RoundRobin\n    RetryOn 503\n    \
         AttemptsCount 3\n    OfflineTimeOut 0\n",
        list.join(" ")
    )
}

/// One GET on a new connection, with the time it took; `None` if the connection broke.
fn get_timed(proxy: SocketAddr, path: &str) -> (Option<Response>, Duration) {
    let began = Instant::now();
    let Ok(mut s) = TcpStream::connect(proxy) else {
        return (None, began.elapsed());
    };
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return (None, began.elapsed());
    }
    let mut reader = BufReader::new(s);
    (read_response(&mut reader, false), began.elapsed())
}

/// What [`assert_limit_queue_and_refusals`] saw.
#[derive(Debug)]
pub struct LimitFigures {
    pub ok: usize,
    pub refused: usize,
    pub slowest: Duration,
    pub max_at_origin: u64,
}

/// 20 clients at once (each its own connection) on an entry limited to 4 per server with a
/// queue of 8 and a 2 s queue timeout, in front of one server taking 1 s per request: the
/// origin never sees more than 4 at once; 4 are served at once and 8 from the queue (the
/// second second), so 12 get 200 — and, as the queue's last 4 wait past 2 s only on a slow
/// machine, at least 8; the rest get 503 with `Retry-After: 2` at once; nobody waits past
/// the queue timeout plus a request (and a margin); the statistics show the waits.
pub fn assert_limit_queue_and_refusals(proxy: SocketAddr, origin: &CountingOrigin) -> LimitFigures {
    let clients: Vec<_> = (0..20)
        .map(|_| thread::spawn(move || get_timed(proxy, "/work")))
        .collect();
    let mut figures = LimitFigures {
        ok: 0,
        refused: 0,
        slowest: Duration::ZERO,
        max_at_origin: 0,
    };
    for c in clients {
        let (r, took) = c.join().unwrap();
        let r = r.expect("every client gets an answer");
        figures.slowest = figures.slowest.max(took);
        match r.status {
            200 => figures.ok += 1,
            503 => {
                figures.refused += 1;
                assert_eq!(r.header("Retry-After"), Some("2"), "{:?}", r.headers);
            }
            other => panic!("unexpected status {other}"),
        }
    }
    figures.max_at_origin = origin.max_in_flight();
    assert!(
        figures.max_at_origin <= 4,
        "the origin saw {} at once",
        figures.max_at_origin
    );
    assert_eq!(figures.ok + figures.refused, 20);
    assert!(
        (8..=12).contains(&figures.ok),
        "4 served at once and up to 8 from the queue: {figures:?}"
    );
    assert!(figures.refused >= 8, "a full queue refuses: {figures:?}");
    // Queue timeout 2 s, plus one request of 1 s, plus a margin for a busy machine.
    assert!(
        figures.slowest < Duration::from_secs(6),
        "a client waited {:?}",
        figures.slowest
    );
    let e = entry_stats(proxy);
    let q = &e["queue"];
    assert_eq!(q["waiting"], 0, "{q}");
    assert!(q["waits"].as_u64().unwrap() >= 4, "{q}");
    assert_eq!(
        q["served"].as_u64().unwrap()
            + q["timeouts"].as_u64().unwrap()
            + q["left"].as_u64().unwrap(),
        q["waits"].as_u64().unwrap(),
        "every wait ended one way: {q}"
    );
    assert_eq!(
        q["full"].as_u64().unwrap() + q["timeouts"].as_u64().unwrap(),
        figures.refused as u64,
        "every 503 is a full queue or a wait that ran out: {q}"
    );
    assert!(q["wait_max_seconds"].as_f64().unwrap() > 0.5, "{q}");
    assert!(q["wait_max_seconds"].as_f64().unwrap() < 3.0, "{q}");
    figures
}

/// A client that leaves while it waits in the queue gives its place back: with
/// `MaxConnections 4`, `QueueSize 8`, `QueueTimeout 10` and a 2 s backend, 4 requests take
/// the slots, 8 fill the queue, one of them leaves, and a new request then gets the freed
/// place and is served after the 7 before it (first come, first served); the statistics
/// count the one that left.
pub fn assert_leaving_client_frees_its_place(proxy: SocketAddr, origin: &CountingOrigin) {
    let mut busy: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || get_timed(proxy, "/busy")))
        .collect();
    crate::common::wait_until("4 requests at the origin", || origin.in_flight() == 4);
    // Eight waiting, on keep-alive connections (one leaves).
    let mut waiting: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut s = TcpStream::connect(proxy).unwrap();
            s.write_all(b"GET /wait HTTP/1.1\r\nHost: test\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    crate::common::wait_until("8 requests in the queue", || {
        entry_stats(proxy)["queue"]["waiting"] == 8
    });
    let leaver = waiting.pop().unwrap();
    drop(leaver);
    crate::common::wait_until("the client that left is out of the queue", || {
        entry_stats(proxy)["queue"]["waiting"] == 7
    });
    // The freed place takes a new request.
    let newcomer = thread::spawn(move || get_timed(proxy, "/newcomer"));
    crate::common::wait_until("the newcomer is in the queue", || {
        entry_stats(proxy)["queue"]["waiting"] == 8
    });
    for b in busy.drain(..) {
        assert_eq!(b.join().unwrap().0.expect("answer").status, 200);
    }
    let (r, _) = newcomer.join().unwrap();
    assert_eq!(r.expect("the newcomer gets an answer").status, 200);
    for mut s in waiting {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut reader = BufReader::new(&mut s);
        let r = read_response(&mut reader, false).expect("a queued keep-alive client's answer");
        assert_eq!(r.status, 200);
    }
    let q = &entry_stats(proxy)["queue"];
    assert_eq!(q["left"], 1, "{q}");
    assert_eq!(q["full"], 0, "no request met a full queue: {q}");
    assert_eq!(q["timeouts"], 0, "{q}");
    assert_eq!(q["waiting"], 0, "{q}");
    assert!(origin.max_in_flight() <= 4);
}

/// Queued keep-alive clients get their answers and then their connection's next request
/// served: 6 clients on keep-alive connections, 3 requests each, against `MaxConnections 4`,
/// `QueueTimeout 10` and a 1 s backend (queue of 8: no refusal).
pub fn assert_keep_alive_clients_queue(proxy: SocketAddr, origin: &CountingOrigin) {
    let clients: Vec<_> = (0..6)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(proxy);
                (0..3).map(|_| c.get("/ka").status).collect::<Vec<u16>>()
            })
        })
        .collect();
    for c in clients {
        let statuses = c.join().unwrap();
        assert_eq!(statuses, [200, 200, 200]);
    }
    assert!(origin.max_in_flight() <= 4, "{}", origin.max_in_flight());
    let q = &entry_stats(proxy)["queue"];
    assert!(
        q["waits"].as_u64().unwrap() >= 2,
        "6 clients over 4 slots wait: {q}"
    );
    assert_eq!(q["full"], 0, "{q}");
}

/// Sequential clients against a pool whose every server answers 503, retried on 503 with
/// `AttemptsCount 3`: each request is tried on all three (the budget's floor of 3 retrying
/// requests always allows one client's retries), and the client gets the 503.
pub fn assert_sequential_retries_within_the_floor(proxy: SocketAddr, origins: &[CountingOrigin]) {
    let before: u64 = origins.iter().map(CountingOrigin::requests).sum();
    let mut c = Client::connect(proxy);
    for _ in 0..10 {
        assert_eq!(c.get("/x").status, 503);
    }
    let after: u64 = origins.iter().map(CountingOrigin::requests).sum();
    assert_eq!(after - before, 30, "3 tries for each of 10 requests");
    let e = entry_stats(proxy);
    let c = &e["counters"];
    assert!(c["retries"].as_u64().unwrap() >= 20, "retries counted: {c}");
    assert!(c["failovers"].as_u64().unwrap() >= 20, "{c}");
    assert_eq!(e["queue"]["retries_refused"], 0, "{}", e["queue"]);
}

/// `clients` threads, each sending requests one after another for `secs` seconds on its own
/// keep-alive connection; returns how many requests they sent.
pub fn hammer(proxy: SocketAddr, clients: usize, secs: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(proxy);
                let mut n = 0u64;
                while Instant::now() < until && n < 100_000 {
                    c.send(b"GET /x HTTP/1.1\r\nHost: test\r\n\r\n");
                    match c.read_response(false) {
                        Some(r) => assert_eq!(r.status, 503),
                        None => break,
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).sum()
}

/// Under concurrent load (`sent` requests by the clients), the pool received at most 1.2 ×
/// the requests, and the statistics counted the retries the budget refused.
pub fn assert_budget_held(proxy: SocketAddr, origins: &[CountingOrigin], sent: u64) -> f64 {
    let received: u64 = origins.iter().map(CountingOrigin::requests).sum();
    let ratio = received as f64 / sent as f64;
    assert!(sent > 100, "too little load to judge: {sent}");
    assert!(
        ratio <= 1.2,
        "the pool received {received} for {sent} requests ({ratio:.3} x)"
    );
    let e = entry_stats(proxy);
    assert!(
        e["queue"]["retries_refused"].as_u64().unwrap() > 0,
        "the budget refused retries: {}",
        e["queue"]
    );
    ratio
}

/// Reads the rest of a response on `s`, for a test that must drain a connection.
pub fn drain(s: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
}

/// A client that leaves while its request is at a limited server does not free the server's
/// slot before the server is done with the request: 4 requests take the 4 slots of a 1 s
/// backend and their clients leave at once; 4 more then wait in the queue until the
/// backend answered the abandoned ones, so it never works on more than 4.
pub fn assert_abandoned_requests_keep_their_slots(proxy: SocketAddr, origin: &CountingOrigin) {
    let leavers: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(proxy).unwrap();
            s.write_all(b"GET /abandoned HTTP/1.1\r\nHost: test\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    crate::common::wait_until("4 requests at the origin", || origin.in_flight() == 4);
    drop(leavers);
    let next: Vec<_> = (0..4)
        .map(|_| thread::spawn(move || get_timed(proxy, "/next")))
        .collect();
    for n in next {
        let (r, _) = n.join().unwrap();
        assert_eq!(r.expect("an answer").status, 200);
    }
    assert!(origin.max_in_flight() <= 4, "{}", origin.max_in_flight());
    let e = entry_stats(proxy);
    let q = &e["queue"];
    assert!(
        q["waits"].as_u64().unwrap() >= 4,
        "the newcomers waited: {q}"
    );
    assert!(q["wait_max_seconds"].as_f64().unwrap() > 0.2, "{q}");
    assert_eq!(
        e["counters"]["failures"]["client_abort"], 4,
        "{}",
        e["counters"]
    );
}

/// An entry with one slot (`MaxConnections 1`, `QueueSize 8`, `QueueTimeout 10`) for `server`.
pub fn one_slot_conf(server: SocketAddr) -> String {
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS}\n\n[PROXY_ENTRY]\n    Name one\n    \
         Match ^/\n    ServerList {server}\n    MaxConnections 1\n    QueueSize 8\n    \
         QueueTimeout 10\n"
    )
}

/// How long a freed slot takes to reach a waiter: 4 keep-alive clients send 5 requests each
/// through one slot to a backend taking 100 ms; the backend then works 2 s in all, and the
/// rest of the elapsed time, per request, is the hand-over (the slot going back, the waiter
/// woken — on another worker, when the host has several — and its request reaching the
/// backend). Returns that mean hand-over; asserts only that every request was served with
/// the slot held by one at a time.
pub fn measure_hand_over(proxy: SocketAddr, origin: &CountingOrigin) -> Duration {
    let began = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(move || {
                let mut c = Client::connect(proxy);
                (0..5).map(|_| c.get("/h").status).collect::<Vec<u16>>()
            })
        })
        .collect();
    for c in clients {
        assert_eq!(c.join().unwrap(), [200; 5]);
    }
    let elapsed = began.elapsed();
    assert_eq!(origin.max_in_flight(), 1);
    let busy = Duration::from_millis(100) * 20;
    elapsed.saturating_sub(busy) / 20
}

/// An entry of `servers` retrying what `retry_on` says, `AttemptsCount 3`, round robin.
pub fn retry_conf(servers: &[SocketAddr], retry_on: &str) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS}\n\n[PROXY_ENTRY]\n    Name pool\n    \
         Match ^/\n    ServerList {}\n    LoadBalancer RoundRobin\n    {retry_on}\n    \
         AttemptsCount 3\n    OfflineTimeOut 0\n",
        list.join(" ")
    )
}

/// What is retried on a status and what is not: with a server answering 503 and one
/// answering 200 and `RetryOn 503`, every GET gets 200 (the 503 is thrown away and the other
/// server asked); a POST is not retried (its 503 reaches the client); without 503 in
/// `RetryOn` (the default) a GET's 503 reaches the client too.
pub fn assert_status_retries_only_where_allowed(
    proxy_with_503: SocketAddr,
    proxy_default: SocketAddr,
    bad: &CountingOrigin,
    good: &CountingOrigin,
) {
    let mut c = Client::connect(proxy_with_503);
    for _ in 0..10 {
        assert_eq!(
            c.get("/x").status,
            200,
            "the 503 is retried on the other server"
        );
    }
    assert!(
        bad.requests() >= 5,
        "round robin asked the failing server too"
    );
    let bad_before = bad.requests();
    let good_before = good.requests();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        c.send(b"POST /x HTTP/1.1\r\nHost: test\r\nContent-Length: 1\r\n\r\nx");
        statuses.push(c.read_response(false).expect("answer").status);
    }
    let posts = (bad.requests() - bad_before) + (good.requests() - good_before);
    assert_eq!(posts, 10, "a POST is never sent twice: {statuses:?}");
    assert!(statuses.contains(&503), "{statuses:?}");
    let mut d = Client::connect(proxy_default);
    let before = bad.requests() + good.requests();
    let got: Vec<u16> = (0..10).map(|_| d.get("/x").status).collect();
    assert_eq!(bad.requests() + good.requests() - before, 10, "{got:?}");
    assert!(got.contains(&503), "the default retries no status: {got:?}");
}
