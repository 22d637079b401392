//! Host and method routing and path rewrites (#19) through the stand-in host; the same
//! scenarios run in a real Monkey in `tests/monkey_routing.rs`.

mod common;
mod routing_support;

use common::host_from_conf;
use routing_support::*;

#[test]
fn host_method_and_rewrite_rules_through_the_stand_in_host() {
    let [a, b, c, d] = origins();
    let host = host_from_conf(&routing_conf(a.addr, b.addr, c.addr, d.addr));
    assert_hosts_choose_the_backend(host.addr());
    assert_methods_choose_the_backend(host.addr());
    assert_rewrites_reach_the_origin_exactly(host.addr());
}
