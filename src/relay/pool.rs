//! Per-worker pool of idle upstream connections (persistent connections to backends).
//!
//! Idle connections stay registered with the host's loop under their own token (see
//! [`crate::relay::Worker`]), so a backend that closes one, or sends stray bytes on it, wakes
//! the pool, which then drops it ([`UpstreamPool::check`]). Before a request that must not be
//! sent twice reuses one, the pool also looks (a `MSG_PEEK`) whether the backend closed it
//! meanwhile; requests that may be repeated skip that syscall: if the connection turns out
//! closed, the relay retries them once on a fresh connection. Limits per server: idle
//! connections kept, idle time, requests per connection (from the entry's configuration).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use super::stream::BackendStream;
use crate::clock::Moment;
use crate::upstream::ServerState;

/// One idle connection.
#[derive(Debug)]
struct Idle {
    stream: BackendStream,
    id: u64,
    since: Moment,
    requests: u32,
}

/// A connection taken from (or given to) the pool, with the number of requests it carried.
#[derive(Debug)]
pub struct Pooled {
    /// The connection, connected and idle.
    pub stream: BackendStream,
    /// The connection's identity ([`crate::reactor::Source::id`]).
    pub id: u64,
    /// Requests already sent on it.
    pub requests: u32,
}

/// How many idle connections to one server the pool keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `UpstreamKeepAlive`: idle connections kept per server (0: none).
    pub max_idle: u32,
    /// `KeepAliveTimeout`: how long one may stay idle.
    pub idle_for: Duration,
}

/// The idle connections to one server, with the limits its entry set.
#[derive(Debug)]
struct Slot {
    /// The server's id (`ServerState::id`), the slot's key.
    id: u64,
    /// The server (for its administrative state and whether it is still configured).
    server: Arc<ServerState>,
    idle: Vec<Idle>,
    limits: Limits,
}

/// Hashes a server id (already unique and small): one multiply spreads it.
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// How soon after a burst left more idle connections than a server's limit the extra ones
/// close (see [`UpstreamPool::put`]).
const TRIM_AFTER: Duration = Duration::from_millis(100);

/// Idle upstream connections of one worker, per server.
#[derive(Debug, Default)]
pub struct UpstreamPool {
    /// One slot per server with idle connections (or that had some since the last
    /// housekeeping).
    slots: Vec<Slot>,
    /// Where each server's slot is in `slots`, by server id.
    index: HashMap<u64, usize, BuildHasherDefault<IdHasher>>,
    /// The slot found last, looked at before `index`: a request's `take` and its `put`
    /// name the same server, and so do most requests of an entry with few servers (a
    /// hash lookup costs more than the rest of `take`).
    recent: usize,
    /// When [`UpstreamPool::housekeep`] has something to do next: kept up to date by `put`
    /// (a new idle connection can only make it sooner) and recomputed by `housekeep`.
    due: Option<Moment>,
}

impl UpstreamPool {
    /// An empty pool.
    pub fn new() -> UpstreamPool {
        UpstreamPool::default()
    }

    /// The slot of the server `id`, if it has one.
    #[inline]
    fn find(&mut self, id: u64) -> Option<usize> {
        if self.slots.get(self.recent).is_some_and(|s| s.id == id) {
            return Some(self.recent);
        }
        let i = *self.index.get(&id)?;
        self.recent = i;
        Some(i)
    }

    /// Rebuilds `index` after slots were removed.
    fn reindex(&mut self) {
        self.index.clear();
        for (i, slot) in self.slots.iter().enumerate() {
            self.index.insert(slot.id, i);
        }
    }

    /// The most recently used idle connection to the server, if any (LIFO keeps few
    /// connections warm; expired ones found on the way are closed). With `probe_first` the
    /// connection is checked to be still quiet (not closed, no stray bytes), and others are
    /// skipped too.
    pub fn take(&mut self, server: &ServerState, now: Moment, probe_first: bool) -> Option<Pooled> {
        let i = self.find(server.id)?;
        let slot = &mut self.slots[i];
        let idle_for = slot.limits.idle_for;
        while let Some(mut idle) = slot.idle.pop() {
            if now.since(idle.since) >= idle_for {
                continue;
            }
            if probe_first && !idle.stream.is_quiet() {
                continue;
            }
            return Some(Pooled {
                stream: idle.stream,
                id: idle.id,
                requests: idle.requests,
            });
        }
        None
    }

