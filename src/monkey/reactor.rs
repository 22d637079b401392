//! The core's event-loop seam ([`crate::reactor::Reactor`]) on Monkey's loop: socket
//! registrations by token, and one timer per worker.
//!
//! Every descriptor the core asks to watch gets a registration of its own ([`Reg`]), made on
//! first use and never freed, so that an event still in the batch Monkey's loop dispatches
//! never reaches freed memory, and an idle pooled connection stays registered between
//! exchanges (a new owner takes it over by writing its token: no syscall). The registration
//! names its owner by token only; its handler hands the event to the worker's core and, when
//! that ends an exchange, the request to [`super::finish`].
//!
//! The timer is a `timerfd` armed (one-shot, absolute) for the moment the core asks for, so an
//! idle worker is never woken (Monkey's own timer API never reaches plugins, §1.8); after a
//! burst, [`super::trim`] may ask for a round sooner, in which the worker gives free memory
//! back.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{self, addr_of_mut};

use super::api::{self, ev_add, ev_del, mem_alloc_z};
use super::finish;
use super::regs::{Reg, Regs};
use super::sys;
use super::trim;
use super::worker;
use crate::clock::Moment;
use crate::log;
use crate::reactor::{Interest, Reactor, Source, Token};

/// This worker's registration for descriptor `fd` in `regs` (made on first use; null when
/// out of memory).
fn reg_for(regs: &mut Regs, fd: RawFd) -> *mut Reg {
    let Some(entry) = regs.entry(fd) else {
        return ptr::null_mut();
    };
    if entry.is_null() {
        let reg = mem_alloc_z(std::mem::size_of::<Reg>()).cast::<Reg>();
        if !reg.is_null() {
            let fresh = Reg {
                ev: sys::mk_event {
                    handler: Some(on_event),
                    ..Default::default()
                },
                token: 0,
                id: 0,
                unseen: false,
            };
            // SAFETY: fresh zeroed malloc memory of the right size and alignment; writing
            // a whole value initialises it (a zeroed event is unregistered, §0-9).
            unsafe { reg.write(fresh) };
        }
        *entry = reg;
    }
    *entry
}

fn mask_of(interest: Interest) -> u32 {
    match interest {
        Interest::Read => sys::MK_EVENT_READ,
        Interest::Write => sys::MK_EVENT_WRITE,
        Interest::ReadWrite => sys::MK_EVENT_READ | sys::MK_EVENT_WRITE,
    }
}

/// Registers (or re-registers) `reg` for `fd` with `mask`, edge-triggered when Monkey runs
/// epoll (else through `ev_add`, level-triggered).
///
/// Why edge-triggered: epoll puts a level-triggered descriptor it has just reported back on
/// its ready list, ahead of descriptors that become ready while the loop works through the
/// batch, so a backend that answers again soon jumps the queue; under load with a few hundred
/// connections that widened the latency spread (p99) against nginx, which uses edge-triggered
/// epoll. Edge-triggered descriptors are reported in the order they became ready and are not
/// polled again on each wait. The relay reads and writes until `WouldBlock` before it waits,
/// which is what edge-triggered readiness needs.
fn arm(reg: &mut Reg, fd: RawFd, mask: u32) -> io::Result<()> {
    let ev: *mut sys::mk_event = &mut reg.ev;
    let Some(efd) = api::epoll_fd() else {
        // SAFETY: `ev` is a never-freed registration of this worker, zeroed before its first
        // use.
        return match unsafe { ev_add(fd, sys::MK_EVENT_CUSTOM, mask, ev) } {
            true => Ok(()),
            false => Err(io::Error::other("ev_add failed")),
        };
    };
    // The event's status says whether `fd` is in the set already — the same bookkeeping
    // Monkey's ev_add keeps, so either path can follow the other.
    let op = if reg.ev.status & sys::MK_EVENT_REGISTERED != 0 {
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
    // SAFETY: a plain syscall on this worker's epoll set with a valid event.
    if unsafe { libc::epoll_ctl(efd, op, fd, &mut event) } != 0 {
        return Err(io::Error::last_os_error());
    }
    reg.ev.fd = fd;
    reg.ev.type_ = sys::MK_EVENT_CUSTOM as _;
    reg.ev.status = sys::MK_EVENT_REGISTERED as _;
    reg.ev.mask = mask;
    // Armed afresh: anything pending is reported again.
    reg.unseen = false;
    Ok(())
}

/// The core's view of Monkey's loop on this worker. `sessions` are the requests the
/// worker's exchanges serve, for [`Reactor::take_over_client`].
pub struct MonkeyReactor<'a> {
    /// Requests by exchange, as [`worker::WorkerState`] keeps them.
    pub sessions: &'a [Option<worker::Served>],
    /// The worker's registrations (see [`Regs`]).
    pub regs: &'a mut Regs,
}

