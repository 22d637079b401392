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

    /// Keeps `conn` (its `requests` already counting the last one) for reuse if the server's
    /// slot has room; otherwise it is closed.
    pub fn put(
        &mut self,
        entry: usize,
        server: usize,
        conn: Pooled,
        max_idle_conns: u32,
        now: Instant,
    ) {
        let Pooled {
            stream,
            id,
            requests,
        } = conn;
        let slot = self.slot(entry, server);
        if slot.len() >= max_idle_conns as usize {
            // Drop the oldest so the pool keeps the warmest connections.
            if slot.is_empty() {
                return;
            }
            slot.remove(0);
        }
        slot.push(Idle {
            stream,
            id,
            since: now,
            requests,
        });
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
