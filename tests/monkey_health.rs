//! Active health checks, backups, outlier ejection and slow start (#16) in a real Monkey: the
//! scenarios the stand-in host runs (`tests/health_checks.rs`), then what only the real
//! server shows — `wrk -c50` while a backend is killed and restarted, and the cost of
//! probing 100 servers every second with 2 workers.

mod common;
mod e2e;
mod health_support;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use e2e::{parse_wrk, wrk_available, Monkey};
use health_support::*;

impl Target for Monkey {
    fn addr(&self) -> SocketAddr {
        Monkey::addr(self)
    }
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_dead_server_goes_down_and_comes_back_with_no_traffic() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let mut monkey = Monkey::start(&no_traffic_conf(a.addr, b.addr));
    let (down, up) = assert_dead_server_goes_down_and_comes_back_without_traffic(&monkey, &a, b);
    println!("monkey: down after {down:?} (bound 3.5 s), up after {up:?} (bound 3 s)");
    let log = monkey.log();
    assert!(
        log.contains("entry web: server") && log.contains("down: connection refused"),
        "one line per change, naming entry, server and reason:\n{log}"
    );
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_failing_health_endpoint_takes_a_server_out() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let mut monkey = Monkey::start(&no_traffic_conf(a.addr, b.addr));
    assert_failing_health_endpoint_takes_a_server_out(&monkey, &a, &b);
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_backup_serves_only_while_no_primary_can() {
    let (p1, p2, bk) = (
        HealthOrigin::start("p1"),
        HealthOrigin::start("p2"),
        HealthOrigin::start("bk"),
    );
    let mut monkey = Monkey::start(&backup_conf(p1.addr, p2.addr, bk.addr));
    assert_backup_takes_over_and_gives_back(&monkey, p1, p2, &bk);
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_outliers_are_ejected_and_return_within_the_percentage() {
    let (a, b, c) = (
        HealthOrigin::start("a"),
        HealthOrigin::start("b"),
        HealthOrigin::start("c"),
    );
    let mut monkey = Monkey::start(&outlier_conf(a.addr, b.addr, c.addr));
    assert_outliers_are_ejected_and_return(&monkey, &a, &b, &c);
    let log = monkey.log();
    assert!(log.contains("ejected for 2 s: 5 consecutive 5xx"), "{log}");
    monkey.assert_alive();
}

impl Reloadable for Monkey {
    fn reload(&self, conf: &str) {
        std::fs::write(self.plugin_conf(), conf).unwrap();
        self.signal("USR1");
    }
}

/// A reload by `SIGUSR1` keeps the servers' health and the prober follows it.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_reload_keeps_health_and_the_prober_follows_it() {
    let (a, b, c) = (
        HealthOrigin::start("a"),
        HealthOrigin::start("b"),
        HealthOrigin::start("c"),
    );
    let mut monkey = Monkey::start(&reload_conf(&[a.addr, b.addr]));
    assert_reload_keeps_health_and_the_prober_follows_it(&monkey, &a, &b, &c);
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_slow_start_ramps_a_returning_server() {
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let mut monkey = Monkey::start(&slow_start_conf(a.addr, b.addr));
    assert_slow_start_ramps_a_returning_server(&monkey, &b);
    monkey.assert_alive();
}

/// The load item: `wrk -c50` for 60 s while `b` is killed and restarted every 10 s,
/// checks on (every 1 s, rise 2, fall 2) with a 5 s slow start: 0 non-2xx and 0 socket
/// errors; after the last restart `b`'s share of the attempts (from the statistics'
/// counters, second by second) ramps up.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_wrk_while_a_backend_is_killed_and_restarted() {
    if !wrk_available() {
        return;
    }
    let (a, b) = (HealthOrigin::start("a"), HealthOrigin::start("b"));
    let conf = conf_with(&entry(
        "web",
        "^/",
        &format!("{} {}", a.addr, b.addr),
        &format!("{}    SlowStart 5\n", checks("1", 2, 2)),
    ));
    let mut monkey = Monkey::start(&conf);
    wait_state(monkey.addr(), "web", b.addr, "up", Duration::from_secs(3));
    let wrk = Command::new("wrk")
        .args(["-t2", "-c50", "-d60s", "--timeout", "5s"])
        .arg(monkey.url("/id"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wrk");
    let started = Instant::now();
    let at = |secs: u64| {
        let when = Duration::from_secs(secs);
        if let Some(rest) = when.checked_sub(started.elapsed()) {
            thread::sleep(rest);
        }
    };
    let b_addr = b.addr;
    let mut b = Some(b);
    // Killed at 5, 15, 25, 35 s; restarted at 10, 20, 30, 40 s; then 20 s to ramp.
    for cycle in 0..4 {
        at(5 + cycle * 10);
        if let Some(origin) = b.take() {
            origin.kill();
        }
        at(10 + cycle * 10);
        b = Some(HealthOrigin::start_on(b_addr, "b"));
    }
    let addr = monkey.addr();
    wait_state(addr, "web", b_addr, "up", Duration::from_secs(4));
    let counters = |doc: &serde_json::Value| -> (u64, u64) {
        let of = |s: SocketAddr| {
            server_in(doc, "web", s)["counters"]["requests"]
                .as_u64()
                .unwrap()
        };
        (of(a.addr), of(b_addr))
    };
    let mut doc = stats(addr);
    let mut shares = Vec::new();
    let mut weights = Vec::new();
    for _ in 0..6 {
        thread::sleep(Duration::from_secs(1));
        let next = stats(addr);
        let (a0, b0) = counters(&doc);
        let (a1, b1) = counters(&next);
        shares.push((b1 - b0) as f64 / ((a1 - a0) + (b1 - b0)).max(1) as f64);
        weights.push(server_in(&next, "web", b_addr)["effective_weight_percent"].clone());
        doc = next;
    }
    let out = wrk.wait_with_output().expect("wrk");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = parse_wrk(&text);
    println!(
        "wrk: {summary:?}; b after the last restart: shares {shares:.2?}, weights {weights:?}"
    );
    assert!(summary.requests > 1000, "{text}");
    assert_eq!(summary.non_2xx, 0, "{text}");
    assert_eq!(summary.socket_errors, 0, "{text}");
    assert!(
        shares[0] < 0.35,
        "b starts with a small share: {shares:.2?}"
    );
    assert!(
        shares.last().unwrap() > &0.35 && shares.last().unwrap() > &shares[0],
        "and ramps to about half: {shares:.2?}"
    );
    monkey.assert_alive();
    drop(b);
}

/// CPU time (user + system) of process `pid` so far, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let hz = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .unwrap_or(100.0);
    ticks / hz
}

/// The cost item: 100 servers checked every second, no traffic, 2 workers. Monkey's
/// CPU (from `/proc/PID/stat`) stays under 2 % of a core with the release plugin
/// (`PROXY_REVERSE_SO=target/release/libproxy_reverse.so`), and each server is probed once
/// per interval (counted at the origins), not once per worker.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_probing_100_servers_every_second_is_cheap() {
    let origins: Vec<HealthOrigin> = (0..100)
        .map(|i| HealthOrigin::start(&format!("o{i}")))
        .collect();
    let list: Vec<String> = origins.iter().map(|o| o.addr.to_string()).collect();
    let conf = conf_with(&entry("web", "^/", &list.join(" "), &checks("1", 2, 3)));
    let mut monkey = Monkey::start(&conf);
    let addr = monkey.addr();
    let start = Instant::now();
    loop {
        let doc = stats(addr);
        let up = doc["entries"][0]["servers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["state"] == "up")
            .count();
        if up == 100 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{up} of 100 up");
        thread::sleep(Duration::from_millis(200));
    }
    let window = Duration::from_secs(10);
    let before: Vec<u64> = origins.iter().map(|o| o.checks()).collect();
    let cpu0 = cpu_secs(monkey.pid());
    let t0 = Instant::now();
    thread::sleep(window);
    let cpu1 = cpu_secs(monkey.pid());
    let elapsed = t0.elapsed().as_secs_f64();
    let counts: Vec<u64> = origins
        .iter()
        .zip(&before)
        .map(|(o, b)| o.checks() - b)
        .collect();
    let share = (cpu1 - cpu0) / elapsed;
    let total: u64 = counts.iter().sum();
    let per_interval = total as f64 / 100.0 / elapsed;
    println!(
        "100 servers every 1 s: Monkey CPU {:.2} % of a core; {per_interval:.2} probes per \
         server per second (min {}, max {} in {elapsed:.1} s)",
        share * 100.0,
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap()
    );
    // The bound is for the plugin as shipped (release); an unoptimised debug build
    // (what `cargo test` loads unless PROXY_REVERSE_SO names another) measured about 1.8 %
    // on a quiet machine, so it gets twice the room on a busy one.
    let optimised = std::env::var_os("PROXY_REVERSE_SO").is_some() || !cfg!(debug_assertions);
    let limit = if optimised { 0.02 } else { 0.04 };
    assert!(
        share < limit,
        "CPU {:.2} % of a core (limit {:.0} %)",
        share * 100.0,
        limit * 100.0
    );
    // Probes start 0.9-1 s apart: 10 or 11 in 10 s, never the 20 two workers would send.
    assert!(
        counts.iter().all(|&n| (9..=12).contains(&n)),
        "probes per server in {elapsed:.1} s: {counts:?}"
    );
    assert!((0.9..=1.15).contains(&per_interval), "{per_interval}");
    monkey.assert_alive();
}
