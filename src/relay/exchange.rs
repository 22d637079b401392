//! One proxied request: connect → send → parse head → stream body (or tunnel) → end.
//!
//! The exchange is the state machine; what it moves and counts lives in its parts:
//! [`Attempts`] (which server, which connection, what each try's outcome records),
//! [`ResponseBuffer`] (the bytes on their way to the client and their framing) and, after a
//! `101`, [`Tunnel`]. Every path ends through [`Exchange::end`], once.

use std::io::{ErrorKind, Write};
use std::sync::Arc;
use std::time::Duration;

use super::affinity;
use super::attempt::{self, Attempts, Step};
use super::client::ClientConn;
use super::local::Local;
use super::report::{self, Ending};
use super::response::{BodyRead, Head, ResponseBuffer};
use super::stream::Connect;
use super::tokens::idle_token;
use super::tunnel::Tunnel;
use crate::balancer::RequestContext;
use crate::clock::Moment;
use crate::config::Entry;
use crate::health::FailureKind;
use crate::http::request::{is_idempotent, ForwardPolicy, ProxyRequest};
use crate::http::response::{ClientSide, HeadEdits};
use crate::http::rules::{Applied, RequestId, Vars};
use crate::proxy::Proxy;
use crate::reactor::{Interest, Reactor, Source, Token};
use crate::stats::{self, Failure, Waited};

/// The request's side of the books ([`attempt::Request`]), borrowing only the fields it
/// names, so that `attempts` stays free to borrow.
macro_rules! books {
    ($exchange:expr) => {
        attempt::Request {
            proxy: &$exchange.proxy,
            entry: $exchange.entry,
            idempotent: $exchange.idempotent,
        }
    };
}

/// What a call into an exchange left it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for a socket or a timer; the exchange has told the reactor what it waits for.
    Pending,
    /// The exchange is over and has let go of both sockets' registrations; the host ends the
    /// request.
    Done(Finish),
}

/// How an exchange ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finish {
    /// Whether the client connection may carry another request.
    pub keep_alive: bool,
    /// The status the client received (the backend's, or the proxy's own error status; 0 when
    /// the client got nothing).
    pub status: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting in the entry's queue for a server under its `MaxConnections` (holding only
    /// the client connection and the request), until the queue's deadline.
    Queued,
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
    /// The client left while its request was at a server under `MaxConnections`: the
    /// server's slot stays taken until it answers (its first byte), closes, or `ReadTimeout`
    /// passes, since it is still working on the request; the client is gone already.
    Lingering,
    /// Over.
    Done,
}

/// How [`Exchange::end`] ends an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The response (or the proxy's own answer, or a tunnel) is complete: the backend
    /// connection may go to the pool, the client connection may stay.
    Complete,
    /// Stop at once: nothing more can be delivered, the client connection must close.
    Abort,
}

/// The client connection as the exchange holds it.
#[derive(Debug)]
struct Client {
    /// `None` once handed back with [`Exchange::take_client`].
    stream: Option<ClientConn>,
    id: u64,
    interest: Option<Interest>,
    /// Whether it was ever watched (then its registration is released at the end).
    watched: bool,
}

/// A proxied request in progress. See the [module docs](self).
#[derive(Debug)]
pub struct Exchange {
    proxy: Arc<Proxy>,
    entry: usize,
    token: Token,
    /// Boxed so that it changes places with the host's next request by pointer (see
    /// [`Worker::start_next`](super::worker::Worker::start_next)).
    request: Box<ProxyRequest>,
    /// RFC 9110 §9.2.2: the request may be sent twice.
    idempotent: bool,
    client: Client,
    attempts: Attempts,
    response: ResponseBuffer,
    tunnel: Option<Tunnel>,
    state: State,
    /// The request as the backend gets it (until the response head arrives).
    request_bytes: Vec<u8>,
    status: u16,
    /// Whether the client connection may stay open after the proxy's own answer.
    local_keep_alive: bool,
    deadline: Option<Moment>,
    began: Moment,
    /// From `began` to the complete response head, once it came.
    first_byte: Option<Duration>,
    /// When the current try began.
    try_began: Moment,
    /// How long the current try took to connect, once it did (zero on a pooled connection).
    connect_time: Option<Duration>,
    /// The status of the backend's response head, once it came.
    upstream_status: Option<u16>,
    /// Why the proxy made an error of the request (the statistics' word for it), once it
    /// did: the exchange's end writes a line about it.
    trouble: Option<&'static str>,
    finish: Option<Finish>,
    /// `$request_id` of the header rules (zero when they use none).
    request_id: RequestId,
}

