//! What one Monkey worker thread keeps for the plugin: the core's [`Worker`], the request
//! each of its exchanges serves, and the duplicates of client connections kept between their
//! requests.

use std::cell::RefCell;
use std::ffi::c_int;
use std::net::SocketAddr;

use super::regs::Regs;
use super::session::Session;
use std::sync::Arc;

use crate::proxy::{Cached, Current, Proxy};
use crate::reactor::Token;
use crate::relay::{Ended, Worker};

/// The plugin's `dup` of a Monkey client connection, kept between the connection's
/// requests so that each request does not pay for `dup`, `getpeername`, `TCP_NODELAY` and
/// `close`. Keyed by Monkey's descriptor and checked against its connection object; dropped
/// at stage 50 (Monkey runs it before it closes a connection), so the duplicate never keeps
/// a closed connection open.
struct ClientConn {
    conn: usize,
    stream: mio::net::TcpStream,
    peer: Option<SocketAddr>,
}

/// The request an exchange serves.
#[derive(Debug, Clone, Copy)]
pub struct Served {
    /// The exchange's token.
    pub token: Token,
    /// Monkey's session and request.
    pub session: Session,
    /// The client's address (kept with the duplicate for the connection's next request).
    pub peer: Option<SocketAddr>,
}

/// What one Monkey worker thread keeps.
pub struct WorkerState {
    /// The core's share of this thread: exchanges, idle upstream connections, spares.
    pub core: Worker,
    /// Exchanges the last timer round ended (a list kept for reuse).
    pub ended: Vec<Ended>,
    /// Cached client duplicates, indexed by Monkey's client descriptor.
    clients: Vec<Option<ClientConn>>,
    /// The request each exchange serves, indexed by its token's [`Token::index`].
    sessions: Vec<Option<Served>>,
    /// This worker's copy of the proxy in service (refreshed after a reload).
    proxy: Option<Cached>,
    /// The loop registrations of the descriptors the core watches (see `super::reactor`).
    regs: Regs,
}

thread_local! {
    static STATE: RefCell<WorkerState> = RefCell::new(WorkerState::new());
}

/// Runs `f` with this worker's state; `None` if it is already borrowed (a re-entrant call,
/// which the adapter avoids by never calling into Monkey while holding it).
/// Inlined, so that the thread-local lookup joins its caller's others (one `__tls_get_addr`
/// per function in a shared library).
#[inline(always)]
pub fn with<R>(f: impl FnOnce(&mut WorkerState) -> R) -> Option<R> {
    STATE.with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
}

/// The request `token`'s exchange serves, in a list as [`WorkerState::parts`] lends it.
pub fn session_in(sessions: &[Option<Served>], token: Token) -> Option<Session> {
    match sessions.get(token.index()) {
        Some(Some(s)) if s.token == token => Some(s.session),
        _ => None,
    }
}

impl WorkerState {
    /// The state a worker thread starts with: nothing cached, nothing live.
    fn new() -> WorkerState {
        WorkerState {
            core: Worker::new(),
            ended: Vec::new(),
            clients: Vec::new(),
            sessions: Vec::new(),
            proxy: None,
            regs: Regs::default(),
        }
    }

    /// The proxy in service (new requests start on it; requests in flight keep theirs).
    pub fn proxy(&mut self, current: &Current) -> Arc<Proxy> {
        self.proxy
            .get_or_insert_with(|| Cached::new(current))
            .get(current)
            .clone()
    }

    /// The core, the sessions and the registrations together (the reactor reads the
    /// sessions and keeps the registrations while the core runs).
    pub fn parts(&mut self) -> (&mut Worker, &[Option<Served>], &mut Regs) {
        (&mut self.core, &self.sessions, &mut self.regs)
    }

    /// Remembers the request `served.token`'s exchange serves.
    pub fn hold(&mut self, served: Served) {
        let i = served.token.index();
        if self.sessions.len() <= i {
            self.sessions.resize(i + 1, None);
        }
        self.sessions[i] = Some(served);
    }

    /// Forgets and returns the request `token`'s exchange served.
    pub fn take(&mut self, token: Token) -> Option<Served> {
        let slot = self.sessions.get_mut(token.index())?;
        match slot {
            Some(s) if s.token == token => slot.take(),
            _ => None,
        }
    }

    /// Takes the cached duplicate of client descriptor `fd` if it belongs to connection
    /// object `conn` (a stale entry for another connection is dropped).
    pub fn take_client(
        &mut self,
        fd: c_int,
        conn: usize,
    ) -> Option<(mio::net::TcpStream, Option<SocketAddr>)> {
        let slot = self.clients.get_mut(usize::try_from(fd).ok()?)?;
        match slot.take() {
            Some(c) if c.conn == conn => Some((c.stream, c.peer)),
            _ => None,
        }
    }

    /// Keeps the duplicate of client descriptor `fd` for the connection's next request.
    pub fn keep_client(
        &mut self,
        fd: c_int,
        conn: usize,
        stream: mio::net::TcpStream,
        peer: Option<SocketAddr>,
    ) {
        let Ok(i) = usize::try_from(fd) else { return };
        if self.clients.len() <= i {
            self.clients.resize_with(i + 1, || None);
        }
        self.clients[i] = Some(ClientConn { conn, stream, peer });
    }

    /// Closes the cached duplicate of client descriptor `fd`, if any.
    pub fn forget_client(&mut self, fd: c_int) {
        if let Some(slot) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.clients.get_mut(i))
        {
            *slot = None;
        }
    }
}
