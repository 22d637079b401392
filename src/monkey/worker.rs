//! Per-worker state: the core's [`Worker`] (buffers, idle upstream connections), the list of
//! live exchange contexts, and one `timerfd` that drives timeouts (Monkey applies none while
//! the plugin owns a request, and its own timer API never reaches plugins, §1.8).

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::ptr;
use std::time::{Duration, Instant};

use super::api::{self, mem_alloc_z};
use super::context::{self, Ctx};
use super::sys;
use crate::relay::{Exchange, Worker};

/// Timer period: the resolution of connect/read timeouts.
const TICK: Duration = Duration::from_millis(100);

/// The plugin's `dup` of a Monkey client connection, kept between the connection's
/// requests so that each request does not pay for `dup`, `getpeername`, `TCP_NODELAY` and
/// `close`. Keyed by Monkey's descriptor and checked against its connection object; dropped
/// at stage 50 (Monkey runs it before it closes a connection), so the duplicate never keeps
/// a closed connection open.
struct ClientConn {
    conn: usize,
    stream: mio::net::TcpStream,
    peer: Option<SocketAddr>,
}

/// What one Monkey worker thread keeps.
pub struct WorkerState {
    /// Buffers and idle upstream connections.
    pub worker: Worker,
    /// Cached client duplicates, indexed by Monkey's client descriptor.
    clients: Vec<Option<ClientConn>>,
    /// Contexts with an exchange in progress (scanned by the timer).
    live: Vec<*mut Ctx>,
    /// Allocations of finished exchanges, for later ones (see [`WorkerState::box_exchange`]);
    /// boxes, because the point is to hand the allocation itself over.
    #[allow(clippy::vec_box)]
    spare_exchanges: Vec<Box<MaybeUninit<Exchange>>>,
    last_expiry: Instant,
}

/// Exchange allocations kept for reuse per worker (as many as the core keeps requests for;
/// a few hundred bytes each).
const KEEP_EXCHANGES: usize = 256;

thread_local! {
    static STATE: RefCell<WorkerState> = RefCell::new(WorkerState::new());
}

/// Runs `f` with this worker's state; `None` if it is already borrowed (a re-entrant call,
/// which the adapter avoids by never calling into Monkey while holding it).
pub fn with<R>(f: impl FnOnce(&mut WorkerState) -> R) -> Option<R> {
    STATE.with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
}

impl WorkerState {
    /// The state a worker thread starts with: nothing cached, nothing live.
    fn new() -> WorkerState {
        WorkerState {
            worker: Worker::new(),
            clients: Vec::new(),
            live: Vec::new(),
            spare_exchanges: Vec::new(),
            last_expiry: Instant::now(),
        }
    }

    /// Moves `exchange` to the heap, into the allocation of a finished one when there is one
    /// (each request has an exchange; this spares the allocator a malloc and a free each).
    pub fn box_exchange(&mut self, exchange: Exchange) -> Box<Exchange> {
        match self.spare_exchanges.pop() {
            Some(slot) => {
                let raw = Box::into_raw(slot).cast::<Exchange>();
                // SAFETY: `raw` is an allocation with `Exchange`'s layout that holds no value
                // (its exchange was dropped in `release_exchange`); writing one initialises
                // it, and the box owns it again.
                unsafe {
                    raw.write(exchange);
                    Box::from_raw(raw)
                }
            }
            None => Box::new(exchange),
        }
    }

    /// Drops a finished exchange and keeps its allocation for [`WorkerState::box_exchange`].
    pub fn release_exchange(&mut self, exchange: Box<Exchange>) {
        if self.spare_exchanges.len() >= KEEP_EXCHANGES {
            return;
        }
        let raw = Box::into_raw(exchange);
        // SAFETY: `raw` owns a valid exchange, dropped here exactly once; its allocation is
        // then owned again as uninitialised memory, which has the same layout
        // (`MaybeUninit<T>` is `T`'s size and alignment), so the box frees it correctly.
        let slot = unsafe {
            ptr::drop_in_place(raw);
            Box::from_raw(raw.cast::<MaybeUninit<Exchange>>())
        };
        self.spare_exchanges.push(slot);
    }

    /// Adds a context to the live list.
    ///
    /// # Safety
    /// `ctx` must be a live context that is not listed yet.
    pub unsafe fn add_live(&mut self, ctx: *mut Ctx) {
        // SAFETY: live context (caller).
        unsafe { context::set_live_index(ctx, self.live.len()) };
        self.live.push(ctx);
    }

