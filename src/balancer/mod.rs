//! Load balancing: the [`Balancer`] trait and the registry that maps configuration names to
//! balancers.
//!
//! A balancer only orders servers: it writes every server index it would use, most preferred
//! first, so failover and retry walk the list without asking twice. Health filtering (skipping
//! servers that are offline) is applied on top by [`crate::upstream::Upstream::plan`].

mod first_alive;

use std::fmt::Debug;
use std::net::IpAddr;

use crate::upstream::Server;

pub use first_alive::FirstAlive;

/// What a balancer may know about the request it places.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The client's address.
    pub client_ip: IpAddr,
    /// A number identifying the client connection (Monkey's socket number, for `Naive`).
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
    /// Builds the balancer for servers with these weights.
    pub build: fn(weights: &[u32]) -> Box<dyn Balancer>,
}

/// Every balancer, one line each.
///
/// Interim: until each method has its own file, every row builds [`FirstAlive`]; the balancing
/// issue replaces each `build` with the real method.
pub static REGISTRY: &[Registration] = &[
    Registration {
        name: "Naive",
        aliases: &[],
        doc: "start from the client connection's number, then the first server up",
        build: |_| Box::new(FirstAlive),
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
        build: |_| Box::new(FirstAlive),
    },
    Registration {
        name: "LockingRoundRobin",
        aliases: &["Locking-Round-Robin"],
        doc: "the same order as RoundRobin, exact, under a mutex",
        build: |_| Box::new(FirstAlive),
    },
    Registration {
        name: "LeastConnections",
        aliases: &["Least-Connections"],
        doc: "fewest requests in flight across all workers, weight-aware",
        build: |_| Box::new(FirstAlive),
    },
    Registration {
        name: "PowerOfTwo",
        aliases: &["P2C", "Power-Of-Two"],
        doc: "two random weighted choices, the one with fewer requests in flight",
        build: |_| Box::new(FirstAlive),
    },
    Registration {
        name: "Random",
        aliases: &[],
        doc: "weighted random",
        build: |_| Box::new(FirstAlive),
    },
    Registration {
        name: "SourceHash",
        aliases: &["Source-Hash"],
        doc: "client address to server by consistent hashing",
        build: |_| Box::new(FirstAlive),
    },
];

/// The registry row whose name or alias equals `name`, ignoring case.
pub fn lookup(name: &str) -> Option<&'static Registration> {
    REGISTRY.iter().find(|r| {
        r.name.eq_ignore_ascii_case(name) || r.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}
