//! Large bodies that skip user space: backend socket → pipe → client socket with splice(2).
//!
//! A body framed by `Content-Length` reaches the client as it left the backend, so when both
//! sockets are plain TCP (no TLS on either side: those bytes must be decrypted or encrypted
//! here) and enough of it is left, the kernel moves it page by page instead of copying it
//! into the exchange's buffer and out again. The pipe plays the buffer's part, with the same
//! rules: it is filled only once the client took everything before (so a full pipe and a
//! quiet backend are never confused: a `WouldBlock` from filling an empty pipe is the
//! backend's), never with more than its capacity or than the body has left, and while it
//! holds bytes the backend is not read (backpressure: the exchange waits for the client's
//! writability). A pipe is held only while bytes are in it: an exchange waiting for the
//! backend gives it back to the worker's [`Pipes`], and one that ends with bytes in its pipe
//! (a client that left, a cut) closes that pipe, so no pipe with leftover bytes is reused.
//!
//! Where the kernel refuses (`EINVAL`, `ENOSYS`: a sandbox, an exotic socket), the worker
//! turns splicing off and the body goes on by copy, bytes already in a pipe read back first.

use std::io::{self, ErrorKind};
use std::os::fd::{AsFd, OwnedFd};

use rustix::io::Errno;
use rustix::pipe::{fcntl_getpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};

/// The least a body must have left after the bytes that came with the head for it to be
/// spliced: one relay buffer's worth (`spares::BUFFER_SIZE`). Measured (BENCHMARKS.md,
/// "splice(2) for large bodies"): with 8–40 KiB left (40 KiB bodies) splicing cost 15 % more
/// CPU per request than copying, the kernel's page bookkeeping and the end's peek outweighing
/// two copies that small; with 32–64 KiB left (64 KiB bodies) it saved 14–28 %, and more for
/// larger bodies.
pub(super) const SPLICE_FROM: u64 = 32 * 1024;

/// Empty pipes a worker keeps for its next spliced bodies. Exchanges give their pipe back
/// whenever it is empty, so one is enough unless many clients are slow at once; the others
/// are made for them and closed when given back (two descriptors each). The kept one is not
/// closed when the worker goes idle: an empty pipe holds its two descriptors and the kernel's
/// small ring of slots, not the body's pages (they are released as the client takes them; at
/// most one page stays cached for the next write), so trimming it would save next to nothing
/// and cost a `pipe2` and an `F_GETPIPE_SZ` on the next large body.
const KEEP_PIPES: usize = 1;

/// Non-blocking both ways (the sockets are too; the pipe's side of the call must not wait
/// either), and pages moved rather than copied where the kernel can.
const FLAGS: SpliceFlags = SpliceFlags::NONBLOCK.union(SpliceFlags::MOVE);