    /// Takes the cached duplicate of client descriptor `fd` if it belongs to connection
    /// object `conn` (a stale entry for another connection is dropped).
    pub fn take_client(
        &mut self,
        fd: c_int,
        conn: usize,
    ) -> Option<(mio::net::TcpStream, Option<SocketAddr>)> {
        let slot = self.clients.get_mut(usize::try_from(fd).ok()?)?;
        match slot.take() {
            Some(c) if c.conn == conn => Some((c.stream, c.peer)),
            _ => None,
        }
    }

    /// Keeps the duplicate of client descriptor `fd` for the connection's next request.
    pub fn keep_client(
        &mut self,
        fd: c_int,
        conn: usize,
        stream: mio::net::TcpStream,
        peer: Option<SocketAddr>,
    ) {
        let Ok(i) = usize::try_from(fd) else { return };
        if self.clients.len() <= i {
            self.clients.resize_with(i + 1, || None);
        }
        self.clients[i] = Some(ClientConn { conn, stream, peer });
    }

    /// Closes the cached duplicate of client descriptor `fd`, if any.
    pub fn forget_client(&mut self, fd: c_int) {
        if let Some(slot) = usize::try_from(fd)
            .ok()
            .and_then(|i| self.clients.get_mut(i))
        {
            *slot = None;
        }
    }

    /// Removes a context from the live list (no-op if absent), in constant time: the last
    /// context takes its place.
    ///
    /// # Safety
    /// `ctx` must be a context from `context::new_ctx` that is not freed yet.
    pub unsafe fn remove_live(&mut self, ctx: *mut Ctx) {
        // SAFETY: not freed (caller).
        let i = unsafe { context::live_index(ctx) };
        if self.live.get(i) != Some(&ctx) {
            return;
        }
        self.live.swap_remove(i);
        if let Some(&moved) = self.live.get(i) {
            // SAFETY: listed contexts stay allocated while listed.
            unsafe { context::set_live_index(moved, i) };
        }
    }
}

/// The timer's context: Monkey dispatches CUSTOM events to `handler` with the event pointer.
#[repr(C)]
struct TimerCtx {
    ev: sys::mk_event,
    fd: c_int,
}

/// Sets up this worker's timer (called from `worker_init` on the worker thread).
pub fn init() {
    // SAFETY: plain syscalls; the timerfd is owned by this worker for the life of the process.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        api::log(
            crate::log::Level::Error,
            "cannot create the timeout timer; timeouts are disabled on a worker",
        );
        return;
    }
    let period = libc::timespec {
        tv_sec: 0,
        tv_nsec: TICK.as_nanos() as libc::c_long,
    };
    let spec = libc::itimerspec {
        it_interval: period,
        it_value: period,
    };
    // SAFETY: `fd` is the timerfd just created; `spec` is a valid itimerspec.
    unsafe { libc::timerfd_settime(fd, 0, &spec, ptr::null_mut()) };
    let ctx = mem_alloc_z(std::mem::size_of::<TimerCtx>()).cast::<TimerCtx>();
    if ctx.is_null() {
        return;
    }
    // SAFETY: `ctx` is zeroed malloc memory of the right size (a zeroed mk_event is the
    // unregistered state ev_add expects); it is never freed, so the registration stays valid
    // for the worker's life.
    unsafe {
        (*ctx).fd = fd;
        (*ctx).ev.handler = Some(on_tick);
        if !api::ev_add(fd, sys::MK_EVENT_CUSTOM, sys::MK_EVENT_READ, &mut (*ctx).ev) {
            api::log(
                crate::log::Level::Error,
                "cannot register the timeout timer",
            );
        }
    }
}

unsafe extern "C" fn on_tick(ev: *mut c_void) -> c_int {
    let result = std::panic::catch_unwind(|| {
        let ctx = ev.cast::<TimerCtx>();
        let mut counter = [0u8; 8];
        // SAFETY: `ev` is the first member of our TimerCtx; reading the timerfd's counter
        // re-arms the level-triggered registration.
        unsafe { libc::read((*ctx).fd, counter.as_mut_ptr().cast(), 8) };
        tick(Instant::now());
    });
    if result.is_err() {
        api::log(
            crate::log::Level::Error,
            "internal error in the timeout timer",
        );
    }
    0
}

