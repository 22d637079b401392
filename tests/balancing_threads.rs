//! Every balancer hammered from 8 threads: no panic, every pick counted, in-flight back to 0.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use proxy_reverse::balancer::RequestContext;
use proxy_reverse::config::ServerSpec;
use proxy_reverse::config::BALANCERS as REGISTRY;
use proxy_reverse::health::{FailureKind, HaPolicy, HealthState};
use proxy_reverse::upstream::Upstream;

const THREADS: usize = 8;
const PICKS: usize = 20_000;
const WEIGHTS: [u32; 4] = [1, 2, 3, 4];

fn upstream(method: &str, timeout: Duration) -> Arc<Upstream> {
    let specs: Vec<ServerSpec> = WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &weight)| ServerSpec {
            name: format!("10.20.0.{}:80", i + 1),
            addr: format!("10.20.0.{}:80", i + 1).parse().unwrap(),
            weight,
            tls: false,
            backup: false,
        })
        .collect();
    Arc::new(Upstream::with_policy(&specs, method, HaPolicy::new(2, timeout)).unwrap())
}

/// Runs `body(thread, step, out)` from 8 threads started together; returns per-server counts.
fn hammer(
    up: &Arc<Upstream>,
    body: fn(&Upstream, usize, usize, &mut Vec<usize>) -> Option<usize>,
) -> Vec<usize> {
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (up, barrier) = (up.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut out = Vec::with_capacity(WEIGHTS.len());
                let mut counts = vec![0usize; WEIGHTS.len()];
                barrier.wait();
                for step in 0..PICKS {
                    if let Some(i) = body(&up, t, step, &mut out) {
                        counts[i] += 1;
                    }
                }
                counts
            })
        })
        .collect();
    let mut total = vec![0; WEIGHTS.len()];
    for t in threads {
        for (sum, c) in total.iter_mut().zip(t.join().expect("no panic")) {
            *sum += c;
        }
    }
    for s in up.servers() {
        assert_eq!(
            s.in_flight.load(Ordering::Relaxed),
            0,
            "{}",
            up.balancer_name()
        );
    }
    total
}

fn ctx(t: usize, step: usize) -> RequestContext<'static> {
    RequestContext {
        client_ip: IpAddr::V4(Ipv4Addr::new(192, 0, (t % 256) as u8, (step % 256) as u8)),
        connection_id: (t * PICKS + step) as u64,
        path: "/",
        key: None,
        sticky: None,
    }
}

/// One request: plan, acquire the first candidate that accepts, release.
fn request(up: &Upstream, t: usize, step: usize, out: &mut Vec<usize>) -> Option<usize> {
    up.plan(&ctx(t, step), 1, out);
    assert_eq!(out.len(), WEIGHTS.len());
    let i = out.iter().copied().find(|&i| up.acquire(i, 1))?;
    up.release(i);
    Some(i)
}

#[test]
fn every_balancer_survives_eight_threads() {
    for reg in REGISTRY {
        let up = upstream(reg.name, Duration::from_secs(10));
        let counts = hammer(&up, request);
        assert_eq!(
            counts.iter().sum::<usize>(),
            THREADS * PICKS,
            "{}",
            reg.name
        );
    }
}

#[test]
fn round_robin_shares_stay_exact_under_contention() {
    // 160 000 picks = 16 000 whole cycles of weights 1:2:3:4, whatever the interleaving.
    for method in ["RoundRobin", "LockingRoundRobin"] {
        let up = upstream(method, Duration::from_secs(10));
        let counts = hammer(&up, request);
        let cycles = THREADS * PICKS / 10;
        let want: Vec<usize> = WEIGHTS.iter().map(|&w| w as usize * cycles).collect();
        assert_eq!(counts, want, "{method}");
    }
}

/// Requests overlap (each thread holds up to 3), some fail, some succeed, servers go offline
/// and come back while every method keeps answering; the counters must balance at the end.
#[test]
fn every_balancer_with_failures_and_overlapping_requests() {
    fn body(up: &Upstream, t: usize, step: usize, out: &mut Vec<usize>) -> Option<usize> {
        let now = step as u64; // a fast clock: offline periods of 50 ms end within the run
        up.plan(&ctx(t, step), now, out);
        let mut held: Vec<usize> = out
            .iter()
            .copied()
            .filter(|&i| up.acquire(i, now))
            .take(3)
            .collect();
        if held.is_empty() {
            // Nothing available or everything taken: the last resorts, as the relay does.
            let planned = out.len();
            up.add_last_resorts(out);
            for &i in &out[planned..] {
                up.acquire_last_resort(i, now);
                held.push(i);
            }
        }
        for &i in &held {
            // Server 0 always fails, the others fail one attempt in 7.
            if i == 0 || (t + step + i) % 7 == 0 {
                up.record_failure(i, FailureKind::ConnectRefused, now);
            } else {
                up.record_success(i, now);
            }
        }
        for &i in &held {
            up.release(i);
        }
        held.first().copied()
    }
    for reg in REGISTRY {
        let up = upstream(reg.name, Duration::from_millis(50));
        let counts = hammer(&up, body);
        assert!(counts.iter().sum::<usize>() > 0, "{}", reg.name);
        assert_ne!(
            up.servers()[0].health.snapshot().state,
            HealthState::Up,
            "{}: the always-failing server ends offline",
            reg.name
        );
    }
}
