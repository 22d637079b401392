//! LeastConnections: fewest requests in flight per unit of weight, across all workers.

use std::sync::atomic::{AtomicU32, Ordering};

use super::sequence::Cycle;
use super::{Balancer, CachePadded, RequestContext, Servers, MAX_DRAWS};

/// Picks the server with the fewest in-flight requests divided by its weight (the shared
/// `Server::in_flight` counters, so the view spans every worker).
///
/// The scan starts at the next step of the smooth weighted round-robin cycle and only a
/// strictly smaller load displaces the current best, so equally loaded servers — typically
/// all idle ones — are served in weighted round robin instead of the first one taking all.
#[derive(Debug)]
pub struct LeastConnections {
    cycle: Cycle,
    weights: Box<[u64]>,
    next: CachePadded<AtomicU32>,
}

impl LeastConnections {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> LeastConnections {
        LeastConnections {
            cycle: Cycle::new(weights),
            weights: weights.iter().map(|&w| u64::from(w.max(1))).collect(),
            next: CachePadded(AtomicU32::new(0)),
        }
    }
}

impl Balancer for LeastConnections {
    fn name(&self) -> &'static str {
        "LeastConnections"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        let n = servers.count().min(self.weights.len());
        if n == 0 {
            return;
        }
        // The scan starts at the cycle's next usable server (steps naming unusable servers
        // are skipped, as round robin skips them), so ties among idle servers go round by
        // weight over the usable ones only.
        let mut step = self.next.0.fetch_add(1, Ordering::Relaxed);
        let (mut start, _) = self.cycle.at(step);
        let draws = MAX_DRAWS.min(self.cycle.len() as u32);
        let mut drawn = 1;
        while drawn < draws && !servers.admits(start) {
            step = self.next.0.fetch_add(1, Ordering::Relaxed);
            start = self.cycle.at(step).0;
            drawn += 1;
        }
        let load = |i: usize| u64::from(servers.in_flight(i));
        // Slow start scales a ramping server's weight (its effective weight); otherwise the
        // configured weights compare as they are.
        let ramping = servers.ramping();
        let weight = |i: usize| u128::from(self.weights[i]) * u128::from(servers.ramp(i));
        // Only usable servers compete (an offline server has nothing in flight and would win
        // every time); if none is, the cycle's server stands.
        let mut best: Option<(usize, u64)> = None;
        let mut consider = |i: usize| {
            if !servers.usable(i) {
                return;
            }
            let l = load(i);
            // l / w_i < best_load / w_best, without division.
            match best {
                Some((b, bl)) if !ramping && l * self.weights[b] >= bl * self.weights[i] => {}
                Some((b, bl))
                    if ramping && u128::from(l) * weight(b) >= u128::from(bl) * weight(i) => {}
                _ => best = Some((i, l)),
            }
        };
        consider(start);
        (start + 1..n).for_each(&mut consider);
        (0..start).for_each(&mut consider);
        let first = best.map_or(start, |(b, _)| b);
        self.cycle.write_order(first, step, out);
    }
}
