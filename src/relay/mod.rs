//! The relay: one client request proxied to a backend, as a state machine driven by a host's
//! event loop through the [`crate::reactor::Reactor`] seam.
//!
//! [`Exchange`] connects (walking the balancer's candidates on failure), sends the rebuilt
//! request, parses the response head strictly and streams the body to the client with
//! backpressure through one fixed-size buffer, so memory per exchange is bounded whatever the
//! response size. [`Worker`] holds what one event-loop thread reuses across exchanges: read
//! buffers and the pool of idle upstream connections.

mod exchange;
mod pool;

pub use exchange::{Exchange, Finish, Progress};
pub use pool::{Pooled, UpstreamPool};

/// Size of the buffer an exchange reads backend bytes into (also the largest response head).
pub const BUFFER_SIZE: usize = 32 * 1024;

/// Per-thread state reused by exchanges: buffers and idle upstream connections.
#[derive(Debug, Default)]
pub struct Worker {
    /// Idle upstream connections.
    pub pool: UpstreamPool,
    buffers: Vec<Box<[u8]>>,
    vecs: Vec<Vec<u8>>,
    index_vecs: Vec<Vec<usize>>,
    last_connection_id: u64,
}

/// Buffers kept for reuse per worker; beyond that they are freed.
const KEEP_BUFFERS: usize = 64;

impl Worker {
    /// A worker with an empty pool.
    pub fn new() -> Worker {
        Worker::default()
    }

    /// A number no other backend connection of this worker had: descriptors are reused by
    /// the kernel, so hosts that keep state per backend socket tell sockets apart by it.
    pub fn new_connection_id(&mut self) -> u64 {
        self.last_connection_id += 1;
        self.last_connection_id
    }

    fn take_buffer(&mut self) -> Box<[u8]> {
        self.buffers
            .pop()
            .unwrap_or_else(|| vec![0u8; BUFFER_SIZE].into_boxed_slice())
    }

    fn take_vec(&mut self) -> Vec<u8> {
        self.vecs.pop().unwrap_or_default()
    }

    fn take_index_vec(&mut self) -> Vec<usize> {
        self.index_vecs.pop().unwrap_or_default()
    }

    fn give_back(&mut self, buffer: Box<[u8]>, vecs: [Vec<u8>; 2], indexes: Vec<usize>) {
        if self.buffers.len() < KEEP_BUFFERS {
            self.buffers.push(buffer);
        }
        for mut v in vecs {
            // Requests with huge bodies must not pin their memory in the free list.
            if self.vecs.len() < 2 * KEEP_BUFFERS && v.capacity() <= 2 * BUFFER_SIZE {
                v.clear();
                self.vecs.push(v);
            }
        }
        if self.index_vecs.len() < KEEP_BUFFERS {
            let mut indexes = indexes;
            indexes.clear();
            self.index_vecs.push(indexes);
        }
    }
}
