//! RoundRobin: smooth weighted round robin on a lockless atomic counter.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::sequence::{push_rest, rest_start, smooth_cycle};
use super::{Balancer, CachePadded, RequestContext};
use crate::upstream::Server;

/// Smooth weighted round robin (nginx's order, e.g. a:3 b:2 c:1 → `a b a c b a`) driven by one
/// atomic counter shared by all workers.
///
/// The cycle is computed once at build time, so a pick is one `fetch_add` and one table read.
/// Concurrent pickers each get a distinct counter value, so shares stay exact over whole
/// cycles; only the interleaving between threads is unordered (the seed's "races only make
/// sharing slightly unfair", without even the unfairness).
#[derive(Debug)]
pub struct RoundRobin {
    cycle: Box<[u32]>,
    next: CachePadded<AtomicUsize>,
}

impl RoundRobin {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> RoundRobin {
        RoundRobin {
            cycle: smooth_cycle(weights),
            next: CachePadded(AtomicUsize::new(0)),
        }
    }
}

impl Balancer for RoundRobin {
    fn name(&self) -> &'static str {
        "RoundRobin"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &[Server], out: &mut Vec<usize>) {
        // Relaxed: the counter orders nothing else, it only hands out distinct steps.
        let step = self.next.0.fetch_add(1, Ordering::Relaxed);
        write_cycle_order(&self.cycle, step, servers.len(), out);
    }
}

/// Writes the server at `step` of `cycle` first, then the others as failover candidates.
///
/// The failover rotation shifts by one each cycle so the share of a dead server is spread over
/// all the others rather than dumped on its neighbour in the list.
#[inline]
pub(crate) fn write_cycle_order(cycle: &[u32], step: usize, n: usize, out: &mut Vec<usize>) {
    if n == 0 || cycle.is_empty() {
        return;
    }
    let (round, pos) = (step / cycle.len(), step % cycle.len());
    let first = cycle[pos] as usize;
    debug_assert!(first < n, "balancer built for a different server list");
    out.push(first);
    push_rest(out, n, rest_start(n, first, round), first);
}
