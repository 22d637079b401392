//! The connection to a backend server, as the relay and the pool use it.
//!
//! Everything the relay asks of a backend connection goes through [`BackendStream`]: connect
//! without blocking, learn whether the connect (and, for a TLS server, the handshake)
//! completed, read, write, and tell whether the peer has anything pending (sent bytes or
//! closed) without consuming it. A plain connection is a TCP socket; a TLS one adds a
//! rustls [`ClientConnection`] driven on the same readiness: the handshake progresses in
//! [`BackendStream::poll_connect`], reads decrypt, writes encrypt with backpressure (new
//! plaintext is taken only once earlier records left), and "pending" also counts decrypted
//! bytes rustls holds. Neither the exchange nor the pool needs to know which it is.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};

use mio::net::TcpStream;
use rustls::ClientConnection;

use crate::config::tls::SEND_BUFFER;
use crate::reactor::Interest;
use crate::upstream::ServerTls;

/// A non-blocking connection to a backend server.
#[derive(Debug)]
pub struct BackendStream {
    tcp: TcpStream,
    /// The TCP connect is known to be complete.
    connected: bool,
    /// For a TLS server: the session (boxed: rustls's state is large, plain connections
    /// should not carry its size).
    tls: Option<Box<Tls>>,
}

/// The TLS side of a [`BackendStream`].
#[derive(Debug)]
struct Tls {
    conn: ClientConnection,
    /// The configuration it was made with (see [`BackendStream::fits`]).
    config: std::sync::Arc<rustls::ClientConfig>,
    /// What the handshake waits for (while it is under way).
    waits: Interest,
    /// Why the handshake failed, once it did.
    failure: Option<String>,
    /// The completed handshake, until [`BackendStream::take_handshake`] reports it: whether
    /// it resumed a session.
    handshake: Option<bool>,
}

/// How a connect started with [`BackendStream::connect`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// Connected (TLS: handshake complete): the request can be sent.
    Done,
    /// Still in progress: wait for [`BackendStream::connect_interest`].
    InProgress,
    /// Failed (refused, unreachable, reset).
    Failed,
    /// The TLS handshake failed: [`BackendStream::tls_failure`] says why.
    TlsFailed,
}

impl BackendStream {
    /// Starts connecting to `addr` (speaking TLS when `tls` is given); returns at once (the
    /// connect and the handshake complete or fail later).
    pub fn connect(addr: SocketAddr, tls: Option<&ServerTls>) -> io::Result<BackendStream> {
        let tls = match tls {
            None => None,
            Some(t) => {
                let mut conn = ClientConnection::new(t.config.clone(), t.name.clone())
                    .map_err(io::Error::other)?;
                conn.set_buffer_limit(Some(SEND_BUFFER));
                Some(Box::new(Tls {
                    conn,
                    config: t.config.clone(),
                    waits: Interest::Write,
                    failure: None,
                    handshake: None,
                }))
            }
        };
        let tcp = TcpStream::connect(addr)?;
        // Requests go out in one write; Nagle would only delay the next one on this connection.
        let _ = tcp.set_nodelay(true);
        Ok(BackendStream {
            tcp,
            connected: false,
            tls,
        })
    }

    /// A stream over an already connected socket (tests, and hosts that connect themselves).
    pub fn from_tcp(tcp: TcpStream) -> BackendStream {
        BackendStream {
            tcp,
            connected: true,
            tls: None,
        }
    }

    /// Where the connect started by [`BackendStream::connect`] stands; for a TLS server,
    /// moves the handshake on as far as the socket allows.
    pub fn poll_connect(&mut self) -> Connect {
        if !self.connected {
            if !matches!(self.tcp.take_error(), Ok(None)) {
                return Connect::Failed;
            }
            match self.tcp.peer_addr() {
                Ok(_) => self.connected = true,
                Err(e) if e.kind() == ErrorKind::NotConnected => return Connect::InProgress,
                Err(_) => return Connect::Failed,
            }
        }
        match &mut self.tls {
            None => Connect::Done,
            Some(t) => t.handshake(&mut self.tcp),
        }
    }

    /// What a connect in progress waits for: writability of the socket while TCP connects,
    /// then whatever the TLS handshake needs next.
    pub fn connect_interest(&self) -> Interest {
        match &self.tls {
            Some(t) if self.connected => t.waits,
            _ => Interest::Write,
        }
    }

    /// Why the TLS handshake failed (after [`Connect::TlsFailed`]).
    pub fn tls_failure(&self) -> Option<&str> {
        self.tls.as_ref()?.failure.as_deref()
    }

    /// A TLS handshake completed since the last call: `Some(resumed)`, once.
    pub fn take_handshake(&mut self) -> Option<bool> {
        self.tls.as_mut()?.handshake.take()
    }

