//! Counter and histogram correctness, including under concurrent load.

mod stats_support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use proxy_reverse::health::FailureKind;
use proxy_reverse::stats::histogram::{Histogram, BUCKETS, FINE_BUCKETS};
use proxy_reverse::stats::{Exchange, Failure, Stats};

const THREADS: usize = 8;
const PER_THREAD: u64 = 20_000;

#[test]
fn totals_are_exact_under_concurrent_load() {
    let config = stats_support::config();
    let stats = Arc::new(Stats::new(&config));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let stats = Arc::clone(&stats);
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let s = (i as usize + t) % 3;
                    stats.record_request(0);
                    stats.record_attempt(0, s);
                    stats.record_connection(0, s, i % 2 == 0);
                    if i % 5 == 0 {
                        stats.record_failure(0, s, FailureKind::ReadTimeout);
                        stats.record_retry(0, s, i % 10 == 0);
                        stats.record_bytes(0, s, 3, 0);
                    } else {
                        let x = Exchange {
                            status: if i % 4 == 0 { 404 } else { 200 },
                            bytes_to_backend: 10,
                            bytes_from_backend: 20,
                            head_latency: Duration::from_micros(i % 1000 * 100),
                            total_latency: Duration::from_micros(i % 1000 * 200),
                        };
                        stats.record_response(0, s, &x);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }

    let n = THREADS as u64 * PER_THREAD;
    let failed = n / 5;
    let answered = n - failed;
    let e = stats.entry(0).counters.snapshot();
    assert_eq!(e.requests, n);
    assert_eq!(e.failures.read_timeout, failed);
    assert_eq!(e.failures.total(), failed);
    assert_eq!(e.retries, failed);
    assert_eq!(e.failovers, n / 10);
    assert_eq!(e.connections_opened + e.connections_reused, n);
    assert_eq!(e.connections_reused, n / 2);
    let r = e.responses;
    assert_eq!(r.c2xx + r.c4xx, answered);
    assert_eq!(r.c1xx + r.c3xx + r.c5xx, 0);
    // i % 4 == 0 and i % 5 != 0: 1 in 4 minus 1 in 20.
    assert_eq!(r.c4xx, THREADS as u64 * (PER_THREAD / 4 - PER_THREAD / 20));
    assert_eq!(e.bytes_to_backend, answered * 10 + failed * 3);
    assert_eq!(e.bytes_from_backend, answered * 20);
    assert_eq!(e.head_latency.count(), answered);
    assert_eq!(e.total_latency.count(), answered);
    assert_eq!(stats.global().snapshot().requests, n);

    // The servers' attempts and responses add up to the entry's.
    let servers: Vec<_> = stats
        .entry(0)
        .servers()
        .iter()
        .map(|s| s.counters.snapshot())
        .collect();
    assert_eq!(servers.iter().map(|s| s.requests).sum::<u64>(), n);
    assert_eq!(
        servers.iter().map(|s| s.responses.c2xx).sum::<u64>(),
        r.c2xx
    );
    let sum_micros: u64 = servers.iter().map(|s| s.head_latency.sum_micros).sum();
    assert_eq!(sum_micros, e.head_latency.sum_micros);
    // The untouched entry stayed at zero.
    assert_eq!(stats.entry(1).counters.snapshot().requests, 0);
}

#[test]
fn every_failure_kind_has_its_own_counter() {
    let config = stats_support::config();
    let stats = Stats::new(&config);
    for (i, f) in Failure::ALL.iter().enumerate() {
        for _ in 0..=i {
            stats.record_failure(1, 0, *f);
        }
    }
    let pairs = stats.server(1, 0).counters.snapshot().failures.pairs();
    for (i, (name, n)) in pairs.iter().enumerate() {
        assert_eq!(*n, i as u64 + 1, "{name}");
        assert_eq!(Failure::ALL[i].name(), *name);
    }
}

#[test]
fn statuses_count_by_class_and_odd_ones_nowhere() {
    let config = stats_support::config();
    let stats = Stats::new(&config);
    for status in [100, 101, 200, 204, 301, 404, 500, 599, 0, 99, 600, 999] {
        let x = Exchange {
            status,
            ..Exchange::default()
        };
        stats.record_response(0, 1, &x);
    }
    let c = stats.server(0, 1).counters.snapshot().responses;
    assert_eq!(c.pairs().map(|p| p.1), [2, 2, 1, 1, 2]);
}

#[test]
fn local_answers_count_plugin_wide() {
    let config = stats_support::config();
    let stats = Stats::started_at(&config, 5);
    for s in [400, 404, 404, 403, 200, 200, 500] {
        stats.record_local(s);
    }
    let g = stats.global().snapshot();
    assert_eq!(
        (
            g.requests,
            g.bad_requests,
            g.not_found,
            g.forbidden,
            g.statistics
        ),
        (7, 1, 2, 1, 3)
    );
    assert_eq!(stats.global().started(), 5);
}

#[test]
fn histogram_quantiles_on_known_data() {
    let h = Histogram::default();
    assert_eq!(h.quantile(0.5), None);
    // 90 fast observations at 1.5 ms, 9 at 80 ms, 1 far past the last bound.
    for _ in 0..90 {
        h.record(Duration::from_micros(1_500));
    }
    for _ in 0..9 {
        h.record(Duration::from_millis(80));
    }
    h.record(Duration::from_secs(120));
    let s = h.snapshot();
    assert_eq!(s.count(), 100);
    assert_eq!(s.counts().len(), BUCKETS);
    assert_eq!(s.counts()[BUCKETS - 1], 1);
    assert_eq!(s.fine.len(), FINE_BUCKETS);
    assert_eq!(s.sum_micros, 90 * 1_500 + 9 * 80_000 + 120_000_000);
    // Rank 50 of the 90 in the fine bucket (1.4, 1.5] ms: 1.4 ms + 50/90 of 0.1 ms.
    let p50 = s.quantile(0.5).unwrap().as_micros();
    assert_eq!(p50, 1_456);
    // Rank 90 is the last of that bucket: its upper bound, 1.5 ms.
    assert_eq!(s.quantile(0.9).unwrap(), Duration::from_micros(1_500));
    // Rank 99 is the last in (75, 80] ms.
    assert_eq!(s.quantile(0.99).unwrap(), Duration::from_millis(80));
    // The overflow bucket reports the largest finite bound.
    assert_eq!(s.quantile(1.0).unwrap(), Duration::from_secs(60));
}

#[test]
fn histogram_bucket_edges_are_inclusive() {
    let h = Histogram::default();
    h.record(Duration::ZERO);
    h.record(Duration::from_micros(100));
    h.record(Duration::from_micros(101));
    h.record(Duration::from_secs(60));
    h.record(Duration::MAX);
    let s = h.snapshot();
    let counts = s.counts();
    assert_eq!(&counts[..2], &[2, 1]);
    assert_eq!(counts[BUCKETS - 2], 1);
    assert_eq!(counts[BUCKETS - 1], 1);
    // In the fine buckets: 0 and 100 µs in [0, 10] and (90, 100], 101 µs in (100, 110].
    assert_eq!(&s.fine[..11], &[1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
}

#[test]
fn merged_histograms_add_up() {
    let (a, b) = (Histogram::default(), Histogram::default());
    a.record(Duration::from_millis(3));
    b.record(Duration::from_millis(3));
    b.record(Duration::from_secs(3));
    let mut m = a.snapshot();
    m.merge(&b.snapshot());
    assert_eq!(m.count(), 3);
    assert_eq!(m.sum_micros, 3_006_000);
}
