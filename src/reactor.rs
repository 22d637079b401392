//! The event-loop seam between the core and whoever runs the loop.
//!
//! The core's [`crate::relay::Worker`] owns everything that waits on a loop for one thread:
//! exchanges, idle upstream connections, and later health probes and admin tasks. Each of them
//! is known by a [`Token`]; the core asks its host to watch a socket for it ([`Reactor::watch`])
//! and to wake it at a time ([`Reactor::wake_at`]), and the host hands every event back with the
//! token (`Worker::on_ready`) and calls `Worker::on_timer` when the time has come. The host never
//! needs to know whose a token is.
//!
//! Readiness is a hint, never trusted: an owner woken by an event probes its sockets itself
//! (reads and writes until `WouldBlock`), so a host need not report which readiness fired —
//! Monkey's loop cannot — and a spurious wake-up (an event for a token that has moved on) costs
//! nothing but the probe. Monkey implements the seam with its event loop (`ev_add`, epoll, a
//! timerfd), the stand-in host and the tests with `mio::Poll`.

use std::io;
use std::os::fd::RawFd;

use crate::clock::Moment;

/// Who a registration or a timer belongs to. Opaque to hosts: they store it with the
/// registration (as an integer, never 0) and hand it back with each event. The core's tokens
/// never have bit 62 ([`Token::HOST_BIT`]) set, so a host may number registrations of its
/// own with it in the same space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token(u64);

impl Token {
    /// Never set in the core's tokens: free for a host's own registrations.
    pub const HOST_BIT: u64 = 1 << 62;

    /// The token a host stored as [`Token::raw`].
    pub const fn from_raw(raw: u64) -> Token {
        Token(raw)
    }

    /// The token as an integer, never 0, for a host to store.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// For an exchange's token: a small number no other live exchange of the same worker
    /// has (below the most exchanges that were ever live at once), so that a host can keep
    /// what it knows of each exchange in a `Vec` indexed by it. (The worker keeps an
    /// exchange's slot in the token's low 32 bits.)
    pub const fn index(self) -> usize {
        self.0 as u32 as usize
    }
}

/// A socket the core asks a host to watch: its descriptor, and an identity that no other
/// socket of this worker ever had. Descriptor numbers come back after a close; a host that
/// keeps state per descriptor tells a new socket from a closed one by `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The descriptor.
    pub fd: RawFd,
    /// The socket's identity (unique per worker, never 0).
    pub id: u64,
}

/// What an owner waits for on a socket.
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
    /// Reports readiness of `source` for `interest` to `token` from now on (a new owner takes
    /// an existing registration over by naming it with its own token). With `None` the owner
    /// needs no event for now: a host may keep the registration in place (an event then is a
    /// spurious wake-up) as long as that cannot make its loop spin.
    ///
    /// The core closes sockets it owns without telling the host (the kernel drops their
    /// registrations; the next socket on the descriptor has another `id`).
    fn watch(&mut self, source: Source, token: Token, interest: Option<Interest>)
        -> io::Result<()>;

    /// Stops watching `source` now and forgets it: called before the core hands back or
    /// closes a socket that shares its open file with a host's own (the duplicate of a client
    /// connection), whose registration would outlive the close.
    fn release(&mut self, source: Source);

    /// Calls `Worker::on_timer` at `at` (or soon after): each call replaces the previous one.
    fn wake_at(&mut self, at: Moment);

    /// The client connection of `token`'s exchange became a tunnel (`101 Switching
    /// Protocols`): from now on only the exchange reads it, so the host must stop parsing it
    /// as HTTP until the exchange ends (the connection then closes).
    fn take_over_client(&mut self, token: Token) {
        let _ = token;
    }
}
