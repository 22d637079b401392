//! LockingRoundRobin: the RoundRobin order, stepped under a mutex.

use parking_lot::Mutex;

use super::round_robin::write_first_usable;
use super::sequence::Cycle;
use super::{Balancer, RequestContext, Servers};

/// The same smooth weighted cycle as [`super::RoundRobin`], with the step kept under a
/// `parking_lot::Mutex` (the seed's "Locking Round Robin"), kept to measure what the lock
/// costs against the atomic counter.
#[derive(Debug)]
pub struct LockingRoundRobin {
    cycle: Cycle,
    next: Mutex<u32>,
}

impl LockingRoundRobin {
    /// A balancer for servers with these weights, in list order.
    pub fn new(weights: &[u32]) -> LockingRoundRobin {
        LockingRoundRobin {
            cycle: Cycle::new(weights),
            next: Mutex::new(0),
        }
    }
}

impl Balancer for LockingRoundRobin {
    fn name(&self) -> &'static str {
        "LockingRoundRobin"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        debug_assert_eq!(
            servers.count(),
            self.cycle.servers(),
            "built for another list"
        );
        // The steps skipped for unusable servers are taken under the same lock, so the
        // order stays exact.
        let mut next = self.next.lock();
        write_first_usable(&self.cycle, servers, out, || {
            let step = *next;
            *next = step.wrapping_add(1);
            step
        });
    }
}