    /// Keeps `conn` (its `requests` already counting the last one) for reuse under the
    /// entry's `limits`; false (and `conn` closed) when the entry keeps no idle connections.
    /// The slot may hold more than `max_idle` for `TRIM_AFTER`: a burst that needed more
    /// connections than the limit would otherwise close the extra ones as it ends, only to
    /// open new ones for the next burst a moment later.
    pub fn put(
        &mut self,
        server: &Arc<ServerState>,
        conn: Pooled,
        limits: Limits,
        now: Moment,
    ) -> bool {
        if limits.max_idle == 0 || !server.admin.get().takes_requests() {
            return false;
        }
        let i = match self.find(server.id) {
            Some(i) => i,
            None => self.add_slot(server, limits),
        };
        let slot = &mut self.slots[i];
        slot.limits = limits;
        slot.idle.push(Idle {
            stream: conn.stream,
            id: conn.id,
            since: now,
            requests: conn.requests,
        });
        let mut due = now.after(limits.idle_for);
        if slot.idle.len() > limits.max_idle as usize {
            due = due.min(now.after(TRIM_AFTER));
        }
        self.due = Some(self.due.map_or(due, |d| d.min(due)));
        true
    }

    /// A new slot for `server`, found next by [`UpstreamPool::find`].
    #[cold]
    fn add_slot(&mut self, server: &Arc<ServerState>, limits: Limits) -> usize {
        let i = self.slots.len();
        self.slots.push(Slot {
            id: server.id,
            server: server.clone(),
            idle: Vec::new(),
            limits,
        });
        self.index.insert(server.id, i);
        self.recent = i;
        i
    }

    /// Closes what outlived its limits: idle connections beyond their server's `max_idle`
    /// (the least recently used) and those idle longer than `idle_for`.
    pub fn housekeep(&mut self, now: Moment) {
        for slot in &mut self.slots {
            let limit = slot.limits.max_idle as usize;
            if slot.idle.len() > limit {
                // Oldest first: `take` pops from the end.
                slot.idle.drain(..slot.idle.len() - limit);
            }
            let idle_for = slot.limits.idle_for;
            slot.idle.retain(|idle| now.since(idle.since) < idle_for);
        }
        // Every slot is within its limit now: what is left is the oldest idle connections'
        // expiry.
        self.retain_slots(|slot| !slot.idle.is_empty());
        self.due = self
            .slots
            .iter()
            .filter_map(|slot| Some(slot.idle.first()?.since.after(slot.limits.idle_for)))
            .min();
    }

    /// Closes the idle connections of servers that take no new requests (drained, in
    /// maintenance) or that the configuration no longer has.
    pub fn prune(&mut self) {
        self.retain_slots(|slot| {
            slot.server.admin.get().takes_requests() && !slot.server.is_removed()
        });
    }

    /// Keeps the slots `keep` says yes to (the others' connections close).
    fn retain_slots(&mut self, keep: impl FnMut(&Slot) -> bool) {
        let before = self.slots.len();
        self.slots.retain(keep);
        if self.slots.len() != before {
            self.reindex();
        }
    }

    /// When [`UpstreamPool::housekeep`] has something to do next, if ever (it may find
    /// nothing to do then: a connection taken meanwhile is not accounted for).
    pub fn due(&self) -> Option<Moment> {
        self.due
    }

