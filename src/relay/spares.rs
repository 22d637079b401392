//! Memory one worker thread reuses across exchanges: read buffers, byte vectors, index
//! lists and requests, so that the proxied path allocates nothing per request once warm;
//! and the pipes that large bodies are spliced through ([`Pipes`]).

use super::splice::Pipes;
use crate::http::request::ProxyRequest;

/// Size of the buffer an exchange reads backend bytes into (also the largest response head).
pub const BUFFER_SIZE: usize = 32 * 1024;

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

/// The spare lists of one worker.
#[derive(Debug, Default)]
pub struct Spares {
    buffers: Vec<Box<[u8]>>,
    vecs: Vec<Vec<u8>>,
    index_vecs: Vec<Vec<usize>>,
    requests: Vec<ProxyRequest>,
    /// Read buffers handed out and not yet returned.
    buffers_lent: usize,
    /// Pipes for spliced bodies (kernel memory, lent like the read buffers).
    pub pipes: Pipes,
}

impl Spares {
    /// An empty request to fill, with the buffers of an earlier one when there is one.
    pub fn take_request(&mut self) -> ProxyRequest {
        self.requests.pop().unwrap_or_default()
    }

    /// Keeps a finished request's buffers for [`Spares::take_request`] (cleared here; a
    /// request with a large body is dropped instead, so its memory is not pinned).
    pub fn put_request(&mut self, mut request: ProxyRequest) {
        self.keep_request(&mut request);
    }

    /// [`Spares::put_request`] for a request still in its holder (a finished exchange),
    /// which is left with an empty one: cleared where it is and moved once, into the list.
    pub fn keep_request(&mut self, request: &mut ProxyRequest) {
        if self.requests.len() >= KEEP_SPARES
            || request.headers.capacity_bytes() > KEEP_HEADER_BYTES
        {
            // Freed, not left in a holder that may be kept (a spare exchange).
            *request = ProxyRequest::default();
            return;
        }
        Spares::trim_request(request);
        request.clear();
        self.requests.push(std::mem::take(request));
    }

    /// Frees what of `request` is too large to keep (see [`Spares::keep_request`]) where it
    /// is: for a request that stays in a spare exchange until the host fills it again.
    #[inline]
    pub fn trim_request(request: &mut ProxyRequest) {
        if request.headers.capacity_bytes() > KEEP_HEADER_BYTES {
            *request = ProxyRequest::default();
            return;
        }
        if request.body.capacity() > KEEP_BODY_BYTES {
            // Uploads must not pin their memory where requests are kept.
            request.body = Vec::new();
        }
        if request.early.capacity() > KEEP_BODY_BYTES {
            request.early = Vec::new();
        }
    }

    /// A read buffer of [`BUFFER_SIZE`] bytes: the most recently returned one, which is the
    /// likeliest to still be in the CPU cache.
    pub fn take_buffer(&mut self) -> Box<[u8]> {
        self.buffers_lent += 1;
        self.buffers
            .pop()
            .unwrap_or_else(|| vec![0u8; BUFFER_SIZE].into_boxed_slice())
    }

    /// Returns a read buffer (an empty box, meaning none was held, is ignored).
    pub fn put_buffer(&mut self, buffer: Box<[u8]>) {
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

    /// An empty byte vector, with the capacity of a returned one when there is one.
    pub fn take_vec(&mut self) -> Vec<u8> {
        self.vecs.pop().unwrap_or_default()
    }

    /// Returns a byte vector (cleared here; a large one is dropped instead of kept).
    pub fn put_vec(&mut self, mut v: Vec<u8>) {
        // Requests with large bodies must not pin their memory in the free list.
        if v.capacity() > 0 && self.vecs.len() < KEEP_SPARES && v.capacity() <= KEEP_VEC_BYTES {
            v.clear();
            self.vecs.push(v);
        }
    }

    /// An empty index list.
    pub fn take_index_vec(&mut self) -> Vec<usize> {
        self.index_vecs.pop().unwrap_or_default()
    }

    /// Returns an index list (cleared here).
    pub fn put_index_vec(&mut self, mut indexes: Vec<usize>) {
        if self.index_vecs.len() < KEEP_SPARES {
            indexes.clear();
            self.index_vecs.push(indexes);
        }
    }
}
