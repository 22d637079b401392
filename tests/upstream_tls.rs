//! TLS to backends through the stand-in host (the same relay Monkey runs): an HTTPS origin
//! made at test time (rustls, a CA from rcgen) behind `ServerList https://…`. Exact bodies,
//! a POST body, keep-alive reuse and session resumption, the certificate failures (502 with
//! the reason in the log and the statistics, counted against the server), verification off,
//! a client certificate, and a handshake that never completes (504 at `ConnectTimeout`).

mod common;
mod upstream_tls_support;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use common::*;
use proxy_reverse::host::Host;
use proxy_reverse::log;
use upstream_tls_support::*;

/// Every line the core logged in this test binary.
fn logged() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let lines = LINES.get_or_init(Mutex::default);
    static SINK: OnceLock<()> = OnceLock::new();
    SINK.get_or_init(|| {
        log::set_sink(|level, line| {
            logged().lock().unwrap().push(format!("{level:?} {line}"));
        })
    });
    lines
}

/// The log lines that mention `what` (once every line queued so far reached the sink).
fn lines_about(what: &str) -> Vec<String> {
    log::flush(std::time::Duration::from_secs(10));
    let all = logged().lock().unwrap();
    all.iter().filter(|l| l.contains(what)).cloned().collect()
}

/// `text` as the log lines escape it (`"` is `\x22`).
fn escaped(text: &str) -> String {
    text.replace('"', "\\x22")
}

/// A CA, a directory holding its PEM, and a good certificate it signed.
fn pki() -> (Ca, TempDir, Issued) {
    let ca = Ca::new("proxy test CA");
    let dir = TempDir::new("standin");
    dir.write("ca.pem", &ca.pem());
    let good = ca.issue(Kind::Good);
    (ca, dir, good)
}

fn ca_line(dir: &TempDir) -> String {
    format!(
        "    UpstreamCaFile {}\n",
        dir.path().join("ca.pem").display()
    )
}

