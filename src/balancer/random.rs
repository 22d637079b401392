//! Random: weighted random choice.

use super::rng;
use super::sequence::{push_rest, rest_start, smooth_cycle};
use super::{Balancer, RequestContext};
use crate::upstream::Server;

/// Picks a server at random in proportion to its weight; no shared state is written, so it
/// scales with the number of workers. Failover candidates follow in a random rotation.
#[derive(Debug)]
pub struct Random {
    cycle: Box<[u32]>,
}

impl Random {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> Random {
        Random {
            cycle: smooth_cycle(weights),
        }
    }
}

impl Balancer for Random {
    fn name(&self) -> &'static str {
        "Random"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &[Server], out: &mut Vec<usize>) {
        let n = servers.len();
        if n == 0 {
            return;
        }
        let r = rng::next_u32();
        // High bits choose the server (multiply-shift), low bits the failover rotation.
        let pos = ((u64::from(r) * self.cycle.len() as u64) >> 32) as usize;
        let first = self.cycle[pos] as usize;
        out.push(first);
        push_rest(out, n, rest_start(n, first, r as usize), first);
    }
}