impl Reactor for MonkeyReactor<'_> {
    fn watch(
        &mut self,
        source: Source,
        token: Token,
        interest: Option<Interest>,
    ) -> io::Result<()> {
        let reg = reg_for(self.regs, source.fd);
        // SAFETY: this worker's never-freed registration for the descriptor; only this thread
        // touches it, and no other reference to it is alive.
        let Some(reg) = (unsafe { reg.as_mut() }) else {
            return Err(io::Error::other("out of memory"));
        };
        if reg.id != source.id {
            // Another socket had this descriptor and is closed now, which removed its
            // registration from epoll: start afresh without any syscall (a syscall on `fd`
            // for the old socket could hit one that is not ours).
            reg.id = source.id;
            reg.ev.status = sys::MK_EVENT_NONE;
            reg.ev.mask = 0;
            reg.unseen = false;
        }
        let handover = reg.token != token.raw();
        reg.token = token.raw();
        let registered = reg.ev.status & sys::MK_EVENT_REGISTERED != 0;
        let Some(interest) = interest else {
            if registered && api::epoll_fd().is_none() {
                // Level-triggered, a registration nobody reads would make the loop spin.
                // SAFETY: the registration's event, registered in this worker's loop.
                unsafe { ev_del(&mut reg.ev) };
            }
            // Edge-triggered it stays: an event is then a spurious wake-up.
            return Ok(());
        };
        let mask = mask_of(interest);
        if registered && reg.ev.mask == mask && !(handover && reg.unseen) {
            return Ok(());
        }
        arm(reg, source.fd, mask)
    }

    fn release(&mut self, source: Source) {
        // SAFETY: as in `watch`.
        let Some(reg) = (unsafe { self.regs.existing(source.fd).as_mut() }) else {
            return;
        };
        if reg.id != source.id {
            return;
        }
        // SAFETY: the registration's event; `ev_del` does nothing unless it is registered.
        unsafe { ev_del(&mut reg.ev) };
        reg.ev.status = sys::MK_EVENT_NONE;
        reg.ev.mask = 0;
        reg.token = 0;
        reg.unseen = false;
    }

    fn wake_at(&mut self, at: Moment) {
        arm_timer(at);
    }

    fn take_over_client(&mut self, token: Token) {
        // Monkey must stop reading the client socket, or it would parse the tunnelled bytes
        // as HTTP. Until the tunnel ends Monkey sees no hang-up: the exchange notices end of
        // file on its own duplicate.
        if let Some(mut session) = worker::session_in(self.sessions, token) {
            session.stop_watching_connection();
        }
    }
}

/// A registered descriptor is ready: hand the event to its owner in the core.
unsafe extern "C" fn on_event(ev: *mut c_void) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let reg = ev.cast::<Reg>();
        if let Some(fired) = api::fired_on_epoll(ev.cast::<sys::mk_event>()) {
            // Edge-triggered (see `arm`): a hang-up that came with data must not be lost once
            // the owner has read the data. Unknown flags count as a hang-up.
            let hang_up = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
            let fired = fired.unwrap_or(hang_up);
            if fired & hang_up != 0 {
                // SAFETY: `ev` is the first member of a never-freed registration; only this
                // thread touches it.
                unsafe { (*reg).unseen = true };
            }
        }
        // SAFETY: `ev` is the first member of a never-freed registration of this worker
        // (Monkey dispatched it on this thread); a plain load.
        let token = unsafe { (*reg).token };
        if token == 0 {
            return;
        }
        let now = Moment::now();
        // One borrow of the worker's state for the event and the worker's side of an end.
        let Some((ending, over, live)) = worker::with(|w| {
            let (core, sessions, regs) = w.parts();
            let ended = core.on_ready(
                Token::from_raw(token),
                now,
                &mut MonkeyReactor { sessions, regs },
            );
            let over = ended.is_some();
            let ending = ended.and_then(|ended| finish::settle(w, ended));
            (ending, over, w.core.live_exchanges())
        }) else {
            return;
        };
        if let Some(ending) = ending {
            finish::end(ending);
        }
        if let Some(at) = trim::after_event(live, over, now) {
            arm_timer(at);
        }
    }));
    if result.is_err() {
        log::error("internal error while relaying");
    }
    0
}

