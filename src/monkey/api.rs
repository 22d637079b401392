//! Monkey's function table (`struct plugin_api`) and the plugin object, saved at
//! `init_plugin`, with thin wrappers that keep the raw calls in one place.

use std::ffi::{c_int, c_void, CString};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};

use super::sys;
use crate::log::Level;

static API: AtomicPtr<sys::plugin_api> = AtomicPtr::new(ptr::null_mut());
static PLUGIN: AtomicPtr<sys::mk_plugin> = AtomicPtr::new(ptr::null_mut());

/// Saves Monkey's API table and our plugin object (called once, from `init_plugin`).
pub fn install(plugin: *mut sys::mk_plugin, api: *mut sys::plugin_api) {
    PLUGIN.store(plugin, Ordering::Release);
    API.store(api, Ordering::Release);
}

/// Monkey's API table. Only called after `init_plugin` stored it (every other callback runs
/// after `init_plugin`).
pub fn api() -> &'static sys::plugin_api {
    let p = API.load(Ordering::Acquire);
    assert!(!p.is_null(), "Monkey API used before init_plugin");
    // SAFETY: Monkey fills the table before calling `init_plugin` and never frees or moves
    // it while the server runs (it is part of the server context); we only read it.
    unsafe { &*p }
}

/// Our plugin object as Monkey registered it (needed by `http_request_end`).
pub fn plugin() -> *mut sys::mk_plugin {
    PLUGIN.load(Ordering::Acquire)
}

/// Writes one line to Monkey's log (stdout) with the given level.
pub fn log(level: Level, message: &str) {
    let level = match level {
        Level::Info => sys::MK_INFO,
        Level::Warn => sys::MK_WARN,
        Level::Error => sys::MK_ERR,
    };
    let line =
        CString::new(format!("[proxy_reverse] {message}").replace('\0', " ")).unwrap_or_default();
    if let Some(f) = api()._error {
        // SAFETY: `_error` is printf-style; the format is a literal "%s" and the one argument
        // a valid NUL-terminated string that outlives the call.
        unsafe { f(level as c_int, c"%s".as_ptr(), line.as_ptr()) };
    }
}

/// What a worker keeps about its loop: one thread-local, so that an event's lookups cost
/// one access to it (each thread-local of a shared library is a `__tls_get_addr` call).
struct LoopState {
    /// This worker's epoll loop, looked up once.
    epoll: std::cell::Cell<Epoll>,
    /// Where [`fired_events`] found the previous event in the loop's batch (+1).
    fired_hint: std::cell::Cell<usize>,
}

thread_local! {
    static LOOP: LoopState = const {
        LoopState {
            epoll: std::cell::Cell::new(Epoll::Unknown),
            fired_hint: std::cell::Cell::new(0),
        }
    };
}

/// What a worker knows about its loop's epoll backend.
#[derive(Clone, Copy)]
enum Epoll {
    /// Not looked up yet.
    Unknown,
    /// Another backend, or not a worker thread.
    Absent,
    /// The epoll descriptor and the loop whose `data` is its `mk_event_ctx`.
    Present {
        efd: c_int,
        lp: *mut sys::mk_event_loop,
    },
}

/// This worker's epoll loop (descriptor and loop), when Monkey runs its epoll backend.
fn epoll() -> Option<(c_int, *mut sys::mk_event_loop)> {
    LOOP.with(epoll_in)
}

/// [`epoll`] with this worker's [`LoopState`] at hand. (Inlined: twice per request, it is a
/// load and a match once the loop is known.)
#[inline]
fn epoll_in(state: &LoopState) -> Option<(c_int, *mut sys::mk_event_loop)> {
    let mut known = state.epoll.get();
    if let Epoll::Unknown = known {
        known = first_epoll_in(state);
    }
    match known {
        Epoll::Present { efd, lp } => Some((efd, lp)),
        _ => None,
    }
}

/// [`epoll_in`]'s first call on a worker: the loop looked up and kept.
#[cold]
#[inline(never)]
fn first_epoll_in(state: &LoopState) -> Epoll {
    let known = lookup_epoll().map_or(Epoll::Absent, |(efd, lp)| Epoll::Present { efd, lp });
    state.epoll.set(known);
    known
}

/// The epoll descriptor of the current worker's loop, when Monkey runs its epoll backend
/// (looked up once per worker; `None` for any other backend or on a non-worker thread).
pub fn epoll_fd() -> Option<c_int> {
    epoll().map(|(efd, _)| efd)
}

fn lookup_epoll() -> Option<(c_int, *mut sys::mk_event_loop)> {
    let backend = api().ev_backend?;
    // SAFETY: `ev_backend` returns a static NUL-terminated name (or NULL).
    let name = unsafe { backend() };
    // SAFETY: checked non-NULL; Monkey's backend names are string literals.
    if name.is_null() || unsafe { std::ffi::CStr::from_ptr(name) } != c"epoll" {
        return None;
    }
    let lp = sched_loop();
    if lp.is_null() {
        return None;
    }
    // SAFETY: `lp` is this worker's live loop; with the epoll backend its `data` is the
    // `mk_event_ctx` declared in monkey_abi.h (checked by the layout tests), alive for the
    // worker's life.
    let ctx = unsafe { (*lp).data }.cast::<sys::mk_event_ctx>();
    if ctx.is_null() {
        return None;
    }
    // SAFETY: `ctx` is the live loop's epoll context (non-NULL, checked), alive for the
    // worker's life; a plain load.
    let efd = unsafe { (*ctx).efd };
    (efd >= 0).then_some((efd, lp))
}

