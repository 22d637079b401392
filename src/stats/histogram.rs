//! A log-linear latency histogram made of atomics.
//!
//! Two levels of buckets, the same for every histogram:
//!
//! - **Exported buckets**: a 1-2-5 series of upper bounds from 100 µs to 20 s, then 30 s and
//!   60 s (because `ReadTimeout` is often set there), then `+Inf` ([`BOUNDS_MICROS`],
//!   [`BUCKETS`]). Prometheus `le` buckets and the JSON `counts` use these, so series aggregate
//!   across servers and keep their labels from one version to the next.
//! - **Fine buckets**: each exported bucket (a *segment*, `(lower, upper]`) is cut into
//!   [`SUB_BUCKETS`] equal linear sub-buckets, 10 per ×2 step and 15 per ×2.5 step, so that
//!   every fine bucket is at most 10 % of its lower edge wide (the edges are the two
//!   significant digit numbers 1.0, 1.1, … 1.9, 2.0, 2.2, … 4.8, 5.0, 5.5, … 9.5 times a
//!   power of ten). That is log-linear bucketing like HDR histograms', with the 1-2-5 series
//!   as the "exponent" instead of powers of two, so that every exported bound is a fine edge
//!   and the exported counts are exact sums of fine counts. Quantiles interpolate inside a
//!   fine bucket: never more than one fine bucket (≤ 10 %) off, and within about 1 % on
//!   smooth data such as log-normal latencies (measured in `tests/stats_histogram.rs`).
//!
//! Memory: [`FINE_BUCKETS`] (211) counters and a sum, 1 696 bytes per histogram.
//!
//! Recording is the segment search (by the value's bit length, then at most two compares),
//! one multiplication (the division by the sub-bucket width, by its precomputed reciprocal)
//! and two relaxed atomic adds: no allocation, no lock, no branch on the value.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// Upper bounds (inclusive, in microseconds) of the finite exported buckets: a 1-2-5 series
/// from 100 µs to 20 s, then 30 s and 60 s.
pub const BOUNDS_MICROS: [u64; 19] = [
    100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000, 2_000_000, 5_000_000, 10_000_000, 20_000_000, 30_000_000, 60_000_000,
];

/// Number of exported buckets: the finite ones plus the overflow bucket (`+Inf`).
pub const BUCKETS: usize = BOUNDS_MICROS.len() + 1;

/// Fine buckets per exported bucket: equal linear parts of `(lower, upper]` (the overflow
/// bucket is not divided). Each segment's width is a multiple of its count, and every part is
/// at most 10 % of the segment's lower bound wide (the first segment starts at 0).
pub const SUB_BUCKETS: [u64; BUCKETS] = [
    10, // (0, 100] µs by 10 µs
    10, 15, 10, // 100 µs – 1 ms: by 10, 20, 50 µs
    10, 15, 10, // 1 – 10 ms: by 100, 200, 500 µs
    10, 15, 10, // 10 – 100 ms
    10, 15, 10, // 100 ms – 1 s
    10, 15, 10, // 1 – 10 s: by 0.1, 0.2, 0.5 s
    10, 5, 10, // 10 – 20 s by 1 s, 20 – 30 s by 2 s, 30 – 60 s by 3 s
    1,  // overflow
];

/// Number of fine buckets, the overflow bucket included.
pub const FINE_BUCKETS: usize = sum(&SUB_BUCKETS) as usize;

/// Per segment: its lower bound (exclusive but for the first segment's 0).
const LOWER: [u64; BUCKETS] = lower_bounds();
/// Per segment: `floor(2^64 / width of one fine bucket)`, so that `(offset * MAGIC) >> 64`
/// is the part of the segment `offset` falls in (see [`magics`]); 0 for the overflow bucket.
const MAGIC: [u64; BUCKETS] = magics();
/// Per segment: the index of its first fine bucket.
const BASE: [usize; BUCKETS] = bases();
/// Upper bound (inclusive, µs) of every finite fine bucket.
const FINE_BOUNDS: [u64; FINE_BUCKETS - 1] = fine_bounds();

/// [`BOUNDS_MICROS`] and two `u64::MAX`: the steps of [`fine_index`] past the last bound
/// stay in the overflow bucket without a bounds test.
const PADDED_BOUNDS: [u64; BUCKETS + 1] = padded_bounds();
/// For each bit length (0 to 64) the exported bucket of the octave's smallest value (0, then
/// `1 << (length - 1)`): where [`fine_index`]'s segment search starts.
const OCTAVE_START: [usize; 65] = octave_starts();

const fn padded_bounds() -> [u64; BUCKETS + 1] {
    let mut out = [u64::MAX; BUCKETS + 1];
    let mut k = 0;
    while k < BOUNDS_MICROS.len() {
        out[k] = BOUNDS_MICROS[k];
        k += 1;
    }
    out
}

