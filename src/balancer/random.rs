//! Random: weighted random choice.

use super::rng;
use super::sequence::Cycle;
use super::{Balancer, RequestContext, Servers, MAX_DRAWS};

/// Picks a server at random in proportion to its weight; no shared state is written, so it
/// scales with the number of workers. Failover candidates follow in a random rotation.
#[derive(Debug)]
pub struct Random {
    cycle: Cycle,
}

impl Random {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> Random {
        Random {
            cycle: Cycle::new(weights),
        }
    }
}

impl Balancer for Random {
    fn name(&self) -> &'static str {
        "Random"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        if servers.count() == 0 {
            return;
        }
        // High bits choose the server (multiply-shift), low bits the failover rotation. A
        // draw that names an unusable server is drawn again, so its share goes to the
        // others by weight (and a server in slow start is drawn by its effective weight).
        let [mut r] = rng::next::<1>();
        let mut first = self.cycle.weighted(r);
        for _ in 1..MAX_DRAWS {
            if servers.admits(first) {
                break;
            }
            [r] = rng::next::<1>();
            first = self.cycle.weighted(r);
        }
        self.cycle.write_order(first, r & 0xffff, out);
    }
}
