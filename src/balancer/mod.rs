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

use crate::config::ServerSpec;
use crate::upstream::Server;

pub use first_alive::FirstAlive;
pub use least_connections::LeastConnections;
pub use locking_round_robin::LockingRoundRobin;
pub use naive::Naive;
pub use power_of_two::PowerOfTwo;
pub use random::Random;
pub use rng::seed_thread_rng;
pub use round_robin::RoundRobin;
pub use source_hash::SourceHash;

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
}

/// A load-balancing method, shared by every worker thread.
pub trait Balancer: Send + Sync + Debug {
    /// Canonical name, as printed by the checker and the statistics page.
    fn name(&self) -> &'static str;

    /// Appends server indices to `out` in preference order, each index at most once.
    /// `out` is empty on entry; the caller reuses it between requests.
    fn order(&self, ctx: &RequestContext<'_>, servers: &[Server], out: &mut Vec<usize>);
}

/// A registry row: accepted spellings (compared case-insensitively) and a constructor.
pub struct Registration {
    /// The canonical name.
    pub name: &'static str,
    /// Other accepted spellings.
    pub aliases: &'static [&'static str],
    /// One-line description for the checker's help.
    pub doc: &'static str,
    /// Builds the balancer for these servers (names and weights, in list order); the
    /// `servers` later passed to [`Balancer::order`] must be the same list.
    pub build: fn(servers: &[ServerSpec]) -> Box<dyn Balancer>,
}

/// Keeps a hot shared counter on its own cache line, so bumping it does not evict the
/// read-only tables next to it from other cores' caches.
#[derive(Debug, Default)]
#[repr(align(64))]
pub(crate) struct CachePadded<T>(pub(crate) T);

fn weights(servers: &[ServerSpec]) -> Vec<u32> {
    servers.iter().map(|s| s.weight).collect()
}

/// Every balancer, one row each.
pub static REGISTRY: &[Registration] = &[
    Registration {
        name: "Naive",
        aliases: &[],
        doc: "start from the client connection's source port, then the first server up",
        build: |s| Box::new(Naive::new(s.len())),
    },
    Registration {
        name: "FirstAlive",
        aliases: &["First-Alive"],
        doc: "the first server that is up, in list order",
        build: |_| Box::new(FirstAlive),
    },
    Registration {
        name: "RoundRobin",
        aliases: &[
            "Round-Robin",
            "LocklessRoundRobin",
            "Lockless-Round-Robin",
            "WeightedRoundRobin",
            "Weighted-Round-Robin",
        ],
        doc: "smooth weighted round robin on an atomic counter (lockless)",
        build: |s| Box::new(RoundRobin::new(&weights(s))),
    },
    Registration {
        name: "LockingRoundRobin",
        aliases: &["Locking-Round-Robin"],
        doc: "the same order as RoundRobin, exact, under a mutex",
        build: |s| Box::new(LockingRoundRobin::new(&weights(s))),
    },
    Registration {
        name: "LeastConnections",
        aliases: &["Least-Connections"],
        doc: "fewest requests in flight across all workers, weight-aware",
        build: |s| Box::new(LeastConnections::new(&weights(s))),
    },
    Registration {
        name: "PowerOfTwo",
        aliases: &["P2C", "Power-Of-Two"],
        doc: "two random weighted choices, the one with fewer requests in flight",
        build: |s| Box::new(PowerOfTwo::new(&weights(s))),
    },
    Registration {
        name: "Random",
        aliases: &[],
        doc: "weighted random",
        build: |s| Box::new(Random::new(&weights(s))),
    },
    Registration {
        name: "SourceHash",
        aliases: &["Source-Hash"],
        doc: "client address to server by consistent hashing",
        build: |s| Box::new(SourceHash::new(s)),
    },
];

/// The registry row whose name or alias equals `name`, ignoring case.
pub fn lookup(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| {
        r.name.eq_ignore_ascii_case(name) || r.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}