impl Exchange {
    /// Starts proxying `request` (validated and routed to `entry`) for the client connection
    /// `client` (known to the host as socket `client_id`), as the owner of `token`. The
    /// exchange has registered what it waits for; only the request is sent here (at once on
    /// a pooled connection): the response is read and written from the host's next event. A
    /// host must not see a complete response before it can end the request: in Monkey, bytes
    /// a client sends between the end of a response and `http_request_end` are lost.
    /// `spare` is the allocation of an exchange that is over ([`Exchange::retirable`]), to
    /// be written over in place (no `malloc` and `free` per request, and no copy of a whole
    /// exchange from the stack); `None` allocates a new one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        spare: Option<Box<Exchange>>,
        proxy: Arc<Proxy>,
        entry: usize,
        request: &mut Box<ProxyRequest>,
        client: ClientConn,
        client_id: u64,
        token: Token,
        now: Moment,
        local: &mut Local,
        reactor: &mut dyn Reactor,
    ) -> Box<Exchange> {
        let mut exchange = spare.unwrap_or_else(|| Box::new(Exchange::vacant(proxy.clone())));
        // Every field written where it is (the pattern names them all, so a field added
        // later cannot be left with a finished exchange's value).
        let Exchange {
            proxy: x_proxy,
            entry: x_entry,
            token: x_token,
            request: x_request,
            idempotent,
            client: x_client,
            attempts: x_attempts,
            response,
            tunnel,
            state,
            request_bytes: x_request_bytes,
            status,
            local_keep_alive,
            deadline,
            began,
            first_byte,
            try_began,
            connect_time,
            upstream_status,
            trouble,
            finish,
            request_id: x_request_id,
        } = &mut *exchange;
        // The request changes places with the finished exchange's, which the host fills
        // next: neither is copied.
        std::mem::swap(x_request, request);
        let request = &*x_request;
        let mut request_bytes = local.spares.take_vec();
        let mut request_id = RequestId::default();
        {
            let e = &proxy.config.entries[entry];
            if e.request_headers.uses_request_id() || e.response_headers.uses_request_id() {
                request_id = local.next_request_id();
            }
            // Rules that name `$server` write the request per try (`write_for_try`).
            if !e.request_headers.uses_server() {
                // An entry's PathRewrite / PathStripPrefix: the target is written into a
                // spare buffer (only for such entries; every other request costs one lookup).
                let target = proxy.router.rewriter(entry).map(|rewriter| {
                    let mut target = local.spares.take_vec();
                    rewriter.write(&request.path, &mut target);
                    target
                });
                let sent = Sent {
                    target: target.as_deref(),
                    server: "",
                    request_id,
                };
                write_request(e, request, &sent, &mut request_bytes);
                if let Some(target) = target {
                    local.spares.put_vec(target);
                }
            }
            let upstream = &proxy.upstreams[entry];
            // Made only if the plan reads it (not for one server).
            let ctx = || RequestContext {
                client_ip: request
                    .original_client(&e.trusted_proxies)
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                // The client's source port (the seed's "sport"): stable for a connection,
                // different for each new one, where descriptor numbers come back (a client
                // that reconnects would always get the same number, so the same server).
                connection_id: request.client.map_or(client_id, |a| u64::from(a.port())),
                path: &request.path,
                key: affinity::key(upstream, request),
                sticky: affinity::sticky_server(upstream, request),
            };
            let req = attempt::Request {
                proxy: &proxy,
                entry,
                idempotent: is_idempotent(&request.method),
            };
            x_attempts.plan(req, ctx, now);
        }
        *idempotent = is_idempotent(&request.method);
        *local_keep_alive = !request.client_wants_close;
        *x_proxy = proxy;
        *x_entry = entry;
        *x_token = token;
        *x_client = Client {
            stream: Some(client),
            id: client_id,
            interest: None,
            watched: false,
        };
        // The response buffer takes a read buffer only when response bytes arrive and
        // returns it while the exchange only waits, so that waiting exchanges hold none and
        // the few in use stay in the cache.
        response.reset();
        *tunnel = None;
        *state = State::Connecting;
        *x_request_bytes = request_bytes;
        *status = 0;
        *deadline = None;
        *began = now;
        *first_byte = None;
        *try_began = now;
        *connect_time = None;
        *upstream_status = None;
        *trouble = None;
        *finish = None;
        *x_request_id = request_id;
        exchange.proxy.stats.record_request(entry);
        let step = exchange.next_try(local, now);
        exchange.take_step(step, now);
        exchange.begin(local, reactor, now);
        exchange
    }

    /// An exchange that is over and holds nothing but `proxy`: the allocation
    /// [`Exchange::start`] writes a new exchange into when the worker has no spare one.
    #[cold]
    fn vacant(proxy: Arc<Proxy>) -> Exchange {
        let over = Finish {
            keep_alive: false,
            status: 0,
        };
        Exchange {
            proxy,
            entry: 0,
            token: Token::from_raw(0),
            request: Box::default(),
            idempotent: false,
            client: Client {
                stream: None,
                id: 0,
                interest: None,
                watched: false,
            },
            attempts: Attempts::default(),
            response: ResponseBuffer::default(),
            tunnel: None,
            state: State::Done,
            request_bytes: Vec::new(),
            status: 0,
            local_keep_alive: false,
            deadline: None,
            began: Moment::default(),
            first_byte: None,
            try_began: Moment::default(),
            connect_time: None,
            upstream_status: None,
            trouble: None,
            finish: Some(over),
            request_id: RequestId::default(),
        }
    }

    /// Whether the exchange is over and holds no socket or buffer of its own (its client
    /// and request taken back, its memory given back by `end`), so that its allocation may
    /// serve a later exchange ([`Exchange::start`]'s `spare`). Until then it keeps only its
    /// proxy (as the host's cached copy of the proxy does until the next request).
    pub(super) fn retirable(&self) -> bool {
        self.finish.is_some() && self.client.stream.is_none() && self.tunnel.is_none()
    }

    /// A watched socket may have progressed: continue as far as possible without blocking.
    /// Readiness is not trusted (Monkey cannot report its kind): every state probes its
    /// socket and waits again on `WouldBlock`.
    pub(super) fn on_ready(
        &mut self,
        now: Moment,
        local: &mut Local,
        reactor: &mut dyn Reactor,
    ) -> Progress {
        self.run(local, reactor, now, true)
    }

    /// When the exchange needs [`Exchange::on_timeout`] at the latest, if it waits on a timer.
    pub(super) fn deadline(&self) -> Option<Moment> {
        self.deadline
    }

    /// The time is `now`: acts on an expired connect, read or client-write timeout.
    pub(super) fn on_timeout(
        &mut self,
        now: Moment,
        local: &mut Local,
        reactor: &mut dyn Reactor,
    ) -> Progress {
        match self.deadline {
            Some(d) if d <= now => {}
            _ => return self.progress(),
        }
        self.deadline = None;
        match self.state {
            State::Queued => {
                self.leave_queue(Waited::TimedOut, now);
                let retry_after = self.entry_config().limits.retry_after_secs();
                self.local_error(503, Some(retry_after), now);
                self.trouble = Some("queue_timeout");
            }
            State::Connecting => self.try_failed(FailureKind::ConnectTimeout, local, now),
            State::Sending | State::AwaitHead => {
                // RFC 9110 §15.6.5: the backend did not answer in time. Not retried: a slow
                // backend is not made faster by sending it the request twice.
                let req = books!(self);
                self.attempts.fail_final(req, FailureKind::ReadTimeout, now);
                self.local_error(504, None, now);
            }
            // The response cannot be completed: closing the client connection is the only
            // honest end. Whose fault: bytes waiting for the client mean it stopped reading
            // (a client abort); an empty buffer means the backend went silent mid-body.
            State::Body => {
                let req = books!(self);
                if self.response.has_output() {
                    self.client_left();
                } else {
                    self.attempts.fail_final(req, FailureKind::BodyTimeout, now);
                    self.trouble = Some(Failure::from(FailureKind::BodyTimeout).name());
                }
                return self.end(End::Abort, local, reactor, now);
            }
            State::Flush => return self.end(End::Abort, local, reactor, now),
            // A tunnel idle for ReadTimeout in both directions is closed.
            State::Tunnel => return self.end(End::Complete, local, reactor, now),
            State::Lingering => return self.end(End::Abort, local, reactor, now),
            State::Done => return self.progress(),
        }
        self.run(local, reactor, now, true)
    }

    /// The client went away (Monkey's hang-up): releases everything without answering.
    /// True when the exchange lingers instead (see `State::Lingering`): the client's side
    /// is let go of now, the server's slot when the server is done; the exchange then ends
    /// without an end for its host.
    pub(super) fn abort(
        &mut self,
        now: Moment,
        local: &mut Local,
        reactor: &mut dyn Reactor,
    ) -> bool {
        let limited = self.proxy.upstreams[self.entry].limiter().max() > 0;
        if limited
            && matches!(self.state, State::Sending | State::AwaitHead)
            && self.attempts.backend.is_some()
        {
            self.linger(now, reactor);
            return true;
        }
        if self.state != State::Done {
            self.client_left();
        }
        let _ = self.end(End::Abort, local, reactor, now);
        false
    }

    /// See `State::Lingering`.
    #[cold]
    fn linger(&mut self, now: Moment, reactor: &mut dyn Reactor) {
        if self.attempts.abort_keeping_server(books!(self)) && self.trouble.is_none() {
            self.trouble = Some(Failure::ClientAbort.name());
        }
        self.local_keep_alive = false;
        self.want_client(reactor, None);
        if let Some(c) = self.client.stream.take() {
            if self.client.watched {
                reactor.release(Source {
                    fd: std::os::fd::AsRawFd::as_raw_fd(&c),
                    id: self.client.id,
                });
            }
        }
        self.client.watched = false;
        self.state = State::Lingering;
        self.deadline = Some(now.after(self.read_timeout()));
        self.want_backend(reactor, Some(Interest::Read));
    }

    /// The client is gone while the current try was under way: a client abort in the books
    /// (unless the response was in them already) and, if it was one, in the logs.
    fn client_left(&mut self) {
        let req = books!(self);
        if self.attempts.abort(req) && self.trouble.is_none() {
            self.trouble = Some(Failure::ClientAbort.name());
        }
    }

    /// Hands the client connection back once the exchange is over (`None` before that or if
    /// already taken), so a host can reuse it for the connection's next request.
    pub(super) fn take_client(&mut self) -> Option<ClientConn> {
        if self.state == State::Done {
            self.client.stream.take()
        } else {
            None
        }
    }

    /// The request, for the worker's spares (or the host's next request) once the exchange
    /// is over.
    pub(super) fn request_mut(&mut self) -> &mut ProxyRequest {
        &mut self.request
    }

    fn progress(&self) -> Progress {
        match self.finish {
            Some(f) => Progress::Done(f),
            None => Progress::Pending,
        }
    }

    fn entry_config(&self) -> &Entry {
        &self.proxy.config.entries[self.entry]
    }

    fn read_timeout(&self) -> Duration {
        self.entry_config().read_timeout
    }

    fn want_backend(&mut self, reactor: &mut dyn Reactor, interest: Option<Interest>) {
        let Some(b) = &mut self.attempts.backend else {
            return;
        };
        // A TLS connection with records still to send also waits for writability.
        let interest = b.stream.interest(interest);
        if b.interest == interest {
            return;
        }
        // A failed registration leaves the exchange waiting for an event that never comes;
        // the deadline (always set while waiting) then ends it.
        let source = Source {
            fd: b.stream.fd(),
            id: b.id,
        };
        let _ = reactor.watch(source, self.token, interest);
        b.interest = interest;
    }

    fn want_client(&mut self, reactor: &mut dyn Reactor, interest: Option<Interest>) {
        let Some(c) = &self.client.stream else {
            return;
        };
        // A TLS layer that must hear from the peer before it can write again.
        let interest = match interest {
            Some(Interest::Write) if c.blocked_write_wants_read() => Some(Interest::ReadWrite),
            other => other,
        };
        if self.client.interest == interest {
            return;
        }
        let source = Source {
            fd: std::os::fd::AsRawFd::as_raw_fd(c),
            id: self.client.id,
        };
        let _ = reactor.watch(source, self.token, interest);
        self.client.interest = interest;
        self.client.watched |= interest.is_some();
    }

    /// Starts the next try (see [`Attempts::next`]).
    fn next_try(&mut self, local: &mut Local, now: Moment) -> Step {
        let req = books!(self);
        let Local { pool, last_id, .. } = local;
        let mut new_id = || {
            *last_id += 1;
            *last_id
        };
        self.attempts.next(req, pool, &mut new_id, now)
    }

    /// The current try's TLS handshake failed: the reason becomes the server's last TLS
    /// failure in the statistics (and so in the request's failure line, if it fails).
    fn note_tls_failure(&self) {
        let Some(b) = &self.attempts.backend else {
            return;
        };
        let reason = b.stream.tls_failure().unwrap_or("unknown");
        self.proxy
            .stats
            .record_tls_failure(self.entry, b.server, reason);
    }

    /// The try failed before any response byte: retry when that is safe (see
    /// [`Attempts::fail`]).
    fn try_failed(&mut self, kind: FailureKind, local: &mut Local, now: Moment) {
        let req = books!(self);
        let Local { pool, last_id, .. } = local;
        let mut new_id = || {
            *last_id += 1;
            *last_id
        };
        let step = self.attempts.fail(req, kind, pool, &mut new_id, now);
        self.response.restart();
        self.take_step(step, now);
    }

    fn take_step(&mut self, step: Step, now: Moment) {
        if !matches!(step, Step::Answer(..)) {
            self.write_for_try();
        }
        match step {
            Step::Connecting => {
                self.state = State::Connecting;
                self.try_began = now;
                self.connect_time = None;
                self.deadline = Some(now.after(self.entry_config().connect_timeout));
            }
            Step::Send => {
                self.try_began = now;
                self.connect_time = Some(Duration::ZERO);
                self.begin_sending(now)
            }
            Step::Answer(status, retry_after) => self.local_error(status, retry_after, now),
            Step::Queue => self.enqueue(now),
        }
    }

    /// Every server is at its limit: the request waits in the queue if it has room, or gets
    /// 503 with `Retry-After` (the queue's timeout, rounded up).
    #[cold]
    fn enqueue(&mut self, now: Moment) {
        let limits = self.entry_config().limits;
        if self.proxy.upstreams[self.entry].limiter().enter_queue() {
            self.proxy.stats.record_queued(self.entry);
            self.state = State::Queued;
            // No try began yet: the field keeps when the wait did (the exchange stays as
            // small as it was; a memcpy size class is worth instructions per request).
            self.try_began = now;
            self.deadline = Some(now.after(limits.queue_timeout));
        } else {
            self.proxy.stats.record_queue_full(self.entry);
            self.local_error(503, Some(limits.retry_after_secs()), now);
            self.trouble = Some("queue_full");
        }
    }

    /// Whether the request waits in the queue.
    pub(super) fn is_queued(&self) -> bool {
        self.state == State::Queued
    }

    /// A slot may have freed: a queued request tries its servers again, and leaves the queue
    /// when one takes it (or when its answer is decided otherwise).
    pub(super) fn retry_queued(
        &mut self,
        now: Moment,
        local: &mut Local,
        reactor: &mut dyn Reactor,
    ) -> Progress {
        if self.state != State::Queued {
            return self.progress();
        }
        self.attempts.restart_from_queue(books!(self), now);
        let step = self.next_try(local, now);
        if step == Step::Queue {
            return Progress::Pending;
        }
        self.leave_queue(Waited::Served, now);
        self.take_step(step, now);
        self.run(local, reactor, now, false)
    }

    /// The request leaves the queue (once: every caller moves the state on from `Queued`
    /// right after).
    fn leave_queue(&mut self, how: Waited, now: Moment) {
        if self.state != State::Queued {
            return;
        }
        let since = self.try_began;
        self.proxy.upstreams[self.entry].limiter().leave_queue();
        let stats = &self.proxy.stats;
        stats.record_queue_wait(self.entry, now.since(since), how);
        if how == Waited::Left {
            // Gone before any server was tried.
            stats.record_left_early(self.entry);
            self.trouble = Some(Failure::ClientAbort.name());
        }
    }

    /// For request rules that name `$server`: the request written again for the server of
    /// the try just started (other entries' requests were written once, at the start).
    fn write_for_try(&mut self) {
        let e = &self.proxy.config.entries[self.entry];
        if !e.request_headers.uses_server() {
            return;
        }
        let Some(b) = &self.attempts.backend else {
            return;
        };
        let server = &self.proxy.upstreams[self.entry].servers()[b.server]
            .spec
            .name;
        // Rare (a rewrite and a `$server` rule in one entry): the target in a buffer of its own.
        let target = self.proxy.router.rewriter(self.entry).map(|rewriter| {
            let mut target = Vec::new();
            rewriter.write(&self.request.path, &mut target);
            target
        });
        let sent = Sent {
            target: target.as_deref(),
            server,
            request_id: self.request_id,
        };
        self.request_bytes.clear();
        write_request(e, &self.request, &sent, &mut self.request_bytes);
    }

    fn begin_sending(&mut self, now: Moment) {
        self.state = State::Sending;
        self.attempts.sent = 0;
        self.deadline = Some(now.after(self.read_timeout()));
    }

    /// The backend answered `status`, which `RetryOn` retries (see
    /// [`Attempts::retry_status`]): the response is in the books, its connection closes
    /// unread, and the next server gets the request. With none left the client gets the
    /// same status, as the proxy's own page.
    #[cold]
    fn retry_after_status(&mut self, status: u16, local: &mut Local, now: Moment) {
        let req = books!(self);
        let mut figures = self.figures(now);
        figures.status = status;
        self.attempts.discard(req, &figures, now);
        self.response.forget_head();
        self.response.restart();
        let step = match self.next_try(local, now) {
            Step::Answer(..) | Step::Queue => Step::Answer(status, None),
            step => step,
        };
        self.take_step(step, now);
    }

    /// The response is unusable (malformed, truncated head): 502, backend discarded.
    fn bad_response(&mut self, now: Moment) {
        let req = books!(self);
        self.attempts.fail_final(req, FailureKind::BadResponse, now);
        self.response.forget_head();
        self.local_error(502, None, now);
    }

    /// Queues the proxy's own short error response; the exchange then flushes and finishes.
    /// It is logged as a failed request: a 503 as `no_server`, others as the failure just
    /// recorded.
    fn local_error(&mut self, status: u16, retry_after: Option<u64>, now: Moment) {
        self.trouble = Some(match (status, self.attempts.last_failure()) {
            (503, _) | (_, None) => "no_server",
            (_, Some(failure)) => failure.name(),
        });
        self.status = status;
        self.response
            .error_page(status, !self.local_keep_alive, retry_after);
        self.state = State::Flush;
        self.deadline = Some(now.after(self.read_timeout()));
    }

    fn client_side(&self) -> ClientSide {
        ClientSide {
            head_request: self.request.is_head(),
            minor_version: self.request.minor_version,
            wants_close: self.request.client_wants_close,
            upgrade: self.request.upgrade_protocol().is_some(),
        }
    }

    /// Makes progress until a socket would block; with `respond` false it stops before the
    /// first step that reads the response or writes to the client, waiting for an event.
    fn run(
        &mut self,
        local: &mut Local,
        reactor: &mut dyn Reactor,
        now: Moment,
        respond: bool,
    ) -> Progress {
        loop {
            if !respond {
                match self.state {
                    // A fresh connect cannot have completed yet: wait for writability rather
                    // than probe it.
                    State::Connecting => {
                        self.want_backend(reactor, Some(Interest::Write));
                        return Progress::Pending;
                    }
                    State::AwaitHead => {
                        self.want_backend(reactor, Some(Interest::Read));
                        return Progress::Pending;
                    }
                    State::Body | State::Flush => {
                        self.want_client(reactor, Some(Interest::Write));
                        return Progress::Pending;
                    }
                    _ => {}
                }
            }
            match self.state {
                // Only the queue's deadline or a freed slot moves it on.
                State::Queued => return Progress::Pending,
                State::Lingering => {
                    let Some(b) = &mut self.attempts.backend else {
                        return self.end(End::Abort, local, reactor, now);
                    };
                    let mut probe = [0u8; 1];
                    match std::io::Read::read(&mut b.stream, &mut probe) {
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            self.want_backend(reactor, Some(Interest::Read));
                            return Progress::Pending;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        // The server answers, closes or fails: it is done with the request.
                        _ => return self.end(End::Abort, local, reactor, now),
                    }
                }
                State::Connecting => {
                    let Some(b) = &mut self.attempts.backend else {
                        return self.end(End::Abort, local, reactor, now);
                    };
                    match b.stream.poll_connect() {
                        Connect::Done => {
                            self.connect_time = Some(now.since(self.try_began));
                            if let Some(resumed) = b.stream.take_handshake() {
                                let stats = &self.proxy.stats;
                                stats.record_tls_handshake(self.entry, b.server, resumed);
                            }
                            self.begin_sending(now)
                        }
                        Connect::InProgress => {
                            let interest = b.stream.connect_interest();
                            self.want_backend(reactor, Some(interest));
                            return Progress::Pending;
                        }
                        Connect::Failed => self.try_failed(FailureKind::ConnectRefused, local, now),
                        Connect::TlsFailed => {
                            self.note_tls_failure();
                            self.try_failed(FailureKind::TlsHandshake, local, now)
                        }
                    }
                }
                State::Sending => {
                    if let Some(progress) = self.send_some(local, reactor, now) {
                        return progress;
                    }
                }
                State::AwaitHead => {
                    let Some(b) = &mut self.attempts.backend else {
                        return self.end(End::Abort, local, reactor, now);
                    };
                    match self.response.read_head(&mut b.stream, &mut local.spares) {
                        Ok(0) if self.response.nothing_read() => {
                            self.try_failed(FailureKind::ResetBeforeResponse, local, now)
                        }
                        Ok(0) => self.bad_response(now),
                        Ok(n) => {
                            self.attempts.received += n as u64;
                            self.on_head_bytes(local, reactor, now);
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            self.response.let_go_of_buffer(&mut local.spares);
                            self.want_backend(reactor, Some(Interest::Read));
                            return Progress::Pending;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) if self.response.nothing_read() => {
                            self.try_failed(FailureKind::ResetBeforeResponse, local, now)
                        }
                        Err(_) => self.bad_response(now),
                    }
                }
                State::Body | State::Flush => {
                    if let Some(progress) = self.relay_body(local, reactor, now) {
                        return progress;
                    }
                }
                State::Tunnel => return self.pump_tunnel(local, reactor, now),
                State::Done => return self.progress(),
            }
        }
    }

    /// The `Sending` state's turn: one write of the request to the backend. `None` to go on,
    /// `Some` to return.
    #[inline]
    fn send_some(
        &mut self,
        local: &mut Local,
        reactor: &mut dyn Reactor,
        now: Moment,
    ) -> Option<Progress> {
        let Some(b) = &mut self.attempts.backend else {
            return Some(self.end(End::Abort, local, reactor, now));
        };
        match b.stream.write(&self.request_bytes[self.attempts.sent..]) {
            Ok(0) => self.try_failed(FailureKind::ResetBeforeResponse, local, now),
            Ok(n) => {
                self.attempts.sent += n;
                if self.attempts.sent == self.request_bytes.len() {
                    self.state = State::AwaitHead;
                    self.response.restart();
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.want_backend(reactor, Some(Interest::Write));
                return Some(Progress::Pending);
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => self.try_failed(FailureKind::ResetBeforeResponse, local, now),
        }
        None
    }

    /// A started exchange's first turn, `run` without responding: on a pooled connection
    /// the request usually goes whole in one write and the exchange then waits for the head,
    /// which is done here without a call of the whole state machine (its prologue alone
    /// costs more than the rest). Any other turn is `run`'s.
    #[inline]
    fn begin(&mut self, local: &mut Local, reactor: &mut dyn Reactor, now: Moment) {
        if self.state == State::Sending && self.send_some(local, reactor, now).is_some() {
            return;
        }
        if self.state == State::AwaitHead {
            // As `run` without responding does for this state.
            self.want_backend(reactor, Some(Interest::Read));
            return;
        }
        let _ = self.run(local, reactor, now, false);
    }

    /// New bytes of the response head arrived.
    fn on_head_bytes(&mut self, local: &mut Local, reactor: &mut dyn Reactor, now: Moment) {
        let client = self.client_side();
        let Some(b) = &mut self.attempts.backend else {
            return;
        };
        let e = &self.proxy.config.entries[self.entry];
        let rules = &e.response_headers;
        let vars;
        let rules = if rules.is_empty() {
            None
        } else {
            vars = Vars {
                client: self.request.client.map(|a| a.ip()),
                entry: &e.name,
                server: &self.proxy.upstreams[self.entry].servers()[b.server]
                    .spec
                    .name,
                request_id: self.request_id,
            };
            Some(Applied { rules, vars: &vars })
        };
        // The cookie is looked up again rather than kept from the start: an exchange one
        // field longer costs every request more in moves than a sticky entry's second look.
        let edits = HeadEdits {
            rules,
            extra_lines: affinity::set_cookie(
                &self.proxy.upstreams[self.entry],
                &self.request,
                b.server,
            ),
        };
        // A head with edits is a function of more than its bytes: not remembered.
        let memo = if edits.rules.is_none() && edits.extra_lines.is_empty() {
            Some(local.heads.of(self.entry, b.server))
        } else {
            None
        };
        let head = match self
            .response
            .parse(client, &edits, memo, &mut local.spares, &mut b.stream)
        {
            Head::Incomplete => return,
            Head::Unusable => return self.bad_response(now),
            Head::Parsed(head) => head,
        };
        if self.entry_config().limits.retry_on.any_status()
            && !head.upgrade
            && self.attempts.retry_status(books!(self), head.status)
        {
            return self.retry_after_status(head.status, local, now);
        }
        self.attempts.answered(books!(self), now);
        self.status = head.status;
        self.upstream_status = Some(head.status);
        self.first_byte = Some(now.since(self.began));
        self.deadline = Some(now.after(self.read_timeout()));
        // With a response head there is no retry any more: the request's bytes go.
        local
            .spares
            .put_vec(std::mem::take(&mut self.request_bytes));
        if head.upgrade {
            // The switch itself is the response: in the books before the 101 goes out.
            let figures = self.figures(now);
            self.attempts.respond(books!(self), &figures, now);
            self.state = State::Tunnel;
            self.local_keep_alive = false;
            self.tunnel = Some(Tunnel::starting_with(&self.request.early));
            reactor.take_over_client(self.token);
            return;
        }
        self.state = State::Body;
        // A large body that goes through no TLS layer on either side skips user space.
        if self.response.worth_splicing() {
            let plain = self
                .client
                .stream
                .as_ref()
                .is_some_and(|c| !c.has_transport())
                && self
                    .attempts
                    .backend
                    .as_ref()
                    .is_some_and(|b| !b.stream.is_tls());
            self.response.choose_splice(plain);
        }
    }

    /// One turn of the body (or the proxy's own answer): what waits goes to the client, then
    /// more is read from the backend. `None` to go on, `Some` to return.
    fn relay_body(
        &mut self,
        local: &mut Local,
        reactor: &mut dyn Reactor,
        now: Moment,
    ) -> Option<Progress> {
        if self.state == State::Body && self.response.body_done() {
            // The last bytes are about to leave: the response goes into the books first (see
            // `Attempts::respond`).
            let figures = self.figures(now);
            self.attempts.respond(books!(self), &figures, now);
        }
        let Some(client) = self.client.stream.as_mut() else {
            return Some(self.end(End::Abort, local, reactor, now));
        };
        let mut wrote = false;
        let mut flushed = self.response.write_to(client, &mut wrote);
        if self.response.splicing() && matches!(flushed, Ok(true)) {
            flushed = self
                .response
                .drain_pipe(client, &mut local.spares, &mut wrote);
        }
        match flushed {
            Ok(true) => {}
            Ok(false) => {
                if wrote {
                    self.deadline = Some(now.after(self.read_timeout()));
                }
                // Backpressure: stop reading the backend until the client drains.
                self.want_backend(reactor, None);
                self.want_client(reactor, Some(Interest::Write));
                return Some(Progress::Pending);
            }
            Err(_) => {
                self.client_left();
                return Some(self.end(End::Abort, local, reactor, now));
            }
        }
        // `end` clears the deadline and the client's interest itself: a response that is
        // all out ends without setting either first.
        if self.state == State::Flush || self.response.body_done() {
            return Some(self.end(End::Complete, local, reactor, now));
        }
        if wrote {
            self.deadline = Some(now.after(self.read_timeout()));
        }
        self.want_client(reactor, None);
        let Some(b) = &mut self.attempts.backend else {
            return Some(self.end(End::Abort, local, reactor, now));
        };
        let enchunk = self.response.enchunks();
        let read = if self.response.splicing() {
            self.response.splice_body(&mut b.stream, &mut local.spares)
        } else {
            self.response.read_body(&mut b.stream, &mut local.spares)
        };
        match read {
            // The last-chunk is queued: the next turn sends it and ends.
            Ok(BodyRead::End) if enchunk => None,
            Ok(BodyRead::End) if self.response.until_close() => {
                Some(self.end(End::Complete, local, reactor, now))
            }
            // The backend left before the end of the body: the client gets a cut response
            // (its connection closes without the end), and the server is blamed for it.
            Ok(BodyRead::End) => Some(self.cut(FailureKind::ResponseCut, local, reactor, now)),
            Ok(BodyRead::Malformed) => {
                Some(self.cut(FailureKind::BadResponse, local, reactor, now))
            }
            Ok(BodyRead::Bytes(n)) => {
                self.attempts.received += n as u64;
                self.deadline = Some(now.after(self.read_timeout()));
                None
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                // Everything read was delivered: hold no buffer while waiting.
                self.response.let_go_of_buffer(&mut local.spares);
                self.want_backend(reactor, Some(Interest::Read));
                Some(Progress::Pending)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => None,
            // A reset cannot be told from the end of a close-delimited body, unless the client
            // was promised a chunked end: then it must see the cut (the connection closes
            // without the last-chunk).
            Err(_) if self.response.until_close() && !enchunk => {
                Some(self.end(End::Complete, local, reactor, now))
            }
            Err(_) => Some(self.cut(FailureKind::ResponseCut, local, reactor, now)),
        }
    }

    /// The backend failed after the response head had gone out (`kind`): recorded against
    /// it, and the client's connection closes, so a cut body never looks complete.
    fn cut(
        &mut self,
        kind: FailureKind,
        local: &mut Local,
        reactor: &mut dyn Reactor,
        now: Moment,
    ) -> Progress {
        self.attempts.fail_final(books!(self), kind, now);
        self.trouble = Some(Failure::from(kind).name());
        self.end(End::Abort, local, reactor, now)
    }

    /// The figures of the current try's response as of `now`.
    fn figures(&self, now: Moment) -> stats::Exchange {
        stats::Exchange {
            status: self.status,
            bytes_to_backend: self.attempts.sent as u64,
            bytes_from_backend: self.attempts.received,
            head_latency: self.first_byte.unwrap_or_default(),
            total_latency: now.since(self.began),
        }
    }

    /// Moves tunnel bytes both ways until nothing moves; ends the exchange once either side
    /// has closed and everything it sent was delivered.
    fn pump_tunnel(
        &mut self,
        local: &mut Local,
        reactor: &mut dyn Reactor,
        now: Moment,
    ) -> Progress {
        let (Some(mut t), Some(b), Some(c)) = (
            self.tunnel.take(),
            self.attempts.backend.as_mut(),
            self.client.stream.as_mut(),
        ) else {
            return self.end(End::Abort, local, reactor, now);
        };
        let pumped = t.pump(
            &mut self.response,
            &mut b.stream,
            c,
            &mut local.spares,
            &mut self.attempts.sent,
        );
        if pumped.moved {
            self.deadline = Some(now.after(self.read_timeout()));
        }
        let (backend, client) = t.interests(&self.response);
        self.tunnel = Some(t);
        if pumped.over {
            return self.end(End::Complete, local, reactor, now);
        }
        self.want_backend(reactor, backend);
        self.want_client(reactor, client);
        Progress::Pending
    }

    /// Ends the exchange, once: the try's outcome recorded, the backend connection pooled or
    /// closed, the client's registration released, memory given back to the worker.
    fn end(
        &mut self,
        how: End,
        local: &mut Local,
        reactor: &mut dyn Reactor,
        now: Moment,
    ) -> Progress {
        if let Some(f) = self.finish {
            return Progress::Done(f);
        }
        if self.state == State::Queued {
            self.leave_queue(Waited::Left, now);
        }
        let req = books!(self);
        self.attempts.finish(req);
        match how {
            End::Complete => {
                // Usually `relay_body` put the response in the books as its last bytes left:
                // then `complete` only adds later bytes, and the figures are not needed.
                let figures = if self.attempts.responded() {
                    None
                } else {
                    self.response.head().map(|_| self.figures(now))
                };
                let reusable = self.response.backend_reusable();
                if let Some((server, pooled)) =
                    self.attempts.complete(req, figures.as_ref(), reusable, now)
                {
                    let source = Source {
                        fd: pooled.stream.fd(),
                        id: pooled.id,
                    };
                    let limits = Attempts::pool_limits(req);
                    let state = &self.proxy.upstreams[self.entry].servers()[server].state;
                    if local.pool.put(state, pooled, limits, now) {
                        // Still registered for reading: the pool hears of a backend that
                        // closes it, without a syscall to hand it over.
                        let _ = reactor.watch(source, idle_token(source.fd), Some(Interest::Read));
                    }
                }
            }
            End::Abort => {
                self.attempts.drop_try(req);
                self.local_keep_alive = false;
                self.response.forget_head();
            }
        }
        let keep_alive = match self.response.head() {
            Some(h) if self.state == State::Body => !h.client_closes,
            _ => self.local_keep_alive,
        };
        self.want_client(reactor, None);
        if self.client.watched {
            if let Some(c) = &self.client.stream {
                reactor.release(Source {
                    fd: std::os::fd::AsRawFd::as_raw_fd(c),
                    id: self.client.id,
                });
            }
        }
        self.response.give_back(&mut local.spares);
        local
            .spares
            .put_vec(std::mem::take(&mut self.request_bytes));
        self.attempts.end_plan();
        self.state = State::Done;
        self.deadline = None;
        if self.trouble.is_some() || self.proxy.access_log.is_on() {
            self.report(now, local);
        }
        let finish = Finish {
            keep_alive,
            status: self.status,
        };
        self.finish = Some(finish);
        Progress::Done(finish)
    }
}

/// Writes `request` as the backend gets it, for the entry `e` and, when its rules name
/// `$server`, the server `server` of the try.
fn write_request(e: &Entry, request: &ProxyRequest, sent: &Sent<'_>, out: &mut Vec<u8>) {
    let rules = &e.request_headers;
    let vars;
    let headers = if rules.is_empty() {
        None
    } else {
        vars = Vars {
            client: request.client.map(|a| a.ip()),
            entry: &e.name,
            server: sent.server,
            request_id: sent.request_id,
        };
        Some(Applied { rules, vars: &vars })
    };
    let policy = ForwardPolicy {
        trusted_proxies: &e.trusted_proxies,
        forwarded_header: e.forwarded_header,
        close: e.keepalive_idle == 0,
        default_host: e.servers.first().map_or("", |s| s.name.as_str()),
        // Made of the path's visible ASCII and the checked replacement: UTF-8.
        target: sent.target.and_then(|t| std::str::from_utf8(t).ok()),
        headers,
    };
    request.write_upstream(&policy, out);
}

/// What of an upstream request depends on the exchange rather than the entry: the rewritten
/// path (`PathRewrite` / `PathStripPrefix`; `None`: the client's), the server of the try
/// (for `$server`; empty when no rule names it) and the request id (for `$request_id`).
struct Sent<'a> {
    target: Option<&'a [u8]>,
    server: &'a str,
    request_id: RequestId,
}

impl Exchange {
    /// The exchange's lines in the logs (see [`report`]).
    #[cold]
    fn report(&self, now: Moment, local: &mut Local) {
        let ending = Ending {
            proxy: &self.proxy,
            entry: self.entry,
            request: &self.request,
            status: self.status,
            trouble: self.trouble,
            server: self.attempts.last_server(),
            upstream_status: self.upstream_status,
            connect: self.connect_time,
            first_byte: self.first_byte,
            total: now.since(self.began),
            attempts: self.attempts.tries(),
            upstream_bytes: self.attempts.bytes_moved(),
            body_bytes: self.response.body_bytes_sent(),
        };
        report::report(&ending, now, &mut local.access);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // Every path ends through `end`, which releases the server, the queue place and the
        // budget's counts; this only guards against a host that drops an exchange early.
        if self.finish.is_some() {
            return;
        }
        if self.attempts.backend.is_some() {
            let req = books!(self);
            self.attempts.drop_try(req);
        }
        if self.state == State::Queued {
            self.proxy.upstreams[self.entry].limiter().leave_queue();
        }
        let req = books!(self);
        self.attempts.finish(req);
    }
}
