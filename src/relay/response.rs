//! The response on its way to the client: one read buffer, the head the client gets, and the
//! body's framing.
//!
//! Backend bytes are read into one fixed-size buffer and leave for the client from the same
//! buffer (`buf[start..end]`), re-framed in place when the client needs another framing
//! (de-chunked for HTTP/1.0, chunked for a body that ends with the backend's close), so the
//! memory an exchange holds is bounded whatever the response size. The buffer is held only
//! while bytes are in transit. A large body framed by `Content-Length` between plain sockets
//! goes through a pipe instead, by splice(2) ([`super::splice`]): the same rules, without
//! the copies.

use std::io::{self, ErrorKind, IoSlice, Read, Write};

use super::client::ClientConn;
use super::spares::Spares;
use super::splice::{self, Pipe};
use super::stream::BackendStream;
use crate::http::framing::{BodyReader, Framing};
use crate::http::response::{parse_head, ClientSide, HeadEdits, HeadMemo, ResponseHead};
use crate::http::status::write_error_page;

/// Room left in front of the bytes read for a body re-framed as chunked: the CRLF that ends
/// the previous chunk, up to 8 hex digits of size and the CRLF after them.
const CHUNK_ROOM: usize = 12;

/// What the response head's arrival made of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Head {
    /// The head is not complete yet (and there is room to read the rest).
    Incomplete,
    /// A usable head: the body (or a tunnel, for a `101`) follows.
    Parsed(ResponseHead),
    /// Malformed, oversized, or the body's first bytes are malformed: the client gets 502.
    Unusable,
}

/// What [`ResponseBuffer::read_body`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyRead {
    /// This many bytes arrived (and are framed for the client).
    Bytes(usize),
    /// The backend closed its side.
    End,
    /// The body is malformed (a bad chunk): the response cannot be completed.
    Malformed,
}

/// The response bytes of one exchange. See the [module docs](self).
#[derive(Debug)]
pub(super) struct ResponseBuffer {
    /// Backend bytes; empty while the exchange holds no buffer.
    buf: Box<[u8]>,
    /// Bytes for the client are `buf[start..end]` (while reading the head, `buf[..end]` is the
    /// head read so far).
    start: usize,
    end: usize,
    /// The client's response head (or the proxy's own answer) while it is not in `buf`.
    head_out: Vec<u8>,
    head_sent: usize,
    body: BodyReader,
    head: Option<ResponseHead>,
    /// A chunk of a body re-framed as chunked went to the client: the next chunk, or the
    /// last-chunk, starts by ending it.
    chunk_open: bool,
    /// The last read from the backend filled all the room it was given, so the socket may
    /// hold more bytes than were read.
    last_read_full: bool,
    /// The backend connection may carry another request once the body is complete.
    reusable: bool,
    /// Bytes written to the client, head included (for the access log).
    sent: u64,
    /// Bytes of the head the client gets (the backend's rewritten, or the proxy's own).
    head_bytes: u64,
    /// The body goes on by splice(2) ([`ResponseBuffer::choose_splice`]).
    splicing: bool,
    /// While spliced body bytes are on their way to the client: the pipe that holds them.
    pipe: Option<Box<Pipe>>,
}

impl Default for ResponseBuffer {
    fn default() -> ResponseBuffer {
        ResponseBuffer {
            buf: Box::default(),
            start: 0,
            end: 0,
            head_out: Vec::new(),
            head_sent: 0,
            body: BodyReader::new(Framing::None),
            head: None,
            chunk_open: false,
            last_read_full: false,
            reusable: false,
            sent: 0,
            head_bytes: 0,
            splicing: false,
            pipe: None,
        }
    }
}

impl ResponseBuffer {
    /// The backend's parsed head, once it arrived.
    pub fn head(&self) -> Option<ResponseHead> {
        self.head
    }

    /// Forgets the backend's head: what is sent from now on is not its response.
    pub fn forget_head(&mut self) {
        self.head = None;
    }

    /// Whether the body is complete (the client has been sent or is being sent its end).
    pub fn body_done(&self) -> bool {
        self.body.is_done()
    }

    /// Whether the body ends when the backend closes.
    pub fn until_close(&self) -> bool {
        self.body.until_close()
    }

    /// Whether the backend connection may carry another request.
    pub fn backend_reusable(&self) -> bool {
        self.reusable && self.head.is_some_and(|h| !h.backend_closes)
    }

