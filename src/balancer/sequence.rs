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

/// Appends every index below `n` except `first` (already in `out`), in rotation from `start`.
///
/// Failover candidates after the balancer's choice: starting the rotation at a varying
/// `start` spreads the share of a dead first choice over the others instead of piling it on
/// its list neighbour.
#[inline]
pub(crate) fn push_rest(out: &mut Vec<usize>, n: usize, start: usize, first: usize) {
    let start = start % n.max(1);
    out.extend((start..n).chain(0..start).filter(|&i| i != first));
}

/// Appends every index below `n` except `a` and `b` (already in `out`), rotating from `start`.
#[inline]
pub(crate) fn push_rest2(out: &mut Vec<usize>, n: usize, start: usize, a: usize, b: usize) {
    let start = start % n.max(1);
    out.extend((start..n).chain(0..start).filter(|&i| i != a && i != b));
}

/// Where the failover rotation starts after `first` has been chosen at step `step`: never on
/// `first` itself, and moving by one every step so the other servers take turns.
#[inline]
pub(crate) fn rest_start(n: usize, first: usize, step: usize) -> usize {
    if n <= 1 {
        0
    } else {
        first + 1 + step % (n - 1)
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
    fn rest_skips_first_and_covers_all() {
        let mut out = vec![2];
        push_rest(&mut out, 5, rest_start(5, 2, 7), 2);
        let mut sorted = out.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4]);
    }
}
