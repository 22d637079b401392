//! A process-wide monotonic clock in milliseconds.
//!
//! Shared state (health records, statistics) stores instants as `u64` milliseconds so that it
//! fits in an atomic; functions that decide on time take the current value as a parameter, so
//! tests can inject any clock.

use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds on the process's monotonic clock (see [`now_ms`]).
pub type Millis = u64;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds elapsed since the first call in this process (never goes backwards).
pub fn now_ms() -> Millis {
    ms_at(Instant::now())
}

/// [`now_ms`] for an instant the caller already has (spares a clock read on hot paths).
pub fn ms_at(at: Instant) -> Millis {
    // Start at 1 so that 0 can mean "never" in atomics.
    // Seconds and milliseconds apart: `as_millis` goes through u128 on every request.
    let since = at.saturating_duration_since(epoch());
    since.as_secs() * 1000 + Millis::from(since.subsec_millis()) + 1
}