    /// The idle connection on descriptor `fd` woke up: the backend closed it or sent bytes
    /// nobody asked for. Closes it unless it is still quiet (the wake-up was for a socket that
    /// had the descriptor before). Returns whether one was closed.
    pub fn check(&mut self, fd: RawFd) -> bool {
        for slot in &mut self.slots {
            if let Some(i) = slot.idle.iter().position(|idle| idle.stream.fd() == fd) {
                if slot.idle[i].stream.is_quiet() {
                    return false;
                }
                slot.idle.remove(i);
                return true;
            }
        }
        false
    }

    /// Idle connections held, all servers together.
    pub fn len(&self) -> usize {
        self.slots.iter().map(|s| s.idle.len()).sum()
    }

    /// Whether no idle connection is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Idle connections held for the server.
    #[cfg(test)]
    fn idle_count(&self, server: &ServerState) -> usize {
        self.slots
            .iter()
            .find(|s| s.id == server.id)
            .map_or(0, |s| s.idle.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Admin, ServerState};
    use std::net::TcpListener;

    /// `n` connected loopback streams (the listener keeps the accepted ends open).
    fn streams(n: usize) -> (TcpListener, Vec<BackendStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let streams = (0..n)
            .map(|_| {
                let std = std::net::TcpStream::connect(addr).unwrap();
                std.set_nonblocking(true).unwrap();
                BackendStream::from_tcp(mio::net::TcpStream::from_std(std))
            })
            .collect();
        (listener, streams)
    }

    fn pooled(stream: BackendStream, id: u64) -> Pooled {
        Pooled {
            stream,
            id,
            requests: 1,
        }
    }

    fn limits(max_idle: u32) -> Limits {
        Limits {
            max_idle,
            idle_for: Duration::from_secs(60),
        }
    }

    const T0: Moment = Moment::from_nanos(1_000_000_000);

    #[test]
    fn a_burst_beyond_the_limit_is_kept_until_trimmed_then_the_newest_stay() {
        let (_l, conns) = streams(5);
        let mut pool = UpstreamPool::new();
        let a = Arc::new(ServerState::new());
        for (id, c) in conns.into_iter().enumerate() {
            assert!(pool.put(&a, pooled(c, id as u64 + 1), limits(2), T0));
        }
        assert_eq!(pool.idle_count(&a), 5, "nothing closed before the trim");
        assert_eq!(pool.due(), Some(T0.after(TRIM_AFTER)));
        pool.housekeep(T0.after(TRIM_AFTER));
        assert_eq!(pool.idle_count(&a), 2);
        assert_eq!(pool.due(), Some(T0.after(Duration::from_secs(60))));
        let ids: Vec<u64> = std::iter::from_fn(|| pool.take(&a, T0, false))
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, [5, 4], "the most recently used are kept, newest first");
    }

    #[test]
    fn no_keep_alive_closes_at_once_and_limits_are_kept_per_entry() {
        let (_l, conns) = streams(4);
        let mut pool = UpstreamPool::new();
        let (a, b) = (Arc::new(ServerState::new()), Arc::new(ServerState::new()));
        let mut conns = conns.into_iter();
        assert!(!pool.put(&a, pooled(conns.next().unwrap(), 1), limits(0), T0));
        assert_eq!(pool.idle_count(&a), 0, "UpstreamKeepAlive 0 keeps nothing");
        for id in 2..=4 {
            pool.put(&b, pooled(conns.next().unwrap(), id), limits(8), T0);
        }
        pool.housekeep(T0);
        assert_eq!(pool.idle_count(&b), 3, "within its entry's limit");
    }

    #[test]
    fn idle_connections_expire_and_are_not_taken_once_expired() {
        let (_l, conns) = streams(2);
        let mut pool = UpstreamPool::new();
        let short = Limits {
            max_idle: 4,
            idle_for: Duration::from_secs(2),
        };
        let later = T0.after(Duration::from_millis(1500));
        let a = Arc::new(ServerState::new());
        for (c, at) in conns.into_iter().zip([T0, later]) {
            pool.put(&a, pooled(c, at.nanos()), short, at);
        }
        assert_eq!(pool.due(), Some(T0.after(Duration::from_secs(2))));
        let at = T0.after(Duration::from_millis(2500));
        let taken = pool
            .take(&a, at, false)
            .expect("the newer one is still fresh");
        assert_eq!(taken.id, later.nanos());
        assert_eq!(pool.len(), 1, "the expired one is still held");
        assert!(
            pool.take(&a, at, false).is_none(),
            "expired: closed, not taken"
        );
        assert!(pool.is_empty());
        pool.put(&a, taken, short, at);
        pool.housekeep(at.after(Duration::from_secs(2)));
        assert!(pool.is_empty());
    }