fn json_stats(host: &Host) -> serde_json::Value {
    let mut c = Client::connect(host.addr());
    let r = c.get("/proxy-stats?format=json");
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
fn exact_bodies_and_a_post_reach_the_client_through_an_https_origin_on_one_connection() {
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let host = host_from_conf(&conf_https(origin.addr, &ca_line(&dir)));
    let mut c = Client::connect(host.addr());
    for n in [1024usize, 10 * 1024 * 1024, 0, 1024] {
        let r = c.get(&format!("/stream/{n}"));
        assert_eq!(r.status, 200, "size {n}");
        assert_eq!(r.body.len(), n);
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    let body = body_of(300_000);
    c.send(&post_echo(&body));
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == body, "the POST body came back different");
    // The Host header is the client's, as for plain backends.
    let head = String::from_utf8(c.get("/headers").body).unwrap();
    assert!(head.contains("Host: test\r\n"), "{head}");
    // One backend connection, one handshake, for all of it.
    assert_eq!(origin.conns.load(std::sync::atomic::Ordering::SeqCst), 1);
    let s = host.proxy().stats.server(0, 0).counters.snapshot();
    assert_eq!((s.connections_opened, s.tls_handshakes), (1, 1), "{s:?}");
    assert_eq!(s.connections_reused, 5);
}

#[test]
fn keep_alive_reuses_tls_connections_and_new_ones_resume_the_session() {
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let host = host_from_conf(&conf_https(origin.addr, &ca_line(&dir)));
    // Sequential requests from several clients: one backend connection carries them.
    for _ in 0..10 {
        let mut c = Client::connect(host.addr());
        for _ in 0..10 {
            assert_eq!(c.get("/size/1024").body, body_of(1024));
        }
    }
    let s = host.proxy().stats.server(0, 0).counters.snapshot();
    assert_eq!(s.requests, 100);
    assert!(s.connections_opened <= 2, "{s:?}");
    assert_eq!(s.connections_opened + s.connections_reused, 100);
    // Bursts of concurrent requests need more connections: those after the first resume.
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = host.addr();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                for _ in 0..20 {
                    assert_eq!(c.get("/size/20000").body, body_of(20000));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = host.proxy().stats.server(0, 0).counters.snapshot();
    assert_eq!(s.requests, 260);
    assert!(s.connections_opened < 20, "{s:?}");
    let seen = origin.handshakes.load(std::sync::atomic::Ordering::SeqCst) as u64;
    let resumed = origin.resumed.load(std::sync::atomic::Ordering::SeqCst) as u64;
    assert_eq!(s.tls_handshakes, seen, "{s:?}");
    assert_eq!(s.tls_resumed, resumed, "{s:?}");
    assert_eq!(s.tls_handshakes, s.connections_opened);
    // The JSON and Prometheus pages show the same figures.
    let json = json_stats(&host);
    let server = &json["entries"][0]["servers"][0];
    assert_eq!(server["counters"]["tls_handshakes"], s.tls_handshakes);
    assert_eq!(server["last_tls_failure"], "");
    let mut c = Client::connect(host.addr());
    let prom = String::from_utf8(c.get("/proxy-stats?format=prometheus").body).unwrap();
    assert!(prom.contains("tls_handshakes_total{"), "{prom}");
    assert!(prom.contains("tls_resumed_handshakes_total{"), "{prom}");
}

#[test]
fn connections_that_are_not_kept_resume_their_sessions() {
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let conf = conf_https(
        origin.addr,
        &format!("{}    UpstreamKeepAlive 0\n", ca_line(&dir)),
    );
    let host = host_from_conf(&conf);
    for _ in 0..6 {
        let mut c = Client::connect(host.addr());
        assert_eq!(c.get("/size/100").body, body_of(100));
    }
    let s = host.proxy().stats.server(0, 0).counters.snapshot();
    assert_eq!((s.connections_opened, s.tls_handshakes), (6, 6), "{s:?}");
    assert!(
        s.tls_resumed >= 5,
        "every handshake after the first resumes: {s:?}"
    );
    let resumed = origin.resumed.load(std::sync::atomic::Ordering::SeqCst) as u64;
    assert_eq!(s.tls_resumed, resumed);
}

/// A certificate the proxy must refuse: 502, the reason (`expect`, in rustls's words) in the
/// request's failure line and the statistics, a TLS failure counted against the server.
fn assert_refused(cert: &Issued, ca_dir: &TempDir, extra: &str, expect: &str) {
    logged();
    let origin = TlsOrigin::start(server_config(cert, None));
    let conf = conf_https(origin.addr, &format!("{}{extra}", ca_line(ca_dir)));
    let host = host_from_conf(&conf);
    let mut c = Client::connect(host.addr());
    let r = c.get("/size/10");
    assert_eq!(r.status, 502, "{expect}");
    assert_eq!(origin.requests.load(std::sync::atomic::Ordering::SeqCst), 0);
    let name = origin.addr.to_string();
    // The line is written as the exchange ends, just after the client got its answer.
    let reason = format!("reason=\"invalid peer certificate: {}", escaped(expect));
    let found = |lines: &[String]| {
        lines.iter().any(|l| {
            l.contains("failed request status=502 what=tls_handshake") && l.contains(&reason)
        })
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut lines = lines_about(&format!("server={name} "));
    while !found(&lines) && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(10));
        lines = lines_about(&format!("server={name} "));
    }
    assert!(
        found(&lines),
        "no failure line naming {expect:?} for {name}: {lines:?}"
    );
    let json = json_stats(&host);
    let server = &json["entries"][0]["servers"][0];
    assert_eq!(
        server["counters"]["failures"]["tls_handshake"], 1,
        "{server}"
    );
    assert_eq!(server["counters"]["tls_handshakes"], 0, "{server}");
    let why = server["last_tls_failure"].as_str().unwrap();
    assert!(why.contains(expect), "{why}");
    // A server failure: the health record counts it.
    let health = host.proxy().upstreams[0].servers()[0].health.snapshot();
    assert_eq!(health.consecutive_failures, 1);
    // The HTML page says it too.
    let html = String::from_utf8(c.get("/proxy-stats").body).unwrap();
    assert!(html.contains("last TLS failure"), "{html}");
}

#[test]
fn a_certificate_for_another_name_is_refused_with_502_and_the_reason_logged() {
    let (ca, dir, _) = pki();
    let expect = "certificate not valid for name \"127.0.0.1\"";
    assert_refused(&ca.issue(Kind::WrongName), &dir, "", expect);
}

#[test]
fn a_tls_name_the_certificate_does_not_carry_is_refused() {
    let (_ca, dir, good) = pki();
    assert_refused(
        &good,
        &dir,
        "    UpstreamTlsName elsewhere.example\n",
        "certificate not valid for name \"elsewhere.example\"",
    );
}

#[test]
fn a_certificate_from_an_unknown_authority_is_refused() {
    let (_ca, dir, _) = pki();
    let other = Ca::new("someone else");
    assert_refused(&other.issue(Kind::Good), &dir, "", "UnknownIssuer");
}

#[test]
fn an_expired_certificate_is_refused() {
    let (ca, dir, _) = pki();
    assert_refused(&ca.issue(Kind::Expired), &dir, "", "certificate expired");
}

#[test]
fn with_verification_off_any_certificate_is_accepted_and_a_warning_says_so() {
    let other = Ca::new("someone else");
    let origin = TlsOrigin::start(server_config(&other.issue(Kind::WrongName), None));
    let conf = conf_https(origin.addr, "    UpstreamTlsVerify off\n");
    let no_dns = |host: &str, _: u16| Err(format!("no DNS ({host})"));
    let config = proxy_reverse::config::parse_str(&conf, "t.conf".as_ref(), &no_dns).unwrap();
    let warnings: Vec<String> = config.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        warnings,
        [
            "t.conf:4: warning: UpstreamTlsVerify off: the certificates of this entry's 1 TLS \
          server are not verified, so anyone on the path can pose as it"
        ]
    );
    let host = host_from_conf(&conf);
    let mut c = Client::connect(host.addr());
    assert_eq!(c.get("/size/5000").body, body_of(5000));
}

