//! The request Monkey hands to stage 30, checked once and wrapped, as ngx-rust wraps
//! `ngx_http_request_t`: the rest of the adapter reads and changes Monkey's session and
//! request through these methods, never through raw pointers of its own.
//!
//! A [`Session`] is valid from the stage-30 call that made it until the request ends — through
//! [`Session::end`], or through Monkey's hang-up (`stage30_hangup`), after which the adapter
//! drops it. Monkey runs a connection's callbacks on one worker thread, and none of its code
//! runs while ours does except inside the calls into Monkey made here, so a reference made
//! from the pointers is never used while Monkey changes what it points to.

use std::ffi::{c_int, c_void};
use std::ptr::{addr_of_mut, NonNull};
use std::slice;

use super::api::{self, ev_add, ev_del};
use super::sys;

/// A live Monkey session and its current request. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    cs: NonNull<sys::mk_http_session>,
    sr: NonNull<sys::mk_http_request>,
}

/// Bytes of a Monkey `mk_ptr_t` (empty when NULL).
///
/// # Safety
/// `p` must describe `len` readable bytes that stay valid for `'a`.
unsafe fn bytes<'a>(p: sys::mk_ptr_t) -> &'a [u8] {
    if p.data.is_null() || p.len == 0 {
        return &[];
    }
    // SAFETY: non-NULL and non-empty (checked above); the caller guarantees `len` readable
    // bytes valid for `'a`.
    unsafe { slice::from_raw_parts(p.data.cast::<u8>(), p.len as usize) }
}

impl Session {
    /// Wraps the session and request of a stage-30 call; `None` if either is NULL.
    ///
    /// # Safety
    /// `cs` and `sr` must be the session and request Monkey passed to the current stage call
    /// (30, 40 or hang-up), and the result must be dropped when the request ends (see the
    /// module docs).
    pub unsafe fn new(
        cs: *mut sys::mk_http_session,
        sr: *mut sys::mk_http_request,
    ) -> Option<Session> {
        Some(Session {
            cs: NonNull::new(cs)?,
            sr: NonNull::new(sr)?,
        })
    }

    fn cs(&self) -> &sys::mk_http_session {
        // SAFETY: live while the request is in progress (constructor's contract); Monkey
        // does not touch it while this reference is used (module docs).
        unsafe { self.cs.as_ref() }
    }

    fn cs_mut(&mut self) -> &mut sys::mk_http_session {
        // SAFETY: as in `cs`; no other reference into the session is alive while this one is.
        unsafe { self.cs.as_mut() }
    }

    fn sr(&self) -> &sys::mk_http_request {
        // SAFETY: as in `cs`, for the request.
        unsafe { self.sr.as_ref() }
    }

    fn sr_mut(&mut self) -> &mut sys::mk_http_request {
        // SAFETY: as in `cs_mut`, for the request.
        unsafe { self.sr.as_mut() }
    }

    /// Monkey's request pointer, for its API calls.
    pub fn request_ptr(&self) -> *mut sys::mk_http_request {
        self.sr.as_ptr()
    }

    /// Monkey's descriptor of the client connection.
    pub fn socket(&self) -> c_int {
        self.cs().socket
    }

    /// Monkey's connection object (the scheduler's `mk_sched_conn`).
    pub fn conn(&self) -> *mut sys::mk_sched_conn {
        self.cs().conn
    }

    /// The transport of the connection when its listener is a TLS one (`Listen PORT tls`):
    /// Monkey's TLS layer then carries its bytes, and a write to the socket itself would
    /// corrupt the TLS stream. `None` on a plain listener.
    pub fn tls_transport(&self) -> Option<*mut sys::mk_plugin_network> {
        let conn = self.conn();
        if conn.is_null() {
            return None;
        }
        // SAFETY: Monkey's live connection object of this session; a plain field read.
        let listen = unsafe { (*conn).server_listen };
        if listen.is_null() {
            return None;
        }
        // SAFETY: the listener the connection was accepted on, which lives as long as the
        // server; a plain field read.
        let config = unsafe { (*listen).listen };
        if config.is_null() {
            return None;
        }
        // SAFETY: the listener's `Listen` line, kept for the life of the server.
        let flags = unsafe { (*config).flags };
        if flags & sys::MK_CAP_SOCK_TLS == 0 {
            return None;
        }
        // SAFETY: as above, a plain field read of the live connection.
        let net = unsafe { (*conn).net };
        (!net.is_null()).then_some(net)
    }

    /// Whether Monkey will close the connection after this request (HTTP/1.0, or a
    /// `Connection: close` it recognised).
    pub fn closes(&self) -> bool {
        self.cs().close_now != 0
    }

