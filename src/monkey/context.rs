//! One proxied request inside Monkey: the context Monkey's event loop sees, the reactor the
//! core drives, and the finish/hang-up sequences of `../shared/monkey-abi.md` §1.4–1.7.

use std::ffi::{c_int, c_void};
use std::io;
use std::mem::offset_of;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, addr_of_mut};
use std::time::Instant;

use super::api::{self, ev_add, ev_del, mem_alloc_z};
use super::hold;
use super::sys;
use super::worker;
use crate::reactor::{Interest, Reactor, Side};
use crate::relay::{Exchange, Finish, Progress};

/// The per-request context registered in Monkey's loop. `free_ev` must stay the first
/// member: Monkey frees the whole block through it (`sched_event_free`). It is never
/// registered; backend sockets use their own [`BackendReg`], the client duplicate `client_ev`.
#[repr(C)]
pub struct Ctx {
    free_ev: sys::mk_event,
    client_ev: sys::mk_event,
    exchange: *mut Exchange,
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
    dead: bool,
    /// Where the context sits in its worker's live list, so that leaving it is O(1).
    live_at: usize,
}

/// Where `ctx` sits in its worker's live list.
///
/// # Safety
/// `ctx` must be a context from [`new_ctx`] that is not freed yet.
pub unsafe fn live_index(ctx: *mut Ctx) -> usize {
    // SAFETY: as documented.
    unsafe { (*ctx).live_at }
}

/// Records where `ctx` sits in its worker's live list.
///
/// # Safety
/// `ctx` must be a context from [`new_ctx`] that is not freed yet.
pub unsafe fn set_live_index(ctx: *mut Ctx, at: usize) {
    // SAFETY: as documented.
    unsafe { (*ctx).live_at = at };
}

/// The core's view of Monkey's loop for one context.
struct MonkeyReactor {
    ctx: *mut Ctx,
}

impl Reactor for MonkeyReactor {
    fn set_interest(
        &mut self,
        side: Side,
        fd: RawFd,
        interest: Option<Interest>,
    ) -> io::Result<()> {
        if side == Side::Backend {
            // The core names backend sockets with their identity (`set_backend_interest`);
            // without it a registration could not be kept across descriptor reuse.
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "backend without identity",
            ));
        }
        // SAFETY: the reactor exists only while its context is live (not yet freed).
        let ev = unsafe { addr_of_mut!((*self.ctx).client_ev) };
        match interest {
            None => {
                // SAFETY: `ev` is a live event of this context.
                unsafe { ev_del(ev) };
                Ok(())
            }
            // SAFETY: `ev` lives in the context, which is freed only after it was
            // unregistered; it was zeroed at allocation.
            Some(i) => unsafe { watch(ev, fd, mask_of(i)) },
        }
    }

    fn set_backend_interest(
        &mut self,
        fd: RawFd,
        id: u64,
        interest: Option<Interest>,
    ) -> io::Result<()> {
        let reg = backend_reg(fd);
        if reg.is_null() {
            return Err(io::Error::other("out of memory"));
        }
        // SAFETY: `reg` is this worker's never-freed registration for descriptor `fd`; only
        // this thread touches it.
        unsafe {
            if (*reg).id != id {
                // Another connection had this descriptor before and is closed now, which
                // removed its registration from epoll: start afresh without any syscall (a
                // syscall on `fd` for the old connection could hit a socket that is not ours).
                (*reg).id = id;
                (*reg).ev.status = sys::MK_EVENT_NONE;
                (*reg).ev.mask = 0;
                (*reg).unseen = false;
            }
            let ev = addr_of_mut!((*reg).ev);
            match interest {
                None => {
                    // The exchange lets the connection go: to the pool (where it stays
                    // registered for reading, so the next request on it needs no syscall and
                    // a backend that closes it is noticed) or to be closed (which removes the
                    // registration), or it pauses reading (backpressure). Edge-triggered, a
                    // readiness the relay has not acted on is reported only once: a FIN
                    // within the edge that brought the end of the response, or bytes that
                    // came while nobody read. Then (`unseen`) the registration is re-armed,
                    // which reports it again to the pool. Otherwise nothing is pending: the
                    // relay pools a connection only when its last read drained the socket,
                    // and whatever arrives later raises a new edge.
                    (*reg).owner = ptr::null_mut();
                    let registered = (*ev).status & sys::MK_EVENT_REGISTERED != 0;
                    if registered && ((*ev).mask != sys::MK_EVENT_READ || (*reg).unseen) {
                        return watch_backend(ev, fd, sys::MK_EVENT_READ);
                    }
                    Ok(())
                }
                Some(i) => {
                    (*reg).owner = self.ctx;
                    let mask = mask_of(i);
                    if (*ev).status & sys::MK_EVENT_REGISTERED != 0 && (*ev).mask == mask {
                        return Ok(());
                    }
                    watch_backend(ev, fd, mask)
                }
            }
        }
    }

    fn take_over_client(&mut self) {
        // Monkey must stop reading the client socket, or it would parse the tunnelled bytes
        // as HTTP. Its connection event is unregistered; when the tunnel ends the request
        // ends with close, and Monkey's connection removal tolerates the missing
        // registration. Until then Monkey sees no hang-up: the exchange notices end of file
        // on its own duplicate.
        // SAFETY: the context is live, so its session and connection are too.
        unsafe { ev_del(addr_of_mut!((*(*(*self.ctx).cs).conn).event)) };
    }
}

