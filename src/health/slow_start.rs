//! Slow start: a server that comes back (or is new) takes a growing share of its weight over
//! `SlowStart` seconds, from [`FLOOR`] to all of it, so that a cold cache or a JIT that has
//! not warmed up is not hit with a full share at once (HAProxy's `slowstart`, nginx Plus's
//! `slow_start`).
//!
//! The ramp is linear in time: `weight × (10 % + 90 % × elapsed / SlowStart)`. Weighted
//! balancers read it as an effective weight, in thousandths ([`FULL`] = all of it).

use crate::clock::Millis;

/// The whole weight, in thousandths.
pub const FULL: u32 = 1000;

/// The share a ramp starts from, in thousandths (10 %).
pub const FLOOR: u32 = 100;

/// The effective share of its weight, in thousandths, of a server ramping since `since`
/// (0: not ramping) over `duration` ms, at `now`: [`FLOOR`] at `since` (and before it),
/// [`FULL`] from `since + duration` on.
#[inline]
pub fn permille(since: Millis, duration: Millis, now: Millis) -> u32 {
    if since == 0 || duration == 0 || now >= since.saturating_add(duration) {
        return FULL;
    }
    let elapsed = now.saturating_sub(since);
    FLOOR + ((u64::from(FULL - FLOOR) * elapsed) / duration) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_goes_from_a_tenth_to_all_linearly() {
        let d = 30_000;
        let since = 5_000;
        assert_eq!(permille(since, d, since), 100);
        assert_eq!(permille(since, d, since - 1_000), 100, "not started yet");
        assert_eq!(permille(since, d, since + 15_000), 550);
        assert_eq!(permille(since, d, since + 29_999), 999);
        assert_eq!(permille(since, d, since + 30_000), FULL);
        assert_eq!(permille(since, d, u64::MAX), FULL);
        assert_eq!(permille(0, d, 7), FULL, "not ramping");
        assert_eq!(permille(since, 0, since), FULL, "no slow start");
        let mut last = 0;
        for t in (since..since + d).step_by(100) {
            let p = permille(since, d, t);
            assert!(p >= last && (FLOOR..FULL).contains(&p));
            last = p;
        }
    }
}
