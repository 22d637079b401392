//! Naive: the starting server comes from the client connection's number (its source port),
//! then list order.

use super::sequence::{push_rotation_except, FastMod};
use super::{Balancer, RequestContext, Servers};

/// Starts at `connection_id % n` and walks the list from there (the seed's "Naive").
///
/// No shared state at all: requests of one client connection stick to one server, and
/// connections with consecutive numbers land on consecutive servers. Weights are ignored,
/// as in the original.
#[derive(Debug)]
pub struct Naive {
    n: FastMod,
}

impl Naive {
    /// A balancer for `n` servers.
    pub fn new(n: usize) -> Naive {
        Naive {
            n: FastMod::new(n as u32),
        }
    }
}

impl Balancer for Naive {
    fn name(&self) -> &'static str {
        "Naive"
    }

    fn order(&self, ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        let n = servers.count();
        if n == 0 {
            return;
        }
        // Connection numbers are source ports or descriptors: the low 32 bits are all of it.
        let mut start = self.n.rem(ctx.connection_id as u32) as usize;
        if start >= n {
            // Only with a server list other than the one it was built for; stay in range.
            start = 0;
        }
        out.reserve(n);
        push_rotation_except(out, n, start, usize::MAX, usize::MAX);
    }
}
