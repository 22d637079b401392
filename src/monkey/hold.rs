//! Keeps Monkey from reading a client connection while an exchange serves its request.
//!
//! Monkey keeps watching a client socket for reading while a request is in progress, and
//! when bytes arrive (a pipelined request sent after the first, which HTTP/1.1 allows at any
//! time) its read handler appends them and runs its parser again over the request being
//! served. That parse completes the same request a second time; Monkey takes it for a
//! broken connection and removes the session (`mk_http_status_completed`), which cuts the
//! response in flight — and a stale `errno` can make its scheduler keep the socket open with
//! no session behind it, so the client waits for nothing.
//!
//! Monkey's scheduler reads a connection through its protocol's `cb_read`
//! (`mk_sched_conn.protocol`, a table shared by all plain HTTP connections, §10.10). While an
//! exchange runs, the connection points at a copy of that table whose `cb_read` leaves the
//! bytes in the socket and makes the registration edge-triggered (level-triggered, bytes
//! left unread would be reported on every turn of the loop), or notices that the client
//! left. When the exchange ends the original table comes back, with the level-triggered
//! read registration; Monkey then reads the waiting request as the connection's next one,
//! after the response, as it would have read it from a quiet connection. A connection
//! nobody writes to while its request is served — nearly all — costs two pointer stores.

use std::os::raw::c_int;
use std::ptr::{self, addr_of_mut};
use std::sync::OnceLock;

use super::api::{self, ev_add, ev_del};
use super::session::Session;
use super::sys;

/// Monkey's HTTP protocol table and our two copies of it.
struct Tables {
    /// Monkey's own table (its HTTP/1.x handler).
    original: *mut sys::mk_sched_handler,
    /// Copy in place while an exchange runs and nothing arrived.
    watching: *mut sys::mk_sched_handler,
    /// Copy in place once bytes arrived and the read registration was made edge-triggered
    /// (or taken away).
    held: *mut sys::mk_sched_handler,
}

// SAFETY: the tables are never written after `TABLES` is set: Monkey's is a static of its
// HTTP module, ours are leaked copies; sharing their addresses across workers is sound.
unsafe impl Send for Tables {}
// SAFETY: shared references to `Tables` only read its three pointers, which are never
// written after `TABLES` is set (see `Send` above).
unsafe impl Sync for Tables {}

static TABLES: OnceLock<Tables> = OnceLock::new();

/// Called by Monkey's scheduler instead of its HTTP read handler when the socket of a
/// connection with an exchange in progress is readable: leaves the bytes where they are and
/// stops Monkey reading the socket until [`release`].
///
/// Readable can also mean the client is gone (end of file, a reset). Monkey learns that only
/// from a read (its loop does not look at the hang-up flags epoll reports), so this handler
/// looks: at the flags of the event being dispatched, and with a peek. A client that is gone
/// makes the call fail, and Monkey's loop closes the connection, which ends the exchange
/// through the plugin's hang-up (the backend connection is released at once and the request
/// counts as a client abort, instead of waiting for a response nobody reads). A half-closed
/// client counts as gone, as nginx treats it.
///
/// When bytes wait (a pipelined request), the level-triggered registration would report them
/// on every turn of the loop; it becomes edge-triggered instead, so the next change — more
/// bytes, the client closing or resetting — is reported once, and a client that pipelines
/// and then leaves is still noticed at once. Without epoll (Monkey built with another event
/// backend) the registration is removed, and a client leaving after pipelined bytes is
/// noticed when the exchange ends.
unsafe extern "C" fn hold_read(
    conn: *mut sys::mk_sched_conn,
    _worker: *mut sys::mk_sched_worker,
    _server: *mut sys::mk_server,
) -> c_int {
    let Some(t) = TABLES.get() else { return 0 };
    // Monkey passes the live connection whose event fired; its event is registered in this
    // worker's loop (that is how it fired), so `ev_del` and a MOD of its epoll entry apply to
    // it, and its fd is the client socket.
    // SAFETY: the live connection; only the field's address is taken.
    let ev = unsafe { addr_of_mut!((*conn).event) };
    // SAFETY: `ev` is the live connection's own event (just derived from `conn`); a plain
    // load of its descriptor.
    let fd = unsafe { (*ev).fd };
    let gone_flags = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
    let hung_up = api::fired_events(ev).is_some_and(|f| f & gone_flags != 0);
    let mut probe = 0u8;
    // SAFETY: a peek of at most one byte into `probe`, on the client socket.
    let n = unsafe {
        libc::recv(
            fd,
            addr_of_mut!(probe).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    if hung_up || n == 0 || (n < 0 && !would_block()) {
        // Monkey's scheduler keeps a connection whose read failed with `EAGAIN` in `errno`
        // (`mk_sched_event_read`), and `recv` returning 0 leaves `errno` as an earlier call
        // set it: say what happened.
        // SAFETY: a plain call returning this thread's `errno` location.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: `errno` is this thread's, always valid to write.
        unsafe { *errno = libc::ECONNRESET };
        return -1;
    }
    if !watch_edges(fd, ev) {
        // SAFETY: the connection's registered event.
        unsafe { ev_del(ev) };
    }
    // SAFETY: the live connection; a plain pointer store of a table that lives for the
    // process.
    unsafe { (*conn).protocol = t.held };
    0
}

/// Re-registers Monkey's connection event for `fd` edge-triggered (readable, hang-up, error);
/// false without epoll or if the kernel refuses. Monkey's own bookkeeping (`status`, `mask`)
/// stays as it was: the entry is still registered for reading, which [`release`] restores
/// level-triggered with Monkey's `ev_add`. `ev` must be the registered event of the live
/// connection whose socket is `fd`.
fn watch_edges(fd: c_int, ev: *mut sys::mk_event) -> bool {
    let Some(efd) = api::epoll_fd() else {
        return false;
    };
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR | libc::EPOLLET)
            as u32,
        // Monkey's loop finds the connection through data.ptr, as for its own registration.
        u64: ev as u64,
    };
    // SAFETY: plain syscall on this worker's epoll set and a descriptor registered in it.
    unsafe { libc::epoll_ctl(efd, libc::EPOLL_CTL_MOD, fd, &mut event) == 0 }
}

