//! The admin endpoint's scenarios (#17), written once against any host that serves a
//! configuration file and can be told to reload it: the stand-in host (`tests/admin.rs`) and
//! a real Monkey (`tests/monkey_admin.rs`) run the same functions.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{read_switching_head, Client, Response};

/// The admin prefix every scenario configures.
pub const ADMIN: &str = "/proxy-admin";

/// A host serving a configuration file.
pub trait Target {
    /// Where clients connect.
    fn addr(&self) -> SocketAddr;
    /// Replaces the configuration file's text (the proxy reads it at the next reload).
    fn rewrite(&self, conf: &str);
}

/// `[PROXY_DEFAULTS]` with the admin endpoint on, then `entries`.
pub fn conf_with(entries: &str) -> String {
    format!("[PROXY_DEFAULTS]\n    AdminURL {ADMIN}\n    StatisticsURL /proxy-stats\n\n{entries}")
}

/// One entry section (round robin unless `extra`, its further key lines, says otherwise).
pub fn entry(name: &str, pattern: &str, servers: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    let balancer = if extra.contains("LoadBalancer") {
        ""
    } else {
        "    LoadBalancer RoundRobin\n"
    };
    format!(
        "[PROXY_ENTRY]\n    Name {name}\n    Match {pattern}\n    ServerList {}\n{balancer}{extra}\n",
        list.join(" ")
    )
}

/// One request on a fresh connection: `method path`, extra header lines (each ending in
/// CRLF), and a body (sent with its Content-Length whenever the method is POST, as Monkey
/// requires).
pub fn call(addr: SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> Response {
    let mut c = Client::connect(addr);
    let length = if method == "POST" || !body.is_empty() {
        format!("Content-Length: {}\r\n", body.len())
    } else {
        String::new()
    };
    c.send(
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\n{headers}{length}Connection: close\r\n\r\n{body}")
            .as_bytes(),
    );
    c.read_response(method == "HEAD")
        .unwrap_or_else(|| panic!("no response to {method} {path}"))
}

/// A change as the documentation shows it (`curl -d … -H 'X-Proxy-Admin: 1'`).
pub fn change(addr: SocketAddr, path: &str, form: &str) -> Response {
    call(
        addr,
        "POST",
        &format!("{ADMIN}{path}"),
        "X-Proxy-Admin: 1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
        form,
    )
}

/// The body as JSON.
pub fn json(r: &Response) -> Value {
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&r.body)))
}

/// `GET {ADMIN}/servers`.
pub fn servers(addr: SocketAddr) -> Value {
    let r = call(addr, "GET", &format!("{ADMIN}/servers"), "", "");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    json(&r)
}

/// Server `server` of entry `entry` in a `servers` document.
pub fn server_in<'a>(doc: &'a Value, entry: &str, server: &str) -> &'a Value {
    doc["entries"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["name"] == entry))
        .and_then(|e| e["servers"].as_array())
        .and_then(|ss| ss.iter().find(|s| s["server"] == server))
        .unwrap_or_else(|| panic!("no server {server} in entry {entry}: {doc:#}"))
}

/// `POST {ADMIN}/reload`; the answer's status and JSON.
pub fn reload(addr: SocketAddr) -> (u16, Value) {
    let r = change(addr, "/reload", "");
    (r.status, json(&r))
}

/// The body of `GET path` on a fresh connection.
pub fn answer_of(addr: SocketAddr, path: &str) -> String {
    let r = call(addr, "GET", path, "", "");
    assert_eq!(
        r.status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&r.body)
    );
    String::from_utf8_lossy(&r.body).into_owned()
}

/// How many of `n` requests for `/id` on one connection each origin answered (by name).
pub fn shares(addr: SocketAddr, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut c = Client::connect(addr);
    let mut out = std::collections::BTreeMap::new();
    for _ in 0..n {
        let r = c.get("/id");
        assert_eq!(r.status, 200);
        *out.entry(String::from_utf8_lossy(&r.body).into_owned())
            .or_insert(0) += 1;
    }
    out
}

