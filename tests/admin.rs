//! The admin endpoint and hot reload (#17) through the stand-in host, which serves a
//! configuration file and reloads it as the plugin does (the same scenarios run in a real
//! Monkey: `tests/monkey_admin.rs`); and the access rules through the core's intake, for
//! client addresses a loopback test cannot have.

mod admin_support;
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;

use admin_support::*;
use common::*;
use proxy_reverse::host::Host;
use proxy_reverse::http::intake::RawRequest;
use proxy_reverse::http::request::ProxyRequest;
use proxy_reverse::proxy::Admission;

/// A stand-in host serving a configuration file in a scratch directory.
struct FileHost {
    host: Host,
    file: PathBuf,
    _dir: tempdir::Dir,
}

mod tempdir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory removed when dropped.
    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> Dir {
            static N: AtomicUsize = AtomicUsize::new(0);
            let p = std::env::temp_dir().join(format!(
                "proxy_reverse_admin_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl FileHost {
    fn start(conf: &str) -> FileHost {
        let dir = tempdir::Dir::new();
        let file = dir.path().join("proxy_reverse.conf");
        std::fs::write(&file, conf).unwrap();
        let host = Host::start_from_file(&file).unwrap_or_else(|e| panic!("{e}\n{conf}"));
        FileHost {
            host,
            file,
            _dir: dir,
        }
    }
}

impl Target for FileHost {
    fn addr(&self) -> SocketAddr {
        self.host.addr()
    }

    fn rewrite(&self, conf: &str) {
        std::fs::write(&self.file, conf).unwrap();
    }
}

/// Two origins `a` and `b` behind the entry `web`, round robin.
fn two_origins() -> (Origin, Origin, FileHost) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let host = FileHost::start(&conf_with(&entry("web", "^/", &[a.addr, b.addr], "")));
    (a, b, host)
}

#[test]
fn servers_show_health_state_and_weight() {
    let (a, b, host) = two_origins();
    assert_servers_show_health_state_and_weight(&host, a.addr, b.addr);
}

#[test]
fn cross_site_changes_are_refused_and_change_nothing() {
    let (_a, b, host) = two_origins();
    assert_cross_site_changes_are_refused(&host, b.addr);
}

#[test]
fn bad_changes_say_why() {
    let (_a, b, host) = two_origins();
    assert_bad_changes_say_why(&host, b.addr);
}

#[test]
fn drain_finishes_in_flight_and_takes_no_new_requests() {
    let (_a, b, host) = two_origins();
    assert_drain_finishes_in_flight_and_takes_no_new(&host, b.addr);
}

#[test]
fn a_weight_change_moves_the_share() {
    let (a, _b, host) = two_origins();
    assert_weight_changes_the_share(&host, a.addr);
}

#[test]
fn reloads_under_load_keep_requests_tunnels_and_the_old_configuration() {
    let (a, b, host) = two_origins();
    let echo = upgrade_echo_origin();
    assert_reloads_under_load_keep_everything(&host, a.addr, b.addr, echo);
}

#[test]
fn statistics_carry_over_a_reload_and_show_the_administrative_state() {
    let (a, b, host) = two_origins();
    let _ = shares(host.addr(), 10);
    assert_eq!(
        change(
            host.addr(),
            &format!("/servers/web/{}", b.addr),
            "state=maint"
        )
        .status,
        200
    );
    let (status, doc) = reload(host.addr());
    assert_eq!(status, 200, "{doc:#}");
    let stats = json(&call(
        host.addr(),
        "GET",
        "/proxy-stats?format=json",
        "",
        "",
    ));
    let web = &stats["entries"][0];
    assert!(
        web["counters"]["requests"].as_u64().unwrap() >= 10,
        "{web:#}"
    );
    let doc = servers(host.addr());
    assert_eq!(
        server_in(&doc, "web", &b.addr.to_string())["admin"],
        "maint",
        "the state survives a reload"
    );
    assert_eq!(
        server_in(&doc, "web", &a.addr.to_string())["admin"],
        "ready"
    );
    let page = String::from_utf8(
        call(
            host.addr(),
            "GET",
            "/proxy-stats",
            "Accept: text/html\r\n",
            "",
        )
        .body,
    )
    .unwrap();
    assert!(page.contains("badge maint"), "the page shows the state");
    let metrics =
        String::from_utf8(call(host.addr(), "GET", "/proxy-stats?format=prometheus", "", "").body)
            .unwrap();
    assert!(
        metrics.lines().any(|l| l.contains("server_admin_state{")
            && l.contains(&b.addr.to_string())
            && l.ends_with(" 2")),
        "{metrics}"
    );
}

#[test]
fn a_host_without_a_file_refuses_reloads_but_changes_weights() {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let host = host_from_conf(&conf_with(&entry("web", "^/", &[a.addr, b.addr], "")));
    let r = change(host.addr(), "/reload", "");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let r = change(host.addr(), &format!("/servers/web/{}", a.addr), "weight=2");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(json(&r)["weight"], 2);
}

/// The intake's judgement of `method path` from `peer` with `headers`.
fn admit(conf: &str, peer: &str, method: &str, path: &str, headers: &str) -> Admission {
    let proxy = proxy_from_conf(conf);
    let rest = format!("Host: test\r\n{headers}Content-Length: 0\r\n\r\n");
    let raw = RawRequest {
        method: method.as_bytes(),
        path: path.as_bytes(),
        query: None,
        minor_version: 1,
        rest: rest.as_bytes(),
        peer: Some(peer.parse().unwrap()),
        host_closes: false,
    };
    let mut request = ProxyRequest::default();
    proxy.admit(&raw, &mut request, 0).unwrap().admission
}

fn status(a: &Admission) -> u16 {
    match a {
        Admission::Answer(page) => page.status,
        other => panic!("not answered: {other:?}"),
    }
}

#[test]
fn only_loopback_and_admin_allow_reach_the_endpoint() {
    let web = entry("web", "^/", &["127.0.0.1:9".parse().unwrap()], "");
    let closed = conf_with(&web);
    let open = format!(
        "[PROXY_DEFAULTS]\n    AdminURL {ADMIN}\n    AdminAllow 10.0.0.0/8\n    StatisticsAllow 192.168.0.0/16\n\n{web}"
    );
    let get =
        |conf: &str, peer: &str| status(&admit(conf, peer, "GET", "/proxy-admin/servers", ""));
    assert_eq!(get(&closed, "127.0.0.1:5000"), 200);
    assert_eq!(get(&closed, "[::1]:5000"), 200);
    assert_eq!(get(&closed, "10.1.2.3:5000"), 403, "closed by default");
    assert_eq!(get(&open, "10.1.2.3:5000"), 200);
    assert_eq!(
        get(&open, "192.168.1.1:5000"),
        403,
        "StatisticsAllow does not open the admin"
    );
    // A forwarded address is not trusted here.
    let forwarded = admit(
        &closed,
        "10.1.2.3:5000",
        "GET",
        "/proxy-admin/servers",
        "X-Forwarded-For: 127.0.0.1\r\n",
    );
    assert_eq!(status(&forwarded), 403);
    // A reload from an allowed client goes to the reload thread; from others it is refused.
    let reload = |peer: &str| {
        admit(
            &open,
            peer,
            "POST",
            "/proxy-admin/reload",
            "X-Proxy-Admin: 1\r\n",
        )
    };
    assert!(matches!(reload("10.9.9.9:1"), Admission::Deferred(_)));
    assert_eq!(status(&reload("172.16.0.1:1")), 403);
    // Without AdminURL, the path is an ordinary one.
    let off = web.clone();
    assert!(matches!(
        admit(&off, "127.0.0.1:1", "GET", "/proxy-admin/servers", ""),
        Admission::Proxy(0)
    ));
}
