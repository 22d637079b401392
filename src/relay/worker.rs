//! One event-loop thread's share of the core: every exchange in progress, the idle upstream
//! connections, the memory they reuse, and the one timer that drives their timeouts.
//!
//! The host knows none of these by anything but their [`Token`]: it hands every event back
//! with the token ([`Worker::on_ready`]), calls [`Worker::on_timer`] when the time it was asked
//! for has come, and hears of an exchange's end through [`Ended`]. Exchanges live in a slab
//! (no allocation per request once it has grown); a token names a slot and the serial number
//! of its occupant, so an event for an exchange that is over, or for a slot taken by a newer
//! one, is recognised and ignored.

use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;

use super::client::ClientConn;
use super::deferred::Deferred;
use super::exchange::{Exchange, Finish, Progress};
use super::local::Local;
use super::spares::Spares;
use super::tokens::{exchange_token, owner, Owner, SERIAL_LIMIT};
use crate::clock::Moment;
use crate::http::request::ProxyRequest;
use crate::proxy::Proxy;
use crate::reactor::{Reactor, Token};

/// An exchange that is over, for its host to end the request.
#[derive(Debug)]
pub struct Ended {
    /// The exchange's token, as [`Worker::start`] returned it.
    pub token: Token,
    /// How it ended.
    pub finish: Finish,
    /// The client connection the exchange was given, handed back (a host may keep it for the
    /// connection's next request).
    pub client: Option<TcpStream>,
}

/// What a slab slot holds: a proxied request, or a request waiting for an answer the
/// worker cannot make at once (an admin request waiting for the reload thread).
#[derive(Debug)]
enum Task {
    Exchange(Box<Exchange>),
    Deferred(Deferred),
}

impl Task {
    fn deadline(&self) -> Option<Moment> {
        match self {
            Task::Exchange(x) => x.deadline(),
            Task::Deferred(d) => d.deadline(),
        }
    }

    fn on_ready(&mut self, now: Moment, local: &mut Local, reactor: &mut dyn Reactor) -> Progress {
        match self {
            Task::Exchange(x) => x.on_ready(now, local, reactor),
            Task::Deferred(d) => d.on_ready(now, reactor),
        }
    }

    fn on_timeout(
        &mut self,
        now: Moment,
        local: &mut Local,
        reactor: &mut dyn Reactor,
    ) -> Progress {
        match self {
            Task::Exchange(x) => x.on_timeout(now, local, reactor),
            Task::Deferred(d) => d.on_timeout(now, reactor),
        }
    }

    /// True when the task lingers on after its client left (see `Exchange::abort`).
    fn abort(&mut self, now: Moment, local: &mut Local, reactor: &mut dyn Reactor) -> bool {
        match self {
            Task::Exchange(x) => x.abort(now, local, reactor),
            Task::Deferred(d) => {
                d.abort(reactor);
                false
            }
        }
    }

    fn is_queued(&self) -> bool {
        matches!(self, Task::Exchange(x) if x.is_queued())
    }
}

/// One slab slot.
#[derive(Debug, Default)]
struct Slot {
    /// The occupant's serial number (0 while free).
    serial: u32,
    /// The occupant's host was told it is over (its client left) while it lingers on: its
    /// end is not handed to the host.
    orphan: bool,
    task: Option<Task>,
}

/// The task in `slot` if its serial number is `serial`.
fn task_in(slots: &mut [Slot], slot: usize, serial: u32) -> Option<&mut Task> {
    let s = slots.get_mut(slot)?;
    if s.serial != serial {
        return None;
    }
    s.task.as_mut()
}

/// Slab slots always kept, however quiet the worker is.
const KEEP_SLOTS: usize = 256;

/// How soon after a burst ended an oversized slab is shrunk.
const SHRINK_AFTER: Duration = Duration::from_secs(1);

/// How late a timeout may fire, and how often at most a worker is woken for timers.
const RESOLUTION: Duration = Duration::from_millis(50);