const fn octave_starts() -> [usize; 65] {
    let mut out = [0; 65];
    let mut length = 1;
    while length <= 64 {
        let smallest = 1u64 << (length - 1);
        // The first bound ≥ the smallest value (the overflow bucket if none is).
        let mut k = 0;
        while k < BOUNDS_MICROS.len() && BOUNDS_MICROS[k] < smallest {
            k += 1;
        }
        // Two steps must reach any value of the octave: at most two bounds lie below its
        // largest value from there.
        let largest = if length == 64 {
            u64::MAX
        } else {
            (1u64 << length) - 1
        };
        let mut below = 0;
        let mut j = k;
        while j < BOUNDS_MICROS.len() && BOUNDS_MICROS[j] < largest {
            below += 1;
            j += 1;
        }
        assert!(below <= 2, "an octave holds more than two bounds");
        out[length] = k;
        length += 1;
    }
    out
}

const fn sum(a: &[u64]) -> u64 {
    let (mut i, mut s) = (0, 0);
    while i < a.len() {
        s += a[i];
        i += 1;
    }
    s
}

/// The lower bound of segment `k` (exclusive; 0 for the first).
const fn lower(k: usize) -> u64 {
    if k == 0 {
        0
    } else {
        BOUNDS_MICROS[k - 1]
    }
}

/// The width of one fine bucket of finite segment `k`.
const fn step(k: usize) -> u64 {
    let width = BOUNDS_MICROS[k] - lower(k);
    assert!(width % SUB_BUCKETS[k] == 0, "segment not divisible");
    let step = width / SUB_BUCKETS[k];
    // At most 10 % of the lower bound (the first segment is absolute: 10 µs).
    assert!(
        k == 0 || step * 10 <= lower(k),
        "fine bucket wider than 10 %"
    );
    step
}

const fn lower_bounds() -> [u64; BUCKETS] {
    let mut out = [0; BUCKETS];
    let mut k = 0;
    while k < BUCKETS {
        out[k] = lower(k);
        k += 1;
    }
    out
}

/// The reciprocals of the fine bucket widths, which make the division exact *and* put each
/// fine bucket's upper edge inside it. With `M = floor(2^64 / d) = (2^64 − r) / d`, where
/// `0 < r < d` because no width `d` is a power of two, an offset `o = j·d + t` (`0 ≤ t < d`)
/// gives `o·M / 2^64 = j + (t·M − j·r) / 2^64`. For `t = 0`, `j ≥ 1` that is just below `j`;
/// for `t ≥ 1` the fraction is in `[0, 1)` (`M` is far above `j·r < 15·d`). So the high word
/// of `o·M` is `ceil(o / d) − 1` for `o ≥ 1` and 0 for `o = 0`: the part whose
/// inclusive upper edge is the first at or above the value. `tests/stats_histogram.rs`
/// checks every fine edge anyway.
const fn magics() -> [u64; BUCKETS] {
    let mut out = [0; BUCKETS];
    let mut k = 0;
    while k < BOUNDS_MICROS.len() {
        let d = step(k);
        assert!(
            d & (d - 1) != 0,
            "a power-of-two width needs another reciprocal"
        );
        out[k] = ((1u128 << 64) / d as u128) as u64;
        k += 1;
    }
    out
}

const fn bases() -> [usize; BUCKETS] {
    let mut out = [0; BUCKETS];
    let mut k = 1;
    while k < BUCKETS {
        out[k] = out[k - 1] + SUB_BUCKETS[k - 1] as usize;
        k += 1;
    }
    out
}

const fn fine_bounds() -> [u64; FINE_BUCKETS - 1] {
    let mut out = [0; FINE_BUCKETS - 1];
    let mut k = 0;
    while k < BOUNDS_MICROS.len() {
        let mut j = 0;
        while j < SUB_BUCKETS[k] {
            out[BASE[k] + j as usize] = lower(k) + (j + 1) * step(k);
            j += 1;
        }
        k += 1;
    }
    out
}

/// The finite exported bucket bounds in seconds (as Prometheus `le` labels and JSON show them).
pub fn bounds_seconds() -> Vec<f64> {
    BOUNDS_MICROS.iter().map(|&b| b as f64 / 1e6).collect()
}

/// Upper bounds (inclusive, µs) of the finite fine buckets, in order: `FINE_BUCKETS - 1`
/// values, every exported bound among them.
pub fn fine_bounds_micros() -> &'static [u64] {
    &FINE_BOUNDS
}

