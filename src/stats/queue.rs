//! An entry's queue (`MaxConnections`, `QueueSize`, `QueueTimeout`) and retry budget in the
//! statistics: how many wait now, how many waited and how each wait ended, how long they
//! waited, and the retries the budget refused. Only requests that meet a limit touch these.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

/// How a wait in the queue ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// A server took the request.
    Served,
    /// `QueueTimeout` ran out: 503.
    TimedOut,
    /// The client left.
    Left,
}

/// The counters. See the [module docs](self).
#[derive(Debug, Default)]
pub struct QueueCounters {
    waiting: AtomicU64,
    waits: AtomicU64,
    served: AtomicU64,
    timeouts: AtomicU64,
    left: AtomicU64,
    full: AtomicU64,
    wait_micros: AtomicU64,
    max_wait_micros: AtomicU64,
    retries_refused: AtomicU64,
}

impl QueueCounters {
    pub(super) fn queued(&self) {
        self.waits.fetch_add(1, Relaxed);
        self.waiting.fetch_add(1, Relaxed);
    }

    pub(super) fn full(&self) {
        self.full.fetch_add(1, Relaxed);
    }

    pub(super) fn waited(&self, wait: Duration, how: Waited) {
        self.waiting.fetch_sub(1, Relaxed);
        let counter = match how {
            Waited::Served => &self.served,
            Waited::TimedOut => &self.timeouts,
            Waited::Left => &self.left,
        };
        counter.fetch_add(1, Relaxed);
        let micros = wait.as_micros().min(u128::from(u64::MAX)) as u64;
        self.wait_micros.fetch_add(micros, Relaxed);
        self.max_wait_micros.fetch_max(micros, Relaxed);
    }

    pub(super) fn retry_refused(&self) {
        self.retries_refused.fetch_add(1, Relaxed);
    }

    /// A plain copy.
    pub fn snapshot(&self) -> QueueSnapshot {
        let secs = |m: u64| m as f64 / 1e6;
        QueueSnapshot {
            waiting: self.waiting.load(Relaxed),
            waits: self.waits.load(Relaxed),
            served: self.served.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            left: self.left.load(Relaxed),
            full: self.full.load(Relaxed),
            wait_seconds_total: secs(self.wait_micros.load(Relaxed)),
            wait_max_seconds: secs(self.max_wait_micros.load(Relaxed)),
            retries_refused: self.retries_refused.load(Relaxed),
        }
    }
}

/// The queue and retry budget of one entry, as the statistics show them.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct QueueSnapshot {
    /// Requests waiting now.
    pub waiting: u64,
    /// Requests that entered the queue.
    pub waits: u64,
    /// Waits that ended with a server taking the request.
    pub served: u64,
    /// Waits that ran out (`QueueTimeout`): answered 503.
    pub timeouts: u64,
    /// Waits that ended with the client leaving.
    pub left: u64,
    /// Requests answered 503 at once because the queue was full (or there was none).
    pub full: u64,
    /// Time spent waiting by the waits that ended, in seconds.
    pub wait_seconds_total: f64,
    /// The longest wait that ended, in seconds.
    pub wait_max_seconds: f64,
    /// Retries `RetryBudget` refused (the client got the failure).
    pub retries_refused: u64,
}
