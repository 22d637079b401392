//! Backups, outlier ejection limits and slow start in the group's planning, on a clock
//! passed in.

use std::time::Duration;

use super::*;
use crate::health::check::{ProbeFailure, ProbeResult, Status};

const PASS: ProbeResult = ProbeResult::Pass;
const FAIL: ProbeResult = ProbeResult::Fail(ProbeFailure::Refused);

/// The group of the one entry of `text` (servers 127.0.0.1:81, :82, …), at time 1.
fn group(text: &str) -> Upstream {
    let config = crate::config::parse_str(
        text,
        std::path::Path::new("t.conf"),
        &crate::config::SystemResolver,
    )
    .unwrap();
    Upstream::carried_at(&config.entries[0], None, 1).unwrap()
}

fn ctx() -> RequestContext<'static> {
    RequestContext {
        client_ip: "127.0.0.1".parse().unwrap(),
        connection_id: 1,
        path: "/",
        key: None,
        sticky: None,
    }
}

fn plan(up: &Upstream, now: Millis) -> Vec<usize> {
    let mut out = Vec::new();
    up.plan(&ctx(), now, &mut out);
    out
}

fn probe_all(up: &Upstream, result: ProbeResult, now: Millis) {
    for i in 0..up.servers().len() {
        up.record_probe(i, result, Duration::ZERO, now);
    }
}

#[test]
fn backups_come_after_every_primary_and_serve_when_none_is_usable() {
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82 backup 127.0.0.1:83\n \
         LoadBalancer RoundRobin\n HealthCheck tcp\n HealthCheckRise 1\n HealthCheckFall 1\n",
    );
    probe_all(&up, PASS, 10);
    for _ in 0..6 {
        let p = plan(&up, 20);
        assert_eq!(
            p.last(),
            Some(&1),
            "the backup is the last candidate: {p:?}"
        );
        assert!(up.is_idle_backup(1, 20));
    }
    up.record_probe(0, FAIL, Duration::ZERO, 30);
    up.record_probe(2, FAIL, Duration::ZERO, 30);
    assert_eq!(plan(&up, 40), [1]);
    assert!(!up.is_idle_backup(1, 40));
    up.record_probe(2, PASS, Duration::ZERO, 50);
    assert_eq!(plan(&up, 60), [2, 1], "a primary back takes over");
}

#[test]
fn a_checking_server_serves_only_while_none_is_up() {
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82\n \
         LoadBalancer RoundRobin\n HealthCheck tcp\n",
    );
    let mut p = plan(&up, 5);
    p.sort_unstable();
    assert_eq!(p, [0, 1], "all checking: all serve");
    up.record_probe(1, PASS, Duration::ZERO, 6);
    assert_eq!(
        plan(&up, 7),
        [1, 0],
        "checking: tried only after the up one"
    );
    assert_eq!(plan(&up, 7), [1, 0]);
    up.record_probe(0, FAIL, Duration::ZERO, 8);
    assert_eq!(plan(&up, 9), [1]);
    assert_eq!(
        up.add_last_resorts(&mut vec![1]),
        0,
        "no request is a probe"
    );
}

fn outliers(servers: &str, percent: u32) -> Upstream {
    group(&format!(
        "[PROXY_ENTRY]\n Match ^/\n ServerList {servers}\n LoadBalancer RoundRobin\n \
         OutlierConsecutive5xx 3\n OutlierEjectionTime 10\n OutlierMaxEjectionPercent {percent}\n"
    ))
}

fn fail_5xx(up: &Upstream, i: usize, n: usize, now: Millis) {
    for _ in 0..n {
        up.record_response(i, 503, now);
    }
}

