//! A per-second line budget, lock-free: at most [`LINES_PER_SECOND`] lines in each second
//! of the clock the caller passes in, then silence, and a count of what was kept quiet for
//! the first line of a later second to report.
//!
//! One `AtomicU64` holds the second and the lines written in it (one compare-and-swap per
//! admitted line); a second atomic counts the lines suppressed. Once a second's budget is
//! spent, a line costs one load and one add.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::clock::Moment;

/// Lines admitted per second.
pub const LINES_PER_SECOND: u64 = 10;

/// Bits of the packed state that count the lines of the current second.
const COUNT_BITS: u32 = 16;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

/// What [`RateLimit::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Write the line. `suppressed` lines were kept quiet since the last line written (in
    /// earlier seconds): say so first.
    Write {
        /// Lines suppressed before this one.
        suppressed: u64,
    },
    /// The second's budget is spent: write nothing (counted for the next line written).
    Suppress,
}

/// The budget of one entry. See the [module docs](self).
#[derive(Debug, Default)]
pub struct RateLimit {
    /// `second << COUNT_BITS | lines written in it`; second 0 is "none yet".
    state: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// A budget with nothing spent.
    pub fn new() -> RateLimit {
        RateLimit::default()
    }

    /// Whether a line may be written at `now`.
    pub fn admit(&self, now: Moment) -> Admit {
        // Seconds on the clock, from 1 (0 is "none yet").
        let second = now.nanos() / 1_000_000_000 + 1;
        let mut current = self.state.load(Relaxed);
        loop {
            let (window, count) = (current >> COUNT_BITS, current & COUNT_MASK);
            let new_second = second > window;
            let next = if new_second {
                second << COUNT_BITS | 1
            } else if count < LINES_PER_SECOND {
                current + 1
            } else {
                self.suppressed.fetch_add(1, Relaxed);
                return Admit::Suppress;
            };
            match self
                .state
                .compare_exchange_weak(current, next, Relaxed, Relaxed)
            {
                Ok(_) if new_second => {
                    return Admit::Write {
                        suppressed: self.suppressed.swap(0, Relaxed),
                    }
                }
                Ok(_) => return Admit::Write { suppressed: 0 },
                Err(seen) => current = seen,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ten_lines_a_second_then_the_count_of_the_rest_with_the_next_second() {
        let limit = RateLimit::new();
        let t = Moment::from_nanos(5_000_000_000);
        let written = (0..100)
            .filter(|_| limit.admit(t) != Admit::Suppress)
            .count();
        assert_eq!(written, 10);
        let later = t.after(Duration::from_millis(999));
        assert_eq!(limit.admit(later), Admit::Suppress, "same second");
        let next = t.after(Duration::from_secs(1));
        assert_eq!(limit.admit(next), Admit::Write { suppressed: 91 });
        assert_eq!(limit.admit(next), Admit::Write { suppressed: 0 });
    }

    #[test]
    fn threads_share_one_budget() {
        let limit = std::sync::Arc::new(RateLimit::new());
        let t = Moment::from_nanos(1_000_000_000);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let limit = limit.clone();
                std::thread::spawn(move || {
                    (0..1000)
                        .filter(|_| limit.admit(t) != Admit::Suppress)
                        .count()
                })
            })
            .collect();
        let written: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(written, 10);
        assert_eq!(
            limit.admit(t.after(Duration::from_secs(1))),
            Admit::Write { suppressed: 3990 }
        );
    }
}
