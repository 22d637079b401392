//! Active health checks, backups, outlier ejection and slow start (#16) through the stand-in
//! host and its prober thread, against loopback origins; the same scenarios run in a real
//! Monkey in `tests/monkey_health.rs`.

mod common;
mod health_support;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use health_support::*;
use proxy_reverse::host::Host;

impl Target for Host {
    fn addr(&self) -> SocketAddr {
        Host::addr(self)
    }
}

#[test]
fn a_dead_server_goes_down_and_comes_back_with_no_traffic() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let host = host_from_conf(&no_traffic_conf(a.addr, b.addr));
    let (down, up) = assert_dead_server_goes_down_and_comes_back_without_traffic(&host, &a, b);
    eprintln!("stand-in host: down after {down:?}, up after {up:?}");
}

#[test]
fn a_failing_health_endpoint_takes_a_server_out() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let host = host_from_conf(&no_traffic_conf(a.addr, b.addr));
    assert_failing_health_endpoint_takes_a_server_out(&host, &a, &b);
}

#[test]
fn a_backup_serves_only_while_no_primary_can() {
    let (p1, p2, bk) = (
        HealthOrigin::start("p1"),
        HealthOrigin::start("p2"),
        HealthOrigin::start("bk"),
    );
    let host = host_from_conf(&backup_conf(p1.addr, p2.addr, bk.addr));
    assert_backup_takes_over_and_gives_back(&host, p1, p2, &bk);
}

#[test]
fn outliers_are_ejected_and_return_within_the_percentage() {
    let (a, b, c) = (
        HealthOrigin::start("a"),
        HealthOrigin::start("b"),
        HealthOrigin::start("c"),
    );
    let host = host_from_conf(&outlier_conf(a.addr, b.addr, c.addr));
    assert_outliers_are_ejected_and_return(&host, &a, &b, &c);
}

#[test]
fn slow_start_ramps_a_returning_server() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let host = host_from_conf(&slow_start_conf(a.addr, b.addr));
    assert_slow_start_ramps_a_returning_server(&host, &b);
}

#[test]
fn a_server_in_two_entries_is_probed_once_per_interval() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let host = host_from_conf(&shared_conf(a.addr, b.addr));
    assert_one_probe_per_server_per_interval(&host, &a);
}

/// With checks, a server users' failures took down (`AttemptsCount`) is not tried by a
/// later request: it comes back only when probes pass, and no request is lost meanwhile.
#[test]
fn users_failures_take_a_server_down_until_probes_pass() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    // Probes far apart: the requests see the failure first.
    let conf = conf_with(&entry(
        "web",
        "^/",
        &format!("{} {}", a.addr, b.addr),
        "    HealthCheck GET /healthz\n    HealthCheckInterval 3\n    HealthCheckRise 1\n    \
         AttemptsCount 1\n",
    ));
    let host = host_from_conf(&conf);
    wait_state(host.addr(), "web", a.addr, "up", Duration::from_secs(3));
    wait_state(host.addr(), "web", b.addr, "up", Duration::from_secs(3));
    let name = b.name.clone();
    let b_addr = b.kill();
    // Every request is answered (the failed try fails over to a) and b is down at once.
    let seen = spread(host.addr(), "/id", 10);
    assert_eq!(seen.get("a"), Some(&10), "{seen:?}");
    let doc = stats(host.addr());
    let s = server_in(&doc, "web", b_addr);
    assert_eq!(s["state"], "down", "{s:#}");
    assert_eq!(s["reason"], "1 failed request: connection refused", "{s:#}");
    let b = HealthOrigin::start_on(b_addr, &name);
    // Requests do not bring it back: only a passing probe does (unless one came meanwhile).
    spread(host.addr(), "/id", 20);
    if state_of(host.addr(), "web", b_addr) == "down" {
        assert_eq!(b.requests(), 0, "no user request is spent as a probe");
    }
    wait_state(host.addr(), "web", b_addr, "up", Duration::from_secs(5));
    let seen = spread(host.addr(), "/id", 20);
    assert!(seen.get("b").copied().unwrap_or(0) >= 5, "{seen:?}");
}

/// A server that is new (configured, no result yet) shows `checking` and takes requests
/// only if no server is up.
#[test]
fn a_server_with_no_result_yet_is_checking() {
    let a = HealthOrigin::start("a");
    // A listener that never answers: its probes time out, so it stays `checking` for the
    // first interval, then is `down`.
    let (silent, _listener) = silent_backend();
    let conf = conf_with(&entry(
        "web",
        "^/",
        &format!("{} {silent}", a.addr),
        "    HealthCheck GET /healthz\n    HealthCheckInterval 2\n    HealthCheckTimeout 1.5\n",
    ));
    let host = host_from_conf(&conf);
    wait_state(host.addr(), "web", a.addr, "up", Duration::from_secs(2));
    let doc = stats(host.addr());
    let s = server_in(&doc, "web", silent);
    assert_eq!(s["state"], "checking", "{s:#}");
    assert!(s["check"]["last"].is_null(), "{s:#}");
    let seen = spread(host.addr(), "/id", 10);
    assert_eq!(seen.get("a"), Some(&10), "{seen:?}");
    wait_state(host.addr(), "web", silent, "down", Duration::from_secs(3));
    let doc = stats(host.addr());
    assert_eq!(server_in(&doc, "web", silent)["reason"], "timeout");
}

