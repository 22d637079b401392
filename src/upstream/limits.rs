//! An entry's per-server limit, its queue and its retry budget at run time, shared by every
//! worker through relaxed atomics (nothing waits: a full limit, queue or budget is an answer).
//!
//! * **The limit** (`MaxConnections`) is the servers' own in-flight count
//!   ([`super::ServerState::in_flight`]), taken by compare-and-increment
//!   ([`Limiter::take_slot`]) so that two workers cannot both take a server's last slot.
//! * **The queue** is a count of the requests waiting for a slot, across workers; the
//!   waiting exchanges themselves stay on their workers (`relay::Worker` keeps them in order
//!   and tries them again when a slot may have freed). A place is taken by
//!   compare-and-increment too ([`Limiter::enter_queue`]).
//! * **The retry budget** (for retries of a 502/503/504 answer: connection failures fail
//!   over outside it) counts the retries made by the entry's requests in flight (each from
//!   the retry to its request's end): one more is allowed while that count stays within
//!   `RetryBudget` % of the requests in flight less those retries, or [`RETRY_FLOOR`]. An entry whose `RetryOn`
//!   names a status counts its requests in flight (from their plan to their end, on every
//!   worker); others pay nothing for it. (The servers' attempts in flight would cost nothing
//!   either, but they miss a request between two tries and while its response goes to the
//!   client: against a pool that answers 503 at once they are a fraction of the requests,
//!   and the budget let 1.37 × reach such a pool; counted, the same test sees 1.19 ×, and
//!   1.15 × with the retries taken out of the base.)

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use super::Server;
#[cfg(test)]
use crate::config::limits::RetryOn;
use crate::config::limits::{Limits, RETRY_FLOOR};

/// An entry's per-server connection limit, its queue and its retry budget, shared by every
/// worker (the module's documentation, `upstream::limits`, says how each is counted).
#[derive(Debug, Default)]
pub struct Limiter {
    /// `MaxConnections` (0: unlimited).
    max: u32,
    /// `QueueSize`.
    queue_size: u32,
    /// Requests waiting now.
    queued: AtomicU32,
    /// `RetryBudget` (percent).
    budget: u32,
    /// Requests retrying now.
    retrying: AtomicU32,
    /// Requests in flight now (counted only with `count_requests`).
    requests: AtomicU32,
    /// Whether requests in flight are counted (see the module docs).
    count_requests: bool,
}

