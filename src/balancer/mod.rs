//! Load balancing: the [`Balancer`] trait and the registry that maps configuration names to
//! balancers.
//!
//! A balancer only orders servers: it writes every server index it would use, most preferred
//! first, so failover and retry walk the list without asking twice. Health filtering (skipping
//! servers that are offline) is applied on top by [`crate::upstream::Upstream::plan`].

mod first_alive;
mod least_connections;
mod locking_round_robin;
mod naive;
mod power_of_two;
mod random;
mod rng;
mod round_robin;
mod sequence;
mod source_hash;

use std::fmt::Debug;
use std::net::IpAddr;

use crate::config::{balancer_named, ServerSpec};

pub use first_alive::FirstAlive;
pub use least_connections::LeastConnections;
pub use locking_round_robin::LockingRoundRobin;
pub use naive::Naive;
pub use power_of_two::PowerOfTwo;
pub use random::Random;
pub use rng::seed_thread_rng;
pub use round_robin::RoundRobin;
pub use source_hash::{key_hash, SourceHash};

/// What a balancer may know about the request it places.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The client's address.
    pub client_ip: IpAddr,
    /// A number identifying the client connection, for `Naive`: the client's source port
    /// (the host's connection number when the address is unknown).
    pub connection_id: u64,
    /// The request path (without query).
    pub path: &'a str,
    /// The hash of the request's `HashKey` ([`key_hash`]), when the entry hashes on
    /// something else than the client address and the request has it; `SourceHash` hashes
    /// the client address otherwise.
    pub key: Option<u64>,
    /// The server the request's sticky cookie names, when it is valid: planning puts it
    /// first while it is usable ([`crate::upstream::Upstream::plan`]).
    pub sticky: Option<usize>,
}

/// What a balancer may read of the servers it orders, at the moment it orders them. The
/// group that owns the servers implements it ([`crate::upstream::Upstream`]); balancers know
/// nothing else of a server at run time.
pub trait Servers {
    /// How many servers there are (the list the balancer was built for).
    fn count(&self) -> usize;
    /// Requests in flight on server `i`, across all workers.
    fn in_flight(&self, i: usize) -> u32;
    /// Whether server `i` may take a request now (it is up, or due for a probe). A fair
    /// method makes its first choice among usable servers, so that the share of those that
    /// are not goes to every other server by weight — walking on from an unusable first
    /// choice to its list neighbour would pile a run of dead servers' shares onto the one
    /// after them.
    fn usable(&self, i: usize) -> bool;

    /// Whether server `i` may be the first choice now: usable and, for a server in slow
    /// start, drawn in proportion to its effective weight (each call draws anew). Weighted
    /// methods make their first choice with it; the default is [`Servers::usable`].
    #[inline]
    fn admits(&self, i: usize) -> bool {
        self.usable(i)
    }

    /// Whether any server is in slow start now: then [`Servers::ramp`] scales weights.
    #[inline]
    fn ramping(&self) -> bool {
        false
    }

    /// Server `i`'s effective weight now, in thousandths of its configured weight (1000:
    /// all of it; less while it ramps up after coming back, see `SlowStart`). Methods that
    /// compare loads per unit of weight scale the weight by it while [`Servers::ramping`].
    #[inline]
    fn ramp(&self, i: usize) -> u32 {
        let _ = i;
        1000
    }
}

/// A random 32-bit word from the calling thread's generator (the one the random methods
/// use).
#[inline]
pub(crate) fn random() -> u32 {
    rng::next::<1>()[0]
}

/// Most draws a fair method makes for a usable first choice before it settles for an
/// unusable one (then every server is down or nearly, and the group's fallback decides).
pub(crate) const MAX_DRAWS: u32 = 32;

/// A load-balancing method, shared by every worker thread.
pub trait Balancer: Send + Sync + Debug {
    /// Canonical name, as printed by the checker and the statistics page.
    fn name(&self) -> &'static str;

    /// Appends server indices to `out` in preference order, each index at most once.
    /// `out` is empty on entry; the caller reuses it between requests.
    fn order(&self, ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>);
}

/// Keeps a hot shared counter on its own cache line, so bumping it does not evict the
/// read-only tables next to it from other cores' caches.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CachePadded<T>(pub(crate) T);

/// Builds the method named `name` (a canonical name of [`crate::config::BALANCERS`], or one
/// of its aliases, any case) for these servers (names and weights, in list order); the
/// servers later passed to [`Balancer::order`] must be the same list. `None` for a name no
/// method has.
pub fn build(name: &str, servers: &[ServerSpec]) -> Option<Box<dyn Balancer>> {
    build_with(name, servers, 0)
}

/// [`build`] with `HashBalanceFactor` (percent of the mean load; 0: off), which only the
/// hash method uses.
pub fn build_with(
    name: &str,
    servers: &[ServerSpec],
    balance_factor: u32,
) -> Option<Box<dyn Balancer>> {
    let weights = || servers.iter().map(|s| s.weight).collect::<Vec<u32>>();
    let balancer: Box<dyn Balancer> = match balancer_named(name)?.name {
        "Naive" => Box::new(Naive::new(servers.len())),
        "FirstAlive" => Box::new(FirstAlive),
        "RoundRobin" => Box::new(RoundRobin::new(&weights())),
        "LockingRoundRobin" => Box::new(LockingRoundRobin::new(&weights())),
        "LeastConnections" => Box::new(LeastConnections::new(&weights())),
        "PowerOfTwo" => Box::new(PowerOfTwo::new(&weights())),
        "Random" => Box::new(Random::new(&weights())),
        "SourceHash" => Box::new(SourceHash::new(servers).bounded(balance_factor)),
        _ => return None,
    };
    Some(balancer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BALANCERS;

    #[test]
    fn every_configured_name_builds_the_method_of_that_name() {
        for b in BALANCERS {
            let built = build(b.name, &[]).unwrap_or_else(|| panic!("{} builds nothing", b.name));
            assert_eq!(built.name(), b.name);
            for alias in b.aliases {
                assert_eq!(
                    build(&alias.to_lowercase(), &[]).map(|m| m.name()),
                    Some(b.name)
                );
            }
        }
        assert!(build("Fastest", &[]).is_none());
    }
}
