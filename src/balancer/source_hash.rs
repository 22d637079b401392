//! SourceHash: client address to server through Maglev consistent hashing.

use std::net::IpAddr;

use super::{Balancer, RequestContext, Servers};
use crate::config::ServerSpec;

/// The smallest lookup table; Maglev's disruption bound needs a prime well above 100 × n.
const MIN_TABLE: usize = 65_537;

/// Servers beyond this many are left out of the table (entries are `u16` to halve its cache
/// footprint: 128 KiB for up to 655 servers).
const MAX_SERVERS: usize = u16::MAX as usize;

/// Table reads spent looking for distinct failover candidates before the rest of the order
/// is completed by list rotation (each read is likely a cache miss).
const MAX_PROBES: usize = 8;

/// Table reads spent at most looking for a usable server when those found so far are all
/// down (with half the weight down, 64 reads miss one with a chance of 10⁻¹⁹).
const MAX_PROBES_FOR_USABLE: usize = 64;

/// Maps each client address to a server with a Maglev lookup table (Eisenbud et al., 2016).
///
/// Everything is derived from fixed hash functions of the server *names* and the client
/// address bytes — no per-process seed — so every restart and every Monkey instance with the
/// same `ServerList` sends a client to the same server. Weights set each server's share of the
/// table. Removing a server moves little more than its own share of clients; a server that is
/// offline is skipped by health filtering, and its clients fall back along a per-client probe
/// sequence over the same table, so the failover order is also stable per client and spread in
/// proportion to the weights of the others.
#[derive(Debug)]
pub struct SourceHash {
    table: Box<[u16]>,
    n: usize,
}

impl SourceHash {
    /// A balancer for these servers (their names and weights), in list order.
    pub fn new(servers: &[ServerSpec]) -> SourceHash {
        let servers = &servers[..servers.len().min(MAX_SERVERS)];
        let n = servers.len();
        if n == 0 {
            return SourceHash {
                table: Box::new([]),
                n,
            };
        }
        let m = next_prime(MIN_TABLE.max(100 * n));
        let weights: Vec<u64> = servers.iter().map(|s| u64::from(s.weight.max(1))).collect();
        let max_w = *weights.iter().max().unwrap_or(&1);
        let perm: Vec<(u64, u64)> = servers
            .iter()
            .map(|s| {
                let offset = fnv1a(s.name.as_bytes(), 0x6d61676c65765f6f) % m as u64;
                let skip = fnv1a(s.name.as_bytes(), 0x6d61676c65765f73) % (m as u64 - 1) + 1;
                (offset, skip)
            })
            .collect();
        let mut next = vec![0u64; n];
        let mut credit = vec![0u64; n];
        let mut table = vec![u16::MAX; m];
        let mut filled = 0;
        'fill: loop {
            for i in 0..n {
                // Weighted Maglev: a server takes a turn each time its credit reaches the
                // largest weight, so turns (and table shares) are proportional to weights.
                credit[i] += weights[i];
                while credit[i] >= max_w {
                    credit[i] -= max_w;
                    let (offset, skip) = perm[i];
                    let mut c = ((offset + next[i] * skip) % m as u64) as usize;
                    while table[c] != u16::MAX {
                        next[i] += 1;
                        c = ((offset + next[i] * skip) % m as u64) as usize;
                    }
                    table[c] = i as u16;
                    next[i] += 1;
                    filled += 1;
                    if filled == m {
                        break 'fill;
                    }
                }
            }
        }
        SourceHash {
            table: table.into_boxed_slice(),
            n,
        }
    }
}

impl Balancer for SourceHash {
    fn name(&self) -> &'static str {
        "SourceHash"
    }

    fn order(&self, ctx: &RequestContext<'_>, servers: &dyn Servers, out: &mut Vec<usize>) {
        let n = servers.count().min(self.n);
        if n == 0 {
            return;
        }
        let h = client_hash(ctx.client_ip);
        let m = self.table.len();
        // Double hashing over a prime table visits every slot: a per-client probe sequence.
        let mut pos = (h % m as u64) as usize;
        let step = ((h >> 32) % (m as u64 - 1) + 1) as usize;
        let base = out.len();
        let mut seen: u64 = 0;
        let small = n <= 64;
        // Collecting every server by probing takes ~n·ln n reads; stop early and complete the
        // order by rotation so a large list stays cheap (the tail is rarely reached). Probing
        // goes on until a usable server is among those found, though: the clients of servers
        // that are down must land along their own probe sequences (spread by weight, and the
        // same server every time), not on the list neighbour the rotation would give them.
        out.reserve(n);
        let mut found_usable = false;
        let mut probes = 0;
        while probes < (2 * n).min(MAX_PROBES) || (!found_usable && probes < MAX_PROBES_FOR_USABLE)
        {
            probes += 1;
            let i = self.table[pos] as usize;
            let new = if small {
                seen & (1u64 << i) == 0
            } else {
                !out[base..].contains(&i)
            };
            if new {
                seen |= 1u64.checked_shl(i as u32).unwrap_or(0);
                out.push(i);
                found_usable = found_usable || servers.usable(i);
                if out.len() - base == n {
                    return;
                }
            }
            pos += step;
            if pos >= m {
                pos -= m;
            }
        }
        let first = out[base];
        for i in (first + 1..n).chain(0..first) {
            let new = if small {
                seen & (1u64 << i) == 0
            } else {
                !out[base..].contains(&i)
            };
            if new {
                out.push(i);
            }
        }
    }
}

/// The client's key: IPv4 addresses (also IPv4-mapped IPv6) hash as their 4 bytes, so a client
/// keeps its server whichever socket family Monkey accepted it on.
fn client_hash(ip: IpAddr) -> u64 {
    let h = match ip {
        IpAddr::V4(v4) => fnv1a(&v4.octets(), 0),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => fnv1a(&v4.octets(), 0),
            None => fnv1a(&v6.octets(), 0),
        },
    };
    mix(h)
}

/// 64-bit FNV-1a, with `salt` folded into the basis to derive independent functions.
fn fnv1a(bytes: &[u8], salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The splitmix64 finalizer: FNV's high bits are weak on short inputs, this spreads them.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn next_prime(mut n: usize) -> usize {
    while !is_prime(n) {
        n += 1;
    }
    n
}

fn is_prime(n: usize) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_size_is_prime_and_large() {
        assert_eq!(next_prime(65_537), 65_537);
        assert!(is_prime(next_prime(100 * 1000)));
        assert!(!is_prime(65_535));
    }

    #[test]
    fn hashes_are_fixed() {
        // Pinned values: a change here would reshuffle every client of every deployment.
        assert_eq!(fnv1a(b"", 0), mix(0xcbf2_9ce4_8422_2325));
        assert_eq!(
            client_hash("10.0.0.1".parse().unwrap()),
            client_hash("::ffff:10.0.0.1".parse().unwrap())
        );
    }
}
