//! The proxy in service and each worker's copy of it: what a reload swaps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use super::Proxy;

/// The proxy in service. A reload swaps it whole: a request takes the current proxy when it
/// starts and keeps it to its end (requests in flight and tunnels finish on the configuration
/// they started with), new requests take the new one.
#[derive(Debug)]
pub struct Current {
    /// Bumped by every swap, so a worker's [`Cached`] copy knows it is stale without a lock.
    generation: AtomicU64,
    proxy: RwLock<Arc<Proxy>>,
}

impl Current {
    /// `proxy` in service.
    pub fn new(proxy: Arc<Proxy>) -> Current {
        Current {
            generation: AtomicU64::new(1),
            proxy: RwLock::new(proxy),
        }
    }

    /// The proxy in service now (a brief read lock: workers use [`Cached`] instead).
    pub fn load(&self) -> Arc<Proxy> {
        self.proxy.read().clone()
    }

    /// Puts `proxy` in service; returns the one it replaces.
    pub fn swap(&self, proxy: Arc<Proxy>) -> Arc<Proxy> {
        let old = std::mem::replace(&mut *self.proxy.write(), proxy);
        self.generation.fetch_add(1, Ordering::Release);
        old
    }

    /// How many times the proxy was put in service.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// One worker's copy of the [`Current`] proxy: the request path reads one atomic to know it
/// is still current, and takes the lock only when a reload has swapped the proxy.
#[derive(Debug)]
pub struct Cached {
    generation: u64,
    proxy: Arc<Proxy>,
}

impl Cached {
    /// A copy of what `current` serves now.
    pub fn new(current: &Current) -> Cached {
        let generation = current.generation();
        Cached {
            generation,
            proxy: current.load(),
        }
    }

    /// The proxy in service, refreshed from `current` if a reload swapped it.
    #[inline]
    pub fn get(&mut self, current: &Current) -> &Arc<Proxy> {
        let generation = current.generation();
        if generation != self.generation {
            self.proxy = current.load();
            self.generation = generation;
        }
        &self.proxy
    }
}
