//! The attempts of one request: which servers to try in which order, the backend connection
//! of the current try, and what each try's outcome does to health and statistics.
//!
//! An attempt is one try of a request on one connection. It is counted when it has its
//! connection (a pooled one, or a new socket), and every way it ends goes through one method
//! here ([`Attempts::respond`] and [`Attempts::complete`], [`Attempts::fail`],
//! [`Attempts::fail_final`], [`Attempts::abort`]), so that per server and per entry
//! `attempts = responses + failures + client aborts` and `connections opened + reused =
//! attempts`, a server is released exactly once per try, and an outcome is written into the
//! books exactly once.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::pool::{Limits, Pooled, UpstreamPool};
use super::stream::BackendStream;
use crate::balancer::RequestContext;
use crate::clock::Moment;
use crate::config::limits::RetryOn;
use crate::health::FailureKind;
use crate::proxy::Proxy;
use crate::reactor::Interest;
use crate::stats::{self, Failure};

/// How long after a request arrived a failed attempt may still be retried elsewhere, in
/// multiples of the entry's `ConnectTimeout`.
const RETRY_BUDGET_CONNECT_TIMEOUTS: u32 = 2;

/// Candidates a finished request's list may keep room for (see [`Attempts::end_plan`]): a
/// larger entry's list is let go of, so that the worker's spare exchanges stay small.
const KEEP_CANDIDATES: usize = 64;

/// The backend connection a try uses.
#[derive(Debug)]
pub(super) struct Backend {
    pub stream: BackendStream,
    /// Identity of the connection ([`crate::reactor::Source::id`]).
    pub id: u64,
    pub server: usize,
    /// Taken from the idle pool (a failure before any response byte is then not the
    /// server's fault: it may just have closed an idle connection).
    pub reused: bool,
    /// Requests sent on this connection before this one.
    pub requests: u32,
    /// What the host was last asked to watch it for.
    pub interest: Option<Interest>,
}

/// What the exchange does next after [`Attempts::next`] or a failed try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// A new connection is being made: wait for it (up to `ConnectTimeout`).
    Connecting,
    /// An idle pooled connection is ready: send the request now.
    Send,
    /// No try is left: answer the client with this status (and `Retry-After` seconds).
    Answer(u16, Option<u64>),
    /// Every candidate is at the entry's `MaxConnections` (or requests wait for them
    /// already): the request waits for a slot, if the queue has room.
    Queue,
}

/// The attempts of one request. See the [module docs](self).
#[derive(Debug, Default)]
pub(super) struct Attempts {
    /// Servers to try, most preferred first (from the balancer, health-filtered), then the
    /// last resorts from `last_resorts_from` on once those are spent.
    candidates: Vec<usize>,
    next: usize,
    /// Where the last resorts start in `candidates` (`usize::MAX`: not added yet).
    last_resorts_from: usize,
    /// Tries started (each acquired a server).
    tries: u32,
    /// Every failed try timed out connecting (the answer is then 504, not 502).
    only_timeouts: bool,
    /// The server whose try just failed, until the next try starts (for the failover count).
    failed_from: Option<usize>,
    retry_until: Moment,
    /// The connection of the try in progress.
    pub backend: Option<Backend>,
    /// Request bytes written on the current connection (tunnel bytes too).
    pub sent: usize,
    /// Response bytes read from the current connection.
    pub received: u64,
    /// The current try's response is in the books already (with the bytes moved by then):
    /// see [`Attempts::respond`].
    recorded: Option<(u64, u64)>,
    /// The server of the latest try (kept after the try ended), for the logs.
    last_server: Option<usize>,
    /// The latest failure written into the books, for the logs.
    last_failure: Option<Failure>,
    /// Bytes sent and received by tries that failed (the current try's are `sent`,
    /// `received`).
    moved: (u64, u64),
    /// Some candidate was passed over for being at the entry's `MaxConnections`.
    limited: bool,
    /// The next try is a retry the policy already allowed ([`Attempts::allow_retry`]).
    approved: bool,
    /// Retries the entry's retry budget counts for this request (until its end:
    /// [`Attempts::finish`]).
    retries: u32,
    /// The request waited in the queue: it takes the next free slot even though others
    /// still wait.
    dequeued: bool,
    /// The request is counted in its entry's requests in flight (until [`Attempts::finish`]).
    counted: bool,
}