/// How often a worker with requests in a queue looks for a slot another worker freed (a slot
/// this worker frees is offered to its own waiters at once).
const QUEUE_TICK: Duration = Duration::from_millis(10);

/// The per-thread core. See the module docs.
#[derive(Debug)]
pub struct Worker {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// The last serial number given (wraps within 30 bits, skipping 0).
    serial: u32,
    live: usize,
    local: Local,
    /// The wake-up the host was last asked for, until it comes.
    wake: Option<Moment>,
    /// The administrative changes and reloads seen (see [`crate::upstream::changes`]).
    seen_changes: u64,
    /// Exchanges waiting in their entry's queue, oldest first, by slot and serial (one that
    /// left the queue meanwhile is dropped from here when met).
    waiting: std::collections::VecDeque<(usize, u32)>,
    /// Exchanges that ended while the worker served its queue, for the next timer round.
    late: Vec<Ended>,
    /// Allocations of exchanges that are over, for the next ones (see `Exchange::start`);
    /// boxes, because the allocation itself is what is reused.
    #[allow(clippy::vec_box)]
    spare_exchanges: Vec<Box<Exchange>>,
    /// The request [`Worker::start_next`] proxies, filled by the host in place (boxed: it
    /// changes places with a finished exchange's by pointer).
    next: Box<ProxyRequest>,
}

impl Default for Worker {
    fn default() -> Worker {
        Worker::new()
    }
}

impl Worker {
    /// A worker with nothing in progress.
    pub fn new() -> Worker {
        Worker {
            slots: Vec::new(),
            free: Vec::new(),
            serial: 0,
            live: 0,
            local: Local::default(),
            wake: None,
            seen_changes: crate::upstream::changes(),
            waiting: std::collections::VecDeque::new(),
            late: Vec::new(),
            spare_exchanges: Vec::new(),
            next: Box::default(),
        }
    }

