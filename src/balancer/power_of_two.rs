//! PowerOfTwo (P2C): two weighted random choices, the less loaded one wins.

use std::sync::atomic::Ordering;

use super::rng;
use super::sequence::{push_rest2, smooth_cycle};
use super::{Balancer, RequestContext};
use crate::upstream::Server;

/// Draws two servers at random in proportion to their weights and prefers the one with fewer
/// requests in flight per unit of weight (the default of HAProxy 3.3 and Envoy).
///
/// Two random probes avoid both the herd effect of least-connections on stale counts and the
/// blindness of pure random, at the cost of two counter reads. The loser is the first failover
/// candidate; the rest follow in list rotation.
#[derive(Debug)]
pub struct PowerOfTwo {
    cycle: Box<[u32]>,
    weights: Box<[u64]>,
}

impl PowerOfTwo {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> PowerOfTwo {
        PowerOfTwo {
            cycle: smooth_cycle(weights),
            weights: weights.iter().map(|&w| u64::from(w.max(1))).collect(),
        }
    }
}

impl Balancer for PowerOfTwo {
    fn name(&self) -> &'static str {
        "PowerOfTwo"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &[Server], out: &mut Vec<usize>) {
        let n = servers.len().min(self.weights.len());
        if n == 0 {
            return;
        }
        // A random position in the weighted cycle is a weighted random server, in O(1).
        let len = self.cycle.len();
        let mut a = self.cycle[rng::below(len)] as usize;
        let mut b = self.cycle[rng::below(len)] as usize;
        if a == b && n > 1 {
            // One redraw: a heavy server drawn twice would make the comparison moot.
            b = self.cycle[rng::below(len)] as usize;
        }
        let load = |i: usize| u64::from(servers[i].in_flight.load(Ordering::Relaxed));
        if a != b && load(b) * self.weights[a] < load(a) * self.weights[b] {
            std::mem::swap(&mut a, &mut b);
        }
        out.push(a);
        if b != a {
            out.push(b);
        }
        push_rest2(out, n, a + 1, a, b);
    }
}