#[test]
fn with_two_servers_one_may_be_ejected_but_never_the_last_usable() {
    // 10 % of two servers is none; one may always be ejected.
    let up = outliers("127.0.0.1:81 127.0.0.1:82", 10);
    fail_5xx(&up, 0, 3, 100);
    assert!(up.servers()[0].outlier.is_ejected(100));
    fail_5xx(&up, 1, 10, 100);
    assert!(
        !up.servers()[1].outlier.is_ejected(100),
        "the last usable one stays"
    );
    assert_eq!(plan(&up, 200), [1]);
    // Back after 10 s; the other may go now.
    assert_eq!(plan(&up, 10_200).len(), 2);
    fail_5xx(&up, 1, 3, 10_300);
    assert!(up.servers()[1].outlier.is_ejected(10_300));
    // A lone server is never ejected.
    let one = outliers("127.0.0.1:81", 100);
    fail_5xx(&one, 0, 10, 1);
    assert!(!one.servers()[0].outlier.is_ejected(1));
}

#[test]
fn ejections_stop_at_the_percentage_and_grow_with_repeats() {
    let up = outliers("127.0.0.1:81 127.0.0.1:82 127.0.0.1:83 127.0.0.1:84", 50);
    for i in 0..4 {
        fail_5xx(&up, i, 3, 1_000);
    }
    let ejected = (0..4)
        .filter(|&i| up.servers()[i].outlier.is_ejected(1_000))
        .count();
    assert_eq!(ejected, 2, "50 % of four");
    // Server 0 again right after its return: twice as long.
    assert!(!up.servers()[0].outlier.is_ejected(11_000));
    fail_5xx(&up, 0, 3, 11_000);
    assert_eq!(up.servers()[0].outlier.until(), 31_000);
    let p = plan(&up, 12_000);
    assert!(!p.contains(&0), "{p:?}");
    // Percentage 0: no ejection at all.
    let none = outliers("127.0.0.1:81 127.0.0.1:82", 0);
    fail_5xx(&none, 0, 10, 1);
    assert!(!none.servers()[0].outlier.is_ejected(1));
}

#[test]
fn slow_start_draws_a_returning_server_by_its_ramp() {
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82\n \
         LoadBalancer RoundRobin\n HealthCheck tcp\n HealthCheckRise 1\n HealthCheckFall 1\n \
         SlowStart 10\n",
    );
    // Both come up together: both ramp alike, so neither is held back.
    probe_all(&up, PASS, 1_000);
    let share = |now: Millis| {
        let firsts = (0..4000).filter(|_| plan(&up, now)[0] == 1).count();
        firsts as f64 / 4000.0
    };
    assert!((share(2_000) - 0.5).abs() < 0.05);
    // Server 1 goes down and comes back at 20 s: 10 % of its weight at first, all at 30 s.
    up.record_probe(1, FAIL, Duration::ZERO, 15_000);
    up.record_probe(1, PASS, Duration::ZERO, 20_000);
    assert_eq!(up.ramp_permille(1, 20_000), 100);
    assert_eq!(up.ramp_permille(1, 25_000), 550);
    assert_eq!(up.ramp_permille(1, 30_000), 1000);
    // Round robin: a share of w / (1 + w) of the first choices.
    let early = share(20_000);
    let middle = share(25_000);
    let late = share(30_000);
    assert!((early - 0.1 / 1.1).abs() < 0.04, "{early}");
    assert!((middle - 0.55 / 1.55).abs() < 0.05, "{middle}");
    assert!((late - 0.5).abs() < 0.05, "{late}");
}

#[test]
fn hash_methods_are_not_ramped() {
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82\n \
         LoadBalancer SourceHash\n SlowStart 10\n",
    );
    assert_eq!(up.slow_start, 0);
}