    /// Whether Monkey's read path found the current request complete (`cs->status ==
    /// MK_REQUEST_STATUS_COMPLETED`, set by `mk_http_sched_read` when its parser returns OK,
    /// just before it dispatches the request). Monkey sets it back to incomplete when a
    /// request ends through `mk_http_request_ka_next` or `http_request_end`, nowhere else.
    pub fn parse_completed(&self) -> bool {
        self.cs().status == sys::MK_REQUEST_STATUS_COMPLETED
    }

    /// Whether the connection is in Monkey's timeout queue (`conn->is_timeout_on`): Monkey
    /// puts it there when it waits for a request (a new connection, or after a request ended
    /// with nothing behind it) and takes it out once a read completes a request, before it
    /// dispatches that request.
    pub fn waiting_for_request(&self) -> bool {
        let conn = self.conn();
        // SAFETY: the live session's connection object; a plain load of a byte field.
        unsafe { (*conn).is_timeout_on != 0 }
    }

    /// Monkey's count of requests ended on this connection (`counter_connections`): every
    /// end adds one, before Monkey dispatches the next pipelined request or waits for the
    /// next one.
    pub fn requests_ended(&self) -> c_int {
        self.cs().counter_connections
    }

    /// Bytes Monkey holds behind the position its parser points at (`parser.i`): what it
    /// parses as the next request when this one ends (`mk_http_parser_more`).
    pub fn bytes_behind(&self) -> u32 {
        let cs = self.cs();
        match u32::try_from(cs.parser.i) {
            Ok(i) => cs.body_length.saturating_sub(i.saturating_add(1)),
            Err(_) => 0,
        }
    }

    /// The request is HTTP/1.0.
    pub fn minor_version(&self) -> u8 {
        if self.sr().protocol == sys::MK_HTTP_PROTOCOL_10 {
            0
        } else {
            1
        }
    }

    /// The request is a `HEAD` (its answer has no body).
    pub fn is_head(&self) -> bool {
        self.sr().method == sys::MK_METHOD_HEAD
    }

    /// The raw request bytes Monkey received (`cs->body`): the request line (with the NUL
    /// Monkey wrote into it), the fields, the body, and maybe requests pipelined behind it.
    /// Valid until stage 30 returns.
    pub fn raw(&self) -> &[u8] {
        let cs = self.cs();
        if cs.body.is_null() {
            return &[];
        }
        // SAFETY: `body` holds `body_length` bytes of received request data (§5.4), which
        // stay put until stage 30 returns; the borrow of `self` ends before that.
        unsafe { slice::from_raw_parts(cs.body.cast::<u8>(), cs.body_length as usize) }
    }

    /// The method token, as Monkey's parser found it (valid until stage 30 returns).
    pub fn method(&self) -> &[u8] {
        // SAFETY: `method_p` points into the request buffer, as `raw`.
        unsafe { bytes(self.sr().method_p) }
    }

    /// The request target's path as received (Monkey's `uri`, without the query).
    pub fn uri(&self) -> &[u8] {
        // SAFETY: `uri` points into the request buffer, as `raw`.
        unsafe { bytes(self.sr().uri) }
    }

    /// Points Monkey's parser at the last byte of this request: Monkey looks for a pipelined
    /// request right after it when the request ends.
    pub fn set_request_end(&mut self, last: c_int) {
        self.cs_mut().parser.i = last;
    }

    /// Makes Monkey close the connection after this request, and find no pipelined request to
    /// answer first (it looks for one before it looks at `close_now`,
    /// `mk_http_request_end`).
    pub fn close_after(&mut self) {
        let cs = self.cs_mut();
        cs.close_now = 1;
        cs.parser.i = -1;
    }

    /// Forgets requests pipelined behind this one, so that ending it with close closes.
    pub fn forget_pipelined(&mut self) {
        self.cs_mut().parser.i = -1;
    }

    /// Sets the response status Monkey's header builder uses (a status it knows, §0-2).
    pub fn set_status(&mut self, status: u16) {
        match api::api().header_set_http_status {
            // SAFETY: the live request; Monkey's documented way to set the status.
            Some(f) => unsafe {
                f(self.request_ptr(), c_int::from(status));
            },
            None => self.sr_mut().headers.status = c_int::from(status),
        }
    }

    /// Sets the status without Monkey's call (the request is ending and its head is not
    /// built any more).
    pub fn set_final_status(&mut self, status: u16) {
        self.sr_mut().headers.status = c_int::from(status);
    }

    /// The response's `Content-Length`.
    pub fn set_content_length(&mut self, len: usize) {
        self.sr_mut().headers.content_length = len as _;
    }

