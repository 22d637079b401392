//! HTTPS backends through a real Monkey: nginx as the origin, serving certificates signed by
//! a CA made at test time (good, for another name, expired, or from another CA), behind
//! `ServerList https://…`. Exact bodies, a POST body (nginx passes it on to a plain origin),
//! keep-alive reuse with few backend connections, resumed handshakes, 502 with the reason in
//! Monkey's log for each certificate failure, verification off, a client certificate.

mod common;
mod e2e;
mod tls_support;
mod upstream_tls_support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use e2e::Monkey;
use upstream_tls_support::{Ca, Issued, Kind, TempDir};

const NGINX: &str = "/usr/sbin/nginx";

/// A port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nginx serving HTTPS on 127.0.0.1 with one certificate: `/f/N` are files of N pattern
/// bytes, `/echo` goes to a plain origin (for request bodies); every response says which
/// connection carried it (`X-Conn`), whether its TLS session was resumed (`X-Reused`) and
/// whether a client certificate verified (`X-Client-Verify`). Stopped on drop.
struct Nginx {
    child: Child,
    addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    fn start(ca: &Ca, cert: &Issued, echo: SocketAddr, sizes: &[usize]) -> Nginx {
        let dir = TempDir::new("nginx");
        let d = dir.path().to_path_buf();
        std::fs::create_dir_all(d.join("www/f")).unwrap();
        for &n in sizes {
            std::fs::write(d.join(format!("www/f/{n}")), body_of(n)).unwrap();
        }
        dir.write("server.pem", &cert.cert_pem);
        dir.write("server.key", &cert.key_pem);
        dir.write("clients.pem", &ca.pem());
        let port = free_port();
        let d = d.display();
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n\
             proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n\
             scgi_temp_path {d}/tmp;\n  keepalive_requests 100000;\n  keepalive_timeout 60s;\n\
             server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {d}/server.pem;\n\
             ssl_certificate_key {d}/server.key;\n    ssl_session_cache shared:S:1m;\n\
             ssl_verify_client optional;\n    ssl_client_certificate {d}/clients.pem;\n\
             add_header X-Conn $connection always;\n\
             add_header X-Reused $ssl_session_reused always;\n\
             add_header X-Client-Verify $ssl_client_verify always;\n\
             location /f/ {{ root {d}/www; }}\n\
             location /echo {{ proxy_pass http://{echo}; }}\n  }}\n}}\n"
        );
        let path = dir.write("nginx.conf", &conf);
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let until = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < until,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { child, addr, dir }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT is nginx's graceful stop; the master waits for its worker.
        let _ = Command::new("kill")
            .arg("-QUIT")
            .arg(self.child.id().to_string())
            .status();
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The plugin's configuration for one HTTPS server, trusting the CA in `ca_pem`.
fn plugin_conf(addr: SocketAddr, ca_pem: &Path, extra: &str) -> String {
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL /proxy-stats\n\n[PROXY_ENTRY]\n    Match ^/\n    \
         ServerList https://{addr}\n    UpstreamCaFile {}\n{extra}",
        ca_pem.display()
    )
}

/// Monkey's log once it contains `what` (at most 5 s: the logger may lag).
fn log_with(monkey: &Monkey, what: &str) -> String {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let log = monkey.log();
        if log.contains(what) || Instant::now() > until {
            return log;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stats(monkey: &Monkey) -> serde_json::Value {
    let r = Client::connect(monkey.addr()).get("/proxy-stats?format=json");
    assert_eq!(r.status, 200);
    serde_json::from_slice(&r.body).unwrap()
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn exact_bodies_a_post_and_keep_alive_through_an_nginx_https_origin() {
    let ca = Ca::new("monkey test CA");
    let echo = Origin::start("echo");
    let sizes = [1024, 10 * 1024 * 1024];
    let nginx = Nginx::start(&ca, &ca.issue(Kind::Good), echo.addr, &sizes);
    let ca_pem = nginx.dir.write("ca.pem", &ca.pem());
    let mut monkey = Monkey::start(&plugin_conf(nginx.addr, &ca_pem, ""));
    let mut c = Client::connect(monkey.addr());
    let mut conns = std::collections::HashSet::new();
    for round in 0..3 {
        for n in sizes {
            let r = c.get(&format!("/f/{n}"));
            assert_eq!(r.status, 200, "round {round}, {n} bytes");
            assert!(r.body == body_of(n), "body of {n} bytes differs");
            conns.insert(r.header("x-conn").unwrap().to_string());
        }
    }
    // (Monkey 1.8.9 takes request bodies up to its own limit: 32 KiB by default.)
    let body = body_of(12_000);
    c.send(&post_echo(&body));
    let r = c.read_response(false).unwrap();
    assert_eq!(r.status, 200);
    assert!(r.body == body, "the POST body came back different");
    // Many requests, over many client connections, on few backend connections.
    for _ in 0..20 {
        let mut c = Client::connect(monkey.addr());
        for _ in 0..5 {
            let r = c.get("/f/1024");
            assert_eq!(r.status, 200);
            conns.insert(r.header("x-conn").unwrap().to_string());
        }
    }
    assert!(
        conns.len() <= 4,
        "107 requests took {} connections",
        conns.len()
    );
    let json = stats(&monkey);
    let server = &json["entries"][0]["servers"][0]["counters"];
    assert_eq!(server["requests"], 107, "{server}");
    let opened = server["connections_opened"].as_u64().unwrap();
    assert_eq!(
        server["tls_handshakes"].as_u64().unwrap(),
        opened,
        "{server}"
    );
    assert!(opened <= 4, "{server}");
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn new_connections_resume_their_tls_sessions() {
    let ca = Ca::new("monkey test CA");
    let echo = Origin::start("echo");
    let nginx = Nginx::start(&ca, &ca.issue(Kind::Good), echo.addr, &[100]);
    let ca_pem = nginx.dir.write("ca.pem", &ca.pem());
    let conf = plugin_conf(nginx.addr, &ca_pem, "    UpstreamKeepAlive 0\n");
    let mut monkey = Monkey::start(&conf);
    let mut reused = 0;
    for _ in 0..10 {
        let r = Client::connect(monkey.addr()).get("/f/100");
        assert_eq!(r.status, 200);
        reused += usize::from(r.header("x-reused") == Some("r"));
    }
    // Monkey's workers share one session cache: every connection after the first resumes.
    assert!(reused >= 9, "nginx saw {reused} of 10 sessions resumed");
    let json = stats(&monkey);
    let server = &json["entries"][0]["servers"][0]["counters"];
    assert_eq!(server["tls_handshakes"], 10, "{server}");
    assert_eq!(
        server["tls_resumed"].as_u64().unwrap(),
        reused as u64,
        "{server}"
    );
    monkey.assert_alive();
}

/// nginx serves `cert`; the plugin (trusting `ca`, with `extra` keys) must refuse it: 502,
/// Monkey's log names the reason, the statistics count it.
fn assert_refused(ca: &Ca, cert: &Issued, extra: &str, expect: &str) {
    let echo = Origin::start("echo");
    let nginx = Nginx::start(ca, cert, echo.addr, &[10]);
    let ca_pem = nginx.dir.write("ca.pem", &ca.pem());
    // High availability off: every request tries the server (none is answered 503).
    let extra = format!("    OfflineTimeOut 0\n{extra}");
    let mut monkey = Monkey::start(&plugin_conf(nginx.addr, &ca_pem, &extra));
    let fds = monkey.fd_count();
    let r = Client::connect(monkey.addr()).get("/f/10");
    assert_eq!(r.status, 502, "{expect}");
    let log = log_with(&monkey, "what=tls_handshake");
    let line = log
        .lines()
        .find(|l| l.contains("failed request status=502 what=tls_handshake"))
        .unwrap_or_else(|| panic!("no TLS failure in the log:\n{log}"));
    assert!(line.contains(&format!("server={} ", nginx.addr)), "{line}");
    let reason = format!(
        "reason=\"invalid peer certificate: {}",
        expect.replace('"', "\\x22")
    );
    assert!(line.contains(&reason), "{line} does not say {reason:?}");
    let json = stats(&monkey);
    let server = &json["entries"][0]["servers"][0];
    assert_eq!(
        server["counters"]["failures"]["tls_handshake"], 1,
        "{server}"
    );
    assert!(server["last_tls_failure"]
        .as_str()
        .unwrap()
        .contains(expect));
    // Every failed handshake's socket is closed: descriptors come back.
    for _ in 0..30 {
        assert_eq!(Client::connect(monkey.addr()).get("/f/10").status, 502);
    }
    let left = monkey.wait_fds_at_most(fds + 1, Duration::from_secs(10));
    assert!(
        left <= fds + 1,
        "{left} descriptors open, {fds} before: {:#?}",
        monkey.fd_targets()
    );
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_certificate_for_another_name_gives_502_and_a_log_line() {
    let ca = Ca::new("monkey test CA");
    assert_refused(
        &ca,
        &ca.issue(Kind::WrongName),
        "",
        "certificate not valid for name \"127.0.0.1\"",
    );
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_certificate_from_an_unknown_ca_gives_502_and_a_log_line() {
    let ca = Ca::new("monkey test CA");
    let other = Ca::new("another CA");
    let cert = other.issue(Kind::Good);
    assert_refused(&ca, &cert, "", "UnknownIssuer");
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn an_expired_certificate_gives_502_and_a_log_line() {
    let ca = Ca::new("monkey test CA");
    assert_refused(&ca, &ca.issue(Kind::Expired), "", "certificate expired");
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn verification_off_reaches_a_server_no_ca_vouches_for_and_warns_at_start() {
    let ca = Ca::new("monkey test CA");
    let other = Ca::new("another CA");
    let echo = Origin::start("echo");
    let nginx = Nginx::start(&ca, &other.issue(Kind::WrongName), echo.addr, &[5000]);
    let ca_pem = nginx.dir.write("ca.pem", &ca.pem());
    let conf = plugin_conf(nginx.addr, &ca_pem, "    UpstreamTlsVerify off\n");
    let mut monkey = Monkey::start(&conf);
    let r = Client::connect(monkey.addr()).get("/f/5000");
    assert_eq!(r.status, 200);
    assert!(r.body == body_of(5000));
    let log = log_with(&monkey, "UpstreamTlsVerify off");
    assert!(log.contains("are not verified"), "{log}");
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_client_certificate_is_presented_to_nginx() {
    let ca = Ca::new("monkey test CA");
    let echo = Origin::start("echo");
    let nginx = Nginx::start(&ca, &ca.issue(Kind::Good), echo.addr, &[10]);
    let ca_pem = nginx.dir.write("ca.pem", &ca.pem());
    let client = ca.issue(Kind::Client);
    let cert = nginx.dir.write("client.pem", &client.cert_pem);
    let key = nginx.dir.write("client.key", &client.key_pem);
    let extra = format!(
        "    UpstreamCertFile {}\n    UpstreamKeyFile {}\n",
        cert.display(),
        key.display()
    );
    let mut monkey = Monkey::start(&plugin_conf(nginx.addr, &ca_pem, &extra));
    let r = Client::connect(monkey.addr()).get("/f/10");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-client-verify"), Some("SUCCESS"));
    monkey.assert_alive();
    // Without one, nginx sees none.
    let mut plain = Monkey::start(&plugin_conf(nginx.addr, &ca_pem, ""));
    let r = Client::connect(plain.addr()).get("/f/10");
    assert_eq!(r.header("x-client-verify"), Some("NONE"));
    plain.assert_alive();
}

/// Both sides at once: a client on Monkey's TLS listener, an HTTPS backend (nginx) behind it,
/// checked by active probes over TLS. Exact bodies both ways encrypted, and the server `up`
/// from its probes.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_tls_listener_in_front_of_an_https_backend_checked_over_tls() {
    let ca = Ca::new("monkey test CA");
    let echo = Origin::start("echo");
    let sizes = [1024, 10 * 1024 * 1024];
    let nginx = Nginx::start(&ca, &ca.issue(Kind::Good), echo.addr, &sizes);
    let ca_pem = nginx.dir.write("ca.pem", &ca.pem());
    let checks =
        "    HealthCheck GET /f/1024\n    HealthCheckInterval 0.2\n    HealthCheckRise 1\n";
    let mut monkey = Monkey::start_tls(&plugin_conf(nginx.addr, &ca_pem, checks));
    let config = tls_support::trusting(monkey.tls_cert().expect("a TLS listener"));
    let mut c = tls_support::TlsClient::connect(monkey.addr(), &config);
    for n in sizes {
        let r = c.get(&format!("/f/{n}"));
        assert_eq!(r.status, 200, "{n} bytes");
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    let until = Instant::now() + Duration::from_secs(10);
    let server = loop {
        let r = c.get("/proxy-stats?format=json");
        assert_eq!(r.status, 200);
        let doc: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let server = doc["entries"][0]["servers"][0].clone();
        if server["check"]["probes"].as_u64().unwrap_or(0) >= 3 {
            break server;
        }
        assert!(
            Instant::now() < until,
            "fewer than 3 probes in 10 s: {server:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(server["state"], "up", "{server:#}");
    assert_eq!(server["check"]["consecutive_fails"], 0, "{server:#}");
    assert_eq!(server["check"]["last"]["result"], "pass", "{server:#}");
    monkey.assert_alive();
}

/// A `101` tunnel to an HTTPS backend through a real Monkey: the test's own rustls origin
/// answers `/ws` with `101` and echoes; large messages both ways come back whole.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_tunnel_to_an_https_backend_echoes_through_monkey() {
    use std::io::{BufReader, Read, Write};
    let ca = Ca::new("monkey test CA");
    let dir = TempDir::new("tunnel");
    let ca_pem = dir.write("ca.pem", &ca.pem());
    let origin = upstream_tls_support::TlsOrigin::start(upstream_tls_support::server_config(
        &ca.issue(Kind::Good),
        None,
    ));
    let mut monkey = Monkey::start(&plugin_conf(origin.addr, &ca_pem, ""));
    let s = TcpStream::connect(monkey.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = s.try_clone().unwrap();
    w.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
        .unwrap();
    let mut r = BufReader::new(s);
    read_switching_head(&mut r);
    for n in [5, 300_000, 1] {
        let msg = body_of(n);
        let writer = {
            let mut w = w.try_clone().unwrap();
            let msg = msg.clone();
            std::thread::spawn(move || w.write_all(&msg).unwrap())
        };
        let mut back = vec![0u8; n];
        r.read_exact(&mut back).unwrap();
        writer.join().unwrap();
        assert!(back == msg, "a message of {n} bytes came back different");
    }
    monkey.assert_alive();
}
