//! The admin endpoint and hot reload (#17) in a real Monkey: the scenarios the stand-in host
//! runs (`tests/admin.rs`), then what only the real server can show — reloads and a drain
//! under `wrk -c50`, `SIGUSR1`, and memory and descriptors after 100 reloads.

mod admin_support;
mod common;
mod e2e;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use admin_support::*;
use common::*;
use e2e::{parse_wrk, wrk_available, Monkey};

impl Target for Monkey {
    fn addr(&self) -> SocketAddr {
        Monkey::addr(self)
    }

    fn rewrite(&self, conf: &str) {
        std::fs::write(self.plugin_conf(), conf).unwrap();
    }
}

/// Two origins `a` and `b` behind the entry `web`, round robin, in Monkey.
fn two_origins() -> (Origin, Origin, Monkey) {
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let monkey = Monkey::start(&conf_with(&entry("web", "^/", &[a.addr, b.addr], "")));
    (a, b, monkey)
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_admin_scenarios() {
    let (a, b, mut monkey) = two_origins();
    assert_servers_show_health_state_and_weight(&monkey, a.addr, b.addr);
    assert_cross_site_changes_are_refused(&monkey, b.addr);
    assert_bad_changes_say_why(&monkey, b.addr);
    assert_drain_finishes_in_flight_and_takes_no_new(&monkey, b.addr);
    assert_weight_changes_the_share(&monkey, a.addr);
    let log = monkey.log_when(|log| log.contains("ready -> drain"));
    assert!(
        log.contains("admin: 127.0.0.1 set entry web server") && log.contains("ready -> drain"),
        "every change is logged with who asked:\n{log}"
    );
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_reloads_under_load_keep_requests_tunnels_and_the_old_configuration() {
    let (a, b, mut monkey) = two_origins();
    let echo = upgrade_echo_origin();
    assert_reloads_under_load_keep_everything(&monkey, a.addr, b.addr, echo);
    monkey.assert_alive();
}

/// `wrk -t2 -c50` against `path` for `secs`, in the background.
fn start_wrk(monkey: &Monkey, path: &str, secs: u64) -> Child {
    Command::new("wrk")
        .args(["-t2", "-c50", &format!("-d{secs}s"), "--timeout", "5s"])
        .arg(monkey.url(path))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk")
}

/// The acceptance run: `wrk -c50` for 30 s with a tunnel open and an echo through it
/// every second; three reloads (add an entry, change a balancer, remove a server), then a
/// broken one. 0 non-2xx, 0 socket errors, the tunnel still echoes, new routes answer right
/// after each reload, the broken one is refused and the old configuration serves.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_reloads_under_wrk_with_a_tunnel_open() {
    if !wrk_available() {
        return;
    }
    let (a, b) = (Origin::start("a"), Origin::start("b"));
    let echo = upgrade_echo_origin();
    let ws = entry("ws", "^/ws", &[echo], "");
    let web = |balancer: &str, servers: &[SocketAddr]| {
        entry(
            "web",
            "^/",
            servers,
            &format!("    LoadBalancer {balancer}\n"),
        )
    };
    let mut monkey = Monkey::start(&conf_with(&format!(
        "{ws}{}",
        web("RoundRobin", &[a.addr, b.addr])
    )));
    let mut tunnel = Tunnel::open(monkey.addr(), "/ws");
    let wrk = start_wrk(&monkey, "/id", 30);
    let started = Instant::now();
    let only_b = entry("only-b", "^/m/b/", &[b.addr], "");
    let bad = entry("bad", "^/bad", &[a.addr], "    LoadBalancer Fastest\n");
    let steps: [(String, u16); 4] = [
        (
            conf_with(&format!(
                "{ws}{only_b}{}",
                web("RoundRobin", &[a.addr, b.addr])
            )),
            200,
        ),
        (
            conf_with(&format!(
                "{ws}{only_b}{}",
                web("LeastConnections", &[a.addr, b.addr])
            )),
            200,
        ),
        (
            conf_with(&format!(
                "{ws}{only_b}{}",
                web("LeastConnections", &[a.addr])
            )),
            200,
        ),
        (
            conf_with(&format!(
                "{ws}{only_b}{bad}{}",
                web("LeastConnections", &[a.addr])
            )),
            400,
        ),
    ];
    let mut steps = steps.into_iter();
    let mut echoes = 0;
    while started.elapsed() < Duration::from_secs(29) {
        thread::sleep(Duration::from_secs(1));
        tunnel.echo(&format!("echo {echoes}\n"));
        echoes += 1;
        // A reload every 5 s.
        if echoes % 5 == 0 {
            if let Some((conf, want)) = steps.next() {
                monkey.rewrite(&conf);
                let (status, doc) = reload(monkey.addr());
                assert_eq!(status, want, "{doc:#}");
                assert_eq!(
                    answer_of(monkey.addr(), "/m/b/id"),
                    "b",
                    "the new route answers at once"
                );
            }
        }
    }
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = parse_wrk(&text);
    println!("{text}");
    assert!(summary.requests > 1000, "{text}");
    assert_eq!(summary.non_2xx, 0, "{text}");
    assert_eq!(summary.socket_errors, 0, "{text}");
    tunnel.echo("at the end\n");
    assert!(steps.next().is_none(), "every reload ran");
    monkey.assert_alive();
}

/// Drain under `wrk -c50`: 0 errors; after the admin call returns the drained server gets
/// no new request; `ready` brings it back.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_drain_under_wrk() {
    if !wrk_available() {
        return;
    }
    let (_a, b, mut monkey) = two_origins();
    let wrk = start_wrk(&monkey, "/id", 8);
    thread::sleep(Duration::from_secs(1));
    assert_drain_finishes_in_flight_and_takes_no_new(&monkey, b.addr);
    // Drained again: under load, the origin's accepted connections stop growing.
    assert_eq!(
        change(
            monkey.addr(),
            &format!("/servers/web/{}", b.addr),
            "state=drain"
        )
        .status,
        200
    );
    let served_by = |name: &str| shares(monkey.addr(), 10).get(name).copied().unwrap_or(0);
    thread::sleep(Duration::from_millis(200));
    let conns = b.conns.load(std::sync::atomic::Ordering::SeqCst);
    thread::sleep(Duration::from_secs(2));
    assert_eq!(served_by("b"), 0);
    assert_eq!(
        b.conns.load(std::sync::atomic::Ordering::SeqCst),
        conns,
        "the drained server got new connections under load"
    );
    assert_eq!(
        change(
            monkey.addr(),
            &format!("/servers/web/{}", b.addr),
            "state=ready"
        )
        .status,
        200
    );
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = parse_wrk(&text);
    assert!(summary.requests > 500, "{text}");
    assert_eq!(summary.non_2xx, 0, "{text}");
    assert_eq!(summary.socket_errors, 0, "{text}");
    monkey.assert_alive();
}