    /// The plugin's mark on the request (`handler_data`): NULL, or the token of the exchange
    /// serving it.
    pub fn mark(&self) -> *mut c_void {
        self.sr().handler_data
    }

    /// Sets the plugin's mark (see [`Session::mark`]).
    pub fn set_mark(&mut self, mark: *mut c_void) {
        self.sr_mut().handler_data = mark;
    }

    /// Whether the request Monkey dispatched last on this session (a pipelined one it started
    /// inside `http_request_end`) is served by the plugin.
    pub fn next_request_is_ours(&self) -> bool {
        !self.cs().sr_fixed.handler_data.is_null()
    }

    /// Takes the response path away from Monkey (§1.3-6): the request's stream is unlinked
    /// from the channel's stream list and left self-linked, which Monkey's later unlink
    /// tolerates, so Monkey sends nothing of its own for this request.
    pub fn detach_stream(&mut self) {
        let node: *mut sys::mk_list = addr_of_mut!(self.sr_mut().stream._head);
        // SAFETY: `node` is the live request's stream list node; its neighbours are nodes of
        // the channel's list (or NULL before the stream was linked), all live.
        let prev = unsafe { (*node).prev };
        // SAFETY: `node` is the live request's stream list node (derived from `self` just
        // now); a plain load.
        let next = unsafe { (*node).next };
        if !prev.is_null() && !next.is_null() {
            // SAFETY: `prev` is a live node of the same list.
            unsafe { (*prev).next = next };
            // SAFETY: `next` is a live node of the same list.
            unsafe { (*next).prev = prev };
        }
        // SAFETY: `node` is ours to relink (just unlinked).
        unsafe {
            node.write(sys::mk_list {
                prev: node,
                next: node,
            })
        };
    }

    /// The connection's own event (Monkey's registration of the client socket).
    fn conn_event(&self) -> *mut sys::mk_event {
        let conn = self.conn();
        // SAFETY: the live session's connection object; only the field's address is taken.
        unsafe { addr_of_mut!((*conn).event) }
    }

    /// Whether the event Monkey is dispatching for this connection reported the client's end
    /// of file, a reset or an error (`EPOLLRDHUP`/`EPOLLHUP`/`EPOLLERR`, which Monkey always
    /// registers): the client closed, or half-closed, right behind the request it sent. False
    /// when Monkey is not dispatching the connection's event (a pipelined request started
    /// from another event) or runs another event backend.
    pub fn client_left_already(&self) -> bool {
        let gone = (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        api::fired_events(self.conn_event()).is_some_and(|f| f & gone != 0)
    }

    /// Makes sure Monkey watches the connection for reading (stage 30 may run from its
    /// write path, §1.3-7), so that it hears of a client that leaves.
    pub fn watch_connection_for_reading(&mut self) {
        let ev = self.conn_event();
        // SAFETY: the live connection's event; reading its mask is a plain load.
        if unsafe { (*ev).mask } != sys::MK_EVENT_READ {
            // SAFETY: the connection's registered event, as Monkey's own loop registers it.
            unsafe {
                ev_add(
                    self.socket(),
                    sys::MK_EVENT_CONNECTION,
                    sys::MK_EVENT_READ,
                    ev,
                )
            };
        }
    }

    /// Arms WRITE on the connection so Monkey's core flushes an answer it queued itself (a
    /// pipelined request it dispatched inside `http_request_end`, §1.6-4).
    pub fn watch_connection_for_writing(&mut self) {
        let ev = self.conn_event();
        // SAFETY: the connection's registered event.
        unsafe {
            ev_add(
                self.socket(),
                sys::MK_EVENT_CONNECTION,
                sys::MK_EVENT_WRITE,
                ev,
            )
        };
    }

    /// Stops Monkey watching the client socket at all (a tunnel reads it from now on; when
    /// the tunnel ends the request ends with close, and Monkey's connection removal
    /// tolerates the missing registration).
    pub fn stop_watching_connection(&mut self) {
        // SAFETY: the connection's event, registered in this worker's loop.
        unsafe { ev_del(self.conn_event()) };
    }

    /// Ends the request through Monkey (§1.6): 1 if Monkey dispatched a pipelined request
    /// inside the call, 0 if the connection waits for the next one, -1 on error. The session
    /// must not be used after a close.
    pub fn end(&mut self, close: bool) -> c_int {
        let Some(end) = api::api().http_request_end else {
            return -1;
        };
        // SAFETY: our plugin object and the live session; Monkey may re-enter
        // `stage30_hangup` and `stage30` inside the call, which hold no reference into it.
        unsafe { end(api::plugin(), self.cs.as_ptr(), c_int::from(close)) }
    }
}
