//! One proxied request: connect → send → parse head → stream body → finish.

use std::io::{self, ErrorKind, IoSlice, Read, Write};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpStream;

use super::{Pooled, Worker};
use crate::balancer::RequestContext;
use crate::clock;
use crate::config::Entry;
use crate::health::FailureKind;
use crate::http::framing::{BodyReader, Framing};
use crate::http::request::{is_idempotent, ForwardPolicy, ProxyRequest};
use crate::http::response::{parse_head, ClientSide, ResponseHead};
use crate::http::status::write_error_page;
use crate::proxy::Proxy;
use crate::reactor::{Interest, Reactor, Side};
use crate::stats::{self, Failure};
use crate::upstream::Upstream;

/// What a call into an exchange left it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for a socket or a timer; the exchange has told the reactor what it waits for.
    Pending,
    /// The exchange is over and has released both sockets from the reactor; the host ends the
    /// request (and drops the exchange).
    Done(Finish),
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    /// Whether the client connection may carry another request.
    pub keep_alive: bool,
    /// The status the client received (the backend's, or the proxy's own error status).
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a backend connect to complete.
    Connecting,
    /// Writing the request to the backend.
    Sending,
    /// Reading the response head.
    AwaitHead,
    /// Streaming the response body to the client.
    Body,
    /// Writing a response the proxy made itself; then finished.
    Flush,
    /// After `101 Switching Protocols`: bytes flow both ways until either side closes.
    Tunnel,
    /// Over.
    Done,
}

/// The backend connection currently in use.
#[derive(Debug)]
struct Backend {
    stream: TcpStream,
    /// Identity of the connection (see `Worker::new_connection_id`).
    id: u64,
    server: usize,
    /// Taken from the idle pool (a failure before any response byte is then not the
    /// server's fault: it may just have closed an idle connection).
    reused: bool,
    /// Requests sent on this connection before this one.
    requests: u32,
}

/// A proxied request in progress. See the [module docs](super).
#[derive(Debug)]
pub struct Exchange {
    proxy: Arc<Proxy>,
    entry: usize,
    request: ProxyRequest,
    /// The client connection; `None` once handed back with [`Exchange::take_client`].
    client: Option<TcpStream>,
    backend: Option<Backend>,
    candidates: Vec<usize>,
    next_candidate: usize,
    attempts: u32,
    only_timeouts: bool,
    state: State,
    request_bytes: Vec<u8>,
    sent: usize,
    buf: Box<[u8]>,
    /// Response bytes waiting for the client are `buf[start..end]` (while reading the head,
    /// `buf[..end]` is the head read so far).
    start: usize,
    end: usize,
    head_out: Vec<u8>,
    head_sent: usize,
    body: BodyReader,
    response: Option<ResponseHead>,
    backend_reusable: bool,
    /// Whether the last read from the backend filled all the room it was given, so the
    /// socket may hold more bytes than were read.
    last_read_full: bool,
    local_keep_alive: bool,
    status: u16,
    deadline: Option<Instant>,
    retry_until: Instant,
    interest: [Option<Interest>; 2],
    began: Instant,
    head_latency: Duration,
    bytes_from_backend: u64,
    /// The server whose attempt just failed, until the next attempt starts (for statistics).
    failed_from: Option<usize>,
    /// The client-to-backend half of a tunnel (allocated only after a 101).
    tunnel: Option<Tunnel>,
    /// A chunk of a body re-framed as chunked (`ResponseHead::enchunk`) went to the client:
    /// the next chunk, or the last-chunk, starts by ending it.
    chunk_open: bool,
}

/// Room the relay leaves in front of the bytes it reads for a body it re-frames as chunked:
/// the CRLF that ends the previous chunk, up to 8 hex digits of size and the CRLF after them.
const CHUNK_ROOM: usize = 12;

/// Client-to-backend bytes of a tunnel; the backend-to-client half uses the exchange's own
/// buffer.
#[derive(Debug, Default)]
struct Tunnel {
    buf: Vec<u8>,
    start: usize,
    client_eof: bool,
    backend_eof: bool,
}

/// Size of the client-to-backend buffer of a tunnel.
const TUNNEL_BUFFER: usize = 16 * 1024;

/// How long after a request arrived a failed attempt may still be retried elsewhere,
/// in multiples of the entry's `ConnectTimeout`.
const RETRY_BUDGET_CONNECT_TIMEOUTS: u32 = 2;

/// Whether a failed `connect` ran out of something local (descriptors, buffers, memory,
/// ephemeral ports) rather than failed because of the server.
fn out_of_local_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

