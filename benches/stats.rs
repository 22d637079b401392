//! The request-path cost of the statistics: one `Histogram::record`, and one
//! `Stats::record_response` (two counter blocks, two histograms each).
//!
//! `cargo bench --bench stats -- --warm-up-time 1 --measurement-time 3`
//!
//! The latencies cycle through 4096 values spread log-uniformly from 20 µs to 90 s (below the
//! first and past the last bucket bound too), so every bucket path is taken and the branch
//! predictor cannot learn one value.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_reverse::stats::{Exchange, Histogram, Stats};

const N: usize = 4096;

/// Log-uniform latencies from 20 µs to 90 s, shuffled by a fixed multiplicative step.
fn latencies() -> Vec<Duration> {
    let (lo, hi) = (20e-6f64.ln(), 90f64.ln());
    (0..N)
        .map(|i| {
            let j = (i * 2_654_435_761) % N;
            let x = lo + (hi - lo) * j as f64 / N as f64;
            Duration::from_secs_f64(x.exp())
        })
        .collect()
}

fn no_dns(host: &str, port: u16) -> Result<std::net::SocketAddr, String> {
    Err(format!("no DNS in benchmarks ({host}:{port})"))
}

fn bench(c: &mut Criterion) {
    let values = latencies();
    let h = Histogram::default();
    c.bench_function("histogram/record", |b| {
        let mut i = 0;
        b.iter(|| {
            h.record(black_box(values[i % N]));
            i += 1;
        })
    });
    black_box(h.snapshot());

    let config = proxy_reverse::config::parse_str(
        "[PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:9 127.0.0.1:10\n",
        std::path::Path::new("bench.conf"),
        &no_dns,
    )
    .expect("configuration");
    let stats = Stats::new(&config);
    c.bench_function("stats/record_response", |b| {
        let mut i = 0;
        b.iter(|| {
            let x = Exchange {
                status: 200,
                bytes_to_backend: 100,
                bytes_from_backend: 1000,
                head_latency: values[i % N] / 2,
                total_latency: values[i % N],
            };
            stats.record_response(0, i & 1, black_box(&x));
            i += 1;
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
