//! LeastConnections: fewest requests in flight per unit of weight, across all workers.

use std::sync::atomic::{AtomicU32, Ordering};

use super::sequence::Cycle;
use super::{Balancer, CachePadded, RequestContext, Servers};

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
        let step = self.next.0.fetch_add(1, Ordering::Relaxed);
        let (start, _) = self.cycle.at(step);
        let load = |i: usize| u64::from(servers.in_flight(i));
        let (mut best, mut best_load) = (start, load(start));
        let mut consider = |i: usize| {
            let l = load(i);
            // l / w_i < best_load / w_best, without division.
            if l * self.weights[best] < best_load * self.weights[i] {
                (best, best_load) = (i, l);
            }
        };
        (start + 1..n).for_each(&mut consider);
        (0..start).for_each(&mut consider);
        self.cycle.write_order(best, step, out);
    }
}
