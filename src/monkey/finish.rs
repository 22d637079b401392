//! Ending a request in Monkey once its exchange is over (`../shared/monkey-abi.md` §1.6).

use std::ptr;

use super::hold;
use super::worker;
use crate::relay::{discard_unread, Ended};

/// Hands the connection of `ended`'s request back to Monkey: keeps the client duplicate for
/// the connection's next request (or drops what the client sent that will not be answered,
/// when the connection closes), then ends the request with keep-alive or close.
pub fn finish(ended: Ended) {
    let Some(served) = worker::with(|w| w.take(ended.token)).flatten() else {
        return;
    };
    let mut session = served.session;
    let close = !ended.finish.keep_alive || session.closes();
    let kept = match (close, ended.client) {
        (true, Some(mut stream)) => {
            discard_unread(&mut stream);
            None
        }
        (_, kept) => kept,
    };
    let (socket, conn) = (session.socket(), session.conn());
    if let Some(stream) = kept {
        let _ = worker::with(|w| w.keep_client(socket, conn as usize, stream, served.peer));
    }
    // Cleared before the call: it re-enters stage30_hangup (and maybe stage30).
    session.set_mark(ptr::null_mut());
    session.set_final_status(ended.finish.status);
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
