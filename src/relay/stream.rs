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

    /// The socket, when it carries the response's bytes as they are (not TLS): what a
    /// spliced body is read from.
    pub(super) fn plain_tcp(&self) -> Option<&TcpStream> {
        match self.tls {
            None => Some(&self.tcp),
            Some(_) => None,
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

    /// Sends what a TLS stream holds (`WouldBlock` while some must wait); nothing to do for
    /// a plain socket.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.tls {
            None => Ok(()),
            Some(t) => t.flush(&mut self.tcp),
        }
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

    /// A rustls server on a thread for a certificate made now (for 127.0.0.1); each
    /// connection echoes what it reads once, then sends `extra` and waits for the peer to
    /// close. Returns its address and the client side's `ServerTls`.
    fn tls_echo_server(extra: &'static [u8]) -> (std::net::SocketAddr, ServerTls) {
        use std::sync::Arc;
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let cert = params.self_signed(&key).unwrap();
        let server = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
            )
            .unwrap();
        let server = Arc::new(server);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(server.clone()).unwrap();
                let mut s = rustls::StreamOwned::new(conn, tcp);
                let mut buf = [0u8; 1024];
                let Ok(n) = s.read(&mut buf) else { continue };
                let _ = s.write_all(&buf[..n]);
                let _ = s.write_all(extra);
                let _ = s.flush();
                let _ = s.read(&mut buf);
            }
        });
        let pem = cert.pem();
        let settings = crate::config::TlsSettings {
            ca_file: Some(crate::config::PemFile {
                path: "test.pem".into(),
                pem: pem.into_bytes(),
            }),
            ..crate::config::TlsSettings::default()
        };
        let tls = ServerTls {
            config: crate::config::tls::client_config(&settings).unwrap(),
            name: rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap(),
        };
        (addr, tls)
    }

    #[test]
    fn a_tls_stream_handshakes_on_readiness_then_reads_writes_and_knows_what_it_holds() {
        let (addr, tls) = tls_echo_server(b"");
        let mut stream = BackendStream::connect(addr, Some(&tls)).unwrap();
        assert!(stream.is_tls() && stream.fits(Some(&tls)) && !stream.fits(None));
        let mut state = Connect::InProgress;
        wait_for(|| {
            state = stream.poll_connect();
            state != Connect::InProgress
        });
        assert_eq!(state, Connect::Done);
        assert_eq!(
            stream.take_handshake(),
            Some(false),
            "a full handshake, reported once"
        );
        assert_eq!(stream.take_handshake(), None);
        let n = loop {
            match stream.write(b"hello") {
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                other => break other.unwrap(),
            }
        };
        assert_eq!(n, 5);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        wait_for(|| match stream.read(&mut buf) {
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                got.len() >= 5
            }
            Err(_) => false,
        });
        assert_eq!(got, b"hello");
        // Everything read: quiet (session tickets, if any came, are records without data).
        wait_for(|| stream.is_quiet());
        assert_eq!(stream.interest(Some(Interest::Read)), Some(Interest::Read));
        assert_eq!(stream.interest(None), None);
    }

    #[test]
    fn decrypted_bytes_held_by_the_session_make_a_tls_stream_loud() {
        let (addr, tls) = tls_echo_server(b"stray bytes");
        let mut stream = BackendStream::connect(addr, Some(&tls)).unwrap();
        wait_for(|| stream.poll_connect() == Connect::Done);
        wait_for(|| stream.write(b"x").is_ok());
        let mut byte = [0u8; 1];
        wait_for(|| stream.read(&mut byte).is_ok());
        // The rest ("stray bytes") arrives decrypted into rustls: not quiet.
        wait_for(|| !stream.is_quiet());
        let mut rest = [0u8; 64];
        let n = stream.read(&mut rest).unwrap();
        assert_eq!(&rest[..n], b"stray bytes");
    }

    #[test]
    fn a_certificate_no_root_vouches_for_fails_the_handshake_with_its_reason() {
        let (addr, _) = tls_echo_server(b"");
        let (_, other) = tls_echo_server(b"");
        let mut stream = BackendStream::connect(addr, Some(&other)).unwrap();
        let mut state = Connect::InProgress;
        wait_for(|| {
            state = stream.poll_connect();
            state != Connect::InProgress
        });
        assert_eq!(state, Connect::TlsFailed);
        let why = stream.tls_failure().unwrap();
        assert!(why.contains("invalid peer certificate"), "{why}");
        assert_eq!(stream.poll_connect(), Connect::TlsFailed, "it stays failed");
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