/// The worker's timer: its registration (first member, as for [`Reg`]) and descriptor.
#[repr(C)]
struct Timer {
    ev: sys::mk_event,
    fd: c_int,
}

thread_local! {
    /// This worker's timer descriptor (-1: none).
    static TIMER_FD: Cell<c_int> = const { Cell::new(-1) };
    /// When the timer is armed for (0: not armed).
    static ARMED: Cell<u64> = const { Cell::new(0) };
}

/// Sets up this worker's timer (from `worker_init`, on the worker thread).
pub fn init_timer() {
    // SAFETY: plain syscall; the timerfd is owned by this worker for the life of the process.
    let fd = unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
        )
    };
    if fd < 0 {
        log::error("cannot create the timeout timer; timeouts are disabled on a worker");
        return;
    }
    let timer = mem_alloc_z(std::mem::size_of::<Timer>()).cast::<Timer>();
    if timer.is_null() {
        log::error("out of memory for the timeout timer; timeouts are disabled on a worker");
        return;
    }
    let value = Timer {
        ev: sys::mk_event {
            handler: Some(on_timer),
            ..Default::default()
        },
        fd,
    };
    // SAFETY: zeroed malloc memory of the right size, never freed: the registration stays
    // valid for the worker's life.
    unsafe { timer.write(value) };
    // SAFETY: the timer's own event, zeroed before its first registration. Level-triggered:
    // reading the counter in `on_timer` clears the readiness.
    let ev = unsafe { addr_of_mut!((*timer).ev) };
    // SAFETY: `ev` lives in the timer, which is never freed or moved, and was zeroed by
    // `mem_alloc_z` before this first registration.
    if !unsafe { ev_add(fd, sys::MK_EVENT_CUSTOM, sys::MK_EVENT_READ, ev) } {
        log::error("cannot register the timeout timer; timeouts are disabled on a worker");
        return;
    }
    TIMER_FD.with(|t| t.set(fd));
}

/// Arms this worker's timer for `at` (one-shot, on `CLOCK_MONOTONIC`, which is the clock
/// [`Moment`] reads) unless it is armed for that moment or sooner already: the core only
/// ever asks for a wake-up sooner than the one it asked for last, and a sooner one (for
/// [`trim`]) only runs its round early, which finds nothing due and asks again.
fn arm_timer(at: Moment) {
    let fd = TIMER_FD.with(Cell::get);
    let nanos = at.nanos().max(1);
    let armed = ARMED.with(Cell::get);
    if fd < 0 || (armed != 0 && armed <= nanos) {
        return;
    }
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: (nanos / 1_000_000_000) as libc::time_t,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        },
    };
    // SAFETY: `fd` is this worker's timerfd; `spec` is a valid itimerspec. A moment already
    // past expires at once.
    unsafe { libc::timerfd_settime(fd, libc::TFD_TIMER_ABSTIME, &spec, ptr::null_mut()) };
    ARMED.with(|a| a.set(nanos));
}

/// The timer expired: the core acts on what is due; exchanges that ended end their requests.
unsafe extern "C" fn on_timer(ev: *mut c_void) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let timer = ev.cast::<Timer>();
        // SAFETY: `ev` is the first member of this worker's never-freed timer.
        let fd = unsafe { (*timer).fd };
        let mut counter = [0u8; 8];
        // SAFETY: reading the timerfd's 8-byte counter into a buffer of that size clears the
        // level-triggered readiness.
        unsafe { libc::read(fd, counter.as_mut_ptr().cast(), 8) };
        ARMED.with(|a| a.set(0));
        let now = Moment::now();
        let ended = worker::with(|w| {
            let mut ended = std::mem::take(&mut w.ended);
            let (core, sessions, regs) = w.parts();
            core.on_timer(now, &mut MonkeyReactor { sessions, regs }, &mut ended);
            ended
        });
        let Some(mut ended) = ended else { return };
        for e in ended.drain(..) {
            finish::finish(e);
        }
        if let Some(live) = worker::with(|w| {
            w.ended = ended;
            w.core.live_exchanges()
        }) {
            trim::on_timer(live);
        }
    }));
    if result.is_err() {
        log::error("internal error in the timeout timer");
    }
    0
}