/// `GET {ADMIN}/servers` lists every entry with its balancer and every server with its
/// health, administrative state, weight and requests in flight.
pub fn assert_servers_show_health_state_and_weight(t: &dyn Target, a: SocketAddr, b: SocketAddr) {
    let doc = servers(t.addr());
    assert_eq!(doc["entries"][0]["name"], "web", "{doc:#}");
    assert_eq!(doc["entries"][0]["balancer"], "RoundRobin");
    for s in [a, b] {
        let v = server_in(&doc, "web", &s.to_string());
        assert_eq!(v["health"], "up", "{v:#}");
        assert_eq!(v["admin"], "ready");
        assert_eq!(v["weight"], 1);
        assert_eq!(v["in_flight"], 0);
    }
    let index = call(t.addr(), "GET", ADMIN, "", "");
    assert_eq!(index.status, 200);
    assert!(json(&index)["endpoints"].to_string().contains("/reload"));
    let unknown = call(t.addr(), "GET", &format!("{ADMIN}/nothing"), "", "");
    assert_eq!(unknown.status, 404);
}

/// Changes without the custom header, as a form post, with a foreign `Origin` or
/// `Sec-Fetch-Site: cross-site`, by GET, or as a CORS preflight get 403 and change nothing.
pub fn assert_cross_site_changes_are_refused(t: &dyn Target, server: SocketAddr) {
    let path = format!("{ADMIN}/servers/web/{server}");
    let form = "Content-Type: application/x-www-form-urlencoded\r\n";
    let cases: [(&str, String, String, &str); 9] = [
        ("POST", path.clone(), String::new(), "state=drain"),
        ("POST", path.clone(), form.to_string(), "state=drain"),
        (
            "POST",
            path.clone(),
            "X-Proxy-Admin: 0\r\n".into(),
            "state=drain",
        ),
        (
            "POST",
            path.clone(),
            format!("X-Proxy-Admin: 1\r\n{form}Origin: http://evil.example\r\n"),
            "state=drain",
        ),
        (
            "POST",
            path.clone(),
            "X-Proxy-Admin: 1\r\nOrigin: null\r\n".into(),
            "state=drain",
        ),
        (
            "POST",
            path.clone(),
            "X-Proxy-Admin: 1\r\nSec-Fetch-Site: cross-site\r\n".into(),
            "state=drain",
        ),
        ("GET", format!("{path}?state=drain"), String::new(), ""),
        (
            "OPTIONS",
            path.clone(),
            "Origin: http://evil.example\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: x-proxy-admin\r\n"
                .into(),
            "",
        ),
        ("POST", format!("{ADMIN}/reload"), String::new(), ""),
    ];
    for (method, path, headers, body) in &cases {
        let r = call(t.addr(), method, path, headers, body);
        assert_eq!(
            r.status,
            403,
            "{method} {path} with {headers:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert!(
            r.header("access-control-allow-origin").is_none(),
            "no CORS grant"
        );
    }
    let v = server_in(&servers(t.addr()), "web", &server.to_string()).clone();
    assert_eq!(
        v["admin"], "ready",
        "a refused change changed the state: {v:#}"
    );
    // The same-origin request with the header works (and is undone).
    let ok = call(
        t.addr(),
        "POST",
        &path,
        &format!("X-Proxy-Admin: 1\r\n{form}Origin: http://test\r\n"),
        "state=drain",
    );
    assert_eq!(ok.status, 200, "{}", String::from_utf8_lossy(&ok.body));
    assert_eq!(
        change(t.addr(), &path[ADMIN.len()..], "state=ready").status,
        200
    );
}

/// Bad parameters and unknown servers get 400 and 404 with a reason.
pub fn assert_bad_changes_say_why(t: &dyn Target, server: SocketAddr) {
    let path = format!("/servers/web/{server}");
    for (form, status, words) in [
        ("state=off", 400, "ready, drain or maint"),
        ("weight=0", 400, "at least 1"),
        ("colour=red", 400, "unknown parameter"),
        ("", 400, "state="),
    ] {
        let r = change(t.addr(), &path, form);
        assert_eq!(r.status, status, "{form}");
        let why = json(&r)["error"].as_str().unwrap_or_default().to_string();
        assert!(why.contains(words), "{form}: {why}");
    }
    let r = change(t.addr(), "/servers/nope/1.2.3.4:5", "state=drain");
    assert_eq!(r.status, 404);
    let r = change(t.addr(), "/servers/web/127.0.0.1:1", "state=drain");
    assert_eq!(r.status, 404);
    assert!(json(&r)["error"].as_str().unwrap().contains("no server"));
}