    /// Starts proxying `request` (validated and routed to `entry` by `proxy`) for the client
    /// connection `client`, a socket the exchange owns (it writes the response to it and
    /// hands it back in [`Ended`]). Returns the exchange's token.
    pub fn start(
        &mut self,
        proxy: Arc<Proxy>,
        entry: usize,
        request: ProxyRequest,
        client: ClientConn,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Token {
        let earlier = std::mem::replace(&mut *self.next, request);
        self.local.spares.put_request(earlier);
        self.start_next(proxy, entry, client, now, reactor)
    }

    /// The request [`Worker::start_next`] proxies, for the host to fill in place: it still
    /// holds an earlier request (its buffers are what is reused), which the intake clears
    /// (`http::intake::read_request`). A request the host answers without an exchange just
    /// stays here, to be filled again.
    pub fn next_request(&mut self) -> &mut ProxyRequest {
        &mut self.next
    }

    /// [`Worker::start`] for the request the host filled in [`Worker::next_request`]: it
    /// changes places with a finished exchange's, so that a request is never copied.
    pub fn start_next(
        &mut self,
        proxy: Arc<Proxy>,
        entry: usize,
        client: ClientConn,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Token {
        self.follow_changes();
        let (slot, serial, token) = self.take_slot();
        let client_id = self.local.new_id();
        let exchange = Exchange::start(
            self.spare_exchanges.pop(),
            proxy,
            entry,
            &mut self.next,
            client,
            client_id,
            token,
            now,
            &mut self.local,
            reactor,
        );
        let deadline = exchange.deadline();
        let queued = exchange.is_queued();
        // Field by field: a whole `Slot` written at once is built on the stack and copied.
        let s = &mut self.slots[slot];
        s.serial = serial;
        s.orphan = false;
        s.task = Some(Task::Exchange(exchange));
        self.live += 1;
        self.arm(reactor, deadline);
        if queued {
            self.waiting.push_back((slot, serial));
            self.arm(reactor, Some(now.after(QUEUE_TICK)));
        }
        token
    }

    /// Waits for `waiting`'s answer, then sends it on the client connection `client` (a
    /// socket the task owns and hands back in [`Ended`]; `close`: closed after the answer,
    /// as the client asked). Returns the task's token.
    pub fn start_deferred(
        &mut self,
        client: ClientConn,
        waiting: crate::reload::Waiting,
        head_request: bool,
        close: bool,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Token {
        let (slot, serial, token) = self.take_slot();
        let client_id = self.local.new_id();
        let waiting_id = self.local.new_id();
        let task = Deferred::start(
            token,
            client,
            client_id,
            waiting,
            waiting_id,
            head_request,
            close,
            now,
            reactor,
        );
        let deadline = task.deadline();
        self.slots[slot] = Slot {
            serial,
            orphan: false,
            task: Some(Task::Deferred(task)),
        };
        self.live += 1;
        self.arm(reactor, deadline);
        token
    }

    /// A free slot, its new occupant's serial number and token.
    fn take_slot(&mut self) -> (usize, u32, Token) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        self.serial = if self.serial >= SERIAL_LIMIT - 1 {
            1
        } else {
            self.serial + 1
        };
        (slot, self.serial, exchange_token(slot, self.serial))
    }

    /// A socket watched for `token` may have progressed. Returns the exchange that ended, if
    /// this event ended one.
    pub fn on_ready(
        &mut self,
        token: Token,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Option<Ended> {
        match owner(token) {
            Owner::Idle(fd) => {
                self.local.pool.check(fd);
                None
            }
            Owner::Exchange { slot, serial } => {
                let task = task_in(&mut self.slots, slot, serial)?;
                let progress = task.on_ready(now, &mut self.local, reactor);
                self.after(slot, progress, now, reactor)
            }
        }
    }

    /// The client of `token`'s exchange is gone (the host noticed it): the exchange ends at
    /// once without answering, counted as a client abort. False if it was over already.
    pub fn abort(&mut self, token: Token, now: Moment, reactor: &mut dyn Reactor) -> bool {
        let Owner::Exchange { slot, serial } = owner(token) else {
            return false;
        };
        if self.slots[slot].orphan {
            return false;
        }
        let Some(task) = task_in(&mut self.slots, slot, serial) else {
            return false;
        };
        if task.abort(now, &mut self.local, reactor) {
            let deadline = task.deadline();
            self.slots[slot].orphan = true;
            self.arm(reactor, deadline);
            return true;
        }
        let _ = self.remove(
            slot,
            Finish {
                keep_alive: false,
                status: 0,
            },
        );
        self.after_end(now, reactor);
        true
    }

    /// The time the host was asked to wake the worker at has come (or passed): expired
    /// timeouts act, idle connections past their limits close, access log lines gathered
    /// long enough go to the writer thread. Exchanges that ended are
    /// appended to `ended`.
    pub fn on_timer(&mut self, now: Moment, reactor: &mut dyn Reactor, ended: &mut Vec<Ended>) {
        self.wake = None;
        self.follow_changes();
        ended.append(&mut self.late);
        for slot in 0..self.slots.len() {
            let Some(task) = self.slots[slot].task.as_mut() else {
                continue;
            };
            if !task.deadline().is_some_and(|d| d <= now) {
                continue;
            }
            if let Progress::Done(finish) = task.on_timeout(now, &mut self.local, reactor) {
                let orphan = self.slots[slot].orphan;
                let e = self.remove(slot, finish);
                if !orphan {
                    ended.push(e);
                }
            }
        }
        if self.local.pool.due().is_some_and(|d| d <= now) {
            self.local.pool.housekeep(now);
        }
        if self.local.access.due().is_some_and(|d| d <= now) {
            self.local.access.send();
        }
        if !self.waiting.is_empty() {
            self.serve_queue(now, reactor);
        }
        self.shrink();
        let next = self
            .slots
            .iter()
            .filter_map(|s| s.task.as_ref()?.deadline())
            .chain(self.local.pool.due())
            .chain(self.local.access.due())
            .min();
        // Never sooner than the resolution: deadlines that move on with every byte would
        // otherwise wake the worker again and again for nothing.
        let mut next = next.map(|n| n.max(now.after(RESOLUTION)));
        if !self.waiting.is_empty() || !self.late.is_empty() {
            let tick = now.after(QUEUE_TICK);
            next = Some(next.map_or(tick, |n| n.min(tick)));
        }
        self.arm(reactor, next);
    }

    /// Offers free slots to the exchanges waiting in a queue, oldest first: each tries its
    /// servers again and leaves the queue when one takes it (or its answer is decided). No
    /// exchange ends here (a try only starts); one that did would be handed over at the next
    /// timer round.
    #[cold]
    #[inline(never)]
    fn serve_queue(&mut self, now: Moment, reactor: &mut dyn Reactor) {
        let mut kept = 0;
        for k in 0..self.waiting.len() {
            let (slot, serial) = self.waiting[k];
            let Some(task) = task_in(&mut self.slots, slot, serial) else {
                continue;
            };
            if !task.is_queued() {
                continue;
            }
            let Task::Exchange(x) = task else { continue };
            match x.retry_queued(now, &mut self.local, reactor) {
                Progress::Pending if x.is_queued() => {
                    self.waiting[kept] = (slot, serial);
                    kept += 1;
                }
                Progress::Pending => {
                    let deadline = x.deadline();
                    self.arm(reactor, deadline);
                }
                Progress::Done(finish) => {
                    let ended = self.remove(slot, finish);
                    self.late.push(ended);
                    self.arm(reactor, Some(now));
                }
            }
        }
        self.waiting.truncate(kept);
    }

    /// When the worker wants [`Worker::on_timer`] next, as last told to the host.
    pub fn next_wake(&self) -> Option<Moment> {
        self.wake
    }

    /// Exchanges in progress.
    pub fn live_exchanges(&self) -> usize {
        self.live
    }

    /// Relay read buffers held by exchanges now (see `Spares::buffers_in_use`).
    pub fn buffers_in_use(&self) -> usize {
        self.local.spares.buffers_in_use()
    }

    /// Pipes held by exchanges now, each with spliced body bytes on their way to a client
    /// (see `relay::splice`).
    pub fn pipes_in_use(&self) -> usize {
        self.local.spares.pipes.in_use()
    }

    /// Response body bytes this worker spliced (moved backend → pipe) since it started.
    pub fn bytes_spliced(&self) -> u64 {
        self.local.spares.pipes.spliced()
    }

    /// Idle upstream connections held.
    pub fn idle_connections(&self) -> usize {
        self.local.pool.len()
    }

    /// An empty request to fill, with the buffers of an earlier one when there is one (hosts
    /// copy each client request into it rather than into fresh allocations).
    pub fn take_request(&mut self) -> ProxyRequest {
        self.local.spares.take_request()
    }

    /// Gives back a request the host filled but did not proxy (answered locally).
    pub fn recycle_request(&mut self, request: ProxyRequest) {
        self.local.spares.put_request(request);
    }

    fn after(
        &mut self,
        slot: usize,
        progress: Progress,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Option<Ended> {
        match progress {
            Progress::Pending => {
                let deadline = self.slots[slot].task.as_ref().and_then(Task::deadline);
                self.arm(reactor, deadline);
                None
            }
            Progress::Done(finish) => {
                let orphan = self.slots[slot].orphan;
                let ended = self.remove(slot, finish);
                self.after_end(now, reactor);
                (!orphan).then_some(ended)
            }
        }
    }

    /// An operator drained a server, or a reload removed one: its idle connections close.
    /// (Inlined: once per request, it is a load and a compare.)
    #[inline]
    fn follow_changes(&mut self) {
        let changes = crate::upstream::changes();
        if changes != self.seen_changes {
            self.changed(changes);
        }
    }

    /// See [`Worker::follow_changes`].
    #[cold]
    #[inline(never)]
    fn changed(&mut self, changes: u64) {
        self.seen_changes = changes;
        self.local.pool.prune();
        // Spare exchanges hold the proxy they served: after a reload, let it go.
        self.spare_exchanges.clear();
    }

    /// After an exchange ended: the pool may have taken its backend connection (a wake-up for
    /// the pool's housekeeping), and a slab a burst left mostly empty is shrunk on a later
    /// timer round.
    #[inline]
    fn after_end(&mut self, now: Moment, reactor: &mut dyn Reactor) {
        if !self.waiting.is_empty() {
            // The exchange that ended may have freed a slot its neighbours wait for.
            self.serve_queue(now, reactor);
        }
        let oversized = self.slots.len() > KEEP_SLOTS && self.live * 2 < self.slots.len();
        self.arm(reactor, oversized.then(|| now.after(SHRINK_AFTER)));
    }

    /// Gives back the slots a burst left free at the end of the slab, so that memory follows
    /// the load down (slots of a busy slab are kept: reusing them is what spares allocation).
    fn shrink(&mut self) {
        if self.slots.len() <= KEEP_SLOTS || self.live * 2 >= self.slots.len() {
            return;
        }
        while self.slots.len() > KEEP_SLOTS && self.slots.last().is_some_and(|s| s.task.is_none()) {
            self.slots.pop();
        }
        let len = self.slots.len();
        self.free.retain(|&slot| slot < len);
        self.slots.shrink_to(len.max(KEEP_SLOTS));
        self.free.shrink_to(len);
    }

    /// Frees `slot`, keeping its exchange's allocation and request for the next ones.
    /// (Inlined: once per request, into the event's call.)
    #[inline]
    fn remove(&mut self, slot: usize, finish: Finish) -> Ended {
        let s = &mut self.slots[slot];
        let token = exchange_token(slot, s.serial);
        s.serial = 0;
        s.orphan = false;
        let client = match s.task.take().expect("a live task") {
            Task::Exchange(mut exchange) => {
                let client = exchange.take_client();
                if exchange.retirable() && self.spare_exchanges.len() < KEEP_SLOTS {
                    // Its request stays with it: the next exchange hands it to the host.
                    Spares::trim_request(exchange.request_mut());
                    self.spare_exchanges.push(exchange);
                } else {
                    self.local.spares.keep_request(exchange.request_mut());
                }
                client
            }
            Task::Deferred(mut deferred) => deferred.take_client(),
        };
        self.free.push(slot);
        self.live -= 1;
        Ended {
            token,
            finish,
            client: client.map(ClientConn::into_socket),
        }
    }

    /// Asks the host for a wake-up at `at` if that is sooner than the one it was asked for
    /// (and for the pool's housekeeping or the access log batch, if that is sooner still).
    fn arm(&mut self, reactor: &mut dyn Reactor, at: Option<Moment>) {
        // Pairwise rather than as an iterator chain's `min`: twice per request, and the
        // chain compiled to more tests than the three options need.
        let at = sooner(sooner(at, self.local.pool.due()), self.local.access.due());
        let Some(at) = at else { return };
        if self.wake.is_some_and(|w| w <= at) {
            return;
        }
        reactor.wake_at(at);
        self.wake = Some(at);
    }
}

/// The sooner of two optional moments (`None` is never, so the other wins).
#[inline]
fn sooner(a: Option<Moment>, b: Option<Moment>) -> Option<Moment> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::{Interest, Source};
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream as StdStream};
    use std::sync::mpsc;

    #[test]
    fn sooner_is_the_earlier_of_the_moments_given() {
        let (a, b) = (Moment::from_nanos(5), Moment::from_nanos(9));
        assert_eq!(sooner(Some(a), Some(b)), Some(a));
        assert_eq!(sooner(Some(b), Some(a)), Some(a));
        assert_eq!(sooner(Some(b), None), Some(b));
        assert_eq!(sooner(None, Some(b)), Some(b));
        assert_eq!(sooner(None, None), None);
    }

    #[test]
    fn an_exchange_slot_stays_small() {
        // README states the figure: a proxied request holds one slot of the worker's slab.
        let size = std::mem::size_of::<Slot>();
        println!("slot: {size} bytes");
        println!(
            "exchange: {} bytes, attempts: {} bytes",
            std::mem::size_of::<Exchange>(),
            std::mem::size_of::<crate::relay::attempt::Attempts>()
        );
        assert!(size <= 736, "an exchange slot grew to {size} bytes");
    }

    /// A reactor that only records what the core asked for.
    #[derive(Default)]
    struct Recorder {
        wakes: Vec<Moment>,
        watched: Vec<(Source, Token, Option<Interest>)>,
    }

    impl Reactor for Recorder {
        fn watch(&mut self, s: Source, t: Token, i: Option<Interest>) -> std::io::Result<()> {
            self.watched.push((s, t, i));
            Ok(())
        }
        fn release(&mut self, _: Source) {}
        fn wake_at(&mut self, at: Moment) {
            self.wakes.push(at);
        }
    }

    /// A proxy for one backend with the given timeouts (seconds).
    fn proxy_for(backend: std::net::SocketAddr, connect: u32, read: u32) -> Arc<Proxy> {
        let text = format!(
            "[PROXY_ENTRY]\n    Match /\n    ServerList {backend}\n    ConnectTimeout {connect}\n    \
             ReadTimeout {read}\n"
        );
        let config = crate::config::parse_str(
            &text,
            std::path::Path::new("t.conf"),
            &crate::config::SystemResolver,
        )
        .unwrap();
        Arc::new(Proxy::new(config).unwrap())
    }

    /// A connected pair: the exchange's end (non-blocking, for mio) and the test's.
    fn client_pair() -> (TcpStream, StdStream) {
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = StdStream::connect(front.local_addr().unwrap()).unwrap();
        let (ours, _) = front.accept().unwrap();
        ours.set_nonblocking(true).unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (TcpStream::from_std(ours), peer)
    }

    fn get(worker: &mut Worker) -> ProxyRequest {
        let mut r = worker.take_request();
        r.method.push_str("GET");
        r.path.push('/');
        r.minor_version = 1;
        r.headers.push("Host", b"t");
        r.host = Some("t".into());
        r
    }

    #[test]
    fn a_finished_exchange_s_allocation_and_request_serve_the_next_one_as_new() {
        // A backend that takes requests and never answers.
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = proxy_for(backend.local_addr().unwrap(), 1, 2);
        let mut worker = Worker::new();
        let mut reactor = Recorder::default();
        let t0 = Moment::from_nanos(10_000_000_000);
        let (client, _peer) = client_pair();
        let request = get(&mut worker);
        let first = worker.start(
            proxy.clone(),
            0,
            request,
            ClientConn::plain(client),
            t0,
            &mut reactor,
        );
        assert!(worker.abort(first, t0, &mut reactor));
        assert_eq!(worker.spare_exchanges.len(), 1, "the exchange was not kept");
        let kept: *const Exchange = &*worker.spare_exchanges[0];
        // The host fills the next request where the worker keeps it.
        let next = worker.next_request();
        next.method.push_str("GET");
        next.path.push_str("/second");
        next.minor_version = 1;
        next.headers.push("Host", b"t");
        next.host = Some("t".into());
        let (client, mut peer) = client_pair();
        let second = worker.start_next(
            proxy.clone(),
            0,
            ClientConn::plain(client),
            t0,
            &mut reactor,
        );
        let Some(Task::Exchange(x)) = &mut worker.slots[second.index()].task else {
            panic!("no exchange for {second:?}");
        };
        assert_eq!(&**x as *const Exchange, kept, "a new allocation was made");
        assert!(worker.spare_exchanges.is_empty());
        assert_eq!(x.request_mut().path, "/second");
        // Nothing of the first (aborted) exchange is left: the second times out on its own
        // deadlines, with its own status.
        assert_eq!(x.deadline(), Some(t0.after(Duration::from_secs(1))));
        let mut ended = Vec::new();
        worker.on_timer(t0.after(Duration::from_secs(1)), &mut reactor, &mut ended);
        assert_eq!(ended.len(), 1, "the connect timeout did not end it");
        assert_eq!(ended[0].token, second);
        assert_eq!(ended[0].finish.status, 504);
        let mut head = [0u8; 64];
        let n = peer.read(&mut head).unwrap();
        assert!(head[..n].starts_with(b"HTTP/1.1 504 Gateway Timeout\r\n"));
    }

    #[test]
    fn a_silent_backend_times_out_on_the_injected_clock_and_the_worker_asks_for_each_wake_up() {
        // A backend that takes the request and never answers.
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = backend.local_addr().unwrap();
        let (got, request_seen) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let (mut s, _) = backend.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            got.send(n).unwrap();
            // Keep the connection open (and silent) until the test is done.
            let _ = s.read(&mut buf);
        });
        let proxy = proxy_for(addr, 1, 2);
        let mut worker = Worker::new();
        let mut reactor = Recorder::default();
        let (client, mut peer) = client_pair();
        let t0 = Moment::from_nanos(10_000_000_000);
        let request = get(&mut worker);
        let token = worker.start(
            proxy.clone(),
            0,
            request,
            ClientConn::plain(client),
            t0,
            &mut reactor,
        );
        assert_eq!(
            reactor.wakes,
            [t0.after(Duration::from_secs(1))],
            "connect timeout"
        );
        assert_eq!(worker.next_wake(), Some(t0.after(Duration::from_secs(1))));

        // Events (the clock stands still) until the backend has the request.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while request_seen.try_recv().is_err() {
            assert!(std::time::Instant::now() < deadline, "request never sent");
            assert!(worker.on_ready(token, t0, &mut reactor).is_none());
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut ended = Vec::new();
        // The connect timer comes: nothing is due any more, the read deadline is next.
        worker.on_timer(t0.after(Duration::from_secs(1)), &mut reactor, &mut ended);
        assert!(ended.is_empty());
        assert_eq!(
            reactor.wakes.last(),
            Some(&t0.after(Duration::from_secs(2)))
        );
        worker.on_timer(
            t0.after(Duration::from_millis(1999)),
            &mut reactor,
            &mut ended,
        );
        assert!(ended.is_empty(), "timed out early");
        worker.on_timer(t0.after(Duration::from_secs(2)), &mut reactor, &mut ended);
        assert_eq!(ended.len(), 1, "no timeout at the read deadline");
        assert_eq!(ended[0].token, token);
        assert_eq!(ended[0].finish.status, 504);
        assert!(ended[0].finish.keep_alive);
        assert_eq!(worker.live_exchanges(), 0);
        assert_eq!(worker.next_wake(), None, "nothing left to wake up for");
        let mut head = [0u8; 64];
        let n = peer.read(&mut head).unwrap();
        assert!(head[..n].starts_with(b"HTTP/1.1 504 Gateway Timeout\r\n"));
        let failures = proxy.stats.server(0, 0).counters.snapshot();
        assert_eq!(failures.failures.read_timeout, 1, "{failures:?}");
        // A late event for the exchange that is over is ignored.
        assert!(worker.on_ready(token, t0, &mut reactor).is_none());
        drop(ended);
        let _ = peer.write_all(b"x");
        drop(peer);
        holder.join().unwrap();
    }
}
