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

use crate::http::request::ProxyRequest;

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
    /// Read buffers handed out and not yet returned.
    buffers_lent: usize,
    /// Finished exchanges' requests, cleared, for later requests to fill.
    spare_requests: Vec<ProxyRequest>,
    last_connection_id: u64,
}

/// Read buffers kept for reuse per worker; beyond that they are freed. Exchanges hold them
/// only while bytes are in transit, so few are out at once.
const KEEP_BUFFERS: usize = 64;

/// Requests, byte vectors and candidate lists kept for reuse per worker. They are held for a
/// whole exchange, so with fewer spares than exchanges in flight every batch larger than the
/// spare list would allocate again; each kept item is small (see the `KEEP_*_BYTES` limits),
/// so even a full list is a few MiB at worst and typically tens of KiB.
const KEEP_SPARES: usize = 256;

/// Largest byte vector kept for reuse (larger ones are freed when returned).
const KEEP_VEC_BYTES: usize = 8 * 1024;

/// Largest request body buffer kept with a recycled request (larger ones are freed).
const KEEP_BODY_BYTES: usize = 4 * 1024;

/// Largest header buffer of a recycled request (a request with more is freed).
const KEEP_HEADER_BYTES: usize = 8 * 1024;

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

    /// An empty request to fill, with the buffers of an earlier one when there is one
    /// (hosts copy each client request into it rather than into fresh allocations).
    pub fn take_request(&mut self) -> ProxyRequest {
        self.spare_requests.pop().unwrap_or_default()
    }

    /// Keeps a finished request's buffers for [`Worker::take_request`] (cleared here; a
    /// request with a large body is dropped instead, so its memory is not pinned).
    pub fn recycle_request(&mut self, mut request: ProxyRequest) {
        if self.spare_requests.len() >= KEEP_SPARES
            || request.headers.capacity_bytes() > KEEP_HEADER_BYTES
        {
            return;
        }
        if request.body.capacity() > KEEP_BODY_BYTES {
            // Uploads must not pin their memory in the spare list.
            request.body = Vec::new();
        }
        request.clear();
        self.spare_requests.push(request);
    }

    /// A read buffer of [`BUFFER_SIZE`] bytes: the most recently returned one, which is the
    /// likeliest to still be in the CPU cache.
    fn take_buffer(&mut self) -> Box<[u8]> {
        self.buffers_lent += 1;
        self.buffers
            .pop()
            .unwrap_or_else(|| vec![0u8; BUFFER_SIZE].into_boxed_slice())
    }

    /// Returns a read buffer (an empty box, meaning none was held, is ignored).
    fn put_buffer(&mut self, buffer: Box<[u8]>) {
        if buffer.len() != BUFFER_SIZE {
            return;
        }
        self.buffers_lent = self.buffers_lent.saturating_sub(1);
        if self.buffers.len() < KEEP_BUFFERS {
            self.buffers.push(buffer);
        }
    }

    /// Read buffers that exchanges hold right now: only those with response bytes in transit
    /// (the figure behind the memory bound stated in the README).
    pub fn buffers_in_use(&self) -> usize {
        self.buffers_lent
    }

    /// Returns a byte vector (cleared here; a large one is dropped instead of kept).
    fn put_vec(&mut self, mut v: Vec<u8>) {
        // Requests with large bodies must not pin their memory in the free list.
        if v.capacity() > 0 && self.vecs.len() < KEEP_SPARES && v.capacity() <= KEEP_VEC_BYTES {
            v.clear();
            self.vecs.push(v);
        }
    }

    fn take_vec(&mut self) -> Vec<u8> {
        self.vecs.pop().unwrap_or_default()
    }

    fn take_index_vec(&mut self) -> Vec<usize> {
        self.index_vecs.pop().unwrap_or_default()
    }

    /// Returns an index list (cleared here).
    fn put_index_vec(&mut self, mut indexes: Vec<usize>) {
        if self.index_vecs.len() < KEEP_SPARES {
            indexes.clear();
            self.index_vecs.push(indexes);
        }
    }

    fn give_back(&mut self, buffer: Box<[u8]>, vecs: [Vec<u8>; 2], indexes: Vec<usize>) {
        self.put_buffer(buffer);
        for v in vecs {
            self.put_vec(v);
        }
        self.put_index_vec(indexes);
    }
}

/// Most bytes [`discard_unread`] reads before giving up: it runs on an event-loop thread.
const DISCARD_LIMIT: usize = 256 * 1024;

/// Reads and drops what a client sent that will never be answered (requests pipelined
/// behind a response that closes the connection), without waiting, just before the
/// connection is closed. Closing a socket with unread bytes makes the kernel send a reset
/// instead of an orderly end, and a reset can destroy response bytes the client has not read
/// yet — for a body that ends with the connection, the client could not tell it was cut.
/// (Bytes that arrive later still cause a reset; a full lingering close is not attempted.)
pub fn discard_unread(stream: &mut impl std::io::Read) {
    let mut scratch = [0u8; 16 * 1024];
    let mut total = 0;
    while total < DISCARD_LIMIT {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