#[test]
fn users_failures_count_again_from_zero_once_probes_bring_a_server_back() {
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82\n \
         HealthCheck tcp\n HealthCheckRise 1\n AttemptsCount 2\n",
    );
    probe_all(&up, PASS, 1);
    up.record_failure(0, FailureKind::ConnectRefused, 2);
    up.record_failure(0, FailureKind::ConnectRefused, 3);
    assert_eq!(up.servers()[0].check.status(), Status::Down);
    up.record_probe(0, PASS, Duration::ZERO, 4);
    assert_eq!(up.servers()[0].check.status(), Status::Up);
    up.record_failure(0, FailureKind::ConnectRefused, 5);
    assert_eq!(
        up.servers()[0].check.status(),
        Status::Up,
        "one failure is not two"
    );
}

#[test]
fn every_weighted_method_ramps_a_returning_server() {
    for method in [
        "RoundRobin",
        "LockingRoundRobin",
        "Random",
        "PowerOfTwo",
        "LeastConnections",
    ] {
        let up = group(&format!(
            "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82\n \
             LoadBalancer {method}\n HealthCheck tcp\n HealthCheckRise 1\n HealthCheckFall 1\n \
             SlowStart 10\n"
        ));
        up.record_probe(0, PASS, Duration::ZERO, 1);
        up.record_probe(1, PASS, Duration::ZERO, 100_000);
        let share =
            |now: Millis| (0..4000).filter(|_| plan(&up, now)[0] == 1).count() as f64 / 4000.0;
        let (early, late) = (share(100_000), share(110_000));
        assert!(early < 0.2, "{method}: {early} at 10 %");
        assert!(late > 0.4, "{method}: {late} at full weight");
    }
}

fn entry_of(text: &str) -> crate::config::Entry {
    crate::config::parse_str(
        text,
        std::path::Path::new("t.conf"),
        &crate::config::SystemResolver,
    )
    .unwrap()
    .entries
    .remove(0)
}

#[test]
fn checks_turned_on_by_a_reload_start_from_what_was_known() {
    let servers = "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82\n";
    let old = Upstream::carried_at(&entry_of(servers), None, 1).unwrap();
    // Server 1 went offline by users' failures (AttemptsCount 2 by default).
    old.record_failure(1, FailureKind::ConnectRefused, 10);
    old.record_failure(1, FailureKind::ConnectRefused, 11);
    assert_ne!(old.servers()[1].health.offline_until(), 0);
    let with_checks = format!("{servers} HealthCheck tcp\n");
    let new = Upstream::carried_at(&entry_of(&with_checks), Some(&old), 20).unwrap();
    assert_eq!(new.servers()[0].check.status(), Status::Up, "serving: up");
    let w = new.servers()[1].check.word();
    assert_eq!(w.status, Status::Down, "offline: down until probes pass");
    assert_eq!(w.reason.describe(), "2 failed requests: connection refused");
    assert_eq!(plan(&new, 30), [0]);
    // The same state, not a copy: the old configuration's requests see it too.
    assert!(std::sync::Arc::ptr_eq(
        &old.servers()[1].state,
        &new.servers()[1].state
    ));
    // A server the reload adds is checking; a reload that keeps checks keeps the states.
    let more = format!("{with_checks} ServerList 127.0.0.1:83\n");
    let next = Upstream::carried_at(&entry_of(&more), Some(&new), 40).unwrap();
    assert_eq!(next.servers()[2].check.status(), Status::Checking);
    assert_eq!(next.servers()[1].check.status(), Status::Down);
}

/// `plan` for a request whose sticky cookie names server `sticky`.
fn plan_sticky(up: &Upstream, sticky: usize, now: Millis) -> Vec<usize> {
    let mut out = Vec::new();
    let ctx = RequestContext {
        sticky: Some(sticky),
        ..ctx()
    };
    up.plan(&ctx, now, &mut out);
    out
}