/// Whether a failed `connect` ran out of something local (descriptors, buffers, memory,
/// ephemeral ports) rather than failed because of the server.
fn out_of_local_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM | libc::EADDRNOTAVAIL)
    )
}

/// Whether a failure of this kind on this connection says something about the server: a
/// reused idle connection that breaks before any response byte may just have been closed by
/// the server meanwhile.
fn blames_server(kind: FailureKind, reused: bool) -> bool {
    !(reused && kind == FailureKind::ResetBeforeResponse)
}

/// What every try of one request shares: the proxy, the entry, and whether the request may
/// be sent twice.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    pub proxy: &'a Proxy,
    pub entry: usize,
    /// RFC 9110 §9.2.2: repeating it is harmless.
    pub idempotent: bool,
}

impl Request<'_> {
    fn connect_timeout(&self) -> Duration {
        self.proxy.config.entries[self.entry].connect_timeout
    }
}

impl Attempts {
    /// Plans the tries for a request into `self` (`ctx`: the request's context, made only if
    /// the plan reads it): an `Attempts` of a request that is over (its connection taken
    /// back), written over in place, so that the exchange it is part of is not built on the
    /// stack and copied (the pattern names every field: one added later cannot keep a
    /// finished request's value). Its candidate list is the earlier request's, refilled: it
    /// stays with the exchange's allocation (a few words per server).
    pub fn plan<'r>(
        &mut self,
        req: Request<'_>,
        ctx: impl FnOnce() -> RequestContext<'r>,
        now: Moment,
    ) {
        let upstream = &req.proxy.upstreams[req.entry];
        let Attempts {
            candidates,
            next,
            last_resorts_from,
            tries,
            only_timeouts,
            failed_from,
            retry_until,
            backend,
            sent,
            received,
            recorded,
            last_server,
            last_failure,
            moved,
            limited,
            approved,
            retries,
            dequeued,
            counted,
        } = self;
        upstream.plan_with(ctx, now.millis(), candidates);
        *next = 0;
        *last_resorts_from = usize::MAX;
        *tries = 0;
        *only_timeouts = true;
        *failed_from = None;
        *retry_until = now.after(req.connect_timeout() * RETRY_BUDGET_CONNECT_TIMEOUTS);
        *backend = None;
        *sent = 0;
        *received = 0;
        *recorded = None;
        *last_server = None;
        *last_failure = None;
        *moved = (0, 0);
        *limited = false;
        *approved = false;
        *retries = 0;
        *dequeued = false;
        *counted = upstream.limiter().request_began();
    }

    /// The request comes out of the queue (a slot may have freed): its candidates are
    /// walked again from the first, with a fresh time budget for retries.
    pub fn restart_from_queue(&mut self, req: Request<'_>, now: Moment) {
        if self.last_resorts_from != usize::MAX {
            self.candidates.truncate(self.last_resorts_from);
            self.last_resorts_from = usize::MAX;
        }
        self.next = 0;
        self.limited = false;
        self.dequeued = true;
        self.retry_until = now.after(req.connect_timeout() * RETRY_BUDGET_CONNECT_TIMEOUTS);
    }

    /// Whether the retry budget lets this request try again after a status the entry's
    /// `RetryOn` names (see [`crate::upstream::Limiter::allow_retry`]). A refusal is counted.
    /// On `true` the next try is the retry.
    pub fn allow_retry(&mut self, req: Request<'_>) -> bool {
        let upstream = &req.proxy.upstreams[req.entry];
        if upstream.limiter().allow_retry() {
            self.retries += 1;
            self.approved = true;
            true
        } else {
            req.proxy.stats.record_retry_refused(req.entry);
            false
        }
    }

    /// The request is over: it leaves the retry budget's counts (once).
    #[inline]
    pub fn finish(&mut self, req: Request<'_>) {
        if !self.counted && self.retries == 0 {
            return;
        }
        let limiter = req.proxy.upstreams[req.entry].limiter();
        if std::mem::take(&mut self.counted) {
            limiter.request_ended();
        }
        let retries = std::mem::take(&mut self.retries);
        if retries > 0 {
            limiter.end_retries(retries);
        }
    }

    /// A response with `status` came on the current try: whether it is thrown away and the
    /// request tried again (`RetryOn` names the status, the method is idempotent, fewer than
    /// `AttemptsCount` tries were made, and the budget allows it). Called before anything of
    /// the response went to the client.
    pub fn retry_status(&mut self, req: Request<'_>, status: u16) -> bool {
        let e = &req.proxy.config.entries[req.entry];
        if !(req.idempotent
            && e.limits.retry_on.has_status(status)
            && self.tries < e.attempts_count.max(1))
        {
            return false;
        }
        if !self.allow_retry(req) {
            return false;
        }
        if let Some(b) = &self.backend {
            self.failed_from = Some(b.server);
        }
        true
    }

    /// Tries started so far.
    pub fn tries(&self) -> u32 {
        self.tries
    }

    /// The server of the latest try, if one started.
    pub fn last_server(&self) -> Option<usize> {
        self.last_server
    }

    /// The latest failure recorded (a try's, or the client's abort).
    pub fn last_failure(&self) -> Option<Failure> {
        self.last_failure
    }

    /// Bytes sent to and received from the servers by every try so far.
    pub fn bytes_moved(&self) -> (u64, u64) {
        (
            self.moved.0 + self.sent as u64,
            self.moved.1 + self.received,
        )
    }

    /// The request is over: its candidate list stays for the next request [`Attempts::plan`]s
    /// here, unless it has room for more than [`KEEP_CANDIDATES`].
    #[inline]
    pub fn end_plan(&mut self) {
        if self.candidates.capacity() > KEEP_CANDIDATES {
            self.candidates = Vec::new();
        }
    }

    /// Starts the next try: the next candidate that can be acquired, on an idle pooled
    /// connection or a new one. `new_id` numbers a new connection.
    pub fn next(
        &mut self,
        req: Request<'_>,
        pool: &mut UpstreamPool,
        new_id: &mut dyn FnMut() -> u64,
        now: Moment,
    ) -> Step {
        let upstream = &req.proxy.upstreams[req.entry];
        let stats = &req.proxy.stats;
        if self.tries == 0 && !self.dequeued && upstream.limiter().others_wait() {
            // Requests wait for these servers already: this one queues behind them.
            return Step::Queue;
        }
        loop {
            if self.tries > 0 && !self.approved {
                // A connect that failed at once, moving on to the next candidate (outside
                // the budget, as every connection failure: see `fail`).
                let retry_on = req.proxy.config.entries[req.entry].limits.retry_on;
                if !retry_on.has(RetryOn::CONNECT) {
                    break;
                }
            }
            if self.next == self.candidates.len() {
                // Every candidate failed or was taken: the servers offline longest next, once
                // per request, while the retry budget lasts.
                if self.last_resorts_from != usize::MAX || now >= self.retry_until {
                    break;
                }
                self.last_resorts_from = self.next;
                if upstream.add_last_resorts(&mut self.candidates) == 0 {
                    break;
                }
            }
            let server = self.candidates[self.next];
            self.next += 1;
            let acquired = if self.next > self.last_resorts_from {
                upstream.acquire_last_resort(server, now.millis())
            } else {
                upstream.acquire(server, now.millis())
            };
            if !acquired {
                self.limited |= upstream.at_limit(server);
                continue;
            }
            self.tries += 1;
            self.approved = false;
            // A failover is counted only when another server really takes the request over.
            if let Some(failed) = self.failed_from.take() {
                stats.record_retry(req.entry, failed, true);
            }
            // A stale idle connection costs an idempotent request only a retry (see
            // `fail`); others check the connection before using it.
            let target = &upstream.servers()[server];
            if let Some(pooled) = pool.take(target, now, !req.idempotent) {
                // (One made before a reload changed how the server is spoken to closes.)
                if pooled.stream.fits(target.tls.as_ref()) {
                    self.use_pooled(req, server, pooled);
                    return Step::Send;
                }
            }
            if let Some(step) = self.connect(req, server, new_id, now) {
                return step;
            }
        }
        if self.tries == 0 && self.limited {
            return Step::Queue;
        }
        let now_ms = now.millis();
        let policy = upstream.policy();
        let all_offline = upstream
            .servers()
            .iter()
            .all(|s| !s.health.is_available(now_ms, policy));
        if self.tries == 0 || all_offline {
            // Every server is offline (even the one tried as a last resort): tell the client
            // when the first one may be back.
            stats.record_no_server(req.entry);
            Step::Answer(503, Some(upstream.retry_after_secs(now_ms)))
        } else if self.only_timeouts {
            Step::Answer(504, None)
        } else {
            Step::Answer(502, None)
        }
    }

    fn use_pooled(&mut self, req: Request<'_>, server: usize, pooled: Pooled) {
        self.backend = Some(Backend {
            stream: pooled.stream,
            id: pooled.id,
            server,
            reused: true,
            requests: pooled.requests,
            interest: None,
        });
        self.last_server = Some(server);
        self.sent = 0;
        self.received = 0;
        self.recorded = None;
        req.proxy.stats.record_attempt(req.entry, server);
        req.proxy.stats.record_connection(req.entry, server, true);
    }

    /// Opens a new connection to the acquired `server`. `Some` when the exchange has moved
    /// on: connecting, or answering because this process is out of resources (no server is
    /// to blame then, and none is counted as failed: a descriptor shortage would take every
    /// server offline). `None` when the connect failed at once; the failure is recorded
    /// against the server like any failed try, and the server released.
    fn connect(
        &mut self,
        req: Request<'_>,
        server: usize,
        new_id: &mut dyn FnMut() -> u64,
        now: Moment,
    ) -> Option<Step> {
        let upstream = &req.proxy.upstreams[req.entry];
        let target = &upstream.servers()[server];
        let addr: SocketAddr = target.spec.addr;
        match BackendStream::connect(addr, target.tls.as_ref()) {
            Ok(stream) => {
                self.backend = Some(Backend {
                    stream,
                    id: new_id(),
                    server,
                    reused: false,
                    requests: 0,
                    interest: None,
                });
                self.last_server = Some(server);
                self.sent = 0;
                self.received = 0;
                self.recorded = None;
                req.proxy.stats.record_attempt(req.entry, server);
                req.proxy.stats.record_connection(req.entry, server, false);
                Some(Step::Connecting)
            }
            Err(e) if out_of_local_resources(&e) => {
                upstream.release(server);
                req.proxy.stats.record_no_server(req.entry);
                Some(Step::Answer(503, Some(1)))
            }
            Err(_) => {
                // The socket was made and its connect failed at once: an attempt on a new
                // connection, failed.
                self.only_timeouts = false;
                self.last_server = Some(server);
                req.proxy.stats.record_attempt(req.entry, server);
                req.proxy.stats.record_connection(req.entry, server, false);
                self.write_failure(req, server, FailureKind::ConnectRefused, true, 0, 0, now);
                upstream.release(server);
                self.failed_from = Some(server);
                None
            }
        }
    }

    /// The current try failed with `kind` before a usable response: records it once,
    /// releases the server, and moves on when that is safe — a request is sent twice only if
    /// repeating it is harmless (idempotent method) or if no byte of it reached the failed
    /// server. An idle connection that broke is retried once on a fresh connection to the
    /// same server (it may simply have been closed meanwhile); other failures go to the next
    /// candidate while the retry budget lasts.
    pub fn fail(
        &mut self,
        req: Request<'_>,
        kind: FailureKind,
        pool: &mut UpstreamPool,
        new_id: &mut dyn FnMut() -> u64,
        now: Moment,
    ) -> Step {
        let Some(b) = self.backend.take() else {
            return Step::Answer(502, None);
        };
        if kind != FailureKind::ConnectTimeout {
            self.only_timeouts = false;
        }
        let nothing_written = self.sent == 0;
        self.end_failed(req, &b, kind, now);
        if !(nothing_written || req.idempotent) {
            return Step::Answer(502, None);
        }
        let upstream = &req.proxy.upstreams[req.entry];
        if b.reused && upstream.acquire(b.server, now.millis()) {
            req.proxy.stats.record_retry(req.entry, b.server, false);
            if let Some(step) = self.connect(req, b.server, new_id, now) {
                return step;
            }
        }
        // Connection failures are outside the retry budget: failing over from a server that
        // died (connections refused, or reset under the requests it held) must cost clients
        // nothing, as it always did; the budget is for answers that multiply a pool's load.
        let retry_on = req.proxy.config.entries[req.entry].limits.retry_on;
        let retried = match kind {
            FailureKind::ResetBeforeResponse => retry_on.has(RetryOn::RESET),
            _ => retry_on.has(RetryOn::CONNECT),
        };
        self.approved = true;
        if now >= self.retry_until || !retried {
            return Step::Answer(
                if kind == FailureKind::ConnectTimeout {
                    504
                } else {
                    502
                },
                None,
            );
        }
        self.failed_from = Some(b.server);
        self.next(req, pool, new_id, now)
    }

    /// The current try failed in a way that is not retried (the backend did not answer in
    /// time, or answered something unusable): records it once and releases the server.
    pub fn fail_final(&mut self, req: Request<'_>, kind: FailureKind, now: Moment) {
        if let Some(b) = self.backend.take() {
            self.end_failed(req, &b, kind, now);
        }
    }

    /// A response head arrived on the current try: a server that was offline (this is its
    /// probe) is up again at once. Its failures are forgotten only when the response is
    /// complete (see [`Attempts::respond`]): responses cut after their head count towards
    /// `AttemptsCount` too.
    pub fn answered(&self, req: Request<'_>, now: Moment) {
        if let Some(b) = &self.backend {
            let upstream = &req.proxy.upstreams[req.entry];
            if upstream.servers()[b.server].health.offline_until() != 0 {
                upstream.record_success(b.server, now.millis());
            }
        }
    }

    /// The client left while the current try was under way: counted as a client abort (not
    /// the server's fault) unless its response is in the books already, the server released.
    /// True if it was counted.
    pub fn abort(&mut self, req: Request<'_>) -> bool {
        let counted = self.abort_keeping_server(req);
        self.drop_try(req);
        counted
    }

    /// The client left while the current try was under way, and the server keeps working on
    /// it: counted as a client abort like [`Attempts::abort`], but the try goes on holding
    /// its server (until [`Attempts::drop_try`]). True if it was counted.
    pub fn abort_keeping_server(&mut self, req: Request<'_>) -> bool {
        let Some(b) = &self.backend else {
            return false;
        };
        let counted = self.recorded.is_none();
        if counted {
            req.proxy
                .stats
                .record_failure(req.entry, b.server, Failure::ClientAbort);
            self.last_failure = Some(Failure::ClientAbort);
        }
        counted
    }

    /// Ends the current try without an outcome to record (an exchange dropped by its host
    /// before its end, which hosts do not do): the connection closes, the server is released.
    pub fn drop_try(&mut self, req: Request<'_>) {
        if let Some(b) = self.backend.take() {
            req.proxy.upstreams[req.entry].release(b.server);
        }
    }

    /// The current try's response is complete as far as the backend goes (its last bytes are
    /// about to leave for the client, or it switched protocols): written into the books now,
    /// before the client can have it all, so that a statistics read made after a response
    /// reached its client counts it. Bytes moved later (a tunnel's) are added at the end.
    /// (Inlined: the end of every exchange asks again, and finds it done.)
    #[inline]
    pub fn respond(&mut self, req: Request<'_>, figures: &stats::Exchange, now: Moment) {
        if self.recorded.is_none() {
            self.record_response(req, figures, now);
        }
    }

    /// Whether the current try's response is in the books already ([`Attempts::respond`]):
    /// then [`Attempts::complete`] needs no figures, and the caller need not work them out.
    #[inline]
    pub fn responded(&self) -> bool {
        self.recorded.is_some()
    }

    /// [`Attempts::respond`]'s writing into the books.
    #[inline(never)]
    fn record_response(&mut self, req: Request<'_>, figures: &stats::Exchange, now: Moment) {
        let Some(b) = &self.backend else { return };
        req.proxy.upstreams[req.entry].record_response(b.server, figures.status, now.millis());
        req.proxy
            .stats
            .record_response(req.entry, b.server, figures);
        self.recorded = Some((figures.bytes_to_backend, figures.bytes_from_backend));
    }

    /// The current try's response (with `figures`) is thrown away for a retry: in the
    /// books as the server's response, the server released, the connection closed unread.
    #[cold]
    pub fn discard(&mut self, req: Request<'_>, figures: &stats::Exchange, now: Moment) {
        self.respond(req, figures, now);
        if let Some(b) = self.backend.take() {
            req.proxy.upstreams[req.entry].release(b.server);
        }
    }

    /// The current try is over with its response delivered: its response recorded if
    /// [`Attempts::respond`] did not (with `figures`), the server released, and the
    /// connection handed back for the pool when `reusable` and its entry's request limit
    /// allows one more.
    pub fn complete(
        &mut self,
        req: Request<'_>,
        figures: Option<&stats::Exchange>,
        reusable: bool,
        now: Moment,
    ) -> Option<(usize, Pooled)> {
        if let Some(figures) = figures {
            self.respond(req, figures, now);
        }
        let b = self.backend.take()?;
        if let Some((sent, received)) = self.recorded {
            let more_sent = (self.sent as u64).saturating_sub(sent);
            let more_received = self.received.saturating_sub(received);
            if more_sent > 0 || more_received > 0 {
                req.proxy
                    .stats
                    .record_bytes(req.entry, b.server, more_sent, more_received);
            }
        }
        let keepalive_requests = req.proxy.config.entries[req.entry].keepalive_requests;
        let keep = reusable && b.requests + 1 < keepalive_requests;
        req.proxy.upstreams[req.entry].release(b.server);
        keep.then(|| {
            (
                b.server,
                Pooled {
                    stream: b.stream,
                    id: b.id,
                    requests: b.requests + 1,
                },
            )
        })
    }

    /// The entry's limits for idle connections to its servers.
    pub fn pool_limits(req: Request<'_>) -> Limits {
        let e = &req.proxy.config.entries[req.entry];
        Limits {
            max_idle: e.keepalive_idle,
            idle_for: e.keepalive_timeout,
        }
    }

    /// Writes a failed try into the books once — the server's health (when the failure says
    /// something about it), the failure counters and the bytes the try moved — and releases
    /// the server.
    fn end_failed(&mut self, req: Request<'_>, b: &Backend, kind: FailureKind, now: Moment) {
        let (sent, received) = (self.sent as u64, self.received);
        self.moved = (self.moved.0 + sent, self.moved.1 + received);
        self.sent = 0;
        self.received = 0;
        self.write_failure(
            req,
            b.server,
            kind,
            blames_server(kind, b.reused),
            sent,
            received,
            now,
        );
        req.proxy.upstreams[req.entry].release(b.server);
    }

    /// Writes one failed try into the books (see [`Attempts::end_failed`]).
    #[allow(clippy::too_many_arguments)]
    fn write_failure(
        &mut self,
        req: Request<'_>,
        server: usize,
        kind: FailureKind,
        blame: bool,
        sent: u64,
        received: u64,
        now: Moment,
    ) {
        if blame {
            req.proxy.upstreams[req.entry].record_failure(server, kind, now.millis());
        }
        let stats = &req.proxy.stats;
        stats.record_failure(req.entry, server, kind);
        self.last_failure = Some(Failure::Backend(kind));
        if sent > 0 || received > 0 {
            stats.record_bytes(req.entry, server, sent, received);
        }
    }
}
