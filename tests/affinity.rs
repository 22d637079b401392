//! Hash keys, bounded loads and sticky sessions (#19) through the stand-in host; the same
//! scenarios run in a real Monkey in `tests/monkey_affinity.rs`.

mod admin_support;
mod affinity_support;
mod common;

use std::net::SocketAddr;

use affinity_support::*;
use common::*;

fn origins(n: usize) -> Vec<Origin> {
    (0..n).map(|i| Origin::start(&format!("o{i}"))).collect()
}

fn addrs(origins: &[Origin]) -> Vec<SocketAddr> {
    origins.iter().map(|o| o.addr).collect()
}

#[test]
fn header_keys_map_identically_on_two_instances_and_removal_moves_few() {
    let os = origins(10);
    let all = addrs(&os);
    let conf = hash_conf(&all, 0);
    let (a, b) = (host_from_conf(&conf), host_from_conf(&conf));
    assert_keys_map_identically(a.addr(), b.addr(), 10);
    let ten = owners(a.addr(), 1000);
    let nine = host_from_conf(&hash_conf(&all[..9], 0));
    assert_removal_moves_few(&ten, &owners(nine.addr(), 1000), &os[9].name);
}

#[test]
fn bounded_loads_hold_a_hot_key_to_its_share() {
    let os = origins(4);
    let bounded = host_from_conf(&hash_conf(&addrs(&os), 125));
    let unbounded = host_from_conf(&hash_conf(&addrs(&os), 0));
    assert_bounded_loads(bounded.addr(), unbounded.addr(), 40);
}

#[test]
fn sticky_clients_keep_their_server_and_move_when_it_goes() {
    let mut os = origins(3);
    let host = host_from_conf(&sticky_conf(&addrs(&os)));
    let (value, server) = assert_sticky_client_keeps_its_server(host.addr());
    assert_forged_cookies_are_ignored(host.addr());
    let at = os.iter().position(|o| o.name == server).unwrap();
    let (other_value, other) =
        assert_drained_server_clients_move(host.addr(), &value, &server, os[at].addr);
    let dead = os.iter().position(|o| o.name == other).unwrap();
    os.remove(dead).kill();
    assert_dead_server_clients_move(host.addr(), &other_value, &other);
}

#[test]
fn sticky_cookies_survive_reordering_and_new_servers() {
    let os = origins(3);
    let first = host_from_conf(&sticky_conf(&addrs(&os)));
    let (value, server) = assert_sticky_client_keeps_its_server(first.addr());
    // Another instance with the servers in another order and one more: same routing.
    let extra = Origin::start("o3");
    let mut list = vec![extra.addr];
    list.extend(addrs(&os).into_iter().rev());
    let second = host_from_conf(&sticky_conf(&list));
    for _ in 0..10 {
        let r = get_id(second.addr(), Some(&value));
        assert_eq!(body(&r), server);
        assert_eq!(r.header("Set-Cookie"), None);
    }
    // Another secret: the value names no server there.
    let other = host_from_conf(&sticky_conf(&addrs(&os)).replace(SECRET, &SECRET.repeat(2)));
    assert!(set_value(&get_id(other.addr(), Some(&value))).is_some());
}

#[test]
fn every_key_kind_picks_the_same_server_for_one_value() {
    let os = origins(5);
    let servers = addrs(&os);
    let host = |key: &str| {
        host_from_conf(&conf(
            &servers,
            &format!("    LoadBalancer SourceHash\n    HashKey {key}\n"),
        ))
    };
    let hosts = [
        host("header X-User"),
        host("cookie sid"),
        host("query user"),
        host("path"),
        host("uri"),
        host("source"),
    ];
    let [h, c, q, p, u, s] = hosts.each_ref().map(|h| h.addr());
    assert_every_key_kind_picks_the_same_server(h, c, q, p, u, s);
}