impl Exchange {
    /// Starts proxying `request` (already validated and routed to `entry`) for the client
    /// connection `client`; `connection_id` identifies that connection for the `Naive`
    /// balancer. The exchange has registered what it waits for; the host's next readiness event
    /// for it (delivered through [`Exchange::on_ready`]) starts the I/O.
    pub fn start(
        proxy: Arc<Proxy>,
        entry: usize,
        request: ProxyRequest,
        client: TcpStream,
        connection_id: u64,
        worker: &mut Worker,
        reactor: &mut dyn Reactor,
    ) -> Exchange {
        let now = Instant::now();
        let mut candidates = worker.take_index_vec();
        let mut request_bytes = worker.take_vec();
        let connect_timeout = proxy.config.entries[entry].connect_timeout;
        {
            let e = &proxy.config.entries[entry];
            let policy = ForwardPolicy {
                trusted_proxies: &e.trusted_proxies,
                forwarded_header: e.forwarded_header,
                close: e.keepalive_idle == 0,
                default_host: e.servers.first().map_or("", |s| s.name.as_str()),
            };
            request.write_upstream(&policy, &mut request_bytes);
            let ctx = RequestContext {
                client_ip: request
                    .original_client(&e.trusted_proxies)
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                // The client's source port (the seed's "sport"): stable for a connection,
                // different for each new one, where descriptor numbers come back (a client
                // that reconnects would always get the same number, so the same server).
                connection_id: request
                    .client
                    .map_or(connection_id, |a| u64::from(a.port())),
                path: &request.path,
            };
            proxy.upstreams[entry].plan(&ctx, clock::ms_at(now), &mut candidates);
        }
        let local_keep_alive = !request.client_wants_close;
        let mut exchange = Exchange {
            proxy,
            entry,
            request,
            client: Some(client),
            backend: None,
            candidates,
            next_candidate: 0,
            attempts: 0,
            only_timeouts: true,
            state: State::Connecting,
            request_bytes,
            sent: 0,
            // Taken when response bytes arrive and returned while the exchange only waits,
            // so that waiting exchanges hold no buffer and the few in use stay in the cache.
            buf: Box::default(),
            start: 0,
            end: 0,
            head_out: Vec::new(),
            head_sent: 0,
            body: BodyReader::new(Framing::None),
            response: None,
            backend_reusable: false,
            last_read_full: false,
            local_keep_alive,
            status: 0,
            deadline: None,
            retry_until: now + connect_timeout * RETRY_BUDGET_CONNECT_TIMEOUTS,
            interest: [None, None],
            began: now,
            head_latency: Duration::ZERO,
            bytes_from_backend: 0,
            failed_from: None,
            tunnel: None,
            chunk_open: false,
        };
        exchange.proxy.stats.record_request(entry);
        exchange.connect_next(worker, now);
        // Only the request is sent here (at once on a pooled connection); the response is
        // read and written from the host's next event. A host must not see a complete
        // response before it can end the request: in Monkey, bytes a client sends between
        // the end of a response and `http_request_end` are lost.
        let _ = exchange.run(worker, reactor, now, false);
        exchange
    }

    /// A watched socket may have progressed: continue as far as possible without blocking.
    pub fn on_ready(
        &mut self,
        _side: Side,
        worker: &mut Worker,
        reactor: &mut dyn Reactor,
    ) -> Progress {
        // Readiness kinds are not trusted (Monkey cannot report them): every state probes
        // its socket and waits again on `WouldBlock`.
        self.drive(worker, reactor, Instant::now())
    }

