//! PowerOfTwo (P2C): two weighted random choices, the less loaded one wins.

use super::rng;
use super::sequence::{push_rotation_except, Cycle};
use super::{Balancer, RequestContext, Servers, MAX_DRAWS};

/// Draws two servers at random in proportion to their weights and prefers the one with fewer
/// requests in flight per unit of weight (the default of HAProxy 3.3 and Envoy).
///
/// Two random probes avoid both the herd effect of least-connections on stale counts and the
/// blindness of pure random, at the cost of two counter reads. The loser is the first failover
/// candidate; the rest follow in list rotation.
#[derive(Debug)]
pub struct PowerOfTwo {
    cycle: Cycle,
    weights: Box<[u64]>,
}

impl PowerOfTwo {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> PowerOfTwo {
        PowerOfTwo {
            cycle: Cycle::new(weights),
            weights: weights.iter().map(|&w| u64::from(w.max(1))).collect(),
        }
    }
}

impl PowerOfTwo {
    /// The server `random` draws, drawn again while it is unusable (up to `MAX_DRAWS`).
    fn usable_draw(&self, random: u32, servers: &dyn Servers) -> usize {
        let mut i = self.cycle.weighted(random);
        for _ in 1..MAX_DRAWS {
            if servers.admits(i) {
                break;
            }
            let [r] = rng::next::<1>();
            i = self.cycle.weighted(r);
        }
        i
    }
}

impl Balancer for PowerOfTwo {
    fn name(&self) -> &'static str {
        "PowerOfTwo"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        let n = servers.count().min(self.weights.len());
        if n == 0 {
            return;
        }
        // A random position in the weighted cycle is a weighted random server, in O(1); a
        // draw that names an unusable server is drawn again, so its share goes to the
        // others by weight.
        let [r1, r2, r3] = rng::next::<3>();
        let mut a = self.usable_draw(r1, servers);
        let mut b = self.usable_draw(r2, servers);
        if a == b && n > 1 {
            // One redraw: a heavy server drawn twice would make the comparison moot.
            b = self.usable_draw(r3, servers);
        }
        let load = |i: usize| u64::from(servers.in_flight(i));
        let lighter = if servers.ramping() {
            // Per unit of effective weight (slow start scales a ramping server's).
            let w = |i: usize| u128::from(self.weights[i]) * u128::from(servers.ramp(i));
            u128::from(load(b)) * w(a) < u128::from(load(a)) * w(b)
        } else {
            load(b) * self.weights[a] < load(a) * self.weights[b]
        };
        if a != b && lighter {
            std::mem::swap(&mut a, &mut b);
        }
        out.reserve(n);
        out.push(a);
        if b != a {
            out.push(b);
        }
        let start = if a + 1 == n { 0 } else { a + 1 };
        push_rotation_except(out, n, start, a, b);
    }
}
