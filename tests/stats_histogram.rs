//! The log-linear latency histogram: its fine bucket edges, the exported buckets derived from
//! them, its memory, and the accuracy of its quantiles against exact sample quantiles.

use std::time::Duration;

use proxy_reverse::stats::histogram::{
    fine_bounds_micros, fine_index, Histogram, BOUNDS_MICROS, BUCKETS, FINE_BUCKETS, SUB_BUCKETS,
};

/// SplitMix64: a small, seeded, good-enough generator (no dependency needed).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// The exact `q`-quantile of sorted samples: the smallest value with at least `q·n` samples at
/// or below it (the rank the histogram looks for).
fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

/// Draws `n` latencies from a log-normal with median `median` seconds and shape `sigma`,
/// records them, and returns the worst relative error over `qs` (printing each).
fn lognormal_errors(seed: u64, n: usize, median: f64, sigma: f64, qs: &[f64]) -> Vec<f64> {
    let mut rng = Rng(seed);
    let h = Histogram::default();
    let mut samples: Vec<f64> = (0..n)
        .map(|_| {
            let secs = median * (sigma * rng.normal()).exp();
            let d = Duration::from_secs_f64(secs);
            h.record(d);
            // The histogram sees whole microseconds: compare against exactly what it saw.
            d.as_micros() as f64 / 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let snap = h.snapshot();
    assert_eq!(snap.count(), n as u64);
    println!(
        "log-normal median {:.3} ms sigma {sigma}: p0.1 {:.3} ms … p99.9 {:.1} ms",
        median * 1e3,
        exact_quantile(&samples, 0.001) * 1e3,
        exact_quantile(&samples, 0.999) * 1e3
    );
    qs.iter()
        .map(|&q| {
            let exact = exact_quantile(&samples, q);
            let est = snap.quantile_seconds(q).unwrap();
            let err = (est - exact).abs() / exact;
            println!(
                "  q {q:<5}: exact {:>10.3} ms, histogram {:>10.3} ms, error {:.3} %",
                exact * 1e3,
                est * 1e3,
                err * 100.0
            );
            err
        })
        .collect()
}

#[test]
fn quantiles_are_within_3_percent_on_a_log_normal() {
    // Median 10 ms, σ = 1.4: 0.1 % of the samples below ~130 µs, 0.1 % above ~750 ms — the
    // spread of real latencies from a fast cache hit to a slow query.
    let qs = [0.5, 0.9, 0.99];
    let errors = lognormal_errors(0x5EED_0001, 1_000_000, 0.010, 1.4, &qs);
    for (q, e) in qs.iter().zip(&errors) {
        assert!(*e <= 0.03, "p{q}: {:.2} % off", e * 100.0);
    }
}

#[test]
fn quantiles_are_within_3_percent_wherever_the_distribution_sits() {
    // Narrower and wider distributions centred elsewhere (each its own seed), and more
    // quantiles, so that no lucky alignment with the bucket edges passes the test above.
    let qs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999];
    for (i, (median, sigma)) in [
        (0.000_3, 0.5),
        (0.002, 1.0),
        (0.025, 0.3),
        (0.040, 0.1),
        (0.150, 0.8),
        (0.600, 0.4),
    ]
    .into_iter()
    .enumerate()
    {
        let errors = lognormal_errors(0x5EED_0100 + i as u64, 1_000_000, median, sigma, &qs);
        for (q, e) in qs.iter().zip(&errors) {
            assert!(
                *e <= 0.03,
                "median {median} s, σ {sigma}, p{q}: {:.2} % off",
                e * 100.0
            );
        }
    }
}

#[test]
fn close_distributions_inside_one_exported_bucket_get_their_own_quantiles() {
    // The old 20-bucket histogram showed every distribution inside (20, 50] ms as exactly
    // 34.3 / 46.9 / 49.7 ms (20 + q·30 ms). Two clearly different ones must now differ.
    let (a, b) = (Histogram::default(), Histogram::default());
    let mut rng = Rng(7);
    for _ in 0..100_000 {
        a.record(Duration::from_secs_f64(0.025 * (0.05 * rng.normal()).exp()));
        b.record(Duration::from_secs_f64(0.040 * (0.05 * rng.normal()).exp()));
    }
    let (a, b) = (a.snapshot(), b.snapshot());
    for q in [0.5, 0.9, 0.99] {
        let (qa, qb) = (
            a.quantile_seconds(q).unwrap(),
            b.quantile_seconds(q).unwrap(),
        );
        assert!(qb / qa > 1.4, "p{q}: {qa} vs {qb}");
    }
    let p50 = a.quantile_seconds(0.5).unwrap();
    assert!((p50 - 0.025).abs() / 0.025 < 0.03, "{p50}");
    // A point mass: every estimate stays inside the one fine bucket, (24, 26] ms.
    let h = Histogram::default();
    for _ in 0..1000 {
        h.record(Duration::from_millis(25));
    }
    for q in [0.01, 0.5, 0.9, 0.99, 1.0] {
        let v = h.quantile(q).unwrap();
        assert!(
            v > Duration::from_millis(24) && v <= Duration::from_millis(26),
            "p{q}: {v:?}"
        );
    }
}

#[test]
fn fine_edges_include_every_exported_bound_and_are_at_most_10_percent_wide() {
    let fine = fine_bounds_micros();
    assert_eq!(fine.len(), FINE_BUCKETS - 1);
    assert_eq!(FINE_BUCKETS, SUB_BUCKETS.iter().sum::<u64>() as usize);
    assert!(fine.windows(2).all(|w| w[0] < w[1]), "edges increase");
    for b in BOUNDS_MICROS {
        assert!(
            fine.contains(&b),
            "exported bound {b} µs is not a fine edge"
        );
    }
    assert_eq!(fine.first(), Some(&10));
    assert_eq!(fine.last(), BOUNDS_MICROS.last());
    // Below 100 µs the buckets are 10 µs wide; from there on at most 10 % of their lower edge.
    for (i, &e) in fine[..10].iter().enumerate() {
        assert_eq!(e, 10 * (i as u64 + 1));
    }
    for w in fine.windows(2).filter(|w| w[0] >= 100) {
        assert!(
            (w[1] - w[0]) * 10 <= w[0],
            "({}, {}] is too wide",
            w[0],
            w[1]
        );
    }
}

#[test]
fn every_value_lands_in_the_fine_bucket_whose_edges_hold_it() {
    let fine = fine_bounds_micros();
    // The reference: first edge ≥ the value (bounds are inclusive), else the overflow bucket.
    let reference = |v: u64| fine.partition_point(|&e| e < v);
    let mut values: Vec<u64> = vec![0, 1, u64::MAX, u64::MAX - 1, 1 << 40];
    for &e in fine {
        values.extend([e - 1, e, e + 1]);
    }
    // Each octave's edges (the search starts by the value's bit length).
    for shift in 0..64 {
        let p = 1u64 << shift;
        values.extend([p - 1, p, p + 1]);
    }
    // And a dense sweep of the first 2 ms plus a coarse one up to 70 s.
    values.extend(0..2_000);
    values.extend((0..70_000_000).step_by(997));
    for v in values {
        assert_eq!(fine_index(v), reference(v), "{v} µs");
    }
    assert_eq!(fine_index(u64::MAX), FINE_BUCKETS - 1);
}

#[test]
fn exported_counts_are_exact_sums_of_the_fine_counts() {
    // Whatever is recorded, the exported buckets count exactly what the old fixed-bucket
    // histogram counted: the first exported bound ≥ the value.
    let h = Histogram::default();
    let mut expected = [0u64; BUCKETS];
    let mut rng = Rng(11);
    let mut record = |micros: u64| {
        h.record(Duration::from_micros(micros));
        expected[BOUNDS_MICROS.partition_point(|&b| b < micros)] += 1;
    };
    for b in BOUNDS_MICROS {
        record(b);
        record(b + 1);
        record(b - 1);
    }
    for _ in 0..100_000 {
        record((rng.unit() * 80e6) as u64);
        record((1e6 * (0.002f64.ln() + 2.0 * rng.normal()).exp()) as u64);
    }
    let snap = h.snapshot();
    assert_eq!(snap.counts(), expected);
    assert_eq!(snap.counts().iter().sum::<u64>(), snap.count());
}

#[test]
fn memory_per_histogram_is_fixed_and_small() {
    // 211 fine counters and the sum, 8 bytes each.
    assert_eq!(FINE_BUCKETS, 211);
    assert_eq!(std::mem::size_of::<Histogram>(), (FINE_BUCKETS + 1) * 8);
    assert!(std::mem::size_of::<Histogram>() <= 2048);
}

#[test]
fn merged_snapshots_add_fine_counts() {
    let (a, b) = (Histogram::default(), Histogram::default());
    for _ in 0..10 {
        a.record(Duration::from_micros(1_050));
        b.record(Duration::from_micros(9_900));
    }
    let mut m = a.snapshot();
    m.merge(&b.snapshot());
    assert_eq!(m.count(), 20);
    // Half at 1.05 ms, half at 9.9 ms: the median is the top of (1.0, 1.1] ms.
    assert_eq!(m.quantile(0.5), Some(Duration::from_micros(1_100)));
    assert_eq!(m.quantile(1.0), Some(Duration::from_micros(10_000)));
    // An empty (default) snapshot merges and exports all zeros.
    let mut e = proxy_reverse::stats::HistogramSnapshot::default();
    assert_eq!(e.counts(), vec![0; BUCKETS]);
    e.merge(&m);
    assert_eq!(e, m);
}