#[test]
fn a_client_certificate_is_presented_when_configured() {
    let (ca, dir, good) = pki();
    let client = ca.issue(Kind::Client);
    let cert = dir.write("client.pem", &client.cert_pem);
    let key = dir.write("client.key", &client.key_pem);
    let origin = TlsOrigin::start(server_config(&good, Some(&ca)));
    // Without one: the origin asks, nothing is presented.
    let host = host_from_conf(&conf_https(origin.addr, &ca_line(&dir)));
    assert_eq!(Client::connect(host.addr()).get("/size/1").status, 200);
    assert_eq!(
        origin
            .client_certs
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    drop(host);
    let extra = format!(
        "{}    UpstreamCertFile {}\n    UpstreamKeyFile {}\n",
        ca_line(&dir),
        cert.display(),
        key.display()
    );
    let host = host_from_conf(&conf_https(origin.addr, &extra));
    assert_eq!(Client::connect(host.addr()).get("/size/1").status, 200);
    assert_eq!(
        origin
            .client_certs
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn upstream_tls_on_makes_every_server_of_the_entry_speak_tls() {
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let conf = format!(
        "[PROXY_ENTRY]\n    Match ^/\n    ServerList {}\n    UpstreamTls on\n{}",
        origin.addr,
        ca_line(&dir)
    );
    let host = host_from_conf(&conf);
    assert_eq!(
        Client::connect(host.addr()).get("/size/2048").body,
        body_of(2048)
    );
    assert_eq!(
        origin.handshakes.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

#[test]
fn a_handshake_that_never_completes_times_out_at_connect_timeout() {
    // A server that accepts and never speaks: the TCP connect completes, the handshake not.
    let (addr, _listener) = silent_backend();
    let dir = TempDir::new("silent");
    dir.write("ca.pem", &Ca::new("x").pem());
    let conf = conf_https(addr, &format!("{}    ConnectTimeout 0.3\n", ca_line(&dir)));
    let host = host_from_conf(&conf);
    let started = std::time::Instant::now();
    let r = Client::connect(host.addr()).get("/size/1");
    assert_eq!(r.status, 504);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let s = host.proxy().stats.server(0, 0).counters.snapshot();
    assert_eq!(s.failures.connect_timeout, 1, "{s:?}");
}

#[test]
fn a_reload_builds_new_tls_settings_and_a_server_changing_scheme_gets_no_old_connection() {
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let plain = Origin::start("plain");
    let file = dir.path().join("proxy_reverse.conf");
    let write = |entry: &str| {
        let text = format!(
            "[PROXY_DEFAULTS]\n    StatisticsURL /proxy-stats\n    AdminURL /proxy-admin\n\n\
             [PROXY_ENTRY]\n    Match ^/\n{entry}"
        );
        std::fs::write(&file, text).unwrap();
    };
    write(&format!(
        "    ServerList https://{}\n{}",
        origin.addr,
        ca_line(&dir)
    ));
    let host = Host::start_from_file(&file).unwrap();
    let mut c = Client::connect(host.addr());
    assert_eq!(c.get("/size/10").status, 200);
    // Another CA file: the new configuration no longer trusts the origin.
    dir.write("other.pem", &Ca::new("not the origin's").pem());
    write(&format!(
        "    ServerList https://{}\n    UpstreamCaFile {}\n    UpstreamKeepAlive 0\n",
        origin.addr,
        dir.path().join("other.pem").display()
    ));
    let r = c.get_admin_reload();
    assert_eq!(r, 200);
    assert_eq!(Client::connect(host.addr()).get("/size/10").status, 502);
    // Back to the right CA, and a plain server: each works.
    write(&format!(
        "    ServerList https://{} {}\n{}    LoadBalancer RoundRobin\n",
        origin.addr,
        plain.addr,
        ca_line(&dir)
    ));
    assert_eq!(c.get_admin_reload(), 200);
    for _ in 0..4 {
        assert_eq!(Client::connect(host.addr()).get("/size/10").status, 200);
    }
    // The plain server alone (an idle connection to it is pooled), then the same address
    // written https://: its idle plain connection must not carry the next request.
    write(&format!(
        "    ServerList {}
",
        plain.addr
    ));
    assert_eq!(c.get_admin_reload(), 200);
    assert_eq!(Client::connect(host.addr()).get("/size/10").status, 200);
    write(&format!(
        "    ServerList https://{}
{}",
        plain.addr,
        ca_line(&dir)
    ));
    assert_eq!(c.get_admin_reload(), 200);
    assert_eq!(Client::connect(host.addr()).get("/size/10").status, 502);
}

/// `POST /proxy-admin/reload` on this connection; its status.
trait AdminReload {
    fn get_admin_reload(&mut self) -> u16;
}

impl AdminReload for Client {
    fn get_admin_reload(&mut self) -> u16 {
        self.send(
            b"POST /proxy-admin/reload HTTP/1.1\r\nHost: test\r\nX-Proxy-Admin: 1\r\n\
              Content-Length: 0\r\n\r\n",
        );
        self.read_response(false).unwrap().status
    }
}

#[test]
fn a_tunnel_to_an_https_backend_echoes_large_messages_both_ways() {
    use std::io::Read;
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let host = host_from_conf(&conf_https(origin.addr, &ca_line(&dir)));
    let mut c = Client::connect(host.addr());
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly\n");
    read_switching_head(&mut c.reader);
    let mut early = [0u8; 6];
    c.reader.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early\n");
    // Messages larger than the TLS send buffer and the socket buffers: written whole by the
    // client before it reads, so both directions fill up.
    for round in 0..4 {
        let msg = body_of(700_000 + round);
        let writer = {
            let mut s = c.reader.get_ref().try_clone().unwrap();
            let msg = msg.clone();
            std::thread::spawn(move || std::io::Write::write_all(&mut s, &msg).unwrap())
        };
        let mut back = vec![0u8; msg.len()];
        c.reader.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == msg, "round {round}: the echo differs");
    }
}

/// Waits (at most 10 s) until the only server's JSON state is `state`; returns its JSON.
fn wait_for_state(host: &Host, state: &str) -> serde_json::Value {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let doc = json_stats(host);
        let server = doc["entries"][0]["servers"][0].clone();
        if server["state"] == state {
            return server;
        }
        assert!(
            std::time::Instant::now() < until,
            "not {state} within 10 s: {server:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Active checks reach an `https://` server over TLS with the entry's settings: a good
/// server is `up` from its probes alone (a plaintext probe would fail its handshake), and
/// one whose certificate the entry cannot verify is `down` with the reason.
#[test]
fn health_checks_probe_an_https_server_over_tls_with_the_entry_s_settings() {
    let (_ca, dir, good) = pki();
    let origin = TlsOrigin::start(server_config(&good, None));
    let checks = "    HealthCheck GET /headers\n    HealthCheckInterval 0.2\n    \
                  HealthCheckRise 1\n    HealthCheckFall 1\n";
    let host = host_from_conf(&conf_https(
        origin.addr,
        &format!("{}{checks}", ca_line(&dir)),
    ));
    let server = wait_for_state(&host, "up");
    assert_eq!(server["check"]["last"]["result"], "pass", "{server:#}");
    assert!(
        origin.requests.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "no probe reached the origin as a request"
    );
    drop(host);

    let other = TempDir::new("other-ca");
    other.write("ca.pem", &Ca::new("another CA").pem());
    let host = host_from_conf(&conf_https(
        origin.addr,
        &format!("{}{checks}", ca_line(&other)),
    ));
    let server = wait_for_state(&host, "down");
    assert_eq!(server["reason"], "TLS handshake failed", "{server:#}");
}