    /// When the exchange needs [`Exchange::on_timeout`] at the latest, if it waits on a timer.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// The time is `now`: acts on an expired connect, read or client-write timeout.
    pub fn on_timeout(
        &mut self,
        now: Instant,
        worker: &mut Worker,
        reactor: &mut dyn Reactor,
    ) -> Progress {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => {
                return if self.state == State::Done {
                    self.finished()
                } else {
                    Progress::Pending
                }
            }
        }
        self.deadline = None;
        match self.state {
            State::Connecting => {
                self.attempt_failed(FailureKind::ConnectTimeout, worker, reactor, now)
            }
            State::Sending | State::AwaitHead => {
                // RFC 9110 §15.6.5: the backend did not answer in time. Not retried: a slow
                // backend is not made faster by sending it the request twice.
                if let Some(b) = self.drop_backend(reactor) {
                    self.upstream().record_failure(
                        b.server,
                        FailureKind::ReadTimeout,
                        clock::now_ms(),
                    );
                    self.proxy
                        .stats
                        .record_failure(self.entry, b.server, FailureKind::ReadTimeout);
                    self.upstream().release(b.server);
                }
                self.local_error(504, None);
            }
            State::Body | State::Flush => {
                // The response cannot be completed (silent backend or a client that stopped
                // reading): closing the client connection is the only honest end.
                return self.close_now(worker, reactor);
            }
            // A tunnel idle for ReadTimeout in both directions is closed.
            State::Tunnel => return self.finish(worker, reactor, now),
            State::Done => return self.finished(),
        }
        self.drive(worker, reactor, now)
    }

    /// The client went away (Monkey's hang-up): releases everything without answering.
    pub fn abort(mut self, worker: &mut Worker, reactor: &mut dyn Reactor) {
        if let Some(b) = &self.backend {
            self.proxy
                .stats
                .record_failure(self.entry, b.server, Failure::ClientAbort);
        }
        let _ = self.close_now(worker, reactor);
    }

    /// Hands the client connection back once the exchange is over (`None` before that or if
    /// already taken), so a host can reuse it for the connection's next request.
    pub fn take_client(&mut self) -> Option<TcpStream> {
        if self.state == State::Done {
            self.client.take()
        } else {
            None
        }
    }

    /// Hands the request's buffers to the worker for the next request (see
    /// [`Worker::take_request`]); the exchange is dropped next.
    pub fn recycle(&mut self, worker: &mut Worker) {
        worker.recycle_request(std::mem::take(&mut self.request));
    }

    /// The client's address, as the host reported it with the request.
    pub fn client_addr(&self) -> Option<SocketAddr> {
        self.request.client
    }

    /// The entry's index.
    pub fn entry(&self) -> usize {
        self.entry
    }

    fn entry_config(&self) -> &Entry {
        &self.proxy.config.entries[self.entry]
    }

    fn upstream(&self) -> &Upstream {
        &self.proxy.upstreams[self.entry]
    }

    fn want(&mut self, reactor: &mut dyn Reactor, side: Side, interest: Option<Interest>) {
        let slot = side as usize;
        if self.interest[slot] == interest {
            return;
        }
        // A failed registration leaves the exchange waiting for an event that never comes;
        // the deadline (always set while waiting) then ends it.
        match side {
            Side::Client => {
                let Some(c) = &self.client else { return };
                let _ = reactor.set_interest(side, c.as_raw_fd(), interest);
            }
            Side::Backend => {
                if let Some(b) = &self.backend {
                    let _ = reactor.set_backend_interest(b.stream.as_raw_fd(), b.id, interest);
                }
            }
        }
        self.interest[slot] = interest;
    }

    fn drop_backend(&mut self, reactor: &mut dyn Reactor) -> Option<Backend> {
        self.want(reactor, Side::Backend, None);
        self.backend.take()
    }

    /// Tries the next candidate server; answers 502/503/504 when none is left.
    fn connect_next(&mut self, worker: &mut Worker, now: Instant) {
        let keepalive_timeout = self.entry_config().keepalive_timeout;
        // A stale idle connection costs an idempotent request only a retry (see
        // `attempt_failed`); others check the connection before using it.
        let idempotent = is_idempotent(&self.request.method);
        while self.next_candidate < self.candidates.len() {
            let server = self.candidates[self.next_candidate];
            self.next_candidate += 1;
            if !self.upstream().acquire(server, clock::ms_at(now)) {
                continue;
            }
            self.attempts += 1;
            self.proxy.stats.record_attempt(self.entry, server);
            // A failover is counted only when another server really takes the request over.
            if let Some(failed) = self.failed_from.take() {
                self.proxy.stats.record_retry(self.entry, failed, true);
            }
            if let Some(pooled) =
                worker
                    .pool
                    .take(self.entry, server, keepalive_timeout, now, !idempotent)
            {
                self.backend = Some(Backend {
                    stream: pooled.stream,
                    id: pooled.id,
                    server,
                    reused: true,
                    requests: pooled.requests,
                });
                self.proxy.stats.record_connection(self.entry, server, true);
                self.begin_sending(now);
                return;
            }
            if self.connect_fresh(server, worker, now) {
                return;
            }
        }
        let now_ms = clock::now_ms();
        let upstream = self.upstream();
        let policy = upstream.policy();
        let all_offline = upstream
            .servers()
            .iter()
            .all(|s| !s.health.is_available(now_ms, policy));
        if self.attempts == 0 || all_offline {
            // Every server is offline (even the one tried as a last resort): tell the client
            // when the first one may be back.
            self.proxy.stats.record_no_server(self.entry);
            let retry_after = self.upstream().retry_after_secs(now_ms);
            self.local_error(503, Some(retry_after));
        } else if self.only_timeouts {
            self.local_error(504, None);
        } else {
            self.local_error(502, None);
        }
    }

    /// Starts a new connection to the acquired `server`; true when the exchange has moved on
    /// (connecting, or answered because this process is out of resources). On an immediate
    /// failure the server is released; a failure of the server's (not of this process's
    /// resources) is recorded against it like any failed attempt, and false is returned.
    fn connect_fresh(&mut self, server: usize, worker: &mut Worker, now: Instant) -> bool {
        match self.open(server) {
            Ok(stream) => {
                self.backend = Some(Backend {
                    stream,
                    id: worker.new_connection_id(),
                    server,
                    reused: false,
                    requests: 0,
                });
                self.proxy
                    .stats
                    .record_connection(self.entry, server, false);
                self.state = State::Connecting;
                self.deadline = Some(now + self.entry_config().connect_timeout);
                true
            }
            Err(e) if out_of_local_resources(&e) => {
                // Not the server's fault: its health and failure counts stay as they are
                // (counted, a descriptor shortage would take every server offline).
                self.upstream().release(server);
                self.out_of_resources();
                true
            }
            Err(_) => {
                self.only_timeouts = false;
                self.upstream().record_failure(
                    server,
                    FailureKind::ConnectRefused,
                    clock::now_ms(),
                );
                self.proxy
                    .stats
                    .record_failure(self.entry, server, FailureKind::ConnectRefused);
                self.upstream().release(server);
                self.failed_from = Some(server);
                false
            }
        }
    }

    /// This process ran out of descriptors, memory or local ports: no server would fare
    /// better, and none is to blame. 503 with a short `Retry-After`.
    fn out_of_resources(&mut self) {
        self.proxy.stats.record_no_server(self.entry);
        self.local_error(503, Some(1));
    }

    fn open(&self, server: usize) -> io::Result<TcpStream> {
        let addr: SocketAddr = self.upstream().servers()[server].spec.addr;
        // mio's connect is non-blocking: it returns at once and completes (or fails) later.
        let stream = TcpStream::connect(addr)?;
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    fn begin_sending(&mut self, now: Instant) {
        self.state = State::Sending;
        self.sent = 0;
        self.deadline = Some(now + self.entry_config().read_timeout);
    }

    /// An attempt failed before any response byte: retry elsewhere when that is safe.
    fn attempt_failed(
        &mut self,
        kind: FailureKind,
        worker: &mut Worker,
        reactor: &mut dyn Reactor,
        now: Instant,
    ) {
        let Some(b) = self.drop_backend(reactor) else {
            return;
        };
        if kind != FailureKind::ConnectTimeout {
            self.only_timeouts = false;
        }
        // A reused idle connection that breaks says nothing about the server's health.
        if !b.reused {
            self.upstream()
                .record_failure(b.server, kind, clock::now_ms());
        }
        self.proxy.stats.record_failure(self.entry, b.server, kind);
        self.proxy
            .stats
            .record_bytes(self.entry, b.server, self.sent as u64, 0);
        self.upstream().release(b.server);
        let nothing_written = self.sent == 0;
        // The guarantee: a request is sent twice only if repeating it is harmless (idempotent
        // method) or if no byte of it reached the failed server.
        let may_retry = nothing_written || is_idempotent(&self.request.method);
        self.sent = 0;
        self.end = 0;
        if !may_retry {
            self.local_error(502, None);
            return;
        }
        if b.reused && self.upstream().acquire(b.server, clock::now_ms()) {
            self.proxy.stats.record_retry(self.entry, b.server, false);
            // The server may simply have closed an idle connection: try it once more on a
            // fresh connection before moving on.
            if self.connect_fresh(b.server, worker, now) {
                return;
            }
        }
        if now >= self.retry_until {
            self.local_error(
                if kind == FailureKind::ConnectTimeout {
                    504
                } else {
                    502
                },
                None,
            );
            return;
        }
        self.failed_from = Some(b.server);
        self.connect_next(worker, now);
    }

    /// The response is unusable (malformed, truncated head): 502, backend discarded.
    fn bad_response(&mut self, reactor: &mut dyn Reactor) {
        if let Some(b) = self.drop_backend(reactor) {
            self.upstream()
                .record_failure(b.server, FailureKind::BadResponse, clock::now_ms());
            self.proxy
                .stats
                .record_failure(self.entry, b.server, FailureKind::BadResponse);
            self.proxy.stats.record_bytes(
                self.entry,
                b.server,
                self.sent as u64,
                self.bytes_from_backend,
            );
            self.upstream().release(b.server);
        }
        self.local_error(502, None);
    }

    /// Queues the proxy's own short error response; the exchange then flushes and finishes.
    fn local_error(&mut self, status: u16, retry_after: Option<u64>) {
        self.head_out.clear();
        self.head_sent = 0;
        self.start = 0;
        self.end = 0;
        self.status = status;
        write_error_page(
            &mut self.head_out,
            status,
            !self.local_keep_alive,
            retry_after,
        );
        self.state = State::Flush;
        self.deadline = Some(Instant::now() + self.entry_config().read_timeout);
    }

    fn client_side(&self) -> ClientSide {
        ClientSide {
            head_request: self.request.is_head(),
            minor_version: self.request.minor_version,
            wants_close: self.request.client_wants_close,
            upgrade: self.request.upgrade_protocol().is_some(),
        }
    }

    fn drive(&mut self, worker: &mut Worker, reactor: &mut dyn Reactor, now: Instant) -> Progress {
        self.run(worker, reactor, now, true)
    }

    /// Makes progress until a socket would block; with `respond` false it stops before the
    /// first step that reads the response or writes to the client, waiting for an event.
    fn run(
        &mut self,
        worker: &mut Worker,
        reactor: &mut dyn Reactor,
        now: Instant,
        respond: bool,
    ) -> Progress {
        loop {
            if !respond {
                match self.state {
                    // A fresh connect cannot have completed yet: wait for writability rather
                    // than probe it.
                    State::Connecting => {
                        self.want(reactor, Side::Backend, Some(Interest::Write));
                        return Progress::Pending;
                    }
                    State::AwaitHead => {
                        self.want(reactor, Side::Backend, Some(Interest::Read));
                        return Progress::Pending;
                    }
                    State::Body | State::Flush => {
                        self.want(reactor, Side::Client, Some(Interest::Write));
                        return Progress::Pending;
                    }
                    _ => {}
                }
            }
            match self.state {
                State::Connecting => {
                    let Some(b) = &self.backend else {
                        return self.close_now(worker, reactor);
                    };
                    let failed = !matches!(b.stream.take_error(), Ok(None));
                    if !failed {
                        match b.stream.peer_addr() {
                            Ok(_) => {
                                self.begin_sending(now);
                                continue;
                            }
                            Err(e) if e.kind() == ErrorKind::NotConnected => {
                                self.want(reactor, Side::Backend, Some(Interest::Write));
                                return Progress::Pending;
                            }
                            Err(_) => {}
                        }
                    }
                    self.attempt_failed(FailureKind::ConnectRefused, worker, reactor, now);
                }
                State::Sending => {
                    let Some(b) = &mut self.backend else {
                        return self.close_now(worker, reactor);
                    };
                    match b.stream.write(&self.request_bytes[self.sent..]) {
                        Ok(0) => self.attempt_failed(
                            FailureKind::ResetBeforeResponse,
                            worker,
                            reactor,
                            now,
                        ),
                        Ok(n) => {
                            self.sent += n;
                            if self.sent == self.request_bytes.len() {
                                self.state = State::AwaitHead;
                                self.end = 0;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            self.want(reactor, Side::Backend, Some(Interest::Write));
                            return Progress::Pending;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => self.attempt_failed(
                            FailureKind::ResetBeforeResponse,
                            worker,
                            reactor,
                            now,
                        ),
                    }
                }
                State::AwaitHead => {
                    let Some(b) = &mut self.backend else {
                        return self.close_now(worker, reactor);
                    };
                    if self.buf.is_empty() {
                        self.buf = worker.take_buffer();
                    }
                    let room = self.buf.len() - self.end;
                    match b.stream.read(&mut self.buf[self.end..]) {
                        Ok(0) if self.end == 0 => self.attempt_failed(
                            FailureKind::ResetBeforeResponse,
                            worker,
                            reactor,
                            now,
                        ),
                        Ok(0) => self.bad_response(reactor),
                        Ok(n) => {
                            self.end += n;
                            self.bytes_from_backend += n as u64;
                            self.last_read_full = n == room;
                            self.on_head_bytes(worker, reactor, now);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            if self.end == 0 {
                                worker.put_buffer(std::mem::take(&mut self.buf));
                            }
                            self.want(reactor, Side::Backend, Some(Interest::Read));
                            return Progress::Pending;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) if self.end == 0 => self.attempt_failed(
                            FailureKind::ResetBeforeResponse,
                            worker,
                            reactor,
                            now,
                        ),
                        Err(_) => self.bad_response(reactor),
                    }
                }
                State::Body | State::Flush => {
                    match self.write_client(now) {
                        Ok(true) => {}
                        Ok(false) => {
                            // Backpressure: stop reading the backend until the client drains.
                            self.want(reactor, Side::Backend, None);
                            self.want(reactor, Side::Client, Some(Interest::Write));
                            return Progress::Pending;
                        }
                        Err(_) => {
                            if let Some(b) = &self.backend {
                                self.proxy.stats.record_failure(
                                    self.entry,
                                    b.server,
                                    Failure::ClientAbort,
                                );
                            }
                            return self.close_now(worker, reactor);
                        }
                    }
                    self.want(reactor, Side::Client, None);
                    if self.state == State::Flush || self.body.is_done() {
                        return self.finish(worker, reactor, now);
                    }
                    let Some(b) = &mut self.backend else {
                        return self.close_now(worker, reactor);
                    };
                    let enchunk = self.response.is_some_and(|h| h.enchunk);
                    let room = if enchunk { CHUNK_ROOM } else { 0 };
                    self.start = room;
                    self.end = room;
                    if self.buf.is_empty() {
                        self.buf = worker.take_buffer();
                    }
                    match b.stream.read(&mut self.buf[room..]) {
                        Ok(0) if enchunk => {
                            // The backend's close ends the body: the client gets the
                            // last-chunk, after which the body is done.
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
                        Ok(0) if self.body.until_close() => {
                            return self.finish(worker, reactor, now)
                        }
                        Ok(0) => return self.close_now(worker, reactor),
                        Ok(n) => {
                            self.end = room + n;
                            self.bytes_from_backend += n as u64;
                            self.last_read_full = self.end == self.buf.len();
                            self.deadline = Some(now + self.entry_config().read_timeout);
                            if !self.take_body_bytes(worker) {
                                return self.close_now(worker, reactor);
                            }
                            self.enchunk_in_place();
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            // Everything read was delivered: hold no buffer while waiting
                            // (and no range into it).
                            self.start = 0;
                            self.end = 0;
                            worker.put_buffer(std::mem::take(&mut self.buf));
                            self.want(reactor, Side::Backend, Some(Interest::Read));
                            return Progress::Pending;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        // A reset cannot be told from the end of a close-delimited body,
                        // unless the client was promised a chunked end: then it must see the
                        // cut (the connection closes without the last-chunk).
                        Err(_) if self.body.until_close() && !enchunk => {
                            return self.finish(worker, reactor, now)
                        }
                        Err(_) => return self.close_now(worker, reactor),
                    }
                }
                State::Tunnel => return self.pump_tunnel(worker, reactor, now),
                State::Done => return self.finished(),
            }
        }
    }

    /// Moves tunnel bytes both ways until nothing moves; ends the exchange once either side
    /// has closed and everything it sent was delivered.
    fn pump_tunnel(
        &mut self,
        worker: &mut Worker,
        reactor: &mut dyn Reactor,
        now: Instant,
    ) -> Progress {
        let Some(mut t) = self.tunnel.take() else {
            return self.close_now(worker, reactor);
        };
        if self.buf.is_empty() {
            self.buf = worker.take_buffer();
        }
        if t.buf.len() < TUNNEL_BUFFER {
            t.buf.resize(TUNNEL_BUFFER, 0);
        }
        let outcome = self.pump_tunnel_bytes(&mut t, now);
        let over = match outcome {
            Ok(moved) => {
                if moved {
                    self.deadline = Some(now + self.entry_config().read_timeout);
                }
                let down_done = t.backend_eof
                    && self.start == self.end
                    && self.head_sent == self.head_out.len();
                let up_done = t.client_eof && t.start == 0;
                down_done || up_done
            }
            Err(_) => true,
        };
        if over {
            self.tunnel = Some(t);
            return self.finish(worker, reactor, now);
        }
        let down_pending = self.start < self.end || self.head_sent < self.head_out.len();
        let up_pending = t.start > 0;
        let backend = match (!down_pending && !t.backend_eof, up_pending) {
            (true, true) => Some(Interest::ReadWrite),
            (true, false) => Some(Interest::Read),
            (false, true) => Some(Interest::Write),
            (false, false) => None,
        };
        let client = match (!up_pending && !t.client_eof, down_pending) {
            (true, true) => Some(Interest::ReadWrite),
            (true, false) => Some(Interest::Read),
            (false, true) => Some(Interest::Write),
            (false, false) => None,
        };
        self.tunnel = Some(t);
        self.want(reactor, Side::Backend, backend);
        self.want(reactor, Side::Client, client);
        Progress::Pending
    }

    /// One round of tunnel copying in both directions; `Ok(true)` if any byte moved.
    fn pump_tunnel_bytes(&mut self, t: &mut Tunnel, now: Instant) -> io::Result<bool> {
        let mut moved_any = false;
        loop {
            let mut moved = false;
            // Backend to client: the 101 head first, then `buf[start..end]`.
            let before = (self.head_sent, self.start);
            let flushed = self.write_client(now)?;
            moved |= (self.head_sent, self.start) != before;
            if flushed && !t.backend_eof {
                let Some(b) = &mut self.backend else {
                    return Err(ErrorKind::NotConnected.into());
                };
                match b.stream.read(&mut self.buf[..]) {
                    Ok(0) => t.backend_eof = true,
                    Ok(n) => {
                        self.start = 0;
                        self.end = n;
                        self.bytes_from_backend += n as u64;
                        moved = true;
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => t.backend_eof = true,
                }
            }
            // Client to backend: `t.buf[..start]` waits for the backend.
            if t.start > 0 {
                let Some(b) = &mut self.backend else {
                    return Err(ErrorKind::NotConnected.into());
                };
                match b.stream.write(&t.buf[..t.start]) {
                    Ok(0) => return Err(ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        t.buf.copy_within(n..t.start, 0);
                        t.start -= n;
                        self.sent += n;
                        moved = true;
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(e) => return Err(e),
                }
            }
            if t.start == 0 && !t.client_eof {
                let Some(client) = &mut self.client else {
                    return Err(ErrorKind::NotConnected.into());
                };
                match client.read(&mut t.buf[..]) {
                    Ok(0) => t.client_eof = true,
                    Ok(n) => {
                        t.start = n;
                        moved = true;
                    }
                    Err(e)
                        if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {}
                    Err(_) => t.client_eof = true,
                }
            }
            if !moved {
                return Ok(moved_any);
            }
            moved_any = true;
        }
    }

    /// New bytes of the response head arrived in `buf[..end]`.
    fn on_head_bytes(&mut self, worker: &mut Worker, reactor: &mut dyn Reactor, now: Instant) {
        if self.head_out.capacity() == 0 {
            self.head_out = worker.take_vec();
        }
        self.head_out.clear();
        match parse_head(
            &self.buf[..self.end],
            self.client_side(),
            &mut self.head_out,
        ) {
            Ok(Some(head)) => {
                if let Some(b) = &self.backend {
                    self.upstream().record_success(b.server, clock::ms_at(now));
                }
                self.response = Some(head);
                self.status = head.status;
                self.head_latency = now.saturating_duration_since(self.began);
                self.body = BodyReader::new(head.framing);
                self.head_sent = 0;
                self.start = head.head_len;
                self.deadline = Some(now + self.entry_config().read_timeout);
                // With a response head there is no retry any more: the request's bytes go.
                worker.put_vec(std::mem::take(&mut self.request_bytes));
                if head.upgrade {
                    // Bytes after the 101 head already belong to the new protocol.
                    self.state = State::Tunnel;
                    self.local_keep_alive = false;
                    self.tunnel = Some(Tunnel::default());
                    self.head_into_buffer(worker);
                    reactor.take_over_client();
                    return;
                }
                self.state = State::Body;
                self.chunk_open = false;
                if !self.take_body_bytes(worker) {
                    // The head is fine but the first body bytes are not: nothing was sent to
                    // the client yet, so it can still get a clean 502.
                    self.bad_response(reactor);
                    return;
                }
                // The backend's head (17 bytes at least) leaves room for a chunk-size line.
                self.enchunk_in_place();
                self.head_into_buffer(worker);
            }
            Ok(None) if self.end == self.buf.len() => self.bad_response(reactor),
            Ok(None) => {}
            Err(_) => self.bad_response(reactor),
        }
    }

    /// Moves the client's response head into the read buffer, just before the body bytes,
    /// when it fits where the backend's head was (it usually does: the rewrite mostly drops
    /// fields), so that head and body leave in one `send` instead of a `writev`, which costs
    /// the kernel more per call.
    fn head_into_buffer(&mut self, worker: &mut Worker) {
        let n = self.head_out.len();
        if n == 0 || n > self.start || self.head_sent != 0 {
            return;
        }
        let at = self.start - n;
        self.buf[at..self.start].copy_from_slice(&self.head_out);
        self.start = at;
        worker.put_vec(std::mem::take(&mut self.head_out));
    }

    /// Runs `buf[start..end]` through the body reader, leaving in `buf[start..end]` exactly the
    /// bytes the client gets. False when the body is malformed.
    fn take_body_bytes(&mut self, worker: &mut Worker) -> bool {
        let dechunk = self.response.is_some_and(|h| h.dechunk);
        let input = &self.buf[self.start..self.end];
        let available = input.len();
        let fed = if dechunk {
            // Data spans are sub-slices of `input`; remember them (offset and length, in a
            // list the worker reuses) and compact in place (each span moves toward the
            // front, never over bytes not yet moved).
            let base = input.as_ptr() as usize;
            let mut spans = worker.take_index_vec();
            let fed = self.body.feed(input, |d| {
                spans.extend_from_slice(&[d.as_ptr() as usize - base, d.len()])
            });
            let mut to = self.start;
            for span in spans.chunks_exact(2) {
                let from = self.start + span[0];
                self.buf.copy_within(from..from + span[1], to);
                to += span[1];
            }
            worker.put_index_vec(spans);
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
                    self.backend_reusable = false;
                } else if fed.done {
                    // Reused only if nothing follows the message on the socket either. A
                    // read that left room drained the socket (the kernel copies all it
                    // holds); after one that filled the buffer, a peek tells. Hosts watch a
                    // pooled connection for bytes and closes that come later, and may rely
                    // on this: with edge-triggered readiness, bytes already queued behind
                    // the response would never be reported again.
                    self.backend_reusable = !self.last_read_full || self.backend_drained();
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
        if n == 0 || !self.response.is_some_and(|h| h.enchunk) {
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

    /// Whether the backend socket holds nothing to read now (`MSG_PEEK`, nothing consumed).
    fn backend_drained(&self) -> bool {
        let mut probe = [0u8; 1];
        self.backend.as_ref().is_some_and(
            |b| matches!(b.stream.peek(&mut probe), Err(e) if e.kind() == ErrorKind::WouldBlock),
        )
    }

    /// Writes pending output to the client. `Ok(true)` when everything is written,
    /// `Ok(false)` when the client cannot take more now.
    fn write_client(&mut self, now: Instant) -> io::Result<bool> {
        loop {
            let head = &self.head_out[self.head_sent..];
            let body = &self.buf[self.start..self.end];
            if head.is_empty() && body.is_empty() {
                return Ok(true);
            }
            let Some(client) = self.client.as_mut() else {
                return Err(ErrorKind::NotConnected.into());
            };
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
                    let from_head = n.min(head.len());
                    self.head_sent += from_head;
                    n -= from_head;
                    self.start += n;
                    self.deadline = Some(now + self.entry_config().read_timeout);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// The response is complete (or the proxy's own answer was written).
    fn finish(&mut self, worker: &mut Worker, reactor: &mut dyn Reactor, now: Instant) -> Progress {
        let (keepalive_idle, keepalive_requests) = {
            let e = self.entry_config();
            (e.keepalive_idle, e.keepalive_requests)
        };
        if let Some(b) = self.drop_backend(reactor) {
            let reusable = self.backend_reusable
                && self.response.is_some_and(|h| !h.backend_closes)
                && b.requests + 1 < keepalive_requests;
            if self.response.is_some() {
                let exchange = stats::Exchange {
                    status: self.status,
                    bytes_to_backend: self.sent as u64,
                    bytes_from_backend: self.bytes_from_backend,
                    head_latency: self.head_latency,
                    total_latency: now.saturating_duration_since(self.began),
                };
                self.proxy
                    .stats
                    .record_response(self.entry, b.server, &exchange);
            }
            if reusable {
                worker.pool.put(
                    self.entry,
                    b.server,
                    Pooled {
                        stream: b.stream,
                        id: b.id,
                        requests: b.requests + 1,
                    },
                    keepalive_idle,
                    now,
                );
            }
            self.upstream().release(b.server);
        }
        let keep_alive = match self.response {
            Some(h) if self.state == State::Body => !h.client_closes,
            _ => self.local_keep_alive,
        };
        self.want(reactor, Side::Client, None);
        self.done(worker);
        Progress::Done(Finish {
            keep_alive,
            status: self.status,
        })
    }

    /// Ends the exchange at once: both sockets released, the client connection must close.
    fn close_now(&mut self, worker: &mut Worker, reactor: &mut dyn Reactor) -> Progress {
        if let Some(b) = self.drop_backend(reactor) {
            self.upstream().release(b.server);
        }
        self.want(reactor, Side::Client, None);
        self.local_keep_alive = false;
        self.response = None;
        self.done(worker);
        Progress::Done(Finish {
            keep_alive: false,
            status: self.status,
        })
    }

    fn finished(&self) -> Progress {
        Progress::Done(Finish {
            keep_alive: self.local_keep_alive && !self.response.is_some_and(|h| h.client_closes),
            status: self.status,
        })
    }

    /// Gives reusable memory back to the worker.
    fn done(&mut self, worker: &mut Worker) {
        if self.state == State::Done {
            return;
        }
        self.state = State::Done;
        self.deadline = None;
        let buf = std::mem::take(&mut self.buf);
        let vecs = [
            std::mem::take(&mut self.request_bytes),
            std::mem::take(&mut self.head_out),
        ];
        worker.give_back(buf, vecs, std::mem::take(&mut self.candidates));
        self.start = 0;
        self.end = 0;
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Every path ends through `finish`/`close_now`, which release the server; this only
        // guards against a host that drops an exchange early.
        if let Some(b) = self.backend.take() {
            self.proxy.upstreams[self.entry].release(b.server);
        }
    }
}