/// Drain: a request in flight on the drained server completes; no new request reaches it
/// once the admin call returned; `ready` brings it back. The origins answer `/id` with
/// their names `a` and `b`, and `/slow` slowly.
pub fn assert_drain_finishes_in_flight_and_takes_no_new(t: &dyn Target, b: SocketAddr) {
    // Round robin sends two requests started together to the two servers.
    let slow: Vec<_> = (0..2)
        .map(|_| {
            let addr = t.addr();
            thread::spawn(move || call(addr, "GET", "/slow", "", ""))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_in(&servers(t.addr()), "web", &b.to_string())["in_flight"] == 0 {
        assert!(Instant::now() < deadline, "no slow request reached b");
        thread::sleep(Duration::from_millis(10));
    }
    let r = change(t.addr(), &format!("/servers/web/{b}"), "state=drain");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["admin"], "drain");
    let after = shares(t.addr(), 20);
    assert_eq!(
        after.get("b"),
        None,
        "the drained server got new requests: {after:?}"
    );
    for s in slow {
        let r = s.join().unwrap();
        assert_eq!(
            r.status, 200,
            "a request in flight on the drained server failed"
        );
    }
    let r = change(t.addr(), &format!("/servers/web/{b}"), "state=ready");
    assert_eq!(r.status, 200);
    // Alone, round robin alternates; under other load (wrk) the other clients' requests
    // interleave with ours, so the share is taken over up to ten samples of 20 until b has
    // a quarter of them (a server left out would have none).
    let (mut to_b, mut total) = (0, 0);
    for _ in 0..10 {
        let back = shares(t.addr(), 20);
        to_b += back.get("b").copied().unwrap_or(0);
        total += back.values().sum::<usize>();
        if to_b * 4 >= total {
            break;
        }
    }
    assert!(
        to_b * 4 >= total,
        "ready did not bring b back: {to_b} of {total}"
    );
}

/// `weight=` rebuilds the balancer: weight 3 against 1 gives about three quarters.
pub fn assert_weight_changes_the_share(t: &dyn Target, a: SocketAddr) {
    let r = change(t.addr(), &format!("/servers/web/{a}"), "weight=3");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["weight"], 3);
    let got = shares(t.addr(), 40);
    let to_a = got.get("a").copied().unwrap_or(0);
    assert!((26..=34).contains(&to_a), "weight 3:1 gave {got:?}");
    let r = change(t.addr(), &format!("/servers/web/{a}"), "weight=1");
    assert_eq!(r.status, 200);
}

/// An origin that answers an upgrade request with `101` and then echoes every byte.
pub fn upgrade_echo_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let _ = out.write_all(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n",
                );
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    if out.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A tunnel through the proxy to an [`upgrade_echo_origin`].
pub struct Tunnel {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Tunnel {
    /// Opens it with `GET path` (an entry routes `path` to the echo origin).
    pub fn open(proxy: SocketAddr, path: &str) -> Tunnel {
        let mut stream = TcpStream::connect(proxy).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
                    .as_bytes(),
            )
            .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        read_switching_head(&mut reader);
        Tunnel { stream, reader }
    }

    /// Sends `msg` and reads it back.
    pub fn echo(&mut self, msg: &str) {
        self.stream.write_all(msg.as_bytes()).unwrap();
        let mut back = vec![0u8; msg.len()];
        self.reader
            .read_exact(&mut back)
            .unwrap_or_else(|e| panic!("the tunnel no longer echoes ({e})"));
        assert_eq!(back, msg.as_bytes());
    }
}

/// Clients sending `GET path` back to back on keep-alive connections until stopped,
/// counting answers that were not 200 and connections that failed.
pub struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
    threads: Vec<thread::JoinHandle<Vec<String>>>,
}

impl Load {
    /// `clients` threads against `addr`.
    pub fn start(addr: SocketAddr, path: &str, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let bad = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, ok, bad, path) =
                    (stop.clone(), ok.clone(), bad.clone(), path.to_string());
                thread::spawn(move || {
                    let mut problems = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(120);
                    let mut c = Client::connect(addr);
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        c.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
                        match c.read_response(false) {
                            Some(r) if r.status == 200 => {
                                ok.fetch_add(1, Ordering::Relaxed);
                                // Monkey ends a connection after `MaxKeepAliveRequest`.
                                if r.header("connection")
                                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                                {
                                    c = Client::connect(addr);
                                }
                            }
                            Some(r) => {
                                bad.fetch_add(1, Ordering::Relaxed);
                                problems.push(format!(
                                    "{}: {}",
                                    r.status,
                                    String::from_utf8_lossy(&r.body)
                                ));
                                c = Client::connect(addr);
                            }
                            None => {
                                bad.fetch_add(1, Ordering::Relaxed);
                                problems.push("connection failed".into());
                                c = Client::connect(addr);
                            }
                        }
                    }
                    problems
                })
            })
            .collect();
        Load {
            stop,
            ok,
            bad,
            threads,
        }
    }

    /// Responses so far that were 200.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Stops the clients; the 200s and every problem seen.
    pub fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        let problems = self
            .threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        (self.ok.load(Ordering::Relaxed), problems)
    }
}

