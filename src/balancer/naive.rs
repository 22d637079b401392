//! Naive: the starting server comes from the client connection's number, then list order.

use super::{Balancer, RequestContext};
use crate::upstream::Server;

/// Starts at `connection_id % n` and walks the list from there (the seed's "Naive").
///
/// No shared state at all: requests of one client connection stick to one server, and
/// connections with consecutive numbers land on consecutive servers. Weights are ignored,
/// as in the original.
#[derive(Debug, Default)]
pub struct Naive;

impl Balancer for Naive {
    fn name(&self) -> &'static str {
        "Naive"
    }

    fn order(&self, ctx: &RequestContext<'_>, servers: &[Server], out: &mut Vec<usize>) {
        let n = servers.len();
        if n == 0 {
            return;
        }
        let start = (ctx.connection_id % n as u64) as usize;
        out.extend((start..n).chain(0..start));
    }
}
