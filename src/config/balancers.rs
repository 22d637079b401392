//! The names of the load-balancing methods, as the configuration spells them.
//!
//! The configuration only needs to know which names exist (to validate `LoadBalancer` and to
//! list them in the checker's help); [`crate::balancer::build`] turns a canonical name into
//! the method itself. Keeping the table here lets `config` stand below every run-time module.

/// One load-balancing method's names and description.
#[derive(Debug)]
pub struct BalancerName {
    /// The canonical name (what the checker prints and the statistics show).
    pub name: &'static str,
    /// Other accepted spellings (the seed's hyphenated forms, older names).
    pub aliases: &'static [&'static str],
    /// One-line description for the checker's help.
    pub doc: &'static str,
}

/// Every method, in the order the checker's help lists them.
pub static BALANCERS: &[BalancerName] = &[
    BalancerName {
        name: "Naive",
        aliases: &[],
        doc: "start from the client connection's source port, then the first server up",
    },
    BalancerName {
        name: "FirstAlive",
        aliases: &["First-Alive"],
        doc: "the first server that is up, in list order",
    },
    BalancerName {
        name: "RoundRobin",
        aliases: &[
            "Round-Robin",
            "LocklessRoundRobin",
            "Lockless-Round-Robin",
            "WeightedRoundRobin",
            "Weighted-Round-Robin",
        ],
        doc: "smooth weighted round robin on an atomic counter (lockless)",
    },
    BalancerName {
        name: "LockingRoundRobin",
        aliases: &["Locking-Round-Robin"],
        doc: "the same order as RoundRobin, exact, under a mutex",
    },
    BalancerName {
        name: "LeastConnections",
        aliases: &["Least-Connections"],
        doc: "fewest requests in flight across all workers, weight-aware",
    },
    BalancerName {
        name: "PowerOfTwo",
        aliases: &["P2C", "Power-Of-Two"],
        doc: "two random weighted choices, the one with fewer requests in flight",
    },
    BalancerName {
        name: "Random",
        aliases: &[],
        doc: "weighted random",
    },
    BalancerName {
        name: "SourceHash",
        aliases: &["Source-Hash"],
        doc: "client address to server by consistent hashing",
    },
];

/// The method whose name or alias equals `text`, ignoring case.
pub fn balancer_named(text: &str) -> Option<&'static BalancerName> {
    BALANCERS.iter().find(|b| {
        b.name.eq_ignore_ascii_case(text) || b.aliases.iter().any(|a| a.eq_ignore_ascii_case(text))
    })
}

/// Whether the method named `canonical` spreads requests by weight, so that `SlowStart` can
/// ramp a server's share (the hash and list-order methods have no share to ramp).
pub fn is_weighted(canonical: &str) -> bool {
    matches!(
        canonical,
        "RoundRobin" | "LockingRoundRobin" | "LeastConnections" | "PowerOfTwo" | "Random"
    )
}
