//! Time as the core sees it: a [`Moment`] on the monotonic clock, passed in by the host.
//!
//! Nothing in the core reads the clock on its own while it serves a request: the host reads
//! it once per event ([`Moment::now`], or a clock of its own in tests) and passes the value
//! down, so every decision on time can be tested with an injected clock. Shared state
//! (health records, statistics) stores instants as [`Millis`] so that they fit in an atomic.

use std::time::Duration;

/// Milliseconds on the monotonic clock (see [`Moment::millis`]); 0 means "never" in atomics.
pub type Millis = u64;

/// A point on the system's monotonic clock (`CLOCK_MONOTONIC`), in nanoseconds.
///
/// A plain number: comparing and adding cost what they cost on integers (the standard
/// library's `Instant` goes through a seconds/nanoseconds pair on every subtraction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Moment(u64);

impl Moment {
    /// The monotonic clock now.
    pub fn now() -> Moment {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        Moment((t.tv_sec as u64).wrapping_mul(1_000_000_000) + t.tv_nsec as u64)
    }

    /// A moment given in nanoseconds (a test's clock, or a host's own reading).
    pub const fn from_nanos(nanos: u64) -> Moment {
        Moment(nanos)
    }

    /// Nanoseconds on the clock.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// Milliseconds on the clock, at least 1 (0 is "never" in the atomics that store them).
    #[inline]
    pub fn millis(self) -> Millis {
        (self.0 / 1_000_000).max(1)
    }

    /// `d` later (saturating).
    #[inline]
    pub fn after(self, d: Duration) -> Moment {
        // In u64 arithmetic, the same saturation as `as_nanos()` capped to u64 (a deadline
        // is set several times per request; the u128 product cost more).
        let nanos = d
            .as_secs()
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::from(d.subsec_nanos()));
        Moment(self.0.saturating_add(nanos))
    }

    /// How long after `earlier` this is (zero if it is not later).
    #[inline]
    pub fn since(self, earlier: Moment) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Milliseconds on the monotonic clock now (for code that runs off the request path: start-up,
/// the statistics page).
pub fn now_ms() -> Millis {
    Moment::now().millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_add_and_subtract_as_durations_and_never_read_zero_millis() {
        let m = Moment::from_nanos(5_000_000);
        assert_eq!(m.after(Duration::from_millis(7)).millis(), 12);
        assert_eq!(
            m.after(Duration::from_millis(7)).since(m),
            Duration::from_millis(7)
        );
        assert_eq!(m.since(m.after(Duration::from_secs(1))), Duration::ZERO);
        assert_eq!(Moment::from_nanos(10).millis(), 1);
        assert_eq!(Moment::from_nanos(1).after(Duration::MAX).nanos(), u64::MAX);
        let a = Moment::now();
        assert!(Moment::now() >= a);
        assert!((now_ms() as i64 - a.millis() as i64).abs() < 10_000);
    }
}