    /// Bytes of the response body written to the client so far (what follows the head,
    /// chunk framing included, as nginx's `$body_bytes_sent` counts).
    pub fn body_bytes_sent(&self) -> u64 {
        self.sent.saturating_sub(self.head_bytes)
    }

    /// Whether bytes for the client are waiting (head or body, in the buffer or a pipe).
    pub fn has_output(&self) -> bool {
        self.start < self.end
            || self.head_sent < self.head_out.len()
            || self.pipe.as_ref().is_some_and(|p| p.held() > 0)
    }

    /// Nothing of the head was read yet.
    pub fn nothing_read(&self) -> bool {
        self.end == 0
    }

    /// Makes this buffer as [`ResponseBuffer::default`] makes one, in place: a spare
    /// exchange's buffer is written over field by field rather than replaced by a whole new
    /// one built and copied (the pattern names every field, so none added later is missed).
    /// The buffers are usually given back already ([`ResponseBuffer::give_back`]): then
    /// nothing is freed.
    pub fn reset(&mut self) {
        let ResponseBuffer {
            buf,
            start,
            end,
            head_out,
            head_sent,
            body,
            head,
            chunk_open,
            last_read_full,
            reusable,
            sent,
            head_bytes,
            splicing,
            pipe,
        } = self;
        if !buf.is_empty() {
            *buf = Box::default();
        }
        if head_out.capacity() > 0 {
            *head_out = Vec::new();
        }
        *pipe = None;
        *start = 0;
        *end = 0;
        *head_sent = 0;
        *body = BodyReader::new(Framing::None);
        *head = None;
        *chunk_open = false;
        *last_read_full = false;
        *reusable = false;
        *sent = 0;
        *head_bytes = 0;
        *splicing = false;
    }

