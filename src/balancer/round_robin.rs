//! RoundRobin: smooth weighted round robin on a lockless atomic counter.

use std::sync::atomic::{AtomicU32, Ordering};

use super::sequence::Cycle;
use super::{Balancer, CachePadded, RequestContext, Servers, MAX_DRAWS};

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
        write_first_usable(&self.cycle, servers, out, || {
            self.next.0.fetch_add(1, Ordering::Relaxed)
        });
    }
}

/// Takes steps of the cycle (from `next_step`) until one names a usable server (admitted:
/// a server in slow start is taken in proportion to its ramp, so its share of the steps is
/// its effective weight), writes it first and then the others. Skipping an unusable server costs a step of the shared
/// counter, so over all requests the cycle is served with the unusable servers left out:
/// each usable server keeps its exact share, and the others' shares are spread over them by
/// weight (taking the next server after an unusable one instead would hand a whole run of
/// dead servers' shares to the one after them). The failover rotation after the first
/// choice starts from the step, so requests whose first choice fails move on to different
/// servers.
#[inline]
pub(crate) fn write_first_usable(
    cycle: &Cycle,
    servers: &dyn Servers,
    out: &mut Vec<usize>,
    mut next_step: impl FnMut() -> u32,
) {
    if cycle.servers() == 0 {
        return;
    }
    let mut step = next_step();
    let (mut first, _) = cycle.at(step);
    let draws = MAX_DRAWS.min(cycle.len() as u32);
    let mut drawn = 1;
    while drawn < draws && !servers.admits(first) {
        step = next_step();
        first = cycle.at(step).0;
        drawn += 1;
    }
    cycle.write_order(first, step, out);
}
