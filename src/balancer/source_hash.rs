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
///
/// With bounded loads ([`SourceHash::bounded`], `HashBalanceFactor`) a key's server takes the
/// request only while it has room (see `Bound`); otherwise the first server of the key's
/// own probe sequence that has room does — the same sequence its failover follows, different
/// for every key, so the overflow of a hot key spreads instead of cascading onto the list
/// neighbour.
#[derive(Debug)]
pub struct SourceHash {
    table: Box<[u16]>,
    n: usize,
    /// The servers' weights (≥ 1), for the bounded loads.
    weights: Box<[u32]>,
    /// `HashBalanceFactor` in percent (0: no bound).
    factor: u32,
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
                weights: Box::new([]),
                factor: 0,
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
            weights: weights.iter().map(|&w| w as u32).collect(),
            factor: 0,
        }
    }

    /// The same table with bounded loads: a server takes a request only while its requests
    /// in flight stay within `factor` percent of the mean per unit of weight (0: no bound;
    /// the configuration refuses 1 to 100, which would leave no room).
    pub fn bounded(mut self, factor: u32) -> SourceHash {
        self.factor = factor;
        self
    }
}

/// The bound of one request's placement: "consistent hashing with bounded loads" (Mirrokni,
/// Thorup & Zadimoghaddam, 2018), as HAProxy's `hash-balance-factor` and Envoy's
/// `hash_balance_factor` apply it to requests in flight: with `m` requests in flight on the
/// usable servers, counting the one being placed, server `i` of weight `w` among usable
/// servers weighing `W` in all may take it while `in_flight(i) + 1 ≤ max(⌊c·m·w/W⌋,
/// ⌈m·w/W⌉)`. The paper rounds `c·m·w/W` up, which lets a server reach 13 where the mean
/// is 10 under `c = 1.25`; rounding it down keeps every server within `c` times its share
/// once that share is a few requests, and the second term (its share itself, rounded up)
/// keeps the capacities adding up to at least `m`, so some usable server always has room.
struct Bound {
    /// `c · m` scaled by 100 (c in percent): `factor · (in flight + 1)`.
    scaled_load: u128,
    /// `m` scaled by 100: `100 · (in flight + 1)`.
    fair_load: u128,
    /// `100 · W`.
    scaled_weight: u128,
}

impl Bound {
    /// The bound now, or `None` when no server is usable.
    fn now(weights: &[u32], factor: u32, servers: &dyn Servers, n: usize) -> Option<Bound> {
        let (mut in_flight, mut weight) = (0u64, 0u64);
        for (i, &w) in weights.iter().enumerate().take(n) {
            if servers.usable(i) {
                in_flight += u64::from(servers.in_flight(i));
                weight += u64::from(w);
            }
        }
        (weight > 0).then(|| Bound {
            scaled_load: u128::from(factor) * u128::from(in_flight + 1),
            fair_load: 100 * u128::from(in_flight + 1),
            scaled_weight: 100 * u128::from(weight),
        })
    }

