//! High-availability transitions with an injected clock.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, OnceLock};
use std::time::Duration;

use proxy_reverse::balancer::RequestContext;
use proxy_reverse::config::ServerSpec;
use proxy_reverse::health::{FailureKind, HaPolicy, HealthState, Transition};
use proxy_reverse::log;
use proxy_reverse::upstream::Upstream;

const T: u64 = 10_000; // OfflineTimeOut 10 s, in ms

/// Every test uses its own subnet so that the log lines of parallel tests can be told apart.
fn upstream(net: u8, n: usize, method: &str, attempts: u32, timeout_ms: u64) -> Upstream {
    let specs: Vec<ServerSpec> = (0..n)
        .map(|i| ServerSpec {
            name: format!("10.{net}.0.{}:80", i + 1),
            addr: format!("10.{net}.0.{}:80", i + 1).parse().unwrap(),
            weight: 1,
            tls: false,
            backup: false,
        })
        .collect();
    let policy = HaPolicy::new(attempts, Duration::from_millis(timeout_ms));
    Upstream::with_policy(&specs, method, policy).unwrap()
}

fn ctx() -> RequestContext<'static> {
    RequestContext {
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        connection_id: 1,
        path: "/",
        key: None,
        sticky: None,
    }
}

fn plan(up: &Upstream, now: u64) -> Vec<usize> {
    let mut out = Vec::new();
    up.plan(&ctx(), now, &mut out);
    out
}

fn logged() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        log::set_sink(|level, line| logged().lock().unwrap().push(format!("{level:?} {line}")));
        Mutex::new(Vec::new())
    })
}

/// The lines logged about subnet `net` so far (lines reach the sink from the log thread:
/// wait for those queued before).
fn lines_about(net: u8) -> Vec<String> {
    let tag = format!("10.{net}.0.");
    assert!(
        log::flush(Duration::from_secs(10)),
        "the log thread is stuck"
    );
    logged()
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&tag))
        .cloned()
        .collect()
}

fn fail(up: &Upstream, i: usize, now: u64) {
    up.record_failure(i, FailureKind::ConnectRefused, now);
}

#[test]
fn failures_below_the_threshold_keep_a_server_up() {
    let up = upstream(1, 2, "FirstAlive", 3, T);
    fail(&up, 0, 100);
    fail(&up, 0, 100);
    assert_eq!(up.servers()[0].health.snapshot().state, HealthState::Up);
    assert_eq!(up.servers()[0].health.snapshot().consecutive_failures, 2);
    assert_eq!(plan(&up, 100), [0, 1]);
    // A success resets the count: failures must be consecutive.
    up.record_success(0, 100);
    fail(&up, 0, 100);
    fail(&up, 0, 100);
    assert_eq!(up.servers()[0].health.snapshot().state, HealthState::Up);
}

#[test]
fn attempts_count_failures_take_a_server_offline_and_it_is_skipped() {
    logged();
    let up = upstream(2, 3, "FirstAlive", 2, T);
    fail(&up, 1, 1000);
    fail(&up, 1, 1000);
    let snap = up.servers()[1].health.snapshot();
    assert_eq!(snap.state, HealthState::Offline);
    assert_eq!(snap.offline_until, 1000 + T);
    assert_eq!(snap.consecutive_failures, 2);
    assert_eq!(snap.last_reason, "connection refused");
    assert_eq!(plan(&up, 1000), [0, 2]);
    assert_eq!(plan(&up, 1000 + T - 1), [0, 2]);
    assert_eq!(
        lines_about(2),
        ["Warn server 10.2.0.2:80 offline after 2 failed attempts: connection refused"]
    );
}

