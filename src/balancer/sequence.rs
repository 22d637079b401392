//! Building blocks shared by several balancers: the smooth weighted round-robin cycle and the
//! failover order that follows the first choice.

/// The longest cycle kept; heavier weight lists are scaled down (shares stay within 0.01 %).
const MAX_CYCLE: u64 = 1 << 16;

/// One cycle of nginx-style smooth weighted round robin over `weights`.
///
/// Weights are reduced by their gcd first so the cycle is as short as possible: a:3 b:2 c:1
/// gives `a b a c b a` (length 6) exactly as nginx does: interleaved, every prefix close to its
/// exact share. (The issue text quotes `a b a c a b`; nginx's algorithm picks b at step 5,
/// whose running total 4 beats a's 3.) Zero weights count as 1 (every server stays reachable).
/// Indexing this cycle with a counter serves round robin; indexing it at random serves
/// weighted random choices in O(1).
pub(crate) fn smooth_cycle(weights: &[u32]) -> Box<[u32]> {
    let mut w: Vec<i64> = weights.iter().map(|&w| i64::from(w.max(1))).collect();
    let g = w.iter().copied().fold(0, gcd);
    if g > 1 {
        w.iter_mut().for_each(|x| *x /= g);
    }
    let mut total: i64 = w.iter().sum();
    if total as u64 > MAX_CYCLE {
        // Keeps memory bounded for absurd weights; proportions survive to within 1/MAX_CYCLE.
        w.iter_mut()
            .for_each(|x| *x = (*x * MAX_CYCLE as i64 / total).max(1));
        total = w.iter().sum();
    }
    let mut current = vec![0i64; w.len()];
    let mut cycle = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, &wi) in current.iter_mut().zip(&w) {
            *c += wi;
        }
        // The first maximum wins ties, as in nginx.
        let best = (0..current.len()).fold(0, |b, i| if current[i] > current[b] { i } else { b });
        current[best] -= total;
        cycle.push(best as u32);
    }
    cycle.into_boxed_slice()
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Division and remainder by a divisor fixed at build time, without a `div` instruction
/// (Lemire, Kaser & Kurz, "Faster remainder by direct computation", 2019): two multiplies
/// instead of a 30–90 cycle division on the request path. Exact for every `u32` numerator.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastMod {
    d: u32,
    m: u64,
}

impl FastMod {
    /// Prepares division by `d` (0 is treated as 1).
    pub(crate) fn new(d: u32) -> FastMod {
        let d = d.max(1);
        FastMod {
            d,
            m: (u64::MAX / u64::from(d)).wrapping_add(1),
        }
    }

    /// `a / d`.
    #[inline]
    pub(crate) fn div(self, a: u32) -> u32 {
        if self.d == 1 {
            a
        } else {
            ((u128::from(self.m) * u128::from(a)) >> 64) as u32
        }
    }

    /// `a % d`.
    #[inline]
    pub(crate) fn rem(self, a: u32) -> u32 {
        let low = self.m.wrapping_mul(u64::from(a));
        ((u128::from(low) * u128::from(self.d)) >> 64) as u32
    }
}

/// A smooth weighted cycle ready for the request path: the server sequence plus the
/// precomputed divisors that turn a step number into a position and a failover rotation.
#[derive(Debug)]
pub(crate) struct Cycle {
    seq: Box<[u32]>,
    len: FastMod,
    others: FastMod,
    n: usize,
}

impl Cycle {
    /// The cycle for servers with these weights (see [`smooth_cycle`]).
    pub(crate) fn new(weights: &[u32]) -> Cycle {
        let seq = smooth_cycle(weights);
        Cycle {
            len: FastMod::new(seq.len() as u32),
            others: FastMod::new(weights.len().saturating_sub(1) as u32),
            n: weights.len(),
            seq,
        }
    }

    /// The number of servers.
    #[inline]
    pub(crate) fn servers(&self) -> usize {
        self.n
    }

