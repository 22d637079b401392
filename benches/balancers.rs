//! One `Upstream::plan` (balancer order + health filter) per method, on 1 and 2 threads.
//!
//! `cargo bench --bench balancers -- --warm-up-time 1 --measurement-time 2`
//!
//! On 2 threads a second thread plans on the same upstream at the same time, so shared
//! counters (round robin, least connections) bounce between cores as they do between Monkey
//! workers; the figure is the time per plan seen by one of the two threads.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_reverse::balancer::{seed_thread_rng, RequestContext};
use proxy_reverse::config::ServerSpec;
use proxy_reverse::config::BALANCERS as REGISTRY;
use proxy_reverse::health::HaPolicy;
use proxy_reverse::upstream::Upstream;

fn upstream(method: &str) -> Upstream {
    let specs: Vec<ServerSpec> = [3, 2, 1]
        .iter()
        .enumerate()
        .map(|(i, &weight)| ServerSpec {
            name: format!("10.0.0.{}:80", i + 1),
            addr: format!("10.0.0.{}:80", i + 1).parse().unwrap(),
            weight,
            tls: false,
            backup: false,
        })
        .collect();
    Upstream::with_policy(&specs, method, HaPolicy::new(2, Duration::from_secs(10))).unwrap()
}

fn plans(up: &Upstream, iters: u64) {
    let mut out = Vec::with_capacity(8);
    for k in 0..iters {
        let ctx = RequestContext {
            client_ip: IpAddr::V4(Ipv4Addr::from(k as u32)),
            connection_id: k,
            path: "/",
            key: None,
            sticky: None,
        };
        up.plan(black_box(&ctx), 1, &mut out);
        black_box(&out);
    }
}

fn bench(c: &mut Criterion) {
    seed_thread_rng(1);
    let mut one = c.benchmark_group("plan/1-thread");
    for reg in REGISTRY {
        let up = upstream(reg.name);
        one.bench_function(reg.name, |b| {
            b.iter_custom(|iters| time(|| plans(&up, iters)))
        });
    }
    one.finish();

    let mut two = c.benchmark_group("plan/2-threads");
    for reg in REGISTRY {
        let up = Arc::new(upstream(reg.name));
        two.bench_function(reg.name, |b| {
            b.iter_custom(|iters| {
                let barrier = Arc::new(Barrier::new(2));
                let other = {
                    let (up, barrier) = (up.clone(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        plans(&up, iters);
                    })
                };
                barrier.wait();
                let elapsed = time(|| plans(&up, iters));
                other.join().unwrap();
                elapsed
            })
        });
    }
    two.finish();
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

criterion_group!(benches, bench);
criterion_main!(benches);
