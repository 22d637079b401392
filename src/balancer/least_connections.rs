//! LeastConnections: fewest requests in flight per unit of weight, across all workers.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::sequence::{push_rest, rest_start, smooth_cycle};
use super::{Balancer, CachePadded, RequestContext};
use crate::upstream::Server;

/// Picks the server with the fewest in-flight requests divided by its weight (the shared
/// `Server::in_flight` counters, so the view spans every worker).
///
/// The scan starts at the next step of the smooth weighted round-robin cycle and only a
/// strictly smaller load displaces the current best, so equally loaded servers — typically
/// all idle ones — are served in weighted round robin instead of the first one taking all.
#[derive(Debug)]
pub struct LeastConnections {
    cycle: Box<[u32]>,
    weights: Box<[u64]>,
    next: CachePadded<AtomicUsize>,
}

impl LeastConnections {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> LeastConnections {
        LeastConnections {
            cycle: smooth_cycle(weights),
            weights: weights.iter().map(|&w| u64::from(w.max(1))).collect(),
            next: CachePadded(AtomicUsize::new(0)),
        }
    }
}

impl Balancer for LeastConnections {
    fn name(&self) -> &'static str {
        "LeastConnections"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &[Server], out: &mut Vec<usize>) {
        let n = servers.len().min(self.weights.len());
        if n == 0 {
            return;
        }
        let step = self.next.0.fetch_add(1, Ordering::Relaxed);
        let start = self.cycle[step % self.cycle.len()] as usize;
        let load = |i: usize| u64::from(servers[i].in_flight.load(Ordering::Relaxed));
        let (mut best, mut best_load) = (start, load(start));
        for i in (start + 1..n).chain(0..start) {
            let l = load(i);
            // l / w_i < best_load / w_best, without division.
            if l * self.weights[best] < best_load * self.weights[i] {
                (best, best_load) = (i, l);
            }
        }
        out.push(best);
        push_rest(out, n, rest_start(n, best, step), best);
    }
}