fn tick(now: Instant) {
    let due = with(|s| {
        if let Some(proxy) = super::plugin::proxy() {
            // Each tick: idle connections beyond UpstreamKeepAlive (left by a burst) close.
            s.worker
                .pool
                .trim(|e| proxy.config.entries[e].keepalive_idle);
            if now.duration_since(s.last_expiry) >= Duration::from_secs(1) {
                s.last_expiry = now;
                s.worker
                    .pool
                    .expire(now, |e| proxy.config.entries[e].keepalive_timeout);
            }
        }
        s.live
            .iter()
            .copied()
            // SAFETY: every pointer in `live` is a context whose memory stays allocated while
            // it is listed (contexts leave the list before they are freed).
            .filter(|&c| unsafe { context::is_due(c, now) })
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    for ctx in due {
        // SAFETY: the context was live at the start of this loop round; a context that ends
        // during the round is only marked dead, its memory is freed after the round.
        unsafe { context::on_timeout(ctx, now) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_list_removal_in_any_order_keeps_every_position_right() {
        let mut s = WorkerState::new();
        let ctxs: Vec<*mut Ctx> = (0..8).map(|_| Box::into_raw(context::test_ctx())).collect();
        for &c in &ctxs {
            // SAFETY: a boxed context, freed only at the end of the test, listed once.
            unsafe { s.add_live(c) };
        }
        for k in [3, 0, 7, 5, 1, 6, 2, 4] {
            // SAFETY: the contexts stay allocated until the end of the test; a second
            // removal (of a context no longer listed) must change nothing.
            unsafe {
                s.remove_live(ctxs[k]);
                s.remove_live(ctxs[k]);
            }
            assert!(!s.live.contains(&ctxs[k]), "context {k} still listed");
            for (i, &c) in s.live.iter().enumerate() {
                // SAFETY: listed, so allocated.
                let at = unsafe { context::live_index(c) };
                assert_eq!(at, i, "after removing {k}");
            }
        }
        assert!(s.live.is_empty());
        for c in ctxs {
            // SAFETY: from Box::into_raw above, no longer listed anywhere.
            drop(unsafe { Box::from_raw(c) });
        }
    }

    /// A reactor that accepts every registration.
    struct Accepting;

    impl crate::reactor::Reactor for Accepting {
        fn set_interest(
            &mut self,
            _: crate::reactor::Side,
            _: std::os::fd::RawFd,
            _: Option<crate::reactor::Interest>,
        ) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_released_exchange_is_dropped_and_its_allocation_reused() {
        use std::io::Read;
        use std::net::{TcpListener, TcpStream};
        use std::sync::Arc;

        // A backend that accepts and a client connection the exchange owns.
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let text = format!(
            "[PROXY_ENTRY]\n    Match /.*\n    ServerList {}\n",
            backend.local_addr().unwrap()
        );
        let resolver = crate::config::SystemResolver;
        let config =
            crate::config::parse_str(&text, std::path::Path::new("t.conf"), &resolver).unwrap();
        let proxy = Arc::new(crate::proxy::Proxy::new(config).unwrap());
        let front = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = WorkerState::new();
        let start = |s: &mut WorkerState| {
            let peer = TcpStream::connect(front.local_addr().unwrap()).unwrap();
            let (client, _) = front.accept().unwrap();
            let mut request = s.worker.take_request();
            request.method.push_str("GET");
            request.path.push('/');
            request.minor_version = 1;
            let exchange = Exchange::start(
                proxy.clone(),
                0,
                request,
                mio::net::TcpStream::from_std(client),
                1,
                &mut s.worker,
                &mut Accepting,
            );
            let boxed = s.box_exchange(exchange);
            peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            (boxed, peer)
        };

        let (first, mut first_peer) = start(&mut s);
        let at = &*first as *const Exchange;
        s.release_exchange(first);
        // Dropped: its client socket is closed (the peer reads end of file).
        assert_eq!(first_peer.read(&mut [0u8; 16]).unwrap(), 0);
        assert_eq!(s.spare_exchanges.len(), 1);

        let (second, _peer) = start(&mut s);
        assert_eq!(
            &*second as *const Exchange, at,
            "the allocation was not reused"
        );
        assert!(s.spare_exchanges.is_empty());
        drop(second);
    }
}
