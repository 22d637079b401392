//! Gives memory a burst left free back to the system once the worker is quiet again.
//!
//! Under connection churn the worker's allocations interleave: Monkey's per-connection
//! blocks (about 10 KiB each, freed when a connection closes) and the plugin's longer-lived
//! ones (exchange slots, pooled connections, buffers the worker keeps for later requests).
//! glibc keeps freed memory in the thread's arena, and returns the arena's top to the system
//! only when nothing live sits above it — which a long-lived block allocated during the burst
//! prevents — so a Monkey that went through bursts kept its peak resident size (measured
//! with wrk, 200 closing connections for 10 s, a release build: 9.2–10.6 MB a minute after
//! the bursts, against 7.6–7.9 MB with this; in `tests/monkey_memory.rs`, 2 s bursts: 1.0–2.1
//! MiB above the size before the bursts, against at most 0.7 MiB with this). Once
//! a worker had [`BURST`] exchanges in flight at once, or ended [`CHURN`] since it last
//! trimmed (connections that come and go grow the heap without many exchanges in flight at
//! once), the first round of its timer that finds none in flight calls `malloc_trim(0)`,
//! which also releases free pages inside the heap; the round is asked for [`AFTER`] the last
//! exchange ended. A trim took 50–350 µs on the test machine, so a worker trims at most about
//! once a second and only when it went quiet; a quiet worker never does. Only with glibc
//! (another allocator needs none of this, or has its own way).

use std::cell::Cell;
use std::time::Duration;

use crate::clock::Moment;

/// Exchanges in flight at once that make a burst worth trimming after.
const BURST: usize = 32;

/// Exchanges ended since the last trim that make it worth trimming again.
const CHURN: u32 = 1024;

/// How long after a burst's last exchange ended the trimming round comes (a round that
/// finds exchanges in flight again waits for the next time none are).
const AFTER: Duration = Duration::from_secs(1);

thread_local! {
    /// A burst ran since the last trim.
    static PENDING: Cell<bool> = const { Cell::new(false) };
    /// Exchanges ended since the last trim (up to [`CHURN`]).
    static ENDED: Cell<u32> = const { Cell::new(0) };
    /// A timer round was asked for the trim and has not come yet.
    static ASKED: Cell<bool> = const { Cell::new(false) };
}

/// After an event of the worker that left `live` exchanges in flight and `ended` one (or
/// not): when a burst is over, the moment by which the worker's timer must fire for its
/// trimming round.
pub fn after_event(live: usize, ended: bool, now: Moment) -> Option<Moment> {
    let churned = ended
        && ENDED.with(|n| {
            n.set(n.get() + 1);
            n.get() >= CHURN
        });
    if live >= BURST || churned {
        PENDING.with(|p| p.set(true));
        ENDED.with(|n| n.set(0));
    }
    if live >= BURST {
        return None;
    }
    if live > 0 || !PENDING.with(Cell::get) || ASKED.with(|a| a.replace(true)) {
        return None;
    }
    Some(now.after(AFTER))
}

/// A round of the worker's timer, with `live` exchanges in flight after it: trims if a burst
/// ran and nothing is in flight.
pub fn on_timer(live: usize) {
    ASKED.with(|a| a.set(false));
    if live == 0 && PENDING.with(|p| p.replace(false)) {
        ENDED.with(|n| n.set(0));
        release();
    }
}

/// Returns the free memory of every arena to the system.
#[cfg(target_env = "gnu")]
fn release() {
    // SAFETY: a plain glibc call with no arguments to uphold; it takes each arena's lock.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(target_env = "gnu"))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_asks_for_one_round_once_nothing_is_in_flight() {
        let t0 = Moment::from_nanos(1_000_000_000);
        // A quiet worker never asks.
        assert_eq!(after_event(0, false, t0), None);
        assert_eq!(after_event(BURST - 1, false, t0), None);
        assert_eq!(after_event(0, true, t0), None);
        // A burst, then quiet: one round, AFTER later, asked once.
        assert_eq!(after_event(BURST, false, t0), None);
        assert_eq!(after_event(3, true, t0), None);
        assert_eq!(after_event(0, true, t0), Some(t0.after(AFTER)));
        assert_eq!(after_event(0, false, t0), None);
        // The round finds the worker busy again: no trim yet, asked again when quiet.
        on_timer(2);
        assert!(PENDING.with(Cell::get));
        assert_eq!(after_event(0, false, t0), Some(t0.after(AFTER)));
        on_timer(0);
        assert!(!PENDING.with(Cell::get));
        assert_eq!(after_event(0, false, t0), None);
        // Churn: CHURN exchanges ended one at a time make it worth trimming too.
        for _ in 0..CHURN - 1 {
            assert_eq!(after_event(0, true, t0), None);
        }
        assert_eq!(after_event(0, true, t0), Some(t0.after(AFTER)));
        on_timer(0);
        assert!(!PENDING.with(Cell::get));
    }
}