#[test]
fn the_sticky_server_goes_first_while_it_is_usable() {
    let secret = "s".repeat(32);
    let up = group(&format!(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82 127.0.0.1:83\n \
         LoadBalancer RoundRobin\n StickyCookie SRV\n StickySecret {secret}\n"
    ));
    assert_eq!(up.sticky().map(Sticky::name), Some("SRV"));
    for _ in 0..6 {
        let p = plan_sticky(&up, 2, 1);
        assert_eq!(p[0], 2, "{p:?}");
        let mut sorted = p.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2], "the balancer's order follows: {p:?}");
    }
    up.servers()[2].admin.set(Admin::Drain);
    for _ in 0..6 {
        assert!(!plan_sticky(&up, 2, 1).contains(&2), "drained");
    }
    up.servers()[2].admin.set(Admin::Ready);
    assert_eq!(plan_sticky(&up, 2, 1)[0], 2);
    // An index out of range (a value of another list) changes nothing.
    assert_eq!(plan_sticky(&up, 7, 1).len(), 3);
}

#[test]
fn a_sticky_backup_gives_way_to_a_usable_primary() {
    let secret = "s".repeat(32);
    let up = group(&format!(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81 127.0.0.1:82 backup\n \
         LoadBalancer RoundRobin\n HealthCheck tcp\n HealthCheckRise 1\n HealthCheckFall 1\n \
         StickyCookie SRV\n StickySecret {secret}\n"
    ));
    probe_all(&up, PASS, 10);
    assert_eq!(plan_sticky(&up, 1, 20), [0, 1], "the backup stays last");
    up.record_probe(0, FAIL, Duration::ZERO, 30);
    assert_eq!(plan_sticky(&up, 1, 40), [1]);
    assert_eq!(
        plan_sticky(&up, 0, 40),
        [1],
        "a sticky server that is down is skipped"
    );
}

#[test]
fn only_a_hash_method_reads_a_hash_key() {
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81\n LoadBalancer RoundRobin\n \
         HashKey header X-User\n",
    );
    assert!(up.hash_key().is_none() && up.sticky().is_none());
    let up = group(
        "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81\n LoadBalancer SourceHash\n \
         HashKey header X-User\n",
    );
    assert!(up.hash_key().is_some());
    let up =
        group("[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81\n LoadBalancer SourceHash\n");
    assert!(
        up.hash_key().is_none(),
        "source: the client address, nothing to read"
    );
}

#[test]
fn one_server_plans_as_its_balancer_does() {
    // `plan`'s one-server path against the balancers' own (`plan_by_balancer`), for every
    // method, the server up, offline by users' failures, back for its probe, drained, in
    // maintenance, with and without a sticky server (a valid and an out-of-range one).
    for method in crate::config::BALANCERS {
        let up = group(&format!(
            "[PROXY_ENTRY]\n Match ^/\n ServerList 127.0.0.1:81\n LoadBalancer {}\n \
             AttemptsCount 1\n OfflineTimeOut 5\n",
            method.name
        ));
        assert!(up.plain, "{}", method.name);
        let mut states = Vec::new();
        let mut check = |up: &Upstream, now: Millis, what: &str| {
            for sticky in [None, Some(0), Some(1), Some(7)] {
                let ctx = RequestContext { sticky, ..ctx() };
                let (mut fast, mut general) = (vec![9], Vec::new());
                up.plan(&ctx, now, &mut fast);
                up.plan_by_balancer(&ctx, now, &mut general);
                assert_eq!(fast, general, "{} {what} sticky {sticky:?}", method.name);
                states.push(fast.len());
            }
        };
        check(&up, 10, "up");
        up.record_failure(0, FailureKind::ConnectRefused, 20);
        check(&up, 30, "offline");
        check(&up, 6_000, "due for its probe");
        up.record_success(0, 6_000);
        up.servers()[0].admin.set(Admin::Drain);
        check(&up, 6_010, "drained");
        up.servers()[0].admin.set(Admin::Maint);
        check(&up, 6_020, "in maintenance");
        up.servers()[0].admin.set(Admin::Ready);
        check(&up, 6_030, "ready again");
        // Both outcomes were met: the server planned, and none.
        assert!(states.contains(&0) && states.contains(&1), "{states:?}");
    }
}