    /// Whether this connection was made the way the server is to be spoken to now: plain
    /// for a plain server, TLS with the same client configuration for a TLS one. An idle
    /// connection kept across a reload that changed the server's scheme or TLS settings (a
    /// reload builds new configurations) does not fit and must not carry a request.
    pub fn fits(&self, tls: Option<&ServerTls>) -> bool {
        match (&self.tls, tls) {
            (None, None) => true,
            (Some(mine), Some(now)) => std::sync::Arc::ptr_eq(&mine.config, &now.config),
            _ => false,
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The interest to register for `wanted`: a TLS connection with records it could not
    /// send yet also waits for writability, whatever the relay waits for (the records go
    /// out on its next read or write).
    pub fn interest(&self, wanted: Option<Interest>) -> Option<Interest> {
        match (&self.tls, wanted) {
            (Some(t), Some(Interest::Read)) if t.conn.wants_write() => Some(Interest::ReadWrite),
            (Some(t), None) if t.conn.wants_write() => Some(Interest::Write),
            _ => wanted,
        }
    }

    /// Whether the peer has nothing pending for us: no byte to read and no close, as far as
    /// the kernel (and, for TLS, the session's decrypted bytes) knows now; nothing is
    /// consumed that a later read would return (a TLS connection processes records that
    /// carry no data, such as session tickets). A connection that is not quiet is out of step
    /// (stray bytes) or closed, and must not carry another request.
    pub fn is_quiet(&mut self) -> bool {
        match &mut self.tls {
            None => {
                let mut probe = [0u8; 1];
                matches!(self.tcp.peek(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock)
            }
            Some(t) => t.is_quiet(&mut self.tcp),
        }
    }

    /// The descriptor, for the host's event loop.
    pub fn fd(&self) -> RawFd {
        self.tcp.as_raw_fd()
    }
}

impl Tls {
    /// Moves the handshake on: writes what rustls has to send, reads what it waits for.
    fn handshake(&mut self, tcp: &mut TcpStream) -> Connect {
        if self.failure.is_some() {
            return Connect::TlsFailed;
        }
        loop {
            if self.conn.wants_write() {
                match self.conn.write_tls(tcp) {
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.waits = Interest::Write;
                        return Connect::InProgress;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(e) => return self.failed(format!("connection lost in the handshake: {e}")),
                }
            }
            if !self.conn.is_handshaking() {
                let resumed = self.conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                self.handshake = Some(resumed);
                return Connect::Done;
            }
            match self.conn.read_tls(tcp) {
                Ok(0) => {
                    return self.failed("the server closed the connection in the handshake".into())
                }
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        // The alert that says why goes out if it can.
                        let _ = self.conn.write_tls(tcp);
                        return self.failed(e.to_string());
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.waits = Interest::Read;
                    return Connect::InProgress;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return self.failed(format!("connection lost in the handshake: {e}")),
            }
        }
    }

    fn failed(&mut self, reason: String) -> Connect {
        self.failure = Some(reason);
        Connect::TlsFailed
    }

    /// Sends the records rustls holds; `WouldBlock` when some must wait.
    fn flush(&mut self, tcp: &mut TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(tcp) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read(&mut self, tcp: &mut TcpStream, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                // Data, or the server's close_notify (a clean end).
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // Closed without close_notify: an end that could be a cut.
                Err(e) => return Err(e),
            }
            // Records a write could not send yet go first: the response may wait on them.
            match self.flush(tcp) {
                Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
            match self.conn.read_tls(tcp) {
                // rustls now knows of the end; its reader says which kind on the next turn.
                Ok(_) => {
                    if let Err(e) = self.conn.process_new_packets() {
                        let _ = self.conn.write_tls(tcp);
                        return Err(io::Error::new(ErrorKind::InvalidData, e));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn write(&mut self, tcp: &mut TcpStream, buf: &[u8]) -> io::Result<usize> {
        // Backpressure: nothing new is taken while earlier records wait for the socket.
        self.flush(tcp)?;
        let n = self.conn.writer().write(buf)?;
        match self.flush(tcp) {
            Ok(()) => Ok(n),
            // The rest leaves with the next call (`interest` asks for writability).
            Err(e) if e.kind() == ErrorKind::WouldBlock || n > 0 => Ok(n),
            Err(e) => Err(e),
        }
    }

    fn is_quiet(&mut self, tcp: &mut TcpStream) -> bool {
        loop {
            match self.conn.process_new_packets() {
                Ok(state) if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() => {
                    return false
                }
                Ok(_) => {}
                Err(_) => return false,
            }
            match self.conn.read_tls(tcp) {
                Ok(0) => return false,
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }
}

impl Read for BackendStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.tcp.read(buf),
            Some(t) => t.read(&mut self.tcp, buf),
        }
    }
}

impl Write for BackendStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.tcp.write(buf),
            Some(t) => t.write(&mut self.tcp, buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.tcp.write_vectored(bufs),
            Some(t) => {
                let first = bufs
                    .iter()
                    .find(|b| !b.is_empty())
                    .map_or(&[][..], |b| &b[..]);
                t.write(&mut self.tcp, first)
            }
        }
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
        let mut stream = BackendStream::connect(listener.local_addr().unwrap(), None).unwrap();
        wait_for(|| stream.poll_connect() == Connect::Done);
        let (mut peer, _) = listener.accept().unwrap();
        assert!(stream.is_quiet());
        peer.write_all(b"x").unwrap();
        wait_for(|| !stream.is_quiet());
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
        let mut stream = BackendStream::connect(addr, None).unwrap();
        let mut state = Connect::InProgress;
        wait_for(|| {
            state = stream.poll_connect();
            state != Connect::InProgress
        });
        assert_eq!(state, Connect::Failed);
    }
}