    /// The number of steps in one round of the cycle.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.seq.len()
    }

    /// The server at `step` of the endless cycle, and which round of the cycle that is.
    #[inline]
    pub(crate) fn at(&self, step: u32) -> (usize, u32) {
        let round = self.len.div(step);
        let pos = step - round * self.seq.len() as u32;
        (self.seq[pos as usize] as usize, round)
    }

    /// A server drawn in proportion to its weight from 32 random bits (multiply-shift).
    #[inline]
    pub(crate) fn weighted(&self, random: u32) -> usize {
        let pos = (u64::from(random) * self.seq.len() as u64) >> 32;
        self.seq[pos as usize] as usize
    }

    /// Appends `first` and then every other server as failover candidates.
    ///
    /// The rotation of the others starts `turn` places after `first` (modulo the others), so
    /// with a turn that changes from request to request the share of a dead first choice is
    /// spread over all the others instead of piling onto its list neighbour.
    #[inline]
    pub(crate) fn write_order(&self, first: usize, turn: u32, out: &mut Vec<usize>) {
        out.reserve(self.n);
        out.push(first);
        if self.n > 1 {
            // first < n and the offset < n - 1, so one subtraction wraps it (no division).
            let mut start = first + 1 + self.others.rem(turn) as usize;
            if start >= self.n {
                start -= self.n;
            }
            push_rotation_except(out, self.n, start, first, first);
        }
    }
}

/// Appends every index below `n` except `a` and `b` (either may be out of range, or equal),
/// in rotation from `start` (< n).
///
/// Branch-free: the k-th output is computed from where the excluded servers sit in the
/// rotation, because with a random first choice a `skip if equal` test mispredicts on every
/// request and cost more than the rest of the pick.
#[inline]
pub(crate) fn push_rotation_except(
    out: &mut Vec<usize>,
    n: usize,
    start: usize,
    a: usize,
    b: usize,
) {
    // Position in the rotation, or n when the index is not in the list at all.
    let rel = |x: usize| match x {
        x if x >= n => n,
        x if x >= start => x - start,
        x => x + n - start,
    };
    let (mut p1, mut p2) = (rel(a), rel(b));
    if p1 > p2 {
        std::mem::swap(&mut p1, &mut p2);
    }
    if p1 == p2 {
        p2 = n;
    }
    let count = n - usize::from(p1 < n) - usize::from(p2 < n);
    out.reserve(count);
    for k in 0..count {
        let mut r = k;
        r += usize::from(r >= p1);
        r += usize::from(r >= p2);
        let mut j = start + r;
        if j >= n {
            j -= n;
        }
        out.push(j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_cycle_matches_nginx() {
        assert_eq!(&*smooth_cycle(&[3, 2, 1]), &[0, 1, 0, 2, 1, 0]);
        assert_eq!(&*smooth_cycle(&[6, 4, 2]), &[0, 1, 0, 2, 1, 0]);
        assert_eq!(&*smooth_cycle(&[5, 1, 1]), &[0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(&*smooth_cycle(&[1, 1, 1]), &[0, 1, 2]);
        assert_eq!(&*smooth_cycle(&[5]), &[0]);
    }

    #[test]
    fn huge_weights_are_bounded() {
        let c = smooth_cycle(&[1_000_000, 999_999, 3]);
        assert!(c.len() as u64 <= MAX_CYCLE + 3);
        assert!(c.contains(&2));
    }

    #[test]
    fn order_starts_with_first_and_covers_all() {
        let cycle = Cycle::new(&[1; 5]);
        for turn in 0..20 {
            let mut out = Vec::new();
            cycle.write_order(2, turn, &mut out);
            assert_eq!(out[0], 2);
            assert_eq!(out[1], [3, 4, 0, 1][turn as usize % 4]);
            out.sort();
            assert_eq!(out, vec![0, 1, 2, 3, 4]);
        }
    }

    #[test]
    fn rotation_except_matches_the_obvious_loop() {
        for n in 0..7usize {
            for start in 0..n {
                for a in 0..=n + 1 {
                    for b in 0..=n + 1 {
                        let mut got = Vec::new();
                        push_rotation_except(&mut got, n, start, a, b);
                        let want: Vec<usize> = (start..n)
                            .chain(0..start)
                            .filter(|&i| i != a && i != b)
                            .collect();
                        assert_eq!(got, want, "n {n} start {start} a {a} b {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn fast_mod_is_exact() {
        let mut x: u32 = 12345;
        for d in (1..300).chain([65_537, 1 << 16, u32::MAX - 1, u32::MAX]) {
            let f = FastMod::new(d);
            for a in [0, 1, d - 1, d, d.wrapping_add(1), u32::MAX, u32::MAX - 1] {
                assert_eq!((f.div(a), f.rem(a)), (a / d, a % d), "{a} / {d}");
            }
            for _ in 0..1000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!((f.div(x), f.rem(x)), (x / d, x % d), "{x} / {d}");
            }
        }
    }
}
