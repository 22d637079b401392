//! An entry's group of servers at run time: balancer, health and live counters.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::balancer::{self, Balancer, RequestContext};
use crate::clock::Millis;
use crate::config::{Entry, ServerSpec};
use crate::health::{FailureKind, Health};

/// One backend server at run time.
#[derive(Debug)]
pub struct Server {
    /// What the configuration says about it.
    pub spec: ServerSpec,
    /// Requests in flight on it, across all workers.
    pub in_flight: AtomicU32,
    /// Its health record.
    pub health: Health,
}

/// The servers of one entry and the method that spreads requests over them.
#[derive(Debug)]
pub struct Upstream {
    servers: Vec<Server>,
    balancer: Box<dyn Balancer>,
}

impl Upstream {
    /// Builds the run-time group for `entry` (its balancer name must be in the registry).
    pub fn new(entry: &Entry) -> Result<Upstream, String> {
        let reg = balancer::lookup(&entry.balancer)
            .ok_or_else(|| format!("unknown load balancer {:?}", entry.balancer))?;
        let weights: Vec<u32> = entry.servers.iter().map(|s| s.weight).collect();
        let servers = entry
            .servers
            .iter()
            .map(|spec| Server {
                spec: spec.clone(),
                in_flight: AtomicU32::new(0),
                health: Health::default(),
            })
            .collect();
        Ok(Upstream {
            servers,
            balancer: (reg.build)(&weights),
        })
    }

    /// The servers, in configuration order.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The balancer's canonical name.
    pub fn balancer_name(&self) -> &'static str {
        self.balancer.name()
    }

    /// Fills `out` (cleared first) with the servers to try for this request, in order.
    pub fn plan(&self, ctx: &RequestContext<'_>, now: Millis, out: &mut Vec<usize>) {
        out.clear();
        self.balancer.order(ctx, &self.servers, out);
        out.retain(|&i| self.servers[i].health.is_available(now));
    }

    /// Claims server `i` for an attempt at `now` (counts it in flight); false when it cannot
    /// be used now.
    pub fn acquire(&self, i: usize, _now: Millis) -> bool {
        self.servers[i].in_flight.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The attempt on server `i` is over.
    pub fn release(&self, i: usize) {
        self.servers[i].in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Server `i` answered (a response head arrived).
    pub fn record_success(&self, _i: usize, _now: Millis) {}

    /// An attempt on server `i` failed.
    pub fn record_failure(&self, _i: usize, _kind: FailureKind, _now: Millis) {}

    /// Seconds until the first offline server may be tried again (for `Retry-After`), ≥ 1.
    pub fn retry_after_secs(&self, _now: Millis) -> u64 {
        1
    }
}
