//! Ending a request in Monkey once its exchange is over (`../shared/monkey-abi.md` §1.6).

use std::ptr;

use super::hold;
use super::session::Session;
use super::worker::{self, WorkerState};
use crate::relay::{discard_unread, Ended};

/// What is left of an ended request's end once the worker's state is let go of: Monkey's
/// side ([`end`]).
pub struct Ending {
    session: Session,
    close: bool,
    status: u16,
}

/// Hands the connection of `ended`'s request back to Monkey: [`settle`], then [`end`].
pub fn finish(ended: Ended) {
    if let Some(ending) = worker::with(|w| settle(w, ended)).flatten() {
        end(ending);
    }
}

/// The worker's side of `ended`'s end, with its state `w` at hand (no call into Monkey): the
/// request's session is forgotten, and the client duplicate kept for the connection's next
/// request (or what the client sent that will not be answered dropped, when the connection
/// closes). `None` when no request of the worker was served by it.
pub fn settle(w: &mut WorkerState, ended: Ended) -> Option<Ending> {
    let served = w.take(ended.token)?;
    let session = served.session;
    let close = !ended.finish.keep_alive || session.closes();
    let kept = match (close, ended.client) {
        (true, Some(mut stream)) => {
            discard_unread(&mut stream);
            None
        }
        (_, kept) => kept,
    };
    if let Some(stream) = kept {
        w.keep_client(
            session.socket(),
            session.conn() as usize,
            stream,
            served.peer,
        );
    }
    Some(Ending {
        session,
        close,
        status: ended.finish.status,
    })
}

/// Monkey's side of a request's end ([`settle`] first): it ends with keep-alive or close.
pub fn end(ending: Ending) {
    let Ending {
        mut session,
        close,
        status,
    } = ending;
    let socket = session.socket();
    // Cleared before the call: it re-enters stage30_hangup (and maybe stage30).
    session.set_mark(ptr::null_mut());
    session.set_final_status(status);
    // Monkey reads the client again (and finds what it sent meanwhile) from here on.
    hold::release(&session);
    if close {
        // Monkey looks for pipelined requests before it looks at close_now
        // (`mk_http_request_end`), and would answer one after a `Connection: close`
        // response: with no next request to find, it closes.
        session.forget_pipelined();
    }
    let ret = session.end(close);
    if close && ret == 0 {
        // Monkey kept the connection although we asked it to close (it did after chunked
        // request bodies, and after pipelined requests, before its parser was pointed past
        // them). The response said `Connection: close`, so end the connection ourselves;
        // Monkey then sees the hang-up and removes the session.
        // SAFETY: a plain syscall on Monkey's live client socket.
        unsafe { libc::shutdown(socket, libc::SHUT_RDWR) };
    }
    if ret == 1 && !session.next_request_is_ours() {
        // A pipelined request was dispatched inside the call and Monkey answers it itself:
        // arm WRITE so its core flushes it (§1.6-4).
        session.watch_connection_for_writing();
    }
}
