//! Per-worker state: the core's [`Worker`] (buffers, idle upstream connections), the list of
//! live exchange contexts, and one `timerfd` that drives timeouts (Monkey applies none while
//! the plugin owns a request, and its own timer API never reaches plugins, §1.8).

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::net::SocketAddr;
use std::ptr;
use std::time::{Duration, Instant};

use super::api::{self, mem_alloc_z};
use super::context::{self, Ctx};
use super::sys;
use crate::relay::Worker;

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
    last_expiry: Instant,
}

thread_local! {
    static STATE: RefCell<WorkerState> = RefCell::new(WorkerState {
        worker: Worker::new(),
        clients: Vec::new(),
        live: Vec::new(),
        last_expiry: Instant::now(),
    });
}

/// Runs `f` with this worker's state; `None` if it is already borrowed (a re-entrant call,
/// which the adapter avoids by never calling into Monkey while holding it).
pub fn with<R>(f: impl FnOnce(&mut WorkerState) -> R) -> Option<R> {
    STATE.with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
}

impl WorkerState {
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
        let mut s = WorkerState {
            worker: Worker::new(),
            clients: Vec::new(),
            live: Vec::new(),
            last_expiry: Instant::now(),
        };
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
}