    /// Starts over for another try (nothing of a failed try's response is kept).
    pub fn restart(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    fn hold_buffer(&mut self, spares: &mut Spares) {
        if self.buf.is_empty() {
            self.buf = spares.take_buffer();
        }
    }

    /// Gives the buffer (and an empty pipe) back while waiting, when it holds nothing the
    /// client still needs.
    pub fn let_go_of_buffer(&mut self, spares: &mut Spares) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
            spares.put_buffer(std::mem::take(&mut self.buf));
        }
        if self.pipe.as_ref().is_some_and(|p| p.held() == 0) {
            if let Some(pipe) = self.pipe.take() {
                spares.pipes.put(pipe);
            }
        }
    }

    /// Reads more of the response head from `backend` into the buffer.
    pub fn read_head(
        &mut self,
        backend: &mut BackendStream,
        spares: &mut Spares,
    ) -> io::Result<usize> {
        self.hold_buffer(spares);
        let room = self.buf.len() - self.end;
        let n = backend.read(&mut self.buf[self.end..])?;
        self.end += n;
        self.last_read_full = n == room;
        Ok(n)
    }

    /// Parses what was read of the head (`edits`: see [`HeadEdits`]). On a usable head, the
    /// client's head is ready, the
    /// first body bytes are framed for the client, and `backend` was asked, if needed,
    /// whether it holds more than the response (then its connection is not reused).
    ///
    /// `memo` (given only when there are no edits) holds the backend's previous head: a head
    /// it recognises is not read again, and one it does not is remembered in its place.
    pub fn parse(
        &mut self,
        client: ClientSide,
        edits: &HeadEdits<'_>,
        mut memo: Option<&mut HeadMemo>,
        spares: &mut Spares,
        backend: &mut BackendStream,
    ) -> Head {
        if self.head_out.capacity() == 0 {
            self.head_out = spares.take_vec();
        }
        self.head_out.clear();
        let buf = &self.buf[..self.end];
        let recalled = memo
            .as_deref_mut()
            .and_then(|m| m.recall(buf, client, &mut self.head_out));
        let head = match recalled {
            Some(head) => head,
            None => match parse_head(buf, client, edits, &mut self.head_out) {
                Ok(Some(head)) => {
                    if let Some(m) = memo {
                        m.remember(buf, client, &head, &self.head_out);
                    }
                    head
                }
                Ok(None) if self.end == self.buf.len() => return Head::Unusable,
                Ok(None) => return Head::Incomplete,
                Err(_) => return Head::Unusable,
            },
        };
        self.head = Some(head);
        self.head_bytes = self.head_out.len() as u64;
        self.body = BodyReader::new(head.framing);
        self.head_sent = 0;
        self.start = head.head_len;
        if head.upgrade {
            // Bytes after the 101 head already belong to the new protocol.
            self.head_into_buffer(spares);
            return Head::Parsed(head);
        }
        self.chunk_open = false;
        if !self.frame_body(spares, backend) {
            // The head is fine but the first body bytes are not: nothing was sent to the
            // client yet, so it can still get a clean 502.
            return Head::Unusable;
        }
        // The backend's head (17 bytes at least) leaves room for a chunk-size line.
        self.enchunk_in_place();
        self.head_into_buffer(spares);
        Head::Parsed(head)
    }

    /// Reads more body bytes from `backend`, framed for the client. At the backend's end of
    /// file, a body the client was promised chunked gets its last-chunk (after which the body
    /// is done).
    pub fn read_body(
        &mut self,
        backend: &mut BackendStream,
        spares: &mut Spares,
    ) -> io::Result<BodyRead> {
        let enchunk = self.enchunks();
        let room = if enchunk { CHUNK_ROOM } else { 0 };
        self.start = room;
        self.end = room;
        self.hold_buffer(spares);
        let n = backend.read(&mut self.buf[room..])?;
        if n == 0 {
            if enchunk {
                let last: &[u8] = if self.chunk_open {
                    b"\r\n0\r\n\r\n"
                } else {
                    b"0\r\n\r\n"
                };
                self.buf[..last.len()].copy_from_slice(last);
                self.start = 0;
                self.end = last.len();
                self.body = BodyReader::new(Framing::None);
            }
            return Ok(BodyRead::End);
        }
        self.end = room + n;
        self.last_read_full = self.end == self.buf.len();
        if !self.frame_body(spares, backend) {
            return Ok(BodyRead::Malformed);
        }
        self.enchunk_in_place();
        Ok(BodyRead::Bytes(n))
    }

    /// After a usable head: whether the body is framed by a length of which at least
    /// [`splice::SPLICE_FROM`] bytes are left after those that came with the head, the bodies
    /// that may go by splice(2). Every other body is copied: chunked ones are re-framed or
    /// checked chunk by chunk, close-delimited ones may be re-framed, and short ones cost
    /// less by copy.
    pub fn worth_splicing(&self) -> bool {
        self.body
            .length_left()
            .is_some_and(|left| left >= splice::SPLICE_FROM)
    }

    /// A body [`ResponseBuffer::worth_splicing`] goes by splice(2) when `plain` (neither
    /// socket's bytes pass through a TLS layer).
    pub fn choose_splice(&mut self, plain: bool) {
        self.splicing = plain;
    }

    /// Whether the body goes by splice(2).
    pub fn splicing(&self) -> bool {
        self.splicing
    }

    /// [`ResponseBuffer::read_body`] for a spliced body: moves the next bytes of the body from
    /// the backend socket into a pipe (taken from the worker's when none is held), at most
    /// what the body has left. Called only once the client took all it was given, so the
    /// pipe is empty. Copies instead when no pipe can be had, or when the kernel refuses to
    /// splice (then the worker stops trying).
    pub fn splice_body(
        &mut self,
        backend: &mut BackendStream,
        spares: &mut Spares,
    ) -> io::Result<BodyRead> {
        let (Some(tcp), Some(left)) = (backend.plain_tcp(), self.body.length_left()) else {
            self.splicing = false;
            return self.read_body(backend, spares);
        };
        if self.pipe.is_none() {
            self.pipe = spares.pipes.take();
            // The pipe is the buffer from here on: the read buffer (empty, the client took
            // the head and the first bytes) goes back, so a slow client holds one or the other.
            if self.pipe.is_some() && !self.buf.is_empty() && self.start == self.end {
                self.start = 0;
                self.end = 0;
                spares.put_buffer(std::mem::take(&mut self.buf));
            }
        }
        let Some(pipe) = &mut self.pipe else {
            self.splicing = false;
            return self.read_body(backend, spares);
        };
        match pipe.fill(tcp, left) {
            Ok(0) => Ok(BodyRead::End),
            Ok(n) => {
                spares.pipes.count(n);
                self.body.pass(n as u64);
                if self.body.is_done() {
                    // Only the body was asked for: whatever follows it is still on the
                    // socket, and a peek tells (see `frame_body`).
                    self.reusable = backend.is_quiet();
                }
                Ok(BodyRead::Bytes(n))
            }
            Err(e) if splice::refused(&e) => {
                spares.pipes.turn_off();
                self.splicing = false;
                if let Some(pipe) = self.pipe.take() {
                    spares.pipes.put(pipe);
                }
                self.read_body(backend, spares)
            }
            Err(e) => Err(e),
        }
    }

    /// Writes what the pipe holds to `client` (after [`ResponseBuffer::write_to`] wrote
    /// everything else). `Ok(true)` when the pipe is empty, `Ok(false)` when the client cannot
    /// take more now; `wrote` tells whether any byte left. Where the kernel refuses to splice
    /// into the client socket, the pipe's bytes are read back and written by copy, and the
    /// worker stops splicing.
    pub fn drain_pipe(
        &mut self,
        client: &mut ClientConn,
        spares: &mut Spares,
        wrote: &mut bool,
    ) -> io::Result<bool> {
        loop {
            let Some(pipe) = &mut self.pipe else {
                return Ok(true);
            };
            if pipe.held() == 0 {
                return Ok(true);
            }
            let drained = match client.plain_socket() {
                Some(socket) => pipe.drain(socket),
                // Not met (only plain clients' bodies are spliced): the copy takes the bytes.
                None => Err(ErrorKind::Unsupported.into()),
            };
            match drained {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n as u64;
                    *wrote = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if splice::refused(&e) => {
                    spares.pipes.turn_off();
                    self.splicing = false;
                    // The head left already (this runs after `write_to` wrote everything):
                    // its vector carries the pipe's bytes now, and leaves first.
                    self.head_out.clear();
                    self.head_sent = 0;
                    pipe.read_back(&mut self.head_out)?;
                    return self.write_to(client, wrote);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether a body that ends with the backend's close goes to the client chunked.
    pub fn enchunks(&self) -> bool {
        self.head.is_some_and(|h| h.enchunk)
    }

    /// Queues the proxy's own short error response instead of anything else.
    pub fn error_page(&mut self, status: u16, close: bool, retry_after: Option<u64>) {
        self.head_out.clear();
        self.head_sent = 0;
        self.start = 0;
        self.end = 0;
        write_error_page(&mut self.head_out, status, close, retry_after);
        self.head_bytes = self
            .head_out
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |at| at as u64 + 4);
    }

    /// Runs `buf[start..end]` through the body reader, leaving in `buf[start..end]` exactly the
    /// bytes the client gets. False when the body is malformed.
    fn frame_body(&mut self, spares: &mut Spares, backend: &mut BackendStream) -> bool {
        let dechunk = self.head.is_some_and(|h| h.dechunk);
        let input = &self.buf[self.start..self.end];
        let available = input.len();
        let fed = if dechunk {
            // Data spans are sub-slices of `input`; remember them (offset and length, in a
            // list the worker reuses) and compact in place (each span moves toward the
            // front, never over bytes not yet moved).
            let base = input.as_ptr() as usize;
            let mut spans = spares.take_index_vec();
            let fed = self.body.feed(input, |d| {
                spans.extend_from_slice(&[d.as_ptr() as usize - base, d.len()])
            });
            let mut to = self.start;
            for span in spans.chunks_exact(2) {
                let from = self.start + span[0];
                self.buf.copy_within(from..from + span[1], to);
                to += span[1];
            }
            spares.put_index_vec(spans);
            fed.map(|f| (f, to))
        } else {
            self.body
                .feed(input, |_| {})
                .map(|f| (f, self.start + f.used))
        };
        match fed {
            Ok((fed, new_end)) => {
                if fed.done && fed.used < available {
                    // Bytes after the end of the message: the connection is out of step.
                    self.reusable = false;
                } else if fed.done {
                    // Reused only if nothing follows the message on the socket either. A
                    // read that left room drained the socket (the kernel copies all it
                    // holds); after one that filled the buffer, a peek tells. Hosts watch a
                    // pooled connection for bytes and closes that come later, and may rely
                    // on this: with edge-triggered readiness, bytes already queued behind
                    // the response would never be reported again.
                    // (A TLS read that left room may still leave records on the socket.)
                    self.reusable =
                        (!self.last_read_full && !backend.is_tls()) || backend.is_quiet();
                }
                self.end = new_end;
                true
            }
            Err(_) => false,
        }
    }

    /// Frames `buf[start..end]` as one chunk when the body is re-framed as chunked
    /// (`ResponseHead::enchunk`). The chunk-size line goes in front of the data, after the
    /// CRLF that ends the previous chunk, so nothing has to follow the data (a read that filled
    /// the buffer leaves no room after it). Needs `CHUNK_ROOM` bytes before `start`.
    fn enchunk_in_place(&mut self) {
        let n = self.end - self.start;
        if n == 0 || !self.enchunks() {
            return;
        }
        // Built from its end: CRLF, the size in hex, then the previous chunk's CRLF.
        let mut line = [0u8; CHUNK_ROOM];
        let mut at = CHUNK_ROOM - 2;
        line[at..].copy_from_slice(b"\r\n");
        let mut size = n;
        loop {
            at -= 1;
            line[at] = b"0123456789abcdef"[size & 15];
            size >>= 4;
            if size == 0 {
                break;
            }
        }
        if self.chunk_open {
            at -= 2;
            line[at..at + 2].copy_from_slice(b"\r\n");
        }
        let len = CHUNK_ROOM - at;
        self.start -= len;
        self.buf[self.start..self.start + len].copy_from_slice(&line[at..]);
        self.chunk_open = true;
    }

    /// Moves the client's response head into the read buffer, just before the body bytes,
    /// when it fits where the backend's head was (it usually does: the rewrite mostly drops
    /// fields), so that head and body leave in one `send` instead of a `writev`, which costs
    /// the kernel more per call.
    fn head_into_buffer(&mut self, spares: &mut Spares) {
        let n = self.head_out.len();
        if n == 0 || n > self.start || self.head_sent != 0 {
            return;
        }
        let at = self.start - n;
        self.buf[at..self.start].copy_from_slice(&self.head_out);
        self.start = at;
        spares.put_vec(std::mem::take(&mut self.head_out));
    }

    /// Writes pending output to `client`. `Ok(true)` when everything is written, `Ok(false)`
    /// when the client cannot take more now; `wrote` tells whether any byte left.
    pub fn write_to(&mut self, client: &mut impl Write, wrote: &mut bool) -> io::Result<bool> {
        loop {
            let head = &self.head_out[self.head_sent..];
            let body = &self.buf[self.start..self.end];
            if head.is_empty() && body.is_empty() {
                return Ok(true);
            }
            let result = if head.is_empty() {
                client.write(body)
            } else if body.is_empty() {
                client.write(head)
            } else {
                client.write_vectored(&[IoSlice::new(head), IoSlice::new(body)])
            };
            match result {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(mut n) => {
                    self.sent += n as u64;
                    let from_head = n.min(head.len());
                    self.head_sent += from_head;
                    n -= from_head;
                    self.start += n;
                    *wrote = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// For a tunnel: reads backend bytes for the client into the (empty) buffer.
    pub fn read_for_tunnel(
        &mut self,
        backend: &mut impl Read,
        spares: &mut Spares,
    ) -> io::Result<usize> {
        self.hold_buffer(spares);
        let n = backend.read(&mut self.buf[..])?;
        self.start = 0;
        self.end = n;
        Ok(n)
    }

    /// Gives the memory back to the worker's spares (a pipe that still holds bytes, left by
    /// a client that went away or a cut, is closed instead).
    pub fn give_back(&mut self, spares: &mut Spares) {
        spares.put_buffer(std::mem::take(&mut self.buf));
        spares.put_vec(std::mem::take(&mut self.head_out));
        if let Some(pipe) = self.pipe.take() {
            spares.pipes.put(pipe);
        }
        self.splicing = false;
        self.start = 0;
        self.end = 0;
        self.head_sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::client::ClientTransport;
    use super::*;
    use std::net::{TcpListener, TcpStream as StdStream};
    use std::time::{Duration, Instant};

    /// A connected pair of loopback sockets: the first end non-blocking, as the relay's are.
    fn pair() -> (StdStream, StdStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = StdStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        near.set_nonblocking(true).unwrap();
        far.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        (near, far)
    }

    /// A host transport that writes to its own copy of the socket: the bytes arrive as on a
    /// plain connection, but the relay sees a transport and so cannot splice into it.
    struct Copying(StdStream);

    impl ClientTransport for Copying {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.0.read(buf)
        }
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.write(buf)
        }
        fn name(&self) -> &'static str {
            "copying"
        }
    }

    #[test]
    fn a_client_socket_that_refuses_splicing_gets_the_pipe_s_bytes_by_copy_then_the_rest() {
        const BODY: usize = 96 * 1024;
        let body: Vec<u8> = (0..BODY).map(|i| (i % 251) as u8).collect();
        let (backend, mut origin) = pair();
        let mut backend = BackendStream::from_tcp(mio::net::TcpStream::from_std(backend));
        let (client, mut peer) = pair();
        let copy = client.try_clone().unwrap();
        let client = mio::net::TcpStream::from_std(client);
        let mut client = ClientConn::through(client, Box::new(Copying(copy)));
        let mut spares = Spares::default();
        let mut response = ResponseBuffer::default();
        let deadline = Instant::now() + Duration::from_secs(10);

        // The head with the body's first bytes, so that more than `SPLICE_FROM` is left.
        origin
            .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").as_bytes())
            .unwrap();
        origin.write_all(&body[..100]).unwrap();
        let head = loop {
            assert!(Instant::now() < deadline, "no head");
            match response.read_head(&mut backend, &mut spares) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                Err(e) => panic!("{e}"),
            }
            let client_side = ClientSide {
                head_request: false,
                minor_version: 1,
                wants_close: false,
                upgrade: false,
            };
            let edits = HeadEdits::default();
            match response.parse(client_side, &edits, None, &mut spares, &mut backend) {
                Head::Incomplete => continue,
                Head::Parsed(head) => break head,
                Head::Unusable => panic!("unusable head"),
            }
        };
        assert_eq!(head.status, 200);
        assert!(response.worth_splicing());
        response.choose_splice(true);
        origin.write_all(&body[100..]).unwrap();

        // The relay's turns as `Exchange::relay_body` takes them.
        let mut refused = false;
        loop {
            assert!(Instant::now() < deadline, "the body did not finish");
            let mut wrote = false;
            let mut flushed = response.write_to(&mut client, &mut wrote);
            if response.splicing() && matches!(flushed, Ok(true)) {
                let held = response.pipe.as_ref().map_or(0, |p| p.held());
                flushed = response.drain_pipe(&mut client, &mut spares, &mut wrote);
                if held > 0 {
                    // The transport has no socket to splice into: the pipe's bytes were
                    // read back and went by copy, and the worker splices no more.
                    refused = true;
                    assert!(!response.splicing());
                    assert!(spares.pipes.take().is_none(), "splicing is off");
                }
            }
            if !flushed.unwrap() {
                continue;
            }
            if response.body_done() {
                break;
            }
            let read = if response.splicing() {
                response.splice_body(&mut backend, &mut spares)
            } else {
                response.read_body(&mut backend, &mut spares)
            };
            match read {
                Ok(BodyRead::Bytes(_)) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                other => panic!("{other:?}"),
            }
        }
        assert!(refused, "the body was never in a pipe");
        assert!(response.backend_reusable());

        let mut got = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        while got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(true, |end| got.len() < end + 4 + BODY)
        {
            let n = peer.read(&mut chunk).unwrap();
            assert!(n > 0, "the client's connection closed early");
            got.extend_from_slice(&chunk[..n]);
        }
        let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(got.len(), end + BODY, "nothing more than the response");
        assert!(got[end..] == body[..], "the body's bytes, in order");
        assert_eq!(response.body_bytes_sent(), BODY as u64);
        response.give_back(&mut spares);
    }

    #[test]
    fn a_reset_buffer_is_a_default_one() {
        // Every field away from its default, the buffers held (a spare exchange's that was
        // not given back): `reset` must leave nothing of it.
        let mut r = ResponseBuffer {
            buf: vec![7u8; 16].into_boxed_slice(),
            start: 3,
            end: 9,
            head_out: b"HTTP/1.1 200 OK\r\n".to_vec(),
            head_sent: 5,
            body: BodyReader::new(Framing::Length(10)),
            head: Some(ResponseHead {
                status: 200,
                head_len: 17,
                framing: Framing::Length(10),
                backend_closes: true,
                client_closes: true,
                dechunk: true,
                enchunk: true,
                upgrade: true,
            }),
            chunk_open: true,
            last_read_full: true,
            reusable: true,
            sent: 11,
            head_bytes: 17,
            splicing: true,
            pipe: None,
        };
        r.reset();
        assert_eq!(format!("{r:?}"), format!("{:?}", ResponseBuffer::default()));
        assert_eq!(
            r.head_out.capacity(),
            0,
            "the head's buffer is freed, as a new one's"
        );
    }
}