/// The epoll flags that fired for `ev` in the batch the worker's loop is dispatching, found
/// in the loop's own `epoll_event` array (Monkey passes handlers the event alone). `None`
/// without the epoll backend or if `ev` is not in the batch. Handlers run in the array's
/// order, so the search starts after the previous hit and is short.
///
/// `lp` is this worker's live loop and its `data` the epoll context (see `lookup_epoll`):
/// its `events` hold `queue_size` entries, of which the first `n_events` were filled by the
/// `epoll_wait` whose batch is being dispatched on this thread now.
pub fn fired_events(ev: *const sys::mk_event) -> Option<u32> {
    LOOP.with(|state| fired_in(state, ev))
}

/// [`fired_events`] for a handler that needs to know whether the epoll backend runs at all:
/// `None` without it, `Some(None)` when `ev` is not in the batch. One access to the worker's
/// loop state for both answers.
pub fn fired_on_epoll(ev: *const sys::mk_event) -> Option<Option<u32>> {
    LOOP.with(|state| {
        let (_, lp) = epoll_in(state)?;
        Some(fired_in_loop(state, lp, ev))
    })
}

/// [`fired_events`] with this worker's [`LoopState`] at hand.
fn fired_in(state: &LoopState, ev: *const sys::mk_event) -> Option<u32> {
    let (_, lp) = epoll_in(state)?;
    fired_in_loop(state, lp, ev)
}

/// [`fired_in`] with the worker's loop `lp` (from `epoll_in`) at hand.
fn fired_in_loop(
    state: &LoopState,
    lp: *mut sys::mk_event_loop,
    ev: *const sys::mk_event,
) -> Option<u32> {
    // SAFETY: `lp` is this worker's live loop (`epoll` found it on this thread); a plain load.
    let ctx = unsafe { (*lp).data }.cast::<sys::mk_event_ctx>();
    // SAFETY: with the epoll backend the loop's `data` is its live `mk_event_ctx` (layout checked
    // by the layout tests); a plain load.
    let queue = usize::try_from(unsafe { (*ctx).queue_size }).ok()?;
    // SAFETY: `lp` is this worker's live loop (`epoll` found it on this thread); a plain load.
    let n = usize::try_from(unsafe { (*lp).n_events }).ok()?.min(queue);
    // SAFETY: `ctx` is that loop's live epoll context; a plain load.
    let events = unsafe { (*ctx).events }.cast::<libc::epoll_event>();
    if events.is_null() || n == 0 {
        return None;
    }
    let hint = state.fired_hint.get();
    let hint = if hint < n { hint } else { 0 };
    for i in (hint..n).chain(0..hint) {
        // SAFETY: `i < n <= queue`: inside the array.
        let entry = unsafe { events.add(i) };
        // SAFETY: a filled entry of the batch; read unaligned, as the kernel's
        // `epoll_event` is packed on x86-64.
        let e = unsafe { entry.read_unaligned() };
        if e.u64 == ev as u64 {
            state.fired_hint.set(i + 1);
            return Some(e.events);
        }
    }
    None
}

/// The current worker's event loop (valid on worker threads only).
pub fn sched_loop() -> *mut sys::mk_event_loop {
    match api().sched_loop {
        // SAFETY: called only from worker_init, stage callbacks and event handlers, which run
        // on worker threads where Monkey's thread-local scheduler pointer is set (§3).
        Some(f) => unsafe { f() },
        None => ptr::null_mut(),
    }
}

/// `ev_add(loop, fd, type, mask, event)`; false on failure.
///
/// # Safety
/// `event` must point to a live `mk_event` that stays valid (and is not moved) while it is
/// registered, zeroed before its first registration.
pub unsafe fn ev_add(fd: c_int, event_type: c_int, mask: u32, event: *mut sys::mk_event) -> bool {
    let Some(f) = api().ev_add else { return false };
    let lp = sched_loop();
    // SAFETY: `event` is live, stable and was zeroed before its first registration (this
    // function's contract, which every caller states at its call); `lp` is the loop of the
    // worker thread this runs on, where `event` is registered.
    unsafe { f(lp, fd, event_type, mask, event.cast::<c_void>()) == 0 }
}

/// `ev_del(loop, event)` if the event is registered.
///
/// # Safety
/// `event` must point to a live `mk_event`.
pub unsafe fn ev_del(event: *mut sys::mk_event) {
    // SAFETY: `event` is live (this function's contract, stated at each call); reading its
    // status is a plain load.
    let registered = unsafe { (*event).status } & sys::MK_EVENT_REGISTERED != 0;
    if registered {
        if let Some(f) = api().ev_del {
            let lp = sched_loop();
            // SAFETY: the event is registered in this worker's loop.
            unsafe { f(lp, event) };
        }
    }
}

/// `mem_alloc_z(size)`: zeroed malloc memory that Monkey may later `free()`.
pub fn mem_alloc_z(size: usize) -> *mut c_void {
    match api().mem_alloc_z {
        // SAFETY: plain allocation.
        Some(f) => unsafe { f(size) },
        None => ptr::null_mut(),
    }
}
