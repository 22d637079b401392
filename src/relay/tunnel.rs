//! After `101 Switching Protocols`: bytes move both ways until either side closes.
//!
//! The backend-to-client half uses the exchange's [`ResponseBuffer`] (the `101` head first,
//! then whatever the backend sends); the client-to-backend half has a buffer of its own,
//! allocated only once a tunnel exists.

use std::io::{self, ErrorKind, Read, Write};

use super::response::ResponseBuffer;
use super::spares::Spares;
use crate::reactor::Interest;

/// Size of the client-to-backend buffer of a tunnel.
const TUNNEL_BUFFER: usize = 16 * 1024;

/// The client-to-backend half of a tunnel, and what each side has done.
#[derive(Debug, Default)]
pub(super) struct Tunnel {
    /// Client bytes waiting for the backend are `up[..pending]`.
    up: Vec<u8>,
    pending: usize,
    client_eof: bool,
    backend_eof: bool,
    /// The backend stream still holds bytes it accepted (a TLS stream's records the socket
    /// did not take yet): its `flush` would block.
    backend_unflushed: bool,
}

/// What one round of [`Tunnel::pump`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pumped {
    /// Some byte moved (the idle deadline starts again).
    pub moved: bool,
    /// The tunnel is over: one side closed and everything it sent was delivered, or a
    /// socket failed.
    pub over: bool,
}

/// Both directions of a tunnel's sockets, in the order (backend, client).
pub(super) type Interests = (Option<Interest>, Option<Interest>);

impl Tunnel {
    /// A tunnel whose first client-to-backend bytes are `early` (sent by the client right
    /// behind its upgrade request).
    pub fn starting_with(early: &[u8]) -> Tunnel {
        Tunnel {
            up: early.to_vec(),
            pending: early.len(),
            ..Tunnel::default()
        }
    }

    /// Moves bytes both ways until nothing moves; `up_bytes` counts what reached the backend.
    pub fn pump(
        &mut self,
        down: &mut ResponseBuffer,
        backend: &mut (impl Read + Write),
        client: &mut (impl Read + Write),
        spares: &mut Spares,
        up_bytes: &mut usize,
    ) -> Pumped {
        if self.up.len() < TUNNEL_BUFFER {
            self.up.resize(TUNNEL_BUFFER, 0);
        }
        let mut moved_any = false;
        let result = loop {
            match self.round(down, backend, client, spares, up_bytes) {
                Ok(true) => moved_any = true,
                Ok(false) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        let over = match result {
            Ok(()) => {
                let down_done = self.backend_eof && !down.has_output();
                let up_done = self.client_eof && self.pending == 0 && !self.backend_unflushed;
                down_done || up_done
            }
            Err(_) => true,
        };
        Pumped {
            moved: moved_any,
            over,
        }
    }

    /// One round of copying in both directions; `Ok(true)` if any byte moved.
    fn round(
        &mut self,
        down: &mut ResponseBuffer,
        backend: &mut (impl Read + Write),
        client: &mut (impl Read + Write),
        spares: &mut Spares,
        up_bytes: &mut usize,
    ) -> io::Result<bool> {
        let mut moved = false;
        // What the backend stream accepted earlier and still holds goes first (a plain
        // socket holds nothing; a TLS stream may hold records).
        self.backend_unflushed = match backend.flush() {
            Ok(()) => false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => true,
            Err(e) => return Err(e),
        };
        // Backend to client: the 101 head first, then the buffer.
        let flushed = down.write_to(client, &mut moved)?;
        if flushed && !self.backend_eof {
            match down.read_for_tunnel(backend, spares) {
                Ok(0) => self.backend_eof = true,
                Ok(_) => moved = true,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => self.backend_eof = true,
            }
        }
        // Client to backend: `up[..pending]` waits for the backend.
        if self.pending > 0 {
            match backend.write(&self.up[..self.pending]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.up.copy_within(n..self.pending, 0);
                    self.pending -= n;
                    *up_bytes += n;
                    moved = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        if self.pending == 0 && !self.client_eof {
            match client.read(&mut self.up[..]) {
                Ok(0) => self.client_eof = true,
                Ok(n) => {
                    self.pending = n;
                    moved = true;
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                Err(_) => self.client_eof = true,
            }
        }
        Ok(moved)
    }

    /// What each socket must be watched for next (backend, client).
    pub fn interests(&self, down: &ResponseBuffer) -> Interests {
        let down_pending = down.has_output();
        let up_pending = self.pending > 0;
        let backend = match (!down_pending && !self.backend_eof, up_pending) {
            (true, true) => Some(Interest::ReadWrite),
            (true, false) => Some(Interest::Read),
            (false, true) => Some(Interest::Write),
            (false, false) => None,
        };
        let client = match (!up_pending && !self.client_eof, down_pending) {
            (true, true) => Some(Interest::ReadWrite),
            (true, false) => Some(Interest::Read),
            (false, true) => Some(Interest::Write),
            (false, false) => None,
        };
        (backend, client)
    }
}
