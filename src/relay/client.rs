//! The client connection as the relay holds it: the host's `dup` of the client socket, and,
//! when the host itself carries the connection's bytes (a TLS listener, where Monkey's TLS
//! layer encrypts), the host's transport for them.
//!
//! Readiness is always the socket's (the transport's records travel on it), so the relay
//! watches the socket as it does on a plain connection; only the bytes go through the
//! transport. Plain connections keep the direct path: one branch per read or write.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};

use mio::net::TcpStream;

/// How a host moves the bytes of a client connection whose socket does not carry them as
/// they are (TLS terminated by the host). Both calls are non-blocking: `WouldBlock` means
/// "try again on the next readiness event", as for a socket.
pub trait ClientTransport: Send {
    /// Reads plaintext; `Ok(0)` is the end of the stream.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes plaintext; may take fewer bytes than given.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// After a `WouldBlock` from [`ClientTransport::write`]: whether what it waits for is
    /// bytes from the peer (a TLS layer may need to read before it can write again).
    fn write_waits_for_read(&self) -> bool {
        false
    }
    /// What the transport is, for log lines (`tls`).
    fn name(&self) -> &'static str;
}

/// A client connection: its socket and, if the host carries its bytes, the transport.
pub struct ClientConn {
    socket: TcpStream,
    transport: Option<Box<dyn ClientTransport>>,
}

impl fmt::Debug for ClientConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConn")
            .field("fd", &self.socket.as_raw_fd())
            .field("transport", &self.transport.as_ref().map(|t| t.name()))
            .finish()
    }
}

impl ClientConn {
    /// A connection whose socket carries its bytes as they are.
    pub fn plain(socket: TcpStream) -> ClientConn {
        ClientConn {
            socket,
            transport: None,
        }
    }

    /// A connection whose bytes go through `transport` (readiness is still `socket`'s).
    pub fn through(socket: TcpStream, transport: Box<dyn ClientTransport>) -> ClientConn {
        ClientConn {
            socket,
            transport: Some(transport),
        }
    }

    /// Whether the bytes go through a host transport.
    pub fn has_transport(&self) -> bool {
        self.transport.is_some()
    }

    /// The socket, when it carries the connection's bytes as they are (no transport): what a
    /// spliced body is written to.
    pub(super) fn plain_socket(&self) -> Option<&TcpStream> {
        match self.transport {
            None => Some(&self.socket),
            Some(_) => None,
        }
    }

    /// The socket back (a host keeps it for the connection's next request; the transport is
    /// the host's and made again then).
    pub fn into_socket(self) -> TcpStream {
        self.socket
    }

    /// The interest to watch for when a write would block: the socket's writability, or
    /// also its readability when the transport waits for the peer.
    pub fn blocked_write_wants_read(&self) -> bool {
        self.transport
            .as_ref()
            .is_some_and(|t| t.write_waits_for_read())
    }
}

impl AsRawFd for ClientConn {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

impl Read for ClientConn {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.transport {
            None => self.socket.read(buf),
            Some(t) => t.read(buf),
        }
    }
}

impl Write for ClientConn {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.transport {
            None => self.socket.write(buf),
            Some(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
