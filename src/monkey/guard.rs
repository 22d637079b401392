//! What Monkey already did to a connection before it dispatched the request now in stage 30.
//!
//! Monkey answers some requests itself: when its parser refuses a head (`Content-Length : 40`,
//! `Content_Length:`, `Content-Length: +5`, a POST without a length it recognises, …) it
//! writes its own 411 or 400 (`mk_http_error`) and then ends the request with
//! `mk_http_request_end`, which parses the bytes behind the refused head as a pipelined
//! request and dispatches it — to stage 30, *from inside the error answer*, before it closes
//! the connection. Those bytes are whatever the client put behind a head Monkey could not
//! frame (a body it did not see as one, or a request smuggled in it): forwarding them would
//! let a client reach an origin with a request no framing agreed on. So stage 30 first asks
//! [`screen`] whether Monkey refused something on this connection that the request now
//! dispatched sits behind; if so the request is neither forwarded nor answered, and the
//! connection closes.
//!
//! Two signals, both read from Monkey's own bookkeeping (`include/monkey_abi.h`, checked by
//! the layout tests):
//!
//! * A read that completes a request marks the session complete (`cs->status`) and takes the
//!   connection out of Monkey's timeout queue (`conn->is_timeout_on`) before it dispatches
//!   the request. A dispatch while the session is still incomplete *and* the connection
//!   still waits in the queue is therefore one from inside the parse of a read that failed.
//!   (After the plugin's own `http_request_end` the session is incomplete too, but the
//!   connection is out of the queue: requests pipelined behind the plugin's are dispatched
//!   normally.)
//! * A refusal inside a chain of pipelined requests (behind one the plugin served, or one
//!   Monkey served) or inside a read that resumes a request that was incomplete leaves the
//!   session state as a normal pipelined dispatch does. What it changes is the count of
//!   requests ended on the connection (`counter_connections`), which every end raises by
//!   one: a request that completes normally runs stage 40, where [`stage40`] notes, when bytes
//!   are left behind it, the count the request parsed from them must carry. A higher count
//!   means Monkey ended a request in between without completing it normally — its own error
//!   answer — and what follows is not served.
//!
//! The second signal also catches Monkey's other error answers that keep the connection (a
//! 403 for `..` in a path, a 404 for a missing static file, inside a pipeline behind a
//! request that completed normally): a request behind one of those closes the connection
//! unanswered, which a pipelining client must expect of any connection (RFC 9112 §9.3.2).
//! A refusal behind a first request Monkey itself refused with an error (a pipeline that
//! starts with a request Monkey answers 400 for a missing `Host`) is not seen: nothing of
//! the plugin runs before it. `docs/architecture.md` has the whole account.
//!
//! [`client_left`] answers nothing for the same reason when the client is gone already: it
//! closed right behind the request (stage 30 reads the epoll flags of the event Monkey is
//! dispatching).

use std::cell::RefCell;
use std::ffi::c_int;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::session::Session;
use super::sys;
use crate::log;

thread_local! {
    /// Per client descriptor: the connection object and the `counter_connections` the request
    /// Monkey parses next from bytes already received must carry (see the module docs).
    static NEXT: RefCell<Vec<Option<(usize, c_int)>>> = const { RefCell::new(Vec::new()) };
}

/// Takes what [`stage40`] noted for `fd` if it is for connection object `conn`.
fn take_next(fd: c_int, conn: usize) -> Option<c_int> {
    let i = usize::try_from(fd).ok()?;
    NEXT.with(|next| {
        let mut next = next.try_borrow_mut().ok()?;
        match next.get_mut(i)?.take() {
            Some((c, count)) if c == conn => Some(count),
            _ => None,
        }
    })
}

/// Notes (or, with `None`, forgets) the count the next request parsed on `fd` must carry.
fn set_next(fd: c_int, conn: usize, count: Option<c_int>) {
    let Ok(i) = usize::try_from(fd) else { return };
    NEXT.with(|next| {
        let Ok(mut next) = next.try_borrow_mut() else {
            return;
        };
        if next.len() <= i {
            if count.is_none() {
                return;
            }
            next.resize(i + 1, None);
        }
        next[i] = count.map(|c| (conn, c));
    });
}

/// Whether the request of a stage-30 call sits behind one Monkey refused (see the module
/// docs). Reads and consumes what stage 40 noted for the connection.
fn behind_a_refusal(session: &Session) -> bool {
    let noted = take_next(session.socket(), session.conn() as usize);
    if !session.parse_completed() && session.waiting_for_request() {
        return true;
    }
    noted.is_some_and(|count| session.requests_ended() > count)
}

/// Stage 30's first question: `Some(return value)` when the request must be neither
/// forwarded nor answered because it sits behind a request Monkey refused; the connection
/// then closes.
pub fn screen(session: &mut Session) -> Option<c_int> {
    if !behind_a_refusal(session) {
        return None;
    }
    Some(answer_nothing(session))
}

/// The client closed (or half-closed) its connection right behind the request it sent, so
/// nobody will read an answer: no backend connection is opened for it (the caller counts it
/// in the entry's statistics as a client abort before any attempt,
/// `Proxy::client_left_early`).
pub fn client_left(session: &mut Session) -> c_int {
    answer_nothing(session)
}

/// Ends a request without sending anything and closes the connection after it: the head
/// Monkey builds once stage 30 returns goes into the detached stream (never sent), a valid
/// status keeps its header builder from aborting (monkey-abi.md §0-2), and no pipelined
/// request is looked for.
fn answer_nothing(session: &mut Session) -> c_int {
    session.detach_stream();
    session.close_after();
    session.set_status(400);
    sys::MK_PLUGIN_RET_END
}

/// Monkey is about to close client descriptor `fd`: forget what was noted for it.
pub fn forget(fd: c_int) {
    set_next(fd, 0, None);
}

/// Stage 40: a request completed normally — one the plugin served, or one Monkey answered
/// from its own handlers (it does not run stage 40 after its error answers). When bytes are
/// left behind it, the request Monkey parses from them next must carry one more ended
/// request than now.
///
/// # Safety
/// Called by Monkey with the live session and request of the request that completes.
pub unsafe extern "C" fn stage40(
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
) -> c_int {
    // SAFETY: Monkey passes the live session and request of this stage-40 call; the wrapper
    // is dropped before the call returns.
    let Some(session) = (unsafe { Session::new(cs, sr) }) else {
        return 0;
    };
    let noted = catch_unwind(AssertUnwindSafe(|| {
        let next = (session.bytes_behind() > 0).then(|| session.requests_ended().saturating_add(1));
        set_next(session.socket(), session.conn() as usize, next);
    }));
    if noted.is_err() {
        log::error("internal error in stage 40");
    }
    0
}
