//! A cheap per-thread xorshift random generator for the random balancers.
//!
//! Balancing needs speed and spread, not cryptographic quality, so a thread-local xorshift64*
//! (a few instructions, no shared state, no `rand` dependency) is enough. Each thread seeds
//! itself once from std's randomly keyed hasher; tests call [`seed_thread_rng`] to make a run
//! reproducible.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

thread_local! {
    // 0 means "not seeded yet" (xorshift never produces 0 from a non-zero state).
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Seeds the calling thread's generator, so that the random balancers repeat the same choices
/// (tests and benchmarks). A zero seed is replaced by a fixed non-zero constant.
pub fn seed_thread_rng(seed: u64) {
    let seed = if seed == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        seed
    };
    STATE.with(|s| s.set(seed));
}

/// The next `K` random 32-bit words of the calling thread's generator.
///
/// One thread-local access for all of them: in the plugin (a `cdylib`) each access to a
/// thread-local is a call into the dynamic loader, which costs more than the arithmetic.
#[inline]
pub(crate) fn next<const K: usize>() -> [u32; K] {
    STATE.with(|s| {
        let mut x = s.get();
        if x == 0 {
            x = RandomState::new().hash_one(std::thread::current().id()) | 1;
        }
        let words = std::array::from_fn(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            // xorshift64*: the multiply scrambles the weak low bits; keep the high half.
            (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
        });
        s.set(x);
        words
    })
}
