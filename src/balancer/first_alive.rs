//! FirstAlive: the servers in list order, so the first one that is up takes everything.

use super::{Balancer, RequestContext, Servers};

/// Orders servers as listed; health filtering then picks the first that is up.
#[derive(Debug, Default)]
pub struct FirstAlive;

impl Balancer for FirstAlive {
    fn name(&self) -> &'static str {
        "FirstAlive"
    }

    fn order(&self, _ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        out.extend(0..servers.count());
    }
}
