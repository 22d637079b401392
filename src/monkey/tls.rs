//! Client connections of TLS listeners (`Listen PORT tls`): Monkey's TLS layer holds the
//! connection's TLS state, keyed by Monkey's descriptor in a list of the worker thread, so
//! the relay's reads and writes go through the listener's transport (`conn->net`), on the
//! worker that owns the connection — never to the socket itself, which would put plaintext
//! into the TLS stream.

use std::ffi::c_int;
use std::io;

use super::sys;
use crate::relay::ClientTransport;

/// Monkey's transport of one client connection.
pub struct MonkeyTls {
    /// Monkey's descriptor (the TLS layer finds the connection's state by it).
    fd: c_int,
    net: *mut sys::mk_plugin_network,
}

// SAFETY: a `MonkeyTls` lives in an exchange of the worker whose stage 30 made it and is used
// only on that thread (the core's `Worker` is per thread; the Monkey adapter keeps it in a
// thread-local). `Send` is required only because the trait object type is shared with hosts
// that move their whole loop into a thread before starting it.
unsafe impl Send for MonkeyTls {}

impl MonkeyTls {
    /// The transport `net` (from [`super::session::Session::tls_transport`]) of Monkey's
    /// client descriptor `fd`.
    pub fn new(fd: c_int, net: *mut sys::mk_plugin_network) -> MonkeyTls {
        MonkeyTls { fd, net }
    }

    /// What a transport call's result means: bytes, the end, "try again", or an error.
    fn result(ret: c_int) -> io::Result<usize> {
        match usize::try_from(ret) {
            Ok(n) => Ok(n),
            Err(_) => {
                let e = io::Error::last_os_error();
                // The TLS layer sets EAGAIN for "wants read/write" and errno 0 for a TLS error.
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => Err(io::ErrorKind::WouldBlock.into()),
                    Some(libc::EINTR) => Err(io::ErrorKind::Interrupted.into()),
                    Some(0) | None => Err(io::Error::other("TLS error on the client connection")),
                    Some(_) => Err(e),
                }
            }
        }
    }

    /// The transport's table (Monkey's static transport for TLS listeners).
    fn table(&self) -> &sys::mk_plugin_network {
        // SAFETY: `net` is the listener's transport, a static table of Monkey's TLS layer
        // that lives as long as the server.
        unsafe { &*self.net }
    }
}

impl ClientTransport for MonkeyTls {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = self.table();
        let Some(read) = t.read else {
            return Err(io::Error::other("the TLS transport has no read"));
        };
        let len = c_int::try_from(buf.len()).unwrap_or(c_int::MAX);
        // SAFETY: the transport's read on Monkey's live descriptor of this connection, on its
        // own worker thread, into a writable buffer of at least `len` bytes.
        Self::result(unsafe { read(t.plugin, self.fd, buf.as_mut_ptr().cast(), len) })
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let t = self.table();
        let Some(write) = t.write else {
            return Err(io::Error::other("the TLS transport has no write"));
        };
        // SAFETY: the transport's write on Monkey's live descriptor of this connection, on
        // its own worker thread, from a readable buffer of `buf.len()` bytes (Monkey sets
        // partial writes and moving buffers for OpenSSL, so a retry may pass other bytes).
        Self::result(unsafe { write(t.plugin, self.fd, buf.as_ptr().cast(), buf.len()) })
    }

    fn write_waits_for_read(&self) -> bool {
        let t = self.table();
        let Some(interest) = t.event_interest else {
            return false;
        };
        let fallback = sys::MK_EVENT_WRITE as c_int;
        // SAFETY: the transport's query of what the connection's TLS state waits for, on the
        // live descriptor, on its own worker thread.
        let want = unsafe { interest(t.plugin, self.fd, fallback) };
        want == sys::MK_EVENT_READ as c_int
    }

    fn name(&self) -> &'static str {
        "tls"
    }
}
