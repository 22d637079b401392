//! Per-worker pool of idle upstream connections (persistent connections to backends).
//!
//! The pool itself does not watch idle connections (the Monkey host does, and closes them
//! through [`UpstreamPool::remove`] when a backend closes one). Before a request that must
//! not be sent twice reuses one, a non-blocking `recv(MSG_PEEK)` tells whether the backend closed
//! (or sent stray bytes on) it meanwhile, and such connections are dropped instead of reused.
//! Requests that may be repeated skip that syscall: if the connection turns out closed, the
//! relay retries them once on a fresh connection. Limits per server: idle connections kept,
//! idle time, requests per connection (from the entry's configuration).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

/// One idle connection.
#[derive(Debug)]
struct Idle {
    stream: TcpStream,
    id: u64,
    since: Instant,
    requests: u32,
}

/// A connection taken from the pool, with the number of requests it already carried.
#[derive(Debug)]
pub struct Pooled {
    /// The connection, connected and idle.
    pub stream: TcpStream,
    /// The connection's identity ([`crate::relay::Worker::new_connection_id`]).
    pub id: u64,
    /// Requests already sent on it.
    pub requests: u32,
}

/// Idle upstream connections of one worker, per (entry, server).
#[derive(Debug, Default)]
pub struct UpstreamPool {
    slots: Vec<Vec<Vec<Idle>>>,
}

impl UpstreamPool {
    /// An empty pool.
    pub fn new() -> UpstreamPool {
        UpstreamPool::default()
    }

    fn slot(&mut self, entry: usize, server: usize) -> &mut Vec<Idle> {
        if self.slots.len() <= entry {
            self.slots.resize_with(entry + 1, Vec::new);
        }
        let servers = &mut self.slots[entry];
        if servers.len() <= server {
            servers.resize_with(server + 1, Vec::new);
        }
        &mut servers[server]
    }

    /// The most recently used idle connection to the server, if any (LIFO keeps few
    /// connections warm; expired ones found on the way are closed). With `probe_first` the
    /// connection is checked to be still open, and closed ones are skipped too.
    pub fn take(
        &mut self,
        entry: usize,
        server: usize,
        max_idle: Duration,
        now: Instant,
        probe_first: bool,
    ) -> Option<Pooled> {
        let slot = self.slot(entry, server);
        while let Some(idle) = slot.pop() {
            if now.saturating_duration_since(idle.since) >= max_idle {
                continue;
            }
            if !probe_first {
                return Some(Pooled {
                    stream: idle.stream,
                    id: idle.id,
                    requests: idle.requests,
                });
            }
            let mut probe = [0u8; 1];
            match idle.stream.peek(&mut probe) {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Some(Pooled {
                        stream: idle.stream,
                        id: idle.id,
                        requests: idle.requests,
                    })
                }
                // Closed (Ok(0)), unexpected bytes (Ok(n)) or an error: not reusable.
                _ => continue,
            }
        }
        None
    }

    /// Keeps `conn` (its `requests` already counting the last one) for reuse, unless the
    /// entry keeps no idle connections (`max_idle_conns` 0: it is closed). The slot may hold
    /// more than `max_idle_conns` until the next [`UpstreamPool::trim`]: a burst that needed
    /// more connections than the limit would otherwise close the extra ones as it ends, only
    /// to open new ones for the next burst a moment later.
    pub fn put(
        &mut self,
        entry: usize,
        server: usize,
        conn: Pooled,
        max_idle_conns: u32,
        now: Instant,
    ) {
        if max_idle_conns == 0 {
            return;
        }
        let Pooled {
            stream,
            id,
            requests,
        } = conn;
        self.slot(entry, server).push(Idle {
            stream,
            id,
            since: now,
            requests,
        });
    }

    /// Closes the least recently used idle connections of every server beyond
    /// `max_idle_conns(entry)` (hosts call this on a short timer, so the limit holds but for
    /// a moment after a burst).
    pub fn trim(&mut self, max_idle_conns: impl Fn(usize) -> u32) {
        for (entry, servers) in self.slots.iter_mut().enumerate() {
            let limit = max_idle_conns(entry) as usize;
            for slot in servers.iter_mut() {
                if slot.len() > limit {
                    // Oldest first: `take` pops from the end.
                    slot.drain(..slot.len() - limit);
                }
            }
        }
    }

    /// Idle connections held for the server.
    #[cfg(test)]
    fn idle_count(&self, entry: usize, server: usize) -> usize {
        self.slots
            .get(entry)
            .and_then(|servers| servers.get(server))
            .map_or(0, Vec::len)
    }

    /// Closes idle connections older than `max_idle(entry)`.
    pub fn expire(&mut self, now: Instant, max_idle: impl Fn(usize) -> Duration) {
        for (entry, servers) in self.slots.iter_mut().enumerate() {
            let limit = max_idle(entry);
            for slot in servers.iter_mut() {
                slot.retain(|idle| now.saturating_duration_since(idle.since) < limit);
            }
        }
    }

    /// Closes the idle connection with this descriptor and identity, if the pool holds it
    /// (a host that watches idle connections calls this when the backend closed one).
    /// Returns whether it was there.
    pub fn remove(&mut self, fd: std::os::fd::RawFd, id: u64) -> bool {
        use std::os::fd::AsRawFd;
        for slot in self.slots.iter_mut().flatten() {
            if let Some(i) = slot
                .iter()
                .position(|idle| idle.id == id && idle.stream.as_raw_fd() == fd)
            {
                slot.remove(i);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// `n` connected loopback streams (the listener keeps the accepted ends open).
    fn streams(n: usize) -> (TcpListener, Vec<TcpStream>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let streams = (0..n)
            .map(|_| TcpStream::from_std(std::net::TcpStream::connect(addr).unwrap()))
            .collect();
        (listener, streams)
    }

    fn pooled(stream: TcpStream, id: u64) -> Pooled {
        Pooled {
            stream,
            id,
            requests: 1,
        }
    }

    #[test]
    fn a_burst_beyond_the_limit_is_kept_until_trimmed_then_the_newest_stay() {
        let (_l, conns) = streams(5);
        let mut pool = UpstreamPool::new();
        let now = Instant::now();
        for (id, c) in conns.into_iter().enumerate() {
            pool.put(0, 0, pooled(c, id as u64 + 1), 2, now);
        }
        assert_eq!(pool.idle_count(0, 0), 5, "nothing closed before the trim");
        pool.trim(|_| 2);
        assert_eq!(pool.idle_count(0, 0), 2);
        let max_idle = Duration::from_secs(60);
        let ids: Vec<u64> = std::iter::from_fn(|| pool.take(0, 0, max_idle, now, false))
            .map(|p| p.id)
            .collect();
        assert_eq!(ids, [5, 4], "the most recently used are kept, newest first");
    }

    #[test]
    fn no_keep_alive_closes_at_once_and_trim_respects_each_entry() {
        let (_l, conns) = streams(4);
        let mut pool = UpstreamPool::new();
        let now = Instant::now();
        let mut conns = conns.into_iter();
        pool.put(0, 0, pooled(conns.next().unwrap(), 1), 0, now);
        assert_eq!(
            pool.idle_count(0, 0),
            0,
            "UpstreamKeepAlive 0 keeps nothing"
        );
        for id in 2..=4 {
            pool.put(1, 0, pooled(conns.next().unwrap(), id), 8, now);
        }
        pool.trim(|e| if e == 1 { 8 } else { 0 });
        assert_eq!(pool.idle_count(1, 0), 3, "within its entry's limit");
    }
}
