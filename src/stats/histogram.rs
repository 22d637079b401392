//! A fixed-bucket latency histogram made of atomics.
//!
//! The bucket bounds are the same for every histogram so that Prometheus can aggregate them
//! across servers and so that recording is a short search over a constant table — no
//! allocation, no lock, two relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Upper bounds (inclusive, in microseconds) of the finite buckets: a 1-2-5 series from
/// 100 µs to 20 s, then 30 s and 60 s because `ReadTimeout` is often set there.
pub const BOUNDS_MICROS: [u64; 19] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 30_000_000, 60_000_000,
];

/// Number of buckets: the finite ones plus the overflow bucket (`+Inf`).
pub const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

/// The finite bucket bounds in seconds (as Prometheus `le` labels and JSON show them).
pub fn bounds_seconds() -> Vec<f64> {
    BOUNDS_MICROS.iter().map(|&b| b as f64 / 1e6).collect()
}

/// A latency histogram shared by all workers.
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Counts one observation.
    pub fn record(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // First bound ≥ the value; values above every bound land in the overflow bucket.
        let i = BOUNDS_MICROS.partition_point(|&b| b < micros);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(micros, Relaxed);
    }

    /// A plain copy of the current counts (each read is relaxed, so under load the copy may be
    /// a few observations behind on some buckets; it is never torn within one counter).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum_micros: self.sum_micros.load(Relaxed),
        }
    }

    /// Shorthand for `self.snapshot().quantile(q)`.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        self.snapshot().quantile(q)
    }
}

/// The counts of a [`Histogram`] at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative); one more than [`BOUNDS_MICROS`], the last
    /// being the overflow bucket.
    pub counts: Vec<u64>,
    /// Sum of all observations, in microseconds.
    pub sum_micros: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of all observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// Adds another snapshot's counts to this one (used to aggregate servers).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum_micros += other.sum_micros;
    }

    /// Estimates the `q`-quantile (`0.0..=1.0`), or `None` without observations.
    ///
    /// Like Prometheus's `histogram_quantile`: find the bucket holding the rank and
    /// interpolate linearly inside it (the first bucket starts at zero). A rank in the
    /// overflow bucket reports the largest finite bound, since nothing better is known.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.counts.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = BOUNDS_MICROS.get(i) else {
                    break;
                };
                let lower = if i == 0 { 0 } else { BOUNDS_MICROS[i - 1] };
                let frac = ((rank - below as f64) / n as f64).clamp(0.0, 1.0);
                let micros = lower as f64 + (upper - lower) as f64 * frac;
                return Some(Duration::from_micros(micros.round() as u64));
            }
            below += n;
        }
        Some(Duration::from_micros(
            BOUNDS_MICROS[BOUNDS_MICROS.len() - 1],
        ))
    }

    /// The `q`-quantile in seconds, for renderers (`None` without observations).
    pub fn quantile_seconds(&self, q: f64) -> Option<f64> {
        self.quantile(q).map(|d| d.as_secs_f64())
    }
}

/// JSON form: `{count, sum_seconds, p50, p90, p99, counts}`; quantiles are seconds or `null`
/// without observations, `counts` is per bucket (not cumulative) with the overflow last.
impl Serialize for HistogramSnapshot {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut st = ser.serialize_struct("Histogram", 6)?;
        st.serialize_field("count", &self.count())?;
        st.serialize_field("sum_seconds", &self.sum_seconds())?;
        st.serialize_field("p50", &self.quantile_seconds(0.5))?;
        st.serialize_field("p90", &self.quantile_seconds(0.9))?;
        st.serialize_field("p99", &self.quantile_seconds(0.99))?;
        st.serialize_field("counts", &self.counts)?;
        st.end()
    }
}