/// `SIGUSR1` reloads the file (Monkey itself exits on `SIGHUP`), and Monkey keeps running.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_sigusr1_reloads() {
    let (a, b, mut monkey) = two_origins();
    let only_b = entry("only-b", "^/m/b/", &[b.addr], "");
    monkey.rewrite(&conf_with(&format!(
        "{only_b}{}",
        entry("web", "^/", &[a.addr, b.addr], "")
    )));
    monkey.signal("USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !monkey.log().contains("reloaded (asked by a signal)") {
        monkey.assert_alive();
        assert!(
            Instant::now() < deadline,
            "no reload after SIGUSR1:\n{}",
            monkey.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer_of(monkey.addr(), "/m/b/id"), "b");
    // A broken file on a signal: refused, logged, the configuration in service stays.
    monkey.rewrite("[PROXY_ENTRY]\n    Match (\n");
    monkey.signal("USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !monkey.log().contains("reload asked by a signal refused") {
        monkey.assert_alive();
        assert!(
            Instant::now() < deadline,
            "no refusal logged:\n{}",
            monkey.log()
        );
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(answer_of(monkey.addr(), "/m/b/id"), "b");
    monkey.assert_alive();
}

/// Resident memory and descriptors after 100 reloads under load are back to their level
/// after the first (within a margin for allocator noise).
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_hundred_reloads_leak_nothing() {
    let (a, b, mut monkey) = two_origins();
    let with_b = conf_with(&entry("web", "^/", &[a.addr, b.addr], ""));
    let without_b = conf_with(&entry("web", "^/", &[a.addr], ""));
    let reload_once = |conf: &str| {
        monkey.rewrite(conf);
        let (status, doc) = reload(monkey.addr());
        assert_eq!(status, 200, "{doc:#}");
    };
    // Measured with no load running, so that no client connection is in flight: the load's
    // clients have closed, what is left is Monkey's own and the pooled backend connections.
    let quiet = |load: Load| {
        wait_for_traffic(&load, 200);
        let (ok, problems) = load.finish();
        assert!(
            problems.is_empty(),
            "{} of {ok} failed: {:?}",
            problems.len(),
            &problems[..problems.len().min(5)]
        );
        thread::sleep(Duration::from_millis(300));
        (monkey.rss_kib(), monkey.fd_count())
    };
    let load = Load::start(monkey.addr(), "/id", 4);
    for i in 0..10 {
        reload_once(if i % 2 == 0 { &without_b } else { &with_b });
    }
    let (rss_first, fds_first) = quiet(load);
    let load = Load::start(monkey.addr(), "/id", 4);
    for i in 0..100 {
        reload_once(if i % 2 == 0 { &without_b } else { &with_b });
        if i % 10 == 0 {
            wait_for_traffic(&load, 50);
        }
    }
    let (rss_after, fds_after) = quiet(load);
    println!("after 10 reloads: {rss_first} KiB, {fds_first} fds; after 110: {rss_after} KiB, {fds_after} fds");
    assert!(
        rss_after <= rss_first + 1024,
        "RSS grew from {rss_first} to {rss_after} KiB over 100 reloads"
    );
    // Pooled backend connections may differ by the load's few clients.
    assert!(
        fds_after <= fds_first + 4,
        "descriptors grew from {fds_first} to {fds_after}: {:?}",
        monkey.fd_targets()
    );
    monkey.assert_alive();
}
