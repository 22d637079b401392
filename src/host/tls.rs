//! The stand-in host's TLS listener (rustls), modelling Monkey's: the host reads requests
//! and writes its own pages through the connection's TLS state, and gives the relay a
//! [`ClientTransport`] over the same state, as the plugin gives it Monkey's TLS layer.
//!
//! A write follows OpenSSL's partial-write contract, which the relay relies on with Monkey:
//! bytes reported written are on the socket as whole records; when the socket fills in the
//! middle of a record, the write reports `WouldBlock` and the caller's retry (with the same
//! bytes first) finishes that record and reports them then.

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;

use mio::net::TcpStream;
use parking_lot::Mutex;
use rustls::{ServerConfig, ServerConnection};

use crate::relay::ClientTransport;

/// Most plaintext one write takes (one TLS record).
const RECORD: usize = 16 * 1024;

/// One client connection's TLS state, shared by the host and the relay's transport.
#[derive(Clone)]
pub(super) struct Tls(Arc<Mutex<State>>);

struct State {
    conn: ServerConnection,
    /// A duplicate of the client socket, for the ciphertext.
    socket: std::net::TcpStream,
    /// Plaintext taken by a write whose records are not all on the socket yet.
    pending: usize,
}

impl Tls {
    /// The server side of a TLS connection on `socket`.
    pub(super) fn new(config: Arc<ServerConfig>, socket: &TcpStream) -> io::Result<Tls> {
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        let fd = std::os::fd::AsFd::as_fd(socket).try_clone_to_owned()?;
        Ok(Tls(Arc::new(Mutex::new(State {
            conn,
            socket: std::net::TcpStream::from(fd),
            pending: 0,
        }))))
    }

    /// A transport for the relay over this connection's TLS state.
    pub(super) fn transport(&self) -> Box<dyn ClientTransport> {
        Box::new(self.clone())
    }
}

impl State {
    /// Writes what rustls has for the peer, until done or the socket is full.
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(&mut self.socket) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ClientTransport for Tls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut s = self.0.lock();
        loop {
            match s.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                // The peer closed without close_notify: the end of the stream all the same.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let State { conn, socket, .. } = &mut *s;
            match conn.read_tls(socket) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    conn.process_new_packets().map_err(io::Error::other)?;
                    // Handshake messages and alerts it owes the peer.
                    match s.flush() {
                        Err(e) if e.kind() != ErrorKind::WouldBlock => return Err(e),
                        _ => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut s = self.0.lock();
        if s.pending == 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            let take = buf.len().min(RECORD);
            s.pending = s.conn.writer().write(&buf[..take])?;
        }
        s.flush()?;
        Ok(std::mem::take(&mut s.pending))
    }

    fn name(&self) -> &'static str {
        "tls"
    }
}
