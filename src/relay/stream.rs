//! The connection to a backend server, as the relay and the pool use it.
//!
//! Everything the relay asks of a backend connection goes through [`BackendStream`]: connect
//! without blocking, learn whether the connect completed, read, write, and tell whether the
//! peer has anything pending (sent bytes or closed) without consuming it. Today it is plain
//! TCP; an encrypted connection slots in behind the same methods (its "pending" must then
//! also count decrypted bytes it holds), so neither the exchange nor the pool changes.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use mio::net::TcpStream;

/// A non-blocking connection to a backend server.
#[derive(Debug)]
pub struct BackendStream {
    tcp: TcpStream,
}

/// How a connect started with [`BackendStream::connect`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// Connected: the request can be sent.
    Done,
    /// Still in progress: wait until the socket is writable.
    InProgress,
    /// Failed (refused, unreachable, reset).
    Failed,
}

impl BackendStream {
    /// Starts connecting to `addr`; returns at once (the connect completes or fails later).
    pub fn connect(addr: SocketAddr) -> io::Result<BackendStream> {
        let tcp = TcpStream::connect(addr)?;
        // Requests go out in one write; Nagle would only delay the next one on this connection.
        let _ = tcp.set_nodelay(true);
        Ok(BackendStream { tcp })
    }

    /// A stream over an already connected socket (tests, and hosts that connect themselves).
    pub fn from_tcp(tcp: TcpStream) -> BackendStream {
        BackendStream { tcp }
    }

    /// Where the connect started by [`BackendStream::connect`] stands.
    pub fn poll_connect(&self) -> Connect {
        if !matches!(self.tcp.take_error(), Ok(None)) {
            return Connect::Failed;
        }
        match self.tcp.peer_addr() {
            Ok(_) => Connect::Done,
            Err(e) if e.kind() == ErrorKind::NotConnected => Connect::InProgress,
            Err(_) => Connect::Failed,
        }
    }

    /// Whether the peer has nothing pending for us: no byte to read and no close, as far as
    /// the kernel knows now (a `MSG_PEEK`; nothing is consumed). A connection that is not
    /// quiet is out of step (stray bytes) or closed, and must not carry another request.
    pub fn is_quiet(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.tcp.peek(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
    }

    /// The descriptor, for the host's event loop.
    pub fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }
}

impl Read for BackendStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.tcp.read(buf)
    }
}

impl Write for BackendStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    fn wait_for(mut done: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while !done() {
            assert!(Instant::now() < until, "timed out");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn a_connect_completes_and_a_quiet_connection_turns_loud_when_the_peer_writes_or_closes() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = BackendStream::connect(listener.local_addr().unwrap()).unwrap();
        wait_for(|| stream.poll_connect() == Connect::Done);
        let (mut peer, _) = listener.accept().unwrap();
        assert!(stream.is_quiet());
        peer.write_all(b"x").unwrap();
        wait_for(|| !stream.is_quiet());
        let mut stream = stream;
        let mut byte = [0u8; 1];
        wait_for(|| stream.read(&mut byte).is_ok());
        assert!(stream.is_quiet(), "the byte was consumed");
        drop(peer);
        wait_for(|| !stream.is_quiet());
    }

    #[test]
    fn a_refused_connect_fails() {
        let addr = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // The listener is closed: nothing accepts on that port now.
        let stream = BackendStream::connect(addr).unwrap();
        let mut state = Connect::InProgress;
        wait_for(|| {
            state = stream.poll_connect();
            state != Connect::InProgress
        });
        assert_eq!(state, Connect::Failed);
    }
}