    /// Whether a server of weight `w` with `in_flight` requests may take one more: for
    /// whole numbers, `in_flight + 1 ≤ ⌊L/D⌋` is `(in_flight + 1) · D ≤ L`, and
    /// `in_flight + 1 ≤ ⌈F/D⌉` is `in_flight · D < F`.
    #[inline]
    fn has_room(&self, w: u32, in_flight: u32) -> bool {
        let w = u128::from(w);
        let f = u128::from(in_flight);
        (f + 1) * self.scaled_weight <= self.scaled_load * w
            || f * self.scaled_weight < self.fair_load * w
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
        let bound = if self.factor == 0 {
            None
        } else {
            Bound::now(&self.weights, self.factor, servers, n)
        };
        // A server that may be the first choice: usable and, with bounded loads, with room.
        let fits = |i: usize| {
            servers.usable(i)
                && bound
                    .as_ref()
                    .map_or(true, |b| b.has_room(self.weights[i], servers.in_flight(i)))
        };
        let h = ctx.key.unwrap_or_else(|| client_hash(ctx.client_ip));
        let m = self.table.len();
        // Double hashing over a prime table visits every slot: a per-client probe sequence.
        let mut pos = (h % m as u64) as usize;
        let step = ((h >> 32) % (m as u64 - 1) + 1) as usize;
        let base = out.len();
        let mut seen: u64 = 0;
        let small = n <= 64;
        // Collecting every server by probing takes ~n·ln n reads; stop early and complete the
        // order by rotation so a large list stays cheap (the tail is rarely reached). Probing
        // goes on until a server that fits is among those found, though: the clients of
        // servers that are down (or full, with bounded loads) must land along their own probe
        // sequences (spread by weight, and the same server every time), not on the list
        // neighbour the rotation would give them.
        out.reserve(n);
        let mut first_fit: Option<usize> = None;
        let mut probes = 0;
        let complete = 'probe: {
            while probes < (2 * n).min(MAX_PROBES)
                || (first_fit.is_none() && probes < MAX_PROBES_FOR_USABLE)
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
                    if first_fit.is_none() && fits(i) {
                        first_fit = Some(out.len() - 1);
                    }
                    if out.len() - base == n {
                        break 'probe true;
                    }
                }
                pos += step;
                if pos >= m {
                    pos -= m;
                }
            }
            false
        };
        if !complete {
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
        if bound.is_none() {
            // Health filtering drops unusable servers in front of the first usable one.
            return;
        }
        // Bounded loads: the first server with room goes first, those skipped follow it in
        // the key's order (failover candidates if it fails). Past the probes, the rotation's
        // tail is searched too; with no room anywhere (counts moving under other workers),
        // the order stays as it is.
        let k = first_fit.or_else(|| (base..out.len()).find(|&k| fits(out[k])));
        if let Some(k) = k {
            out[base..=k].rotate_right(1);
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

/// The hash of a request's `HashKey` made of `parts` (hashed as their concatenation, so the
/// target `path?query` needs no copy): fixed, like every hash here, so that every process
/// with the same configuration maps a key to the same server.
pub fn key_hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ KEY_SALT;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    mix(mix(h))
}

/// Keeps request keys apart from client addresses: a header holding `10.0.0.1`'s four bytes
/// does not land with that client.
const KEY_SALT: u64 = 0x6b65_795f_6861_7368;

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

    use std::cell::RefCell;

    /// Servers with in-flight counts set by the test; `down` ones are not usable.
    struct Fake {
        in_flight: RefCell<Vec<u32>>,
        down: Vec<bool>,
    }

    impl Servers for Fake {
        fn count(&self) -> usize {
            self.down.len()
        }
        fn in_flight(&self, i: usize) -> u32 {
            self.in_flight.borrow()[i]
        }
        fn usable(&self, i: usize) -> bool {
            !self.down[i]
        }
    }

    fn fake(n: usize) -> Fake {
        Fake {
            in_flight: RefCell::new(vec![0; n]),
            down: vec![false; n],
        }
    }

    fn specs(names: &[String]) -> Vec<ServerSpec> {
        names
            .iter()
            .map(|name| ServerSpec {
                name: name.clone(),
                addr: "127.0.0.1:1".parse().unwrap(),
                weight: 1,
                tls: false,
                backup: false,
            })
            .collect()
    }

    fn ctx(key: u64) -> RequestContext<'static> {
        RequestContext {
            client_ip: "127.0.0.1".parse().unwrap(),
            connection_id: 0,
            path: "/",
            key: Some(key),
            sticky: None,
        }
    }

    fn first(b: &SourceHash, servers: &Fake, key: u64) -> usize {
        let mut out = Vec::new();
        b.order(&ctx(key), servers, &mut out);
        let mut sorted = out.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..servers.count()).collect::<Vec<_>>(),
            "every server once"
        );
        out[0]
    }

    #[test]
    fn key_hashes_are_fixed_and_read_parts_as_one_string() {
        assert_eq!(key_hash(&[b"/a?b"]), key_hash(&[b"/a", b"?", b"b"]));
        assert_eq!(key_hash(&[b"user-1", b"", b""]), key_hash(&[b"user-1"]));
        assert_ne!(key_hash(&[b"user-1"]), key_hash(&[b"user-2"]));
        // Pinned: a change here would move every key of every deployment.
        assert_eq!(key_hash(&[b"user-1"]), 0x5ede_0155_270e_5dbe);
    }

    #[test]
    fn removing_one_of_ten_servers_moves_little_more_than_its_keys() {
        let names: Vec<String> = (0..10).map(|i| format!("10.0.0.{i}:80")).collect();
        let all = SourceHash::new(&specs(&names));
        let nine = SourceHash::new(&specs(&names[..9]));
        let (ten, fewer) = (fake(10), fake(9));
        let keys = 10_000;
        let mut moved = 0;
        for k in 0..keys {
            let key = key_hash(&[format!("user-{k}").as_bytes()]);
            let before = first(&all, &ten, key);
            let after = first(&nine, &fewer, key);
            // Both tables index the same names in the same order.
            if before != after {
                moved += 1;
            }
        }
        let share = f64::from(moved) / f64::from(keys);
        eprintln!("removing 1 of 10 servers moved {moved} of {keys} keys");
        assert!(share <= 0.1 + 0.02, "{moved} of {keys} keys moved");
        assert!(share >= 0.07, "the removed server had its share: {moved}");
    }

    #[test]
    fn bounded_loads_keep_every_server_within_the_factor() {
        let n = 10;
        let names: Vec<String> = (0..n).map(|i| format!("10.0.1.{i}:80")).collect();
        let b = SourceHash::new(&specs(&names)).bounded(125);
        let servers = fake(n);
        let hot = key_hash(&[b"hot"]);
        // Requests arrive and complete in a fixed pseudo-random pattern; half carry the hot
        // key. Every placement must fit the bound, max(floor(1.25 (m + 1) / n),
        // ceil((m + 1) / n)).
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut worst: f64 = 0.0;
        for step in 0..20_000u64 {
            let total: u32 = servers.in_flight.borrow().iter().sum();
            if total > 0 && (total >= 200 || rand() % 3 == 0) {
                // One request ends, on a server chosen in proportion to its load.
                let mut pick = (rand() % u64::from(total)) as u32;
                let mut f = servers.in_flight.borrow_mut();
                let i = (0..n)
                    .find(|&i| {
                        if pick < f[i] {
                            true
                        } else {
                            pick -= f[i];
                            false
                        }
                    })
                    .unwrap();
                f[i] -= 1;
                continue;
            }
            let key = if step % 2 == 0 { hot } else { rand() };
            let i = first(&b, &servers, key);
            let m = u64::from(total) + 1;
            let cap = ((125 * m) / (100 * n as u64)).max(m.div_ceil(n as u64));
            let mut f = servers.in_flight.borrow_mut();
            assert!(
                u64::from(f[i]) < cap,
                "server {i} at {} with cap {cap}",
                f[i]
            );
            f[i] += 1;
            let total = f64::from(total + 1);
            if total >= 100.0 {
                let max = f64::from(*f.iter().max().unwrap());
                worst = worst.max(max / (total / n as f64));
            }
        }
        // Placements keep the bound (asserted above); completions elsewhere can leave a
        // server above it for a while, as in HAProxy and Envoy.
        eprintln!("largest in flight / mean, with 100 or more in flight: {worst:.3}");
        assert!(worst <= 1.45, "max / mean {worst}");
    }

    /// The distinct servers of `key`'s probe sequence over `b`'s table, in order.
    fn probe_sequence(b: &SourceHash, key: u64) -> Vec<usize> {
        let m = b.table.len();
        let mut pos = (key % m as u64) as usize;
        let step = ((key >> 32) % (m as u64 - 1) + 1) as usize;
        let mut out: Vec<usize> = Vec::new();
        for _ in 0..10_000 {
            let i = b.table[pos] as usize;
            if !out.contains(&i) {
                out.push(i);
            }
            pos = (pos + step) % m;
        }
        out
    }

    #[test]
    fn overflow_follows_each_keys_own_sequence() {
        let n = 10;
        let names: Vec<String> = (0..n).map(|i| format!("10.0.2.{i}:80")).collect();
        let b = SourceHash::new(&specs(&names)).bounded(125);
        let servers = fake(n);
        // Server 0 is full (all 40 requests in flight are its own); every other is empty.
        servers.in_flight.borrow_mut()[0] = 40;
        let mut overflow = [0usize; 10];
        for k in 0..20_000u64 {
            let key = key_hash(&[&k.to_le_bytes()]);
            let sequence = probe_sequence(&b, key);
            if sequence[0] != 0 {
                assert_eq!(
                    first(&b, &servers, key),
                    sequence[0],
                    "a key with room stays"
                );
                continue;
            }
            let i = first(&b, &servers, key);
            assert_eq!(i, sequence[1], "the next server of the key's own sequence");
            overflow[i] += 1;
        }
        // Spread over the nine others, not piled on server 1.
        let spread: Vec<usize> = overflow[1..].to_vec();
        let (lo, hi) = (spread.iter().min().unwrap(), spread.iter().max().unwrap());
        assert!(*lo > 0 && *hi < 3 * *lo, "{overflow:?}");
    }

    #[test]
    fn without_a_factor_the_order_ignores_loads() {
        let names: Vec<String> = (0..5).map(|i| format!("10.0.3.{i}:80")).collect();
        let b = SourceHash::new(&specs(&names));
        let servers = fake(5);
        let key = key_hash(&[b"k"]);
        let before = first(&b, &servers, key);
        servers.in_flight.borrow_mut()[before] = 1000;
        assert_eq!(first(&b, &servers, key), before);
    }
}