/// Waits until `load` has had `more` further 200s (at most 10 s).
pub fn wait_for_traffic(load: &Load, more: u64) {
    let start = load.ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while load.ok() < start + more {
        assert!(Instant::now() < deadline, "the load makes no progress");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Reloads under load with a tunnel open: add an entry, change a balancer, remove a server,
/// then a broken file. No request fails, the tunnel still echoes, new routes answer right
/// after each reload, the broken one is refused with `FILE:LINE` and the old configuration
/// serves. Origins: `a` and `b` answer `/id` with their names; `echo` upgrades.
pub fn assert_reloads_under_load_keep_everything(
    t: &dyn Target,
    a: SocketAddr,
    b: SocketAddr,
    echo: SocketAddr,
) {
    let web = |balancer: &str, servers: &[SocketAddr]| {
        entry(
            "web",
            "^/",
            servers,
            &format!("    LoadBalancer {balancer}\n"),
        )
    };
    let ws = entry("ws", "^/ws", &[echo], "");
    t.rewrite(&conf_with(&format!("{ws}{}", web("RoundRobin", &[a, b]))));
    let (status, doc) = reload(t.addr());
    assert_eq!(status, 200, "{doc:#}");
    let mut tunnel = Tunnel::open(t.addr(), "/ws");
    tunnel.echo("before\n");
    let load = Load::start(t.addr(), "/id", 8);
    wait_for_traffic(&load, 200);

    // 1. A new entry answers right after the reload that adds it.
    let only_b = entry("only-b", "^/m/b/", &[b], "");
    t.rewrite(&conf_with(&format!(
        "{ws}{only_b}{}",
        web("RoundRobin", &[a, b])
    )));
    let (status, doc) = reload(t.addr());
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(answer_of(t.addr(), "/m/b/id"), "b");
    tunnel.echo("after adding an entry\n");
    wait_for_traffic(&load, 200);

    // 2. Another balancer.
    t.rewrite(&conf_with(&format!(
        "{ws}{only_b}{}",
        web("LeastConnections", &[a, b])
    )));
    let (status, doc) = reload(t.addr());
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(
        servers(t.addr())["entries"][2]["balancer"],
        "LeastConnections"
    );
    tunnel.echo("after changing a balancer\n");
    wait_for_traffic(&load, 200);

    // 3. A server removed: nothing reaches it from then on.
    t.rewrite(&conf_with(&format!(
        "{ws}{only_b}{}",
        web("LeastConnections", &[a])
    )));
    let (status, doc) = reload(t.addr());
    assert_eq!(status, 200, "{doc:#}");
    let got = shares(t.addr(), 20);
    assert_eq!(
        got.get("a"),
        Some(&20),
        "a removed server still gets requests: {got:?}"
    );
    tunnel.echo("after removing a server\n");
    wait_for_traffic(&load, 200);

    // 4. A broken file is refused, with where and what; the old configuration serves.
    let bad = entry("bad", "^/bad", &[a], "    LoadBalancer Fastest\n");
    t.rewrite(&conf_with(&format!(
        "{ws}{only_b}{bad}{}",
        web("LeastConnections", &[a])
    )));
    let (status, doc) = reload(t.addr());
    assert_eq!(status, 400, "{doc:#}");
    assert_eq!(doc["reloaded"], false);
    let problems = doc["problems"].to_string();
    assert!(
        problems.contains(".conf:") && problems.contains("Fastest"),
        "{problems}"
    );
    assert_eq!(
        answer_of(t.addr(), "/m/b/id"),
        "b",
        "the old configuration stopped serving"
    );
    wait_for_traffic(&load, 200);
    tunnel.echo("after a refused reload\n");

    let (ok, problems) = load.finish();
    assert!(
        problems.is_empty(),
        "{} of {ok} requests failed: {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
    tunnel.echo("at the end\n");
}
