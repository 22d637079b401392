//! Outlier ejection (Envoy's consecutive-5xx detection): a server that answers
//! `OutlierConsecutive5xx` responses in a row with a 5xx status is left out for a while,
//! although it accepts connections and passes probes.
//!
//! Each ejection lasts the base `OutlierEjectionTime` times the server's multiplier, which
//! grows by one with every ejection and is capped at [`MAX_MULTIPLIER`]; a server that stays
//! in for a whole base period earns one step back, so a server that misbehaves once in a
//! long while is not punished for its history. Whether an ejection is allowed (at most
//! `OutlierMaxEjectionPercent` of the entry's servers, at least one of two or more, never the
//! last usable one) is decided by the group ([`crate::upstream::Upstream`]); this record only
//! counts and times.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::clock::Millis;

/// The longest ejection, in base ejection times.
pub const MAX_MULTIPLIER: u32 = 10;

/// An ejection that was made: how long and which one it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ejected {
    /// When the server returns.
    pub until: Millis,
    /// Its multiplier for this ejection (1 for a first one).
    pub multiplier: u32,
}

/// The multiplier of an ejection at `now` of a server whose previous multiplier was
/// `previous`, back in service since `returned` (0: never ejected), with base ejection time
/// `base` (ms): one less per whole base period spent in service since, plus one, at most
/// [`MAX_MULTIPLIER`].
pub fn multiplier(previous: u32, returned: Millis, now: Millis, base: Millis) -> u32 {
    let earned = if returned == 0 || base == 0 {
        u64::from(previous)
    } else {
        now.saturating_sub(returned) / base
    };
    let kept = u64::from(previous).saturating_sub(earned) as u32;
    (kept + 1).min(MAX_MULTIPLIER)
}

/// One server's outlier record, shared by every worker; kept across reloads with the server.
#[derive(Debug, Default)]
pub struct OutlierState {
    /// 5xx responses in a row.
    consecutive: AtomicU32,
    /// When the current ejection ends (0: not ejected, or its end was noticed).
    until: AtomicU64,
    /// The multiplier of the last ejection.
    multiplier: AtomicU32,
    /// When the last ejection ended (0: never ejected).
    returned: AtomicU64,
    /// Ejections so far.
    ejections: AtomicU32,
}

impl OutlierState {
    /// A response with `status` arrived; returns the 5xx responses now in a row (0 after
    /// any other status). The common case (a success after a success) writes nothing.
    #[inline]
    pub fn record(&self, status: u16) -> u32 {
        if (500..600).contains(&status) {
            self.consecutive
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1)
        } else {
            if self.consecutive.load(Ordering::Relaxed) != 0 {
                self.consecutive.store(0, Ordering::Relaxed);
            }
            0
        }
    }

    /// Whether the server is ejected at `now`.
    #[inline]
    pub fn is_ejected(&self, now: Millis) -> bool {
        self.until.load(Ordering::Relaxed) > now
    }

    /// When the current ejection ends (0: none).
    pub fn until(&self) -> Millis {
        self.until.load(Ordering::Relaxed)
    }

    /// Ejections so far.
    pub fn ejections(&self) -> u32 {
        self.ejections.load(Ordering::Relaxed)
    }

    /// Ejects the server at `now` with base ejection time `base` (ms), unless it is ejected
    /// already; the 5xx count starts again, so a server that returns is ejected again only
    /// after as many new ones. The caller decided the ejection is allowed.
    pub fn eject(&self, now: Millis, base: Millis) -> Option<Ejected> {
        let current = self.until.load(Ordering::Acquire);
        if current > now {
            return None;
        }
        let m = multiplier(
            self.multiplier.load(Ordering::Relaxed),
            self.returned_at(current),
            now,
            base,
        );
        let until = now.saturating_add(base.saturating_mul(u64::from(m))).max(1);
        self.until
            .compare_exchange(current, until, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.multiplier.store(m, Ordering::Relaxed);
        self.consecutive.store(0, Ordering::Relaxed);
        self.ejections.fetch_add(1, Ordering::Relaxed);
        Some(Ejected {
            until,
            multiplier: m,
        })
    }

    /// The end of the last ejection: `current` (an ejection over but not yet noticed) or the
    /// one noticed.
    fn returned_at(&self, current: Millis) -> Millis {
        if current != 0 {
            current
        } else {
            self.returned.load(Ordering::Relaxed)
        }
    }

    /// If an ejection ended by `now` and nobody noticed yet, notices it (for the log line,
    /// to exactly one caller) and returns when it ended.
    pub fn notice_return(&self, now: Millis) -> Option<Millis> {
        let until = self.until.load(Ordering::Acquire);
        if until == 0 || until > now {
            return None;
        }
        self.until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed)
            .ok()?;
        self.returned.store(until, Ordering::Relaxed);
        Some(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Millis = 30_000;

    #[test]
    fn ejections_grow_by_one_base_period_each_and_stop_at_ten() {
        let o = OutlierState::default();
        let mut now = 1_000;
        let mut lengths = Vec::new();
        for _ in 0..12 {
            let e = o.eject(now, BASE).expect("ejected");
            lengths.push((e.until - now) / BASE);
            assert!(o.is_ejected(e.until - 1) && !o.is_ejected(e.until));
            assert!(o.eject(e.until - 1, BASE).is_none(), "ejected twice");
            // Fails again right after it returns.
            now = e.until + 1;
        }
        assert_eq!(lengths, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10]);
        assert_eq!(o.ejections(), 12);
    }

    #[test]
    fn a_server_that_stays_in_earns_its_steps_back() {
        // Previous multiplier 4, back for 2.5 base periods: two steps back, then +1.
        assert_eq!(multiplier(4, 10_000, 10_000 + 75_000, BASE), 3);
        assert_eq!(multiplier(4, 10_000, 10_000 + 10 * BASE, BASE), 1);
        assert_eq!(multiplier(0, 0, 5, BASE), 1);
        assert_eq!(multiplier(10, 1, 2, BASE), 10);
        let o = OutlierState::default();
        let first = o.eject(1_000, BASE).unwrap();
        assert_eq!(o.notice_return(first.until - 1), None);
        assert_eq!(o.notice_return(first.until + 5), Some(first.until));
        assert_eq!(o.notice_return(first.until + 6), None, "noticed once");
        let second = o.eject(first.until + 3 * BASE, BASE).unwrap();
        assert_eq!(
            second.multiplier, 1,
            "three quiet periods forgive the first"
        );
    }

    #[test]
    fn only_consecutive_5xx_count() {
        let o = OutlierState::default();
        assert_eq!(o.record(500), 1);
        assert_eq!(o.record(503), 2);
        assert_eq!(o.record(404), 0);
        assert_eq!(o.record(502), 1);
        o.eject(1, BASE).unwrap();
        assert_eq!(o.record(500), 1, "an ejection starts the count again");
    }
}
