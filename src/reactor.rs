//! The event-loop seam between the core and whoever runs the loop.
//!
//! An exchange owns two ordinary non-blocking sockets (the backend connection and the
//! client connection, a `dup` of Monkey's socket in the plugin) and tells the host which of
//! them it waits on and for what. The host calls back [`crate::relay::Exchange::on_ready`] when
//! a watched socket may have progressed; the exchange then probes the socket itself (read /
//! write until `WouldBlock`), so hosts need not report which readiness fired — Monkey's loop
//! cannot. Monkey implements the seam with `ev_add`/`ev_del`, the tests with `mio::Poll`.

use std::io;
use std::os::fd::RawFd;

/// Which socket of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The connection to the backend server.
    Backend,
    /// The connection to the client.
    Client,
}

/// What an exchange waits for on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interest {
    /// Data to read (or the peer closing).
    Read,
    /// Room to write (or a connect completing).
    Write,
    /// Both (a tunnel moving bytes both ways through one socket).
    ReadWrite,
}

/// A host's event loop as the core sees it.
pub trait Reactor {
    /// Watches `fd` (the socket of `side`) for `interest`, or stops watching it with `None`.
    /// The exchange calls this only when the interest changes, and always with `None` before
    /// it closes or gives away a socket it was watching.
    fn set_interest(&mut self, side: Side, fd: RawFd, interest: Option<Interest>)
        -> io::Result<()>;

    /// The client connection became a tunnel (`101 Switching Protocols`): from now on only the
    /// exchange reads it, so the host must stop parsing it as HTTP until the exchange ends
    /// (the connection then closes).
    fn take_over_client(&mut self) {}

    /// Like [`Reactor::set_interest`] for the backend socket, with the connection's identity
    /// (unique per worker; see [`crate::relay::Worker::new_connection_id`]): a host may keep a
    /// pooled connection registered between exchanges and must not mistake a new socket that
    /// reuses a closed one's descriptor for it.
    fn set_backend_interest(
        &mut self,
        fd: RawFd,
        id: u64,
        interest: Option<Interest>,
    ) -> io::Result<()> {
        let _ = id;
        self.set_interest(Side::Backend, fd, interest)
    }
}
