//! Header rules (#19) in a real Monkey v1.8.9 with the plugin loaded (`MONKEY_BIN`): the
//! scenarios of `tests/header_rules.rs` (stand-in host), and the acceptance — request and
//! response rules seen at both ends, a rule removing `X-Forwarded-For` refused (by the
//! checker, and by Monkey, which does not start with it).

mod common;
mod e2e;
mod headers_support;

use std::process::Command;
use std::time::Duration;

use common::*;
use e2e::Monkey;
use headers_support::*;

fn finish(mut monkey: Monkey) {
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_request_and_response_rules_are_seen_at_both_ends() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&both_ways_conf(origin.addr));
    assert_rules_apply_both_ways(monkey.addr(), origin.addr);
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_response_rules_remove_set_and_add() {
    let (backend, _) = keep_alive_raw_origin(TWICE_REPLY.to_vec(), None);
    let monkey = Monkey::start(&response_edits_conf(backend));
    assert_response_edits(monkey.addr());
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_a_retried_request_names_the_server_it_reached() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&retried_conf(closing_backend(), origin.addr));
    assert_retried_request_names_its_server(monkey.addr(), origin.addr);
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_connection_names_cannot_undo_rules_or_forwarding_headers() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&connection_conf(origin.addr));
    assert_connection_names_cannot_undo_rules(monkey.addr());
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn monkey_refuses_a_rule_removing_x_forwarded_for_as_the_checker_does() {
    // The checker, on the same text.
    let dir = std::env::temp_dir().join(format!("monkey-headers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("proxy_reverse.conf");
    std::fs::write(&file, REFUSED_CONF).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_proxy-reverse-check"))
        .arg(&file)
        .output()
        .expect("run the checker");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err, format!("{}{REFUSAL}\n", file.display()));
    let _ = std::fs::remove_dir_all(&dir);
    // Monkey: exits 1 before it listens, with the same line in its output.
    let (code, ran, log) = Monkey::start_expecting_refusal(REFUSED_CONF);
    assert_eq!(code, Some(1), "exit status; log:\n{log}");
    assert!(ran < Duration::from_secs(5), "ran {ran:?}; log:\n{log}");
    assert!(
        log.contains(&format!("proxy_reverse.conf{REFUSAL}")),
        "{log}"
    );
    assert!(
        log.contains("configuration rejected (1 problem); Monkey does not start"),
        "{log}"
    );
}