/// The fine bucket a value in microseconds falls in (`0..FINE_BUCKETS`).
#[inline]
pub fn fine_index(micros: u64) -> usize {
    // The exported bucket (segment): first bound ≥ the value, or the overflow bucket.
    // By the value's bit length: the octave's first candidate, then at most two steps (no
    // octave holds more than two bounds, the series growing by at least 1.5 per bound),
    // each a compare and an add. Fewer instructions than a binary search over the 19.
    let mut k = OCTAVE_START[(u64::BITS - micros.leading_zeros()) as usize];
    k += usize::from(micros > PADDED_BOUNDS[k]);
    k += usize::from(micros > PADDED_BOUNDS[k]);
    // The part of the segment: a multiplication by the reciprocal of the part's width (see
    // `magics`). The offset cannot wrap: the value is above its segment's lower bound, or
    // both are 0. In the overflow bucket the reciprocal is 0.
    let offset = micros - LOWER[k];
    let part = ((u128::from(offset) * u128::from(MAGIC[k])) >> 64) as usize;
    // `min` only spares a bounds check: the part is always below the segment's count.
    (BASE[k] + part).min(FINE_BUCKETS - 1)
}

/// A latency histogram shared by all workers.
#[derive(Debug)]
pub struct Histogram {
    counts: [AtomicU64; FINE_BUCKETS],
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    /// An empty histogram.
    fn default() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// One observation with its fine bucket found: recorded into several histograms (a server's
/// and its entry's) the bucket search runs once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    index: usize,
    micros: u64,
}

impl Sample {
    /// The observation `latency`, in whole microseconds.
    #[inline]
    pub fn of(latency: Duration) -> Sample {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        Sample {
            index: fine_index(micros),
            micros,
        }
    }
}

impl Histogram {
    /// Counts one observation.
    #[inline]
    pub fn record(&self, latency: Duration) {
        self.add(Sample::of(latency));
    }

    /// Counts one observation whose bucket is known.
    #[inline]
    pub fn add(&self, sample: Sample) {
        self.counts[sample.index].fetch_add(1, Relaxed);
        self.sum_micros.fetch_add(sample.micros, Relaxed);
    }

    /// A plain copy of the current counts (each read is relaxed, so under load the copy may be
    /// a few observations behind on some buckets; it is never torn within one counter).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            fine: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
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
    /// Observations per fine bucket (not cumulative): [`FINE_BUCKETS`] of them, the last
    /// being the overflow bucket (empty in a `default()` snapshot, which counts nothing).
    pub fine: Vec<u64>,
    /// Sum of all observations, in microseconds.
    pub sum_micros: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.fine.iter().sum()
    }

    /// Observations per exported bucket (not cumulative): [`BUCKETS`] of them, one per
    /// [`BOUNDS_MICROS`] and the overflow last — each the exact sum of its fine buckets.
    pub fn counts(&self) -> Vec<u64> {
        (0..BUCKETS)
            .map(|k| {
                let parts = BASE[k]..BASE[k] + SUB_BUCKETS[k] as usize;
                self.fine.get(parts).map_or(0, |p| p.iter().sum())
            })
            .collect()
    }

    /// Sum of all observations in seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_micros as f64 / 1e6
    }

    /// Adds another snapshot's counts to this one (used to aggregate servers).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.fine.len() < other.fine.len() {
            self.fine.resize(other.fine.len(), 0);
        }
        for (a, b) in self.fine.iter_mut().zip(&other.fine) {
            *a += b;
        }
        self.sum_micros += other.sum_micros;
    }

    /// Estimates the `q`-quantile (`0.0..=1.0`), or `None` without observations.
    ///
    /// Like Prometheus's `histogram_quantile`, on the fine buckets: find the bucket holding
    /// the rank and interpolate linearly inside it (the first bucket starts at zero), so the
    /// estimate is never more than one fine bucket (≤ 10 %) away from the true value. A rank
    /// in the overflow bucket reports the largest finite bound, since nothing better is known.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut below = 0u64;
        for (i, &n) in self.fine.iter().enumerate() {
            if n > 0 && (below + n) as f64 >= rank {
                let Some(&upper) = FINE_BOUNDS.get(i) else {
                    break;
                };
                let lower = if i == 0 { 0 } else { FINE_BOUNDS[i - 1] };
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

/// JSON form: `{count, sum_seconds, p50, p90, p99, counts}`; quantiles (from the fine
/// buckets) are seconds or `null` without observations, `counts` is per exported bucket (not
/// cumulative) with the overflow last.
impl Serialize for HistogramSnapshot {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut st = ser.serialize_struct("Histogram", 6)?;
        st.serialize_field("count", &self.count())?;
        st.serialize_field("sum_seconds", &self.sum_seconds())?;
        st.serialize_field("p50", &self.quantile_seconds(0.5))?;
        st.serialize_field("p90", &self.quantile_seconds(0.9))?;
        st.serialize_field("p99", &self.quantile_seconds(0.99))?;
        st.serialize_field("counts", &self.counts())?;
        st.end()
    }
}