fn mask_of(interest: Interest) -> u32 {
    match interest {
        Interest::Read => sys::MK_EVENT_READ,
        Interest::Write => sys::MK_EVENT_WRITE,
        Interest::ReadWrite => sys::MK_EVENT_READ | sys::MK_EVENT_WRITE,
    }
}

/// Registers (or re-registers) `ev` for `fd` as a plugin event with `mask`.
///
/// # Safety
/// `ev` must point to a live `mk_event` that stays valid while registered.
unsafe fn watch(ev: *mut sys::mk_event, fd: RawFd, mask: u32) -> io::Result<()> {
    // SAFETY: forwarded from the caller.
    if unsafe { ev_add(fd, sys::MK_EVENT_CUSTOM, mask, ev) } {
        Ok(())
    } else {
        Err(io::Error::other("ev_add failed"))
    }
}

/// Registers (or re-registers) a backend socket's `ev` in the worker's loop with `mask`,
/// edge-triggered when Monkey runs epoll (else through `ev_add`, level-triggered).
///
/// Why edge-triggered: epoll puts a level-triggered descriptor it has just reported back on
/// its ready list, ahead of descriptors that become ready while the loop works through the
/// batch, so a backend that answers again soon jumps the queue; under load with a few hundred
/// connections that widened the latency spread (p99) against nginx, which uses edge-triggered
/// epoll. Edge-triggered descriptors are reported in the order they became ready, and are not
/// polled again on each wait. The relay reads and writes until `WouldBlock` before it waits,
/// which is what edge-triggered readiness needs.
///
/// # Safety
/// `ev` must be the `ev` (first member) of a live `BackendReg`.
unsafe fn watch_backend(ev: *mut sys::mk_event, fd: RawFd, mask: u32) -> io::Result<()> {
    let Some(efd) = api::epoll_fd() else {
        // SAFETY: forwarded from the caller.
        return unsafe { watch(ev, fd, mask) };
    };
    // SAFETY: `ev` is live (caller); its status says whether `fd` is in the set already —
    // the same bookkeeping Monkey's ev_add keeps, so either path can follow the other.
    unsafe {
        let op = if (*ev).status & sys::MK_EVENT_REGISTERED != 0 {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        let mut flags = libc::EPOLLERR | libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLET;
        if mask & sys::MK_EVENT_READ != 0 {
            flags |= libc::EPOLLIN;
        }
        if mask & sys::MK_EVENT_WRITE != 0 {
            flags |= libc::EPOLLOUT;
        }
        // Monkey's loop finds the event through data.ptr, as for its own registrations.
        let mut event = libc::epoll_event {
            events: flags as u32,
            u64: ev as u64,
        };
        if libc::epoll_ctl(efd, op, fd, &mut event) != 0 {
            return Err(io::Error::last_os_error());
        }
        (*ev).fd = fd;
        (*ev).type_ = sys::MK_EVENT_CUSTOM as _;
        (*ev).status = sys::MK_EVENT_REGISTERED as _;
        (*ev).mask = mask;
        // Armed afresh: anything pending is reported again.
        (*ev.cast::<BackendReg>()).unseen = false;
    }
    Ok(())
}

/// The loop registration of a backend socket. One per descriptor number a worker has used
/// for a backend, never freed, so that an idle pooled connection can stay registered between
/// exchanges (sparing two `epoll_ctl` per request) and a late event never reaches freed
/// memory. `owner` is the context using the connection, or null while it is pooled.
#[repr(C)]
pub struct BackendReg {
    ev: sys::mk_event,
    id: u64,
    fd: c_int,
    owner: *mut Ctx,
    /// The edge-triggered registration reported something the relay may not have acted on
    /// (a hang-up or error flag, or readiness while no exchange was reading): re-arm it when
    /// the connection is released, so the pool hears of it.
    unseen: bool,
}

thread_local! {
    /// This worker's backend registrations, indexed by descriptor. Kept apart from the worker
    /// state because the reactor runs while that state is borrowed.
    static BACKEND_REGS: std::cell::RefCell<Vec<*mut BackendReg>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This worker's registration for backend descriptor `fd` (allocated on first use; null
/// when out of memory).
fn backend_reg(fd: RawFd) -> *mut BackendReg {
    let Ok(i) = usize::try_from(fd) else {
        return ptr::null_mut();
    };
    BACKEND_REGS.with(|regs| {
        let mut regs = regs.borrow_mut();
        if regs.len() <= i {
            regs.resize(i + 1, ptr::null_mut());
        }
        if regs[i].is_null() {
            let reg = mem_alloc_z(std::mem::size_of::<BackendReg>()).cast::<BackendReg>();
            if !reg.is_null() {
                // SAFETY: fresh zeroed memory of the right size; a zeroed mk_event is the
                // unregistered state, id 0 is never a connection's id.
                unsafe {
                    (*reg).ev.handler = Some(on_backend_reg);
                    (*reg).fd = fd;
                    (*reg).owner = ptr::null_mut();
                }
            }
            regs[i] = reg;
        }
        regs[i]
    })
}

/// A backend socket is ready: hand it to its exchange, or, for a pooled connection, close it
/// (an idle connection only wakes up when the backend closed it or sent stray bytes), so it
/// is never reused.
unsafe extern "C" fn on_backend_reg(ev: *mut c_void) -> c_int {
    let reg = ev.cast::<BackendReg>();
    // SAFETY: `ev` is the first member of a never-freed BackendReg.
    let (owner, fd, id) = unsafe { ((*reg).owner, (*reg).fd, (*reg).id) };
    if api::epoll_fd().is_some() {
        // Edge-triggered (see `watch_backend`): a hang-up that came with data must not be
        // lost once the relay has read the data. Unknown flags count as a hang-up.
        let hang_up = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        let fired = api::fired_events(ev.cast::<sys::mk_event>()).unwrap_or(hang_up);
        if fired & hang_up != 0 {
            // SAFETY: `reg` is ours; only this thread touches it.
            unsafe { (*reg).unseen = true };
        }
    }
    if owner.is_null() {
        // Only if the descriptor still belongs to that pooled connection: then closing it
        // also removes its registration.
        let removed = worker::with(|w| w.worker.pool.remove(fd, id)).unwrap_or(false);
        // SAFETY: `reg` is ours; only this thread touches it.
        unsafe {
            if removed {
                // The registration went away with the socket.
                (*reg).ev.status = sys::MK_EVENT_NONE;
                (*reg).ev.mask = 0;
                (*reg).unseen = false;
            } else {
                // Not pooled: an exchange paused reading it (backpressure). It reads again
                // before it lets the connection go, but a readiness it never sees must be
                // re-armed then.
                (*reg).unseen = true;
            }
        }
        return 0;
    }
    // SAFETY: a context is the owner only while its exchange uses this socket; a context
    // that ended in this loop round is marked dead and its memory is still allocated.
    unsafe { on_event(owner, Side::Backend) };
    0
}

/// Allocates a context for a request Monkey gave to stage 30 (zeroed events, handlers set).
///
/// The one allocation per request left on the plugin's path (exchanges and their buffers are
/// reused): an event of a context that ended may still be in the batch Monkey's loop is
/// dispatching, so its memory must outlive the round, which Monkey's deferred free
/// (`sched_event_free`) provides and a free list of our own could not know.
pub fn new_ctx(cs: *mut sys::mk_http_session, sr: *mut sys::mk_http_request) -> *mut Ctx {
    let ctx = mem_alloc_z(std::mem::size_of::<Ctx>()).cast::<Ctx>();
    if ctx.is_null() {
        return ctx;
    }
    // SAFETY: `ctx` is fresh malloc memory of the right size and alignment (malloc aligns to
    // 16); writing a whole value initialises every field.
    unsafe {
        ptr::write(
            ctx,
            Ctx {
                free_ev: sys::mk_event::default(),
                client_ev: sys::mk_event {
                    handler: Some(on_client),
                    ..Default::default()
                },
                exchange: ptr::null_mut(),
                cs,
                sr,
                dead: false,
                live_at: usize::MAX,
            },
        );
    }
    ctx
}

/// A context made outside Monkey, for the adapter's unit tests (no session, no request).
#[cfg(test)]
pub fn test_ctx() -> Box<Ctx> {
    Box::new(Ctx {
        free_ev: sys::mk_event::default(),
        client_ev: sys::mk_event::default(),
        exchange: ptr::null_mut(),
        cs: ptr::null_mut(),
        sr: ptr::null_mut(),
        dead: false,
        live_at: usize::MAX,
    })
}

/// Starts the exchange on a fresh context. Returns false (context freed) if it could not
/// start; then the caller answers locally. The exchange does no I/O before the next loop
/// round, so the request always ends from an event handler, never inside stage 30.
///
/// # Safety
/// `ctx` comes from [`new_ctx`] and nothing else references it yet.
pub unsafe fn start(
    ctx: *mut Ctx,
    make: impl FnOnce(&mut worker::WorkerState, &mut dyn Reactor) -> Exchange,
) -> bool {
    let mut reactor = MonkeyReactor { ctx };
    let started = worker::with(|w| {
        let exchange = make(w, &mut reactor);
        // SAFETY: `ctx` is a fresh context, not listed yet.
        unsafe { w.add_live(ctx) };
        w.box_exchange(exchange)
    });
    let Some(exchange) = started else {
        // SAFETY: nothing registered this context; it is ours to free.
        unsafe { libc::free(ctx.cast()) };
        return false;
    };
    // SAFETY: `ctx` is live and exclusively ours during stage 30; its events fire only in a
    // later loop round, after this pointer is set.
    unsafe { (*ctx).exchange = Box::into_raw(exchange) };
    true
}

/// Whether the context's exchange has an expired deadline.
///
/// # Safety
/// `ctx` must be a live (not freed) context.
pub unsafe fn is_due(ctx: *mut Ctx, now: Instant) -> bool {
    // SAFETY: live context; the exchange pointer is valid while not dead.
    unsafe {
        !(*ctx).dead
            && !(*ctx).exchange.is_null()
            && (*(*ctx).exchange).deadline().is_some_and(|d| d <= now)
    }
}

/// Delivers a timeout to the context's exchange.
///
/// # Safety
/// `ctx` must be live or dead-but-not-yet-freed (same loop round).
pub unsafe fn on_timeout(ctx: *mut Ctx, now: Instant) {
    // SAFETY: as documented; a dead context is skipped.
    unsafe {
        if (*ctx).dead || (*ctx).exchange.is_null() {
            return;
        }
        let exchange = (*ctx).exchange;
        let progress = drive(ctx, |w, r| (*exchange).on_timeout(now, &mut w.worker, r));
        after(ctx, progress);
    }
}

/// Runs `f` on the worker state with this context's reactor; a panic ends the request.
///
/// # Safety
/// `ctx` must be live.
unsafe fn drive(
    ctx: *mut Ctx,
    f: impl FnOnce(&mut worker::WorkerState, &mut dyn Reactor) -> Progress,
) -> Progress {
    let mut reactor = MonkeyReactor { ctx };
    match catch_unwind(AssertUnwindSafe(|| worker::with(|w| f(w, &mut reactor)))) {
        Ok(Some(p)) => p,
        Ok(None) => Progress::Pending,
        Err(_) => {
            api::log(
                crate::log::Level::Error,
                "internal error while relaying; connection closed",
            );
            Progress::Done(Finish {
                keep_alive: false,
                status: 500,
            })
        }
    }
}

/// Acts on an exchange's progress.
///
/// # Safety
/// `ctx` must be live.
unsafe fn after(ctx: *mut Ctx, progress: Progress) {
    if let Progress::Done(finish) = progress {
        // SAFETY: live context, forwarded.
        unsafe { finish_request(ctx, finish) };
    }
}

unsafe extern "C" fn on_client(ev: *mut c_void) -> c_int {
    // SAFETY: `ev` is `&ctx.client_ev`; container-of by its offset gives the context.
    unsafe {
        on_event(
            ev.cast::<u8>()
                .sub(offset_of!(Ctx, client_ev))
                .cast::<Ctx>(),
            Side::Client,
        )
    };
    0
}

/// # Safety
/// `ctx` must be live or dead-but-not-yet-freed.
unsafe fn on_event(ctx: *mut Ctx, side: Side) {
    // SAFETY: see the callers; a dead context is ignored.
    unsafe {
        if (*ctx).dead || (*ctx).exchange.is_null() {
            return;
        }
        let exchange = (*ctx).exchange;
        let progress = drive(ctx, |w, r| (*exchange).on_ready(side, &mut w.worker, r));
        after(ctx, progress);
    }
}

/// Unregisters the client event, marks the context dead and hands its memory to Monkey's
/// deferred free (after the current loop round, §1.6-5).
///
/// # Safety
/// `ctx` must be live; its exchange must already be dropped.
unsafe fn retire(ctx: *mut Ctx) {
    // SAFETY: live context.
    unsafe {
        ev_del(addr_of_mut!((*ctx).client_ev));
        worker::with(|w| w.remove_live(ctx));
        (*ctx).dead = true;
        (*ctx).client_ev.type_ |= sys::MK_EVENT_IDLE;
        if let Some(free) = api::api().sched_event_free {
            free(addr_of_mut!((*ctx).free_ev));
        }
    }
}

/// Ends the request the context serves: frees the exchange (closing the client dup and, if
/// not pooled, the backend), then hands the connection back to Monkey (§1.6).
///
/// # Safety
/// `ctx` must be live.
unsafe fn finish_request(ctx: *mut Ctx, finish: Finish) {
    // SAFETY: live context; `cs`/`sr` stay valid until `http_request_end` (the request is
    // still pending in Monkey: it ends only through that call or a hang-up, which would have
    // retired this context first).
    unsafe {
        let (cs, sr) = ((*ctx).cs, (*ctx).sr);
        let close = !finish.keep_alive || (*cs).close_now != 0;
        let exchange = ptr::replace(addr_of_mut!((*ctx).exchange), ptr::null_mut());
        if !exchange.is_null() {
            let mut exchange = Box::from_raw(exchange);
            // Keep the client duplicate for the connection's next request; when the
            // connection closes, drop what the client sent that will not be answered first.
            let kept = exchange.take_client();
            let kept = match (close, kept) {
                (true, Some(mut stream)) => {
                    crate::relay::discard_unread(&mut stream);
                    None
                }
                (_, kept) => kept,
            };
            let (socket, conn, peer) = ((*cs).socket, (*cs).conn as usize, exchange.client_addr());
            worker::with(|w| {
                if let Some(stream) = kept {
                    w.keep_client(socket, conn, stream, peer);
                }
                exchange.recycle(&mut w.worker);
                w.release_exchange(exchange);
            });
        }
        retire(ctx);
        // Cleared before the call: it re-enters stage30_hangup (and maybe stage30).
        (*sr).handler_data = ptr::null_mut();
        (*sr).headers.status = c_int::from(finish.status);
        let socket = (*cs).socket;
        // Monkey reads the client again (and finds what it sent meanwhile) from here on.
        hold::release((*cs).conn, socket);
        if close {
            // Monkey looks for pipelined requests before it looks at close_now
            // (`mk_http_request_end`), and would answer one after a `Connection: close`
            // response: with no next request to find, it closes.
            (*cs).parser.i = -1;
        }
        let Some(end) = api::api().http_request_end else {
            return;
        };
        let ret = end(api::plugin(), cs, c_int::from(close));
        if close && ret == 0 {
            // Monkey kept the connection although we asked it to close (it did after chunked
            // request bodies, and after pipelined requests, before its parser was pointed
            // past them). The response said `Connection: close`, so end the connection
            // ourselves; Monkey then sees the hang-up and removes the session.
            libc::shutdown(socket, libc::SHUT_RDWR);
        }
        if ret == 1 && (*cs).sr_fixed.handler_data.is_null() {
            // A pipelined request was dispatched inside the call and Monkey answers it
            // itself: arm WRITE so its core flushes it (§1.6-4).
            ev_add(
                (*cs).socket,
                sys::MK_EVENT_CONNECTION,
                sys::MK_EVENT_WRITE,
                addr_of_mut!((*(*cs).conn).event),
            );
        }
    }
}

/// Monkey's hang-up for a request still in progress: release everything, answer nothing.
///
/// # Safety
/// `sr` must be the live request Monkey passed to `stage30_hangup`.
pub unsafe fn hangup(sr: *mut sys::mk_http_request) {
    // SAFETY: `handler_data` is NULL or a live context of ours (cleared whenever a context
    // ends).
    unsafe {
        let ctx = (*sr).handler_data.cast::<Ctx>();
        if ctx.is_null() || (*ctx).dead {
            return;
        }
        let exchange = ptr::replace(addr_of_mut!((*ctx).exchange), ptr::null_mut());
        if !exchange.is_null() {
            let exchange = Box::from_raw(exchange);
            let mut reactor = MonkeyReactor { ctx };
            let aborted = catch_unwind(AssertUnwindSafe(|| {
                worker::with(|w| exchange.abort(&mut w.worker, &mut reactor))
            }));
            if !matches!(aborted, Ok(Some(()))) {
                api::log(
                    crate::log::Level::Warn,
                    "hang-up while the worker state was busy; exchange dropped",
                );
            }
        }
        (*sr).handler_data = ptr::null_mut();
        // Monkey is removing the session and closes the connection; its own read handler is
        // put back all the same, so the connection is never left with ours.
        hold::forget((*(*ctx).cs).conn);
        retire(ctx);
    }
}