/// The HTML page and Prometheus show the states too.
#[test]
fn the_page_and_prometheus_show_check_states() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let host = host_from_conf(&no_traffic_conf(a.addr, b.addr));
    wait_state(host.addr(), "web", a.addr, "up", Duration::from_secs(3));
    b.set_health(503);
    wait_state(host.addr(), "web", b.addr, "down", Duration::from_secs(4));
    let (_, page) = get(host.addr(), STATS);
    assert!(
        page.contains("status 503") && page.contains("check failed"),
        "{page}"
    );
    assert!(!page.contains("retry in 0 s"), "{page}");
    let (_, prom) = get(host.addr(), &format!("{STATS}?format=prometheus"));
    let want = format!(
        "proxy_reverse_server_state{{entry=\"web\",server=\"{}\",state=\"down\"}} 1",
        b.addr
    );
    assert!(prom.contains(&want), "{want} in\n{prom}");
    assert!(
        prom.contains("proxy_reverse_server_check_latency_seconds"),
        "{prom}"
    );
    assert_promtool_accepts(&prom);
}

mod reload {
    use super::*;
    use std::path::PathBuf;

    /// A host serving a configuration file it reloads on `POST /proxy-admin/reload`.
    struct FileHost {
        host: Host,
        file: PathBuf,
        dir: PathBuf,
    }

    impl FileHost {
        fn start(conf: &str) -> FileHost {
            let dir = std::env::temp_dir().join(format!(
                "proxy_reverse_health_{}_{}",
                std::process::id(),
                line!()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join("proxy_reverse.conf");
            std::fs::write(&file, conf).unwrap();
            let host = Host::start_from_file(&file).unwrap();
            FileHost { host, file, dir }
        }
    }

    impl Target for FileHost {
        fn addr(&self) -> SocketAddr {
            self.host.addr()
        }
    }

    impl Reloadable for FileHost {
        fn reload(&self, conf: &str) {
            std::fs::write(&self.file, conf).unwrap();
            let mut c = Client::connect(self.host.addr());
            c.send(
                b"POST /proxy-admin/reload HTTP/1.1\r\nHost: t\r\nX-Proxy-Admin: 1\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let r = c.read_response(false).expect("an answer to the reload");
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        }
    }

    impl Drop for FileHost {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_reload_keeps_health_and_the_prober_follows_it() {
        let (a, b, c) = (
            HealthOrigin::start("a"),
            HealthOrigin::start("b"),
            HealthOrigin::start("c"),
        );
        let fh = FileHost::start(&reload_conf(&[a.addr, b.addr]));
        assert_reload_keeps_health_and_the_prober_follows_it(&fh, &a, &b, &c);
    }
}

/// `tcp` only connects, `HEAD` decides on the status, `body TEXT` on the body.
#[test]
fn each_kind_of_probe_decides_as_configured() {
    let (a, b, c) = (
        HealthOrigin::start("a"),
        HealthOrigin::start("b"),
        HealthOrigin::start("c"),
    );
    let fast = "    HealthCheckInterval 0.3\n    HealthCheckRise 1\n    HealthCheckFall 1\n";
    let conf = conf_with(&format!(
        "{}{}{}",
        entry(
            "tcp",
            "^/t/",
            &a.addr.to_string(),
            &format!("    HealthCheck tcp\n{fast}")
        ),
        entry(
            "head",
            "^/h/",
            &b.addr.to_string(),
            &format!("    HealthCheck HEAD /healthz\n{fast}")
        ),
        entry(
            "body",
            "^/b/",
            &c.addr.to_string(),
            &format!(
                "    HealthCheck GET /healthz\n    HealthCheckExpect 200-299 body all good\n{fast}"
            )
        ),
    ));
    let host = host_from_conf(&conf);
    let addr = host.addr();
    wait_state(addr, "tcp", a.addr, "up", Duration::from_secs(2));
    wait_state(addr, "head", b.addr, "up", Duration::from_secs(2));
    wait_state(addr, "body", c.addr, "down", Duration::from_secs(2));
    assert_eq!(
        server_in(&stats(addr), "body", c.addr)["reason"],
        "body mismatch"
    );
    // A tcp check passes whatever /healthz says; HEAD sees the status.
    a.set_health(503);
    b.set_health(500);
    wait_state(addr, "head", b.addr, "down", Duration::from_secs(2));
    assert_eq!(
        server_in(&stats(addr), "head", b.addr)["reason"],
        "status 500"
    );
    assert_eq!(state_of(addr, "tcp", a.addr), "up");
    assert_eq!(a.checks(), 0, "tcp sends no request");
    let a_addr = a.kill();
    wait_state(addr, "tcp", a_addr, "down", Duration::from_secs(2));
}

/// A server in maintenance (admin endpoint) is not probed, and is `checking` again when it
/// is put back, until its next probe; administrative state and health stay apart.
#[test]
fn a_server_in_maintenance_is_not_probed() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let conf = conf_with(&entry(
        "web",
        "^/",
        &format!("{} {}", a.addr, b.addr),
        &checks("0.3", 1, 1),
    ))
    .replace(
        "[PROXY_DEFAULTS]\n",
        "[PROXY_DEFAULTS]\n    AdminURL /proxy-admin\n",
    );
    let host = host_from_conf(&conf);
    let addr = host.addr();
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(2));
    let set = |state: &str| {
        let body = format!("state={state}");
        let mut c = Client::connect(addr);
        c.send(
            format!(
                "POST /proxy-admin/servers/web/{} HTTP/1.1\r\nHost: t\r\nX-Proxy-Admin: 1\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                b.addr,
                body.len()
            )
            .as_bytes(),
        );
        let r = c.read_response(false).expect("an answer");
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    };
    set("maint");
    std::thread::sleep(Duration::from_millis(400));
    let before = b.checks();
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(b.checks(), before, "no probe in maintenance");
    let doc = stats(addr);
    assert_eq!(server_in(&doc, "web", b.addr)["admin"], "maint");
    set("ready");
    wait_state(addr, "web", b.addr, "up", Duration::from_secs(2));
    assert!(b.checks() > before);
}
