//! Host and method routing and path rewrites (#19) in a real Monkey v1.8.9: the scenarios of
//! `tests/routing.rs` (stand-in host), every path handed to the plugin by the test's
//! `[HANDLERS]` catch-all.

mod common;
mod e2e;
mod routing_support;

use e2e::Monkey;
use routing_support::*;

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_routes_by_host_and_method_and_rewrites_the_target() {
    let [a, b, c, d] = origins();
    let mut monkey = Monkey::start(&routing_conf(a.addr, b.addr, c.addr, d.addr));
    assert_hosts_choose_the_backend(monkey.addr());
    assert_methods_choose_the_backend(monkey.addr());
    assert_rewrites_reach_the_origin_exactly(monkey.addr());
    monkey.assert_alive();
}