/// Whether the last failed call only found nothing to do yet.
fn would_block() -> bool {
    let e = std::io::Error::last_os_error().raw_os_error();
    e == Some(libc::EAGAIN) || e == Some(libc::EWOULDBLOCK) || e == Some(libc::EINTR)
}

/// Makes copies of Monkey's table at `original` with `hold_read` as their read handler
/// (`original` is the live protocol table of a connection: Monkey's HTTP protocol is a static
/// of its core).
fn tables_for(original: *mut sys::mk_sched_handler) -> &'static Tables {
    TABLES.get_or_init(|| {
        // SAFETY: `original` is the live protocol table of a connection of a live session
        // (the callers pass `protocol(conn)`); it is plain data and function pointers.
        let mut copy = unsafe { ptr::read(original) };
        copy.cb_read = Some(hold_read);
        Tables {
            original,
            watching: Box::into_raw(Box::new(copy)),
            held: Box::into_raw(Box::new(copy)),
        }
    })
}

/// The protocol table `conn` reads through.
fn protocol(conn: *mut sys::mk_sched_conn) -> *mut sys::mk_sched_handler {
    // SAFETY: the live connection of a live session (callers); a plain load.
    unsafe { (*conn).protocol }
}

/// Makes `conn` read through `table`.
fn set_protocol(conn: *mut sys::mk_sched_conn, table: *mut sys::mk_sched_handler) {
    // SAFETY: the live connection of a live session (callers); a plain pointer store of a
    // table that lives for the process.
    unsafe { (*conn).protocol = table };
}

/// Starts holding Monkey's reads of the session's connection for an exchange. Connections
/// of another protocol than the first one seen (there is one for plain HTTP/1.x) are left as
/// they are.
pub fn start(session: &Session) {
    let conn = session.conn();
    let current = protocol(conn);
    if current.is_null() {
        return;
    }
    let t = tables_for(current);
    if current == t.original {
        set_protocol(conn, t.watching);
    }
}

/// Ends holding for the session's connection (its exchange is over): Monkey's table is back,
/// and if bytes arrived meanwhile the socket is watched for reading again, so Monkey reads
/// them next. Call it before handing the request back to Monkey.
pub fn release(session: &Session) {
    let Some(t) = TABLES.get() else { return };
    let conn = session.conn();
    let current = protocol(conn);
    if current == t.held {
        // The event is held edge-triggered (Monkey's bookkeeping still says registered for
        // reading: `ev_add` modifies it back) or removed (`ev_add` registers it afresh), the
        // way Monkey's own loop registers a connection waiting for its next request.
        // SAFETY: the live connection; only the field's address is taken.
        let ev = unsafe { addr_of_mut!((*conn).event) };
        // SAFETY: the connection's own event, registered as described above.
        unsafe {
            ev_add(
                session.socket(),
                sys::MK_EVENT_CONNECTION,
                sys::MK_EVENT_READ,
                ev,
            )
        };
    }
    if current == t.watching || current == t.held {
        set_protocol(conn, t.original);
    }
}

/// Puts Monkey's table back on the session's connection without touching its event
/// registration: for a session Monkey is removing (it closes the connection next).
pub fn forget(session: &Session) {
    let Some(t) = TABLES.get() else { return };
    let conn = session.conn();
    let current = protocol(conn);
    if current == t.watching || current == t.held {
        set_protocol(conn, t.original);
    }
}
