//! RoundRobin: smooth weighted round robin on a lockless atomic counter.

use std::sync::atomic::{AtomicU32, Ordering};

use super::sequence::Cycle;
use super::{Balancer, CachePadded, RequestContext, Servers};

/// Smooth weighted round robin (nginx's order, e.g. a:3 b:2 c:1 → `a b a c b a`) driven by one
/// atomic counter shared by all workers.
///
/// The cycle is computed once at build time, so a pick is one `fetch_add` and one table read.
/// Concurrent pickers each get a distinct counter value, so shares stay exact over whole
/// cycles; only the interleaving between threads is unordered (the seed's "races only make
/// sharing slightly unfair", without even the unfairness). The counter is 32 bits so the step
/// maps to a position with multiplies only; when it wraps (every 2³² picks) the cycle restarts
/// at an arbitrary place once, which nobody can notice.
#[derive(Debug)]
pub struct RoundRobin {
    cycle: Cycle,
    next: CachePadded<AtomicU32>,
}

impl RoundRobin {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> RoundRobin {
        RoundRobin {
            cycle: Cycle::new(weights),
            next: CachePadded(AtomicU32::new(0)),
        }
    }
}

impl Balancer for RoundRobin {
    fn name(&self) -> &'static str {
        "RoundRobin"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        debug_assert_eq!(
            servers.count(),
            self.cycle.servers(),
            "built for another list"
        );
        // Relaxed: the counter orders nothing else, it only hands out distinct steps.
        let step = self.next.0.fetch_add(1, Ordering::Relaxed);
        write_step(&self.cycle, step, out);
    }
}

/// Writes the server at `step` of the cycle first, then the others; the failover rotation
/// turns once per round of the cycle so a dead server's share is spread over all the others.
#[inline]
pub(crate) fn write_step(cycle: &Cycle, step: u32, out: &mut Vec<usize>) {
    if cycle.servers() == 0 {
        return;
    }
    let (first, round) = cycle.at(step);
    cycle.write_order(first, round, out);
}