    #[test]
    fn a_closed_idle_connection_is_dropped_when_it_wakes_the_pool() {
        let (listener, mut conns) = streams(1);
        let conn = conns.pop().unwrap();
        let fd = conn.fd();
        let mut pool = UpstreamPool::new();
        pool.put(
            &Arc::new(ServerState::new()),
            pooled(conn, 1),
            limits(4),
            T0,
        );
        let (peer, _) = listener.accept().unwrap();
        assert!(!pool.check(fd), "quiet: kept");
        drop(peer);
        let until = std::time::Instant::now() + Duration::from_secs(5);
        while !pool.check(fd) {
            assert!(std::time::Instant::now() < until, "never seen closed");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(pool.is_empty());
    }

    #[test]
    fn each_server_finds_its_own_slot_after_slots_before_it_went() {
        // Slots are found by the one looked at last, then by the index: both stay right when
        // a housekeeping or prune removes slots ahead of others.
        let (_l, conns) = streams(6);
        let mut conns = conns.into_iter();
        let mut pool = UpstreamPool::new();
        let servers: Vec<Arc<ServerState>> = (0..3).map(|_| Arc::new(ServerState::new())).collect();
        for (k, s) in servers.iter().enumerate() {
            assert!(pool.put(s, pooled(conns.next().unwrap(), k as u64), limits(4), T0));
        }
        // The first server's slot empties and goes at the next housekeeping.
        assert_eq!(pool.take(&servers[0], T0, false).map(|p| p.id), Some(0));
        pool.housekeep(T0);
        for k in [2, 1] {
            let taken = pool
                .take(&servers[k], T0, false)
                .expect("its own connection");
            assert_eq!(taken.id, k as u64);
            assert!(pool.take(&servers[k], T0, false).is_none());
            pool.put(&servers[k], taken, limits(4), T0);
        }
        servers[1].admin.set(Admin::Drain);
        pool.prune();
        assert!(pool.take(&servers[1], T0, false).is_none(), "drained");
        for (k, s) in servers.iter().enumerate().filter(|(k, _)| *k != 1) {
            pool.put(
                s,
                pooled(conns.next().unwrap(), 10 + k as u64),
                limits(4),
                T0,
            );
        }
        let ids: Vec<u64> = std::iter::from_fn(|| pool.take(&servers[2], T0, false))
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, [12, 2], "the third server's, newest first");
        assert_eq!(pool.take(&servers[0], T0, false).map(|p| p.id), Some(10));
        assert!(pool.is_empty());
    }

    #[test]
    fn drained_and_removed_servers_lose_their_idle_connections_at_the_next_prune() {
        let (_l, conns) = streams(3);
        let mut pool = UpstreamPool::new();
        let servers: Vec<Arc<ServerState>> = (0..3).map(|_| Arc::new(ServerState::new())).collect();
        for (c, s) in conns.into_iter().zip(&servers) {
            assert!(pool.put(s, pooled(c, s.id), limits(4), T0));
        }
        servers[0].admin.set(Admin::Drain);
        servers[1].set_removed();
        pool.prune();
        assert_eq!(pool.idle_count(&servers[0]), 0, "drained");
        assert_eq!(pool.idle_count(&servers[1]), 0, "removed");
        assert_eq!(pool.idle_count(&servers[2]), 1, "ready and configured");
        // A drained server's connection is not kept either.
        let (_l, mut more) = streams(1);
        assert!(!pool.put(&servers[0], pooled(more.pop().unwrap(), 9), limits(4), T0));
    }
}