#[test]
fn late_failures_while_offline_change_nothing() {
    logged();
    let up = upstream(12, 2, "FirstAlive", 2, T);
    fail(&up, 1, 0);
    fail(&up, 1, 0);
    // Requests that started before it went offline fail later: no probe is claimed, so the
    // offline period is not extended and nothing is logged again.
    fail(&up, 1, 5000);
    assert_eq!(up.servers()[1].health.offline_until(), T);
    assert_eq!(lines_about(12).len(), 1);
}

#[test]
fn after_the_timeout_exactly_one_request_probes() {
    let up = upstream(3, 2, "RoundRobin", 1, T);
    fail(&up, 0, 0);
    let now = T;
    assert!(plan(&up, now).contains(&0), "due for a probe");
    assert!(up.acquire(0, now));
    assert_eq!(
        up.servers()[0].health.snapshot().state,
        HealthState::Probing
    );
    assert!(!up.acquire(0, now), "the probe slot is taken");
    assert_eq!(
        plan(&up, now),
        [1],
        "a live probe hides it from other plans"
    );
    up.release(0);
}

#[test]
fn single_probe_claim_under_concurrency() {
    let up = Arc::new(upstream(4, 2, "FirstAlive", 1, T));
    fail(&up, 0, 0);
    let barrier = Arc::new(Barrier::new(8));
    let winners = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (up, barrier, winners) = (up.clone(), barrier.clone(), winners.clone());
            std::thread::spawn(move || {
                barrier.wait();
                for _ in 0..100 {
                    if up.acquire(0, T) {
                        winners.fetch_add(1, Ordering::Relaxed);
                        // Hold the probe: it is never released in this test.
                        return;
                    }
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(winners.load(Ordering::Relaxed), 1);
    assert_eq!(up.servers()[0].in_flight.load(Ordering::Relaxed), 1);
}

#[test]
fn probe_success_brings_it_back_and_logs_once() {
    logged();
    let up = upstream(5, 2, "FirstAlive", 2, T);
    fail(&up, 1, 0);
    fail(&up, 1, 0);
    assert!(up.acquire(1, T + 5));
    up.record_success(1, T + 5);
    up.release(1);
    let snap = up.servers()[1].health.snapshot();
    assert_eq!(
        (snap.state, snap.offline_until, snap.consecutive_failures),
        (HealthState::Up, 0, 0)
    );
    assert_eq!(snap.last_reason, "response received");
    assert_eq!(plan(&up, T + 5), [0, 1]);
    up.record_success(1, T + 6);
    assert_eq!(
        lines_about(5),
        [
            "Warn server 10.5.0.2:80 offline after 2 failed attempts: connection refused",
            "Info server 10.5.0.2:80 back up"
        ]
    );
}

#[test]
fn probe_failure_restarts_the_timeout() {
    let up = upstream(6, 2, "FirstAlive", 2, T);
    fail(&up, 0, 0);
    fail(&up, 0, 0);
    let now = T + 300;
    assert!(up.acquire(0, now));
    up.record_failure(0, FailureKind::ConnectTimeout, now);
    up.release(0);
    let snap = up.servers()[0].health.snapshot();
    assert_eq!(snap.state, HealthState::Offline);
    assert_eq!(snap.offline_until, now + T);
    assert_eq!(snap.last_reason, "connect timeout");
    assert_eq!(plan(&up, now + T - 1), [1]);
    assert_eq!(plan(&up, now + T), [0, 1]);
    assert_eq!(
        proxy_reverse::health::Transition::ProbeFailed {
            kind: FailureKind::ConnectTimeout
        }
        .message("x:1"),
        "server x:1 still offline, probe failed: connect timeout"
    );
}

#[test]
fn an_abandoned_probe_frees_the_slot() {
    // Server 1 stays up, so server 0's probe is the usual one, one request at a time.
    let up = upstream(7, 2, "FirstAlive", 1, T);
    fail(&up, 0, 0);
    assert!(up.acquire(0, T));
    up.release(0); // no outcome recorded (the client went away)
    assert!(up.acquire(0, T + 1), "the next request may probe");
    // A probe that never releases is taken over after another timeout.
    assert!(!up.acquire(0, T + 2));
    assert!(up.acquire(0, 2 * T + 1));
}

#[test]
fn offline_timeout_zero_disables_high_availability() {
    let up = upstream(8, 2, "FirstAlive", 1, 0);
    for now in 0..100 {
        fail(&up, 0, now);
    }
    let snap = up.servers()[0].health.snapshot();
    assert_eq!(snap.state, HealthState::Up);
    assert_eq!(snap.consecutive_failures, 100);
    assert_eq!(plan(&up, 100), [0, 1]);
    assert!(up.acquire(0, 100));
    assert!(lines_about(8).is_empty());
}

/// The candidates of a request once its planned ones are spent: the last resorts.
fn last_resorts(up: &Upstream, now: u64) -> Vec<usize> {
    let mut c = plan(up, now);
    let planned = c.len();
    up.add_last_resorts(&mut c);
    c.split_off(planned)
}

#[test]
fn all_offline_falls_back_to_the_longest_offline() {
    let up = upstream(9, 3, "RoundRobin", 1, T);
    fail(&up, 0, 3000);
    fail(&up, 1, 1000); // offline longest: until T + 1000
    fail(&up, 2, 2000);
    assert!(plan(&up, 5000).is_empty());
    for _ in 0..3 {
        assert_eq!(
            last_resorts(&up, 5000),
            [1, 2],
            "the two offline longest, oldest first"
        );
    }
    assert_eq!(
        up.retry_after_secs(5000),
        6,
        "T + 1000 - 5000 ms, rounded up"
    );
    // No request waits for a free probe (it would get a 503 while the servers may be back):
    // each may try the last resorts, taking the probe over.
    up.acquire_last_resort(1, 5000);
    up.acquire_last_resort(1, 5000);
    up.record_failure(1, FailureKind::ConnectRefused, 5000);
    up.release(1);
    up.release(1);
    assert_eq!(
        last_resorts(&up, 5000),
        [2, 0],
        "now server 2 has been offline longest"
    );
    assert_eq!(up.retry_after_secs(5000), 7);
    assert_eq!(up.retry_after_secs(100_000), 1);
    // A last resort that answers brings its server back, and the pool is served again.
    up.acquire_last_resort(2, 5001);
    up.record_success(2, 5001);
    up.release(2);
    assert_eq!(plan(&up, 5002), [2]);
    // A request whose planned server fails still has the two offline longest to try.
    let mut c = plan(&up, 5002);
    assert_eq!(up.add_last_resorts(&mut c), 2);
    assert_eq!(c, [2, 0, 1]);
    // While one server is available, the offline ones wait for their timeout as usual.
    assert!(!up.acquire(0, 5002));
}

#[test]
fn retry_after_is_at_least_one_second() {
    let up = upstream(10, 2, "FirstAlive", 1, T);
    assert_eq!(up.retry_after_secs(0), 1);
    fail(&up, 0, 0);
    fail(&up, 1, 0);
    assert_eq!(up.retry_after_secs(T - 1), 1);
    assert_eq!(up.retry_after_secs(1), 10);
}

#[test]
fn concurrent_failures_log_the_transition_once() {
    logged();
    let up = Arc::new(upstream(11, 2, "FirstAlive", 2, T));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let up = up.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    up.record_failure(0, FailureKind::ResetBeforeResponse, 10);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let lines = lines_about(11);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("Warn server 10.11.0.1:80 offline after "),
        "{lines:?}"
    );
    assert!(lines[0].ends_with(": connection reset before response"));
    assert_eq!(up.servers()[0].health.offline_until(), 10 + T);
}

#[test]
fn transition_messages() {
    let one = Transition::WentOffline {
        failures: 1,
        kind: FailureKind::ReadTimeout,
    };
    assert_eq!(
        one.message("h:80"),
        "server h:80 offline after 1 failed attempt: read timeout"
    );
    assert!(one.is_warning() && !Transition::BackUp.is_warning());
    assert_eq!(HealthState::Probing.as_str(), "probing");
}

#[test]
fn a_request_planned_before_the_server_went_offline_does_not_probe_it_early() {
    let up = upstream(90, 2, "FirstAlive", 1, T);
    // Planned while server 0 is up...
    assert_eq!(plan(&up, 1_000), vec![0, 1]);
    // ...then another request takes it offline.
    assert!(up.acquire(0, 1_000));
    up.record_failure(0, FailureKind::ConnectRefused, 1_000);
    up.release(0);
    // The stale plan's attempt on server 0 is refused before the timeout while 1 is up.
    assert!(!up.acquire(0, 1_500));
    assert!(up.acquire(1, 1_500));
    up.release(1);
    // After the timeout exactly one request probes it.
    assert!(up.acquire(0, 1_000 + T));
    assert!(!up.acquire(0, 1_000 + T));
    up.release(0);
}

#[test]
fn the_all_offline_fallback_may_probe_before_the_timeout() {
    let up = upstream(91, 1, "FirstAlive", 1, T);
    assert!(up.acquire(0, 1_000));
    up.record_failure(0, FailureKind::ConnectRefused, 1_000);
    up.release(0);
    let mut candidates = plan(&up, 2_000);
    assert!(candidates.is_empty(), "offline, its timeout running");
    assert_eq!(up.add_last_resorts(&mut candidates), 1);
    assert_eq!(
        candidates,
        [0],
        "the only server is tried as the last resort"
    );
    up.acquire_last_resort(0, 2_000);
    up.release(0);
    // Its plain acquire works too (no server is available, so it is no probe candidate too
    // early): the probe slot is free again.
    assert!(up.acquire(0, 2_000));
    up.release(0);
}

#[test]
fn failed_last_resort_probes_are_not_logged_once_per_request() {
    // The only server is down and requests keep coming: each one tries it as the last
    // resort, and each failure restarts the offline period. One line says it went offline;
    // the failed last resorts add none (a line per request would flood Monkey's log). A probe
    // made after a whole period without traffic is logged once, as before.
    let up = upstream(93, 1, "FirstAlive", 1, T);
    fail(&up, 0, 1_000);
    assert_eq!(lines_about(93).len(), 1, "{:?}", lines_about(93));
    for k in 1..=50 {
        let now = 1_000 + k * 10;
        assert!(up.acquire(0, now), "last resort {k}");
        up.record_failure(0, FailureKind::ConnectRefused, now);
        up.release(0);
        assert_eq!(up.servers()[0].health.snapshot().offline_until, now + T);
    }
    assert_eq!(lines_about(93).len(), 1, "{:?}", lines_about(93));
    let later = 1_500 + T;
    assert!(up.acquire(0, later));
    up.record_failure(0, FailureKind::ConnectRefused, later);
    up.release(0);
    assert_eq!(
        lines_about(93),
        [
            "Warn server 10.93.0.1:80 offline after 1 failed attempt: connection refused",
            "Warn server 10.93.0.1:80 still offline, probe failed: connection refused"
        ]
    );
}

#[test]
fn a_late_success_from_before_the_outage_does_not_bring_the_server_back() {
    let up = upstream(92, 2, "FirstAlive", 1, T);
    // Request A is in flight on server 0 when request B's failure takes it offline.
    assert!(up.acquire(0, 1_000));
    assert!(up.acquire(0, 1_000));
    up.record_failure(0, FailureKind::ConnectRefused, 1_100);
    up.release(0);
    // A's response head arrives afterwards: no probe was claimed, so the state stays.
    up.record_success(0, 1_200);
    up.release(0);
    assert_eq!(
        up.servers()[0].health.snapshot().state,
        HealthState::Offline
    );
    assert_eq!(plan(&up, 1_300), vec![1]);
}
