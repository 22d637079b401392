//! Pages the plugin answers synchronously from stage 30 through Monkey's own response path
//! (`../shared/monkey-abi.md` §1.9): the statistics page and the errors the core's intake
//! decides (400, 403, 404, 503), before any backend is involved.

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CStr, CString};
use std::ptr::{self, addr_of_mut};

use super::api::{api, mem_alloc_z};
use super::session::Session;
use super::sys;
use crate::http::status::LocalPage;

/// Status codes Monkey's header builder knows (§11.6); anything else would abort the server.
fn known_status(status: u16) -> bool {
    matches!(status, 100 | 101 | 200..=206 | 300..=305 | 400..=416 | 500..=505)
}

thread_local! {
    /// `Retry-After` rows made so far (Monkey keeps the pointer of an extra header row until it
    /// has sent the head, and never frees it): one per distinct value, kept for the process.
    static RETRY_AFTER: RefCell<Vec<(u64, &'static CStr)>> = const { RefCell::new(Vec::new()) };
}

/// Distinct `Retry-After` values kept per worker; others share the last row made.
const RETRY_AFTER_ROWS: usize = 16;

/// A `Retry-After: N` row that lives as long as the process.
fn retry_after_row(secs: u64) -> &'static CStr {
    RETRY_AFTER.with(|rows| {
        let mut rows = rows.borrow_mut();
        if let Some(&(_, row)) = rows.iter().find(|(n, _)| *n == secs) {
            return row;
        }
        if rows.len() >= RETRY_AFTER_ROWS {
            return rows[rows.len() - 1].1;
        }
        let row: &'static CStr = Box::leak(
            CString::new(format!("Retry-After: {secs}"))
                .unwrap_or_default()
                .into_boxed_c_str(),
        );
        rows.push((secs, row));
        row
    })
}

/// Queues `page` on the session's request and returns `MK_PLUGIN_RET_END`: Monkey sends it
/// and ends the request itself. The request's stream must not have been detached.
pub fn send(session: &mut Session, page: &LocalPage) -> c_int {
    let a = api();
    let status = if known_status(page.status) {
        page.status
    } else {
        500
    };
    session.set_status(status);
    session.set_content_length(page.body.len());
    let sr = session.request_ptr();
    if let Some(f) = a.pointer_set {
        // SAFETY: the live request; only the field's address is taken.
        let field = unsafe { addr_of_mut!((*sr).headers.content_type) };
        let line = page.content_type.header_line().as_ptr().cast_mut();
        // SAFETY: the live request's content-type pointer, set to a static C string
        // (`header_line` is a literal), as Monkey's own plugins do.
        unsafe { f(field, line) };
    }
    let mut rows: [Option<&'static CStr>; 2] = [None, None];
    if page.no_store {
        rows[0] = Some(c"Cache-Control: no-store");
    }
    if let Some(secs) = page.retry_after {
        rows[1] = Some(retry_after_row(secs));
    }
    if let Some(add) = a.header_add {
        for row in rows.into_iter().flatten() {
            // SAFETY: the live request; `row` is static, as Monkey keeps the pointer until it
            // has sent the head (`mk_plugin_header_add` copies nothing).
            unsafe { add(sr, row.as_ptr().cast_mut(), row.to_bytes().len() as c_int) };
        }
    }
    if page.close {
        session.close_after();
    }
    if !page.body.is_empty() && !session.is_head() {
        append_body(session, &page.body);
    }
    sys::MK_PLUGIN_RET_END
}

/// Frees the iov behind a finished stream input (Monkey frees the input itself).
unsafe extern "C" fn iov_input_finished(input: *mut sys::mk_stream_input) {
    // SAFETY: Monkey calls this once per input we created, with the input still valid; its
    // buffer is the `mk_iov` we allocated with `iov_create`.
    let iov = unsafe { (*input).buffer }.cast::<sys::mk_iov>();
    if let (false, Some(free)) = (iov.is_null(), api().iov_free) {
        // SAFETY: `iov` came from `iov_create` and is freed once, here.
        unsafe { free(iov) };
    }
    // SAFETY: Monkey calls this with the input still valid (it frees it after the call);
    // clearing the freed iov's pointer keeps nothing dangling in it.
    unsafe { (*input).buffer = ptr::null_mut() };
}

/// Appends `body` as one IOV stream input (RAW inputs crash on partial writes, §7.4). Out
/// of memory, the page goes without its body (Monkey still sends the head it has).
fn append_body(session: &mut Session, body: &[u8]) {
    let a = api();
    let (Some(iov_create), Some(iov_add), Some(mem_alloc)) = (a.iov_create, a.iov_add, a.mem_alloc)
    else {
        return;
    };
    // SAFETY: plain allocation from Monkey's allocator.
    let iov = unsafe { iov_create(1, 0) };
    if iov.is_null() {
        return;
    }
    // SAFETY: plain allocation (malloc), which `iov_add(…, free = 1)` hands to the iov.
    let copy = unsafe { mem_alloc(body.len()) }.cast::<u8>();
    if copy.is_null() {
        return;
    }
    // SAFETY: `copy` has room for `body.len()` bytes and does not overlap `body`.
    unsafe { ptr::copy_nonoverlapping(body.as_ptr(), copy, body.len()) };
    // SAFETY: `iov` has one free slot; Monkey frees `copy` with it.
    unsafe { iov_add(iov, copy.cast::<c_void>(), body.len() as c_int, 1) };
    let input =
        mem_alloc_z(std::mem::size_of::<sys::mk_stream_input>()).cast::<sys::mk_stream_input>();
    if input.is_null() {
        return;
    }
    let sr = session.request_ptr();
    // SAFETY: `iov` is the live iov made above.
    let total = unsafe { (*iov).total_len } as usize;
    // SAFETY: `sr` is the live request; only the address of its stream is taken.
    let stream = unsafe { addr_of_mut!((*sr).stream) };
    // SAFETY: `sr` is the live request (the session's, during stage 30); only the address of
    // its stream's input list is taken.
    let head = unsafe { addr_of_mut!((*sr).stream.inputs) };
    let filled = sys::mk_stream_input {
        type_: sys::MK_STREAM_IOV,
        fd: -1,
        dynamic: 1,
        bytes_total: total,
        bytes_offset: 0,
        buffer: iov.cast::<c_void>(),
        cb_finished: Some(iov_input_finished),
        stream,
        ..Default::default()
    };
    // SAFETY: `input` is zeroed memory of the right size from Monkey's allocator; the
    // whole value is written at once, as §7.3 lists its fields.
    unsafe { input.write(filled) };
    // SAFETY: the input's own list node.
    let node: *mut sys::mk_list = unsafe { addr_of_mut!((*input)._head) };
    link_tail(head, node);
}

/// Links `node` at the tail of the list at `head` (Monkey's `mk_list_add`).
fn link_tail(head: *mut sys::mk_list, node: *mut sys::mk_list) {
    // SAFETY: `head` is the live request stream's input list, whose `prev` is its last node
    // (or `head` itself).
    let last = unsafe { (*head).prev };
    // SAFETY: `node` is a fresh node nobody else links.
    unsafe {
        node.write(sys::mk_list {
            prev: last,
            next: head,
        })
    };
    // SAFETY: `last` is a live node of the list.
    unsafe { (*last).next = node };
    // SAFETY: `head` is the live list head.
    unsafe { (*head).prev = node };
}