/// Increments `counter` if it is below `limit`; false when it is not.
fn increment_below(counter: &AtomicU32, limit: u32) -> bool {
    let mut cur = counter.load(Relaxed);
    loop {
        if cur >= limit {
            return false;
        }
        match counter.compare_exchange_weak(cur, cur + 1, Relaxed, Relaxed) {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

impl Limiter {
    /// The run-time side of an entry's `limits`.
    pub fn new(limits: &Limits) -> Limiter {
        Limiter {
            max: limits.max_connections,
            queue_size: limits.queue_size,
            queued: AtomicU32::new(0),
            budget: limits.retry_budget,
            retrying: AtomicU32::new(0),
            requests: AtomicU32::new(0),
            count_requests: limits.retry_on.any_status() && limits.retry_budget < 100,
        }
    }

    /// `MaxConnections` (0: unlimited).
    #[inline]
    pub fn max(&self) -> u32 {
        self.max
    }

    /// Counts one more attempt in flight on `server` unless it is at the limit (then false).
    /// Only for a limited entry.
    pub fn take_slot(&self, server: &Server) -> bool {
        increment_below(&server.in_flight, self.max)
    }

    /// Whether `server` is at the limit now.
    pub fn at_limit(&self, server: &Server) -> bool {
        self.max > 0 && server.in_flight.load(Relaxed) >= self.max
    }

    /// Requests waiting now (on every worker).
    pub fn queued(&self) -> u32 {
        self.queued.load(Relaxed)
    }

    /// Whether requests wait, so that a new one must queue behind them rather than take a
    /// slot that freed for them (roughly first come, first served across workers).
    #[inline]
    pub fn others_wait(&self) -> bool {
        self.max > 0 && self.queued.load(Relaxed) > 0
    }

    /// Takes a place in the queue; false when it is full (or there is none).
    pub fn enter_queue(&self) -> bool {
        increment_below(&self.queued, self.queue_size)
    }

    /// Gives back a place taken with [`Limiter::enter_queue`].
    pub fn leave_queue(&self) {
        self.queued.fetch_sub(1, Relaxed);
    }

    /// A request of the entry begins: true if it is counted (then match it with one
    /// [`Limiter::request_ended`]).
    #[inline]
    pub fn request_began(&self) -> bool {
        if self.count_requests {
            self.requests.fetch_add(1, Relaxed);
        }
        self.count_requests
    }

    /// A request counted by [`Limiter::request_began`] is over.
    #[inline]
    pub fn request_ended(&self) {
        self.requests.fetch_sub(1, Relaxed);
    }

    /// Whether a request may retry once more now; if so, the retry is counted until the
    /// request ends ([`Limiter::end_retries`]). Only for an entry that counts its requests
    /// (its `RetryOn` names a status); for others every retry is allowed.
    pub fn allow_retry(&self) -> bool {
        if self.budget >= 100 || !self.count_requests {
            self.retrying.fetch_add(1, Relaxed);
            return true;
        }
        // The share is of the requests in flight less the retries they made: a retry
        // lengthens its request's stay in flight, and counted in the base it would let the
        // pool see more than `budget` % of extra tries (1.25 × in the one-retry case).
        let requests = self.requests.load(Relaxed);
        let base = u64::from(requests.saturating_sub(self.retrying.load(Relaxed)));
        let share = (base * u64::from(self.budget) / 100).min(u64::from(u32::MAX)) as u32;
        increment_below(&self.retrying, share.max(RETRY_FLOOR))
    }

    /// A request that made `retries` retries counted by [`Limiter::allow_retry`] is over.
    pub fn end_retries(&self, retries: u32) {
        self.retrying.fetch_sub(retries, Relaxed);
    }

    /// Retries made by the requests in flight.
    pub fn retrying(&self) -> u32 {
        self.retrying.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerSpec;

    fn servers(n: usize) -> Vec<Server> {
        (0..n)
            .map(|i| {
                Server::new(ServerSpec {
                    name: format!("127.0.0.1:{}", 1000 + i),
                    addr: format!("127.0.0.1:{}", 1000 + i).parse().unwrap(),
                    weight: 1,
                    tls: false,
                    backup: false,
                })
            })
            .collect()
    }

    fn limiter(max: u32, queue: u32, budget: u32) -> Limiter {
        Limiter::new(&Limits {
            max_connections: max,
            queue_size: queue,
            retry_budget: budget,
            ..Limits::default()
        })
    }

    #[test]
    fn slots_are_taken_up_to_the_limit_from_many_threads_at_once() {
        let l = limiter(4, 0, 20);
        let s = &servers(1)[0];
        let taken = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..1000 {
                        if l.take_slot(s) {
                            taken.fetch_add(1, Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(taken.load(Relaxed), 4);
        assert_eq!(s.in_flight.load(Relaxed), 4);
        assert!(l.at_limit(s));
    }

    #[test]
    fn the_queue_holds_queue_size_requests() {
        let l = limiter(1, 2, 20);
        assert!(!l.others_wait());
        assert!(l.enter_queue() && l.enter_queue());
        assert!(!l.enter_queue(), "full");
        assert!(l.others_wait());
        l.leave_queue();
        assert!(l.enter_queue());
        assert_eq!(l.queued(), 2);
    }

    #[test]
    fn the_budget_is_a_share_of_requests_in_flight_with_a_floor() {
        let l = Limiter::new(&Limits {
            retry_on: RetryOn::default().with(RetryOn::S503),
            ..Limits::default()
        });
        // Nothing in flight: the floor.
        for _ in 0..RETRY_FLOOR {
            assert!(l.allow_retry());
        }
        assert!(!l.allow_retry());
        // 60 requests in flight: 10 retries (20 % of the 50 that are not retries).
        for _ in 0..60 {
            assert!(l.request_began());
        }
        for _ in RETRY_FLOOR..10 {
            assert!(l.allow_retry());
        }
        assert!(!l.allow_retry());
        assert_eq!(l.retrying(), 10);
        l.end_retries(2);
        assert!(l.allow_retry() && l.allow_retry());
        assert!(!l.allow_retry());
        l.request_ended();
        // 100 %: never refused.
        let open = limiter(0, 0, 100);
        for _ in 0..100 {
            assert!(open.allow_retry());
        }
    }

    #[test]
    fn without_status_retries_requests_are_not_counted() {
        let l = limiter(0, 0, 20);
        assert!(
            !l.request_began(),
            "the default costs the request path nothing"
        );
    }
}