/// One pipe and what it holds. See the [module docs](self).
#[derive(Debug)]
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Bytes in the pipe, on their way to the client.
    held: usize,
    /// What the pipe can hold (`F_GETPIPE_SZ`).
    capacity: usize,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let capacity = fcntl_getpipe_size(&read)?;
        Ok(Pipe {
            read,
            write,
            held: 0,
            capacity,
        })
    }

    /// Bytes in the pipe.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Moves up to `max` bytes from the socket `from` into the pipe, never more than its room.
    /// `Ok(0)` is the socket's end of file; `WouldBlock` means no byte is there (or no room:
    /// callers fill only an empty pipe, so that it means the former).
    pub fn fill(&mut self, from: impl AsFd, max: u64) -> io::Result<usize> {
        let room = self.capacity - self.held;
        let len = usize::try_from(max).map_or(room, |max| max.min(room));
        let n = splice(from, None, &self.write, None, len, FLAGS).map_err(refusal)?;
        self.held += n;
        Ok(n)
    }

    /// Moves what the pipe holds into the socket `to`, as much as it takes now.
    pub fn drain(&mut self, to: impl AsFd) -> io::Result<usize> {
        let n = splice(&self.read, None, to, None, self.held, FLAGS).map_err(refusal)?;
        self.held -= n;
        Ok(n)
    }

    /// Reads what the pipe holds onto the end of `out` (the way back to copying, after the
    /// kernel refused to splice into the client socket): the pipe is empty afterwards.
    pub fn read_back(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        let start = out.len();
        out.resize(start + self.held, 0);
        let mut at = start;
        while at < out.len() {
            match rustix::io::read(&self.read, &mut out[at..]) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => at += n,
                Err(Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.held = 0;
        Ok(())
    }
}

/// The kernel's refusals to splice between these descriptors, told apart from the sockets'
/// own errors: `ErrorKind::Unsupported`.
fn refusal(e: Errno) -> io::Error {
    match e {
        Errno::INVAL | Errno::NOSYS => ErrorKind::Unsupported.into(),
        e => e.into(),
    }
}

/// Whether `e` is the kernel refusing to splice (see [`Pipe::fill`], [`Pipe::drain`]).
pub(super) fn refused(e: &io::Error) -> bool {
    e.kind() == ErrorKind::Unsupported
}

/// The pipes of one worker: the empty ones kept for reuse, how many exchanges hold one, the
/// bytes spliced so far, and whether splicing is off (the kernel refused it once).
#[derive(Debug, Default)]
pub(super) struct Pipes {
    /// Boxed: an exchange holds its pipe in one pointer (every exchange carries the field,
    /// and its size costs every request in moves), and a kept pipe keeps its box, so taking
    /// one allocates nothing.
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Pipe>>,
    lent: usize,
    off: bool,
    spliced: u64,
}

impl Pipes {
    /// An empty pipe (a kept one, or a new one); `None` when splicing is off or no pipe can
    /// be made now (out of descriptors: the body is copied instead).
    pub fn take(&mut self) -> Option<Box<Pipe>> {
        if self.off {
            return None;
        }
        let pipe = match self.spare.pop() {
            Some(p) => p,
            None => Box::new(Pipe::new().ok()?),
        };
        self.lent += 1;
        Some(pipe)
    }

    /// Gives a pipe back: kept if it is empty and there is room, closed otherwise (a pipe
    /// with bytes left in it is never handed out again).
    pub fn put(&mut self, pipe: Box<Pipe>) {
        self.lent = self.lent.saturating_sub(1);
        if pipe.held == 0 && self.spare.len() < KEEP_PIPES && !self.off {
            self.spare.push(pipe);
        }
    }

    /// The kernel refused to splice: the worker copies from now on.
    pub fn turn_off(&mut self) {
        self.off = true;
        self.spare.clear();
    }

    /// Counts bytes moved into a pipe from a backend.
    pub fn count(&mut self, n: usize) {
        self.spliced += n as u64;
    }

    /// Pipes exchanges hold now (each holds bytes on their way to a client).
    pub fn in_use(&self) -> usize {
        self.lent
    }

    /// Body bytes spliced since the worker started.
    pub fn spliced(&self) -> u64 {
        self.spliced
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (a, b)
    }

    #[test]
    fn bytes_go_socket_to_pipe_to_socket_within_the_room_and_the_limit() {
        let (mut backend_peer, backend) = pair();
        let (client, mut client_peer) = pair();
        backend.set_nonblocking(true).unwrap();
        client.set_nonblocking(true).unwrap();
        let mut pipes = Pipes::default();
        let mut pipe = pipes.take().unwrap();
        assert!(pipe.capacity >= 4096);
        let e = pipe.fill(&backend, 100).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "nothing sent yet");
        backend_peer.write_all(b"0123456789abcdef").unwrap();
        let mut n = 0;
        while n == 0 {
            n = pipe.fill(&backend, 10).unwrap_or(0);
        }
        assert!(n <= 10 && pipe.held() == n, "no more than asked for");
        assert_eq!(pipe.drain(&client).unwrap(), n);
        assert_eq!(pipe.held(), 0);
        let mut got = vec![0u8; n];
        client_peer.read_exact(&mut got).unwrap();
        assert_eq!(got, &b"0123456789"[..n]);
        // The rest stayed in the socket.
        let mut rest = [0u8; 16];
        let mut backend = backend;
        backend.set_nonblocking(false).unwrap();
        let k = backend.read(&mut rest).unwrap();
        assert_eq!(&rest[..k], &b"0123456789abcdef"[n..n + k]);
        pipes.put(pipe);
        assert_eq!((pipes.in_use(), pipes.spare.len()), (0, 1));
        drop(backend_peer);
        let mut pipe = pipes.take().unwrap();
        assert_eq!(pipe.fill(&backend, 100).unwrap(), 0, "end of file");
        pipes.put(pipe);
    }

    #[test]
    fn a_pipe_with_bytes_left_is_closed_not_kept_and_can_be_read_back() {
        let (mut peer, socket) = pair();
        peer.write_all(b"left over").unwrap();
        let mut pipes = Pipes::default();
        let mut pipe = pipes.take().unwrap();
        while pipe.held() < 9 {
            let _ = pipe.fill(&socket, 9 - pipe.held() as u64);
        }
        let mut out = b"head:".to_vec();
        pipe.read_back(&mut out).unwrap();
        assert_eq!(out, b"head:left over");
        assert_eq!(pipe.held(), 0);
        let mut full = pipes.take().unwrap();
        peer.write_all(b"x").unwrap();
        while full.held() == 0 {
            let _ = full.fill(&socket, 1);
        }
        pipes.put(full);
        assert!(
            pipes.spare.is_empty(),
            "a pipe with a byte in it is not kept"
        );
        pipes.put(pipe);
        assert_eq!((pipes.in_use(), pipes.spare.len()), (0, 1));
    }

    #[test]
    fn a_descriptor_the_kernel_cannot_splice_from_is_a_refusal_and_turns_splicing_off() {
        // A directory has no splice_read: the kernel answers EINVAL.
        let dir = std::fs::File::open("/").unwrap();
        let mut pipes = Pipes::default();
        let mut pipe = pipes.take().unwrap();
        let e = pipe.fill(&dir, 10).unwrap_err();
        assert!(refused(&e), "{e:?}");
        pipes.put(pipe);
        pipes.turn_off();
        assert!(pipes.take().is_none());
    }
}
