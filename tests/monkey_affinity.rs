//! Hash keys, bounded loads and sticky sessions (#19) in a real Monkey: the scenarios of
//! `tests/affinity.rs`, with two Monkey processes of the same configuration for the
//! "every instance maps a key the same way" checks.

mod admin_support;
mod affinity_support;
mod common;
mod e2e;

use std::net::SocketAddr;

use affinity_support::*;
use common::*;
use e2e::{parse_wrk, wrk_available, Monkey};

fn origins(n: usize) -> Vec<Origin> {
    (0..n).map(|i| Origin::start(&format!("o{i}"))).collect()
}

fn addrs(origins: &[Origin]) -> Vec<SocketAddr> {
    origins.iter().map(|o| o.addr).collect()
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_header_keys_map_identically_on_two_instances_and_removal_moves_few() {
    let os = origins(10);
    let all = addrs(&os);
    let conf = hash_conf(&all, 0);
    let (mut a, mut b) = (Monkey::start(&conf), Monkey::start(&conf));
    assert_keys_map_identically(a.addr(), b.addr(), 10);
    let ten = owners(a.addr(), 1000);
    let mut nine = Monkey::start(&hash_conf(&all[..9], 0));
    assert_removal_moves_few(&ten, &owners(nine.addr(), 1000), &os[9].name);
    for m in [&mut a, &mut b, &mut nine] {
        m.assert_alive();
    }
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_bounded_loads_hold_a_hot_key_to_its_share() {
    let os = origins(4);
    let mut bounded = Monkey::start(&hash_conf(&addrs(&os), 125));
    let mut unbounded = Monkey::start(&hash_conf(&addrs(&os), 0));
    assert_bounded_loads(bounded.addr(), unbounded.addr(), 40);
    bounded.assert_alive();
    unbounded.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_sticky_clients_keep_their_server_and_move_when_it_goes() {
    let mut os = origins(3);
    let conf = sticky_conf(&addrs(&os));
    let mut monkey = Monkey::start(&conf);
    let (value, server) = assert_sticky_client_keeps_its_server(monkey.addr());
    // A second instance with the same secret routes the cookie the same way.
    let mut twin = Monkey::start(&conf);
    for _ in 0..10 {
        let r = get_id(twin.addr(), Some(&value));
        assert_eq!(body(&r), server);
        assert_eq!(r.header("Set-Cookie"), None);
    }
    assert_forged_cookies_are_ignored(monkey.addr());
    let at = os.iter().position(|o| o.name == server).unwrap();
    let (other_value, other) =
        assert_drained_server_clients_move(monkey.addr(), &value, &server, os[at].addr);
    let dead = os.iter().position(|o| o.name == other).unwrap();
    os.remove(dead).kill();
    assert_dead_server_clients_move(monkey.addr(), &other_value, &other);
    monkey.assert_alive();
    twin.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_bounded_loads_under_wrk() {
    if !wrk_available() {
        return;
    }
    let os = origins(4);
    let mut monkey = Monkey::start(&hash_conf(&addrs(&os), 125));
    let script = monkey.dir().join("hot-key.lua");
    std::fs::write(&script, WRK_HOT_KEY).unwrap();
    let wrk = std::process::Command::new("wrk")
        .args(["-t2", "-c80", "-d6s", "--timeout", "10s", "-s"])
        .arg(&script)
        .arg(monkey.url("/"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wrk");
    std::thread::sleep(std::time::Duration::from_millis(800));
    let (samples, worst_ratio, worst_excess) = sample_in_flight(monkey.addr(), 40, 4);
    let out = wrk.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = parse_wrk(&text);
    eprintln!(
        "wrk -c80, 4 servers, HashBalanceFactor 125: {samples} samples, max/mean in flight \
         {worst_ratio:.3}, excess over the cap {worst_excess}; {summary:?}"
    );
    assert!(summary.requests > 100, "{text}");
    assert_eq!((summary.non_2xx, summary.socket_errors), (0, 0), "{text}");
    assert!(samples >= 10, "too few samples under load");
    // The slack of `assert_bounded_loads`.
    assert!(worst_excess <= 2, "{worst_ratio} {worst_excess}");
    monkey.assert_alive();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_every_key_kind_picks_the_same_server_for_one_value() {
    let os = origins(5);
    let servers = addrs(&os);
    let start = |key: &str| {
        Monkey::start(&conf(
            &servers,
            &format!("    LoadBalancer SourceHash\n    HashKey {key}\n"),
        ))
    };
    let mut monkeys = [
        start("header X-User"),
        start("cookie sid"),
        start("query user"),
        start("path"),
        start("uri"),
        start("source"),
    ];
    let [h, c, q, p, u, s] = monkeys.each_ref().map(|m| m.addr());
    assert_every_key_kind_picks_the_same_server(h, c, q, p, u, s);
    for m in &mut monkeys {
        m.assert_alive();
    }
}
