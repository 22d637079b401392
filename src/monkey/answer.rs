//! Answers the plugin gives synchronously from stage 30 through Monkey's own response path
//! (`../shared/monkey-abi.md` §1.9): local errors before any backend is involved, and the
//! statistics page.

use std::ffi::{c_int, c_void, CStr};
use std::ptr;

use super::api::{api, mem_alloc_z};
use super::sys;

/// Status codes Monkey's header builder knows (§11.6); anything else would abort the server.
fn known_status(status: u16) -> bool {
    matches!(status, 100 | 101 | 200..=206 | 300..=305 | 400..=416 | 500..=505)
}

/// A complete local answer.
pub struct Answer<'a> {
    /// Status code (must be one Monkey knows; others become 500).
    pub status: u16,
    /// A whole `Content-Type` header line with CRLF, e.g. `c"Content-Type: text/plain\r\n"`.
    pub content_type: &'static CStr,
    /// Extra header rows without CRLF (static: Monkey keeps the pointers until it has sent
    /// the head).
    pub extra_headers: &'a [&'static CStr],
    /// The body.
    pub body: &'a [u8],
    /// Close the connection after the answer.
    pub close: bool,
}

/// Queues `answer` on the request and returns `MK_PLUGIN_RET_END`; Monkey sends it and ends
/// the request itself.
///
/// # Safety
/// `cs` and `sr` must be the live session and request of the current stage-30 call, and the
/// request's stream must not have been detached.
pub unsafe fn send(
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
    answer: &Answer<'_>,
) -> c_int {
    let a = api();
    let status = if known_status(answer.status) {
        answer.status
    } else {
        500
    };
    // SAFETY: `sr` is live (caller); every call below is Monkey's documented way to build a
    // synchronous answer from stage 30 (§1.9), with a status from Monkey's table.
    unsafe {
        if let Some(f) = a.header_set_http_status {
            f(sr, c_int::from(status));
        }
        (*sr).headers.content_length = answer.body.len() as _;
        if let Some(f) = a.pointer_set {
            f(
                &mut (*sr).headers.content_type,
                answer.content_type.as_ptr().cast_mut(),
            );
        }
        if let Some(f) = a.header_add {
            for row in answer.extra_headers.iter().take(8) {
                f(sr, row.as_ptr().cast_mut(), row.to_bytes().len() as c_int);
            }
        }
        if answer.close {
            (*cs).close_now = 1;
            // Monkey looks for pipelined requests before it looks at close_now
            // (`mk_http_request_end`): with no next request to find, it closes.
            (*cs).parser.i = -1;
        }
        let head_request = (*sr).method == sys::MK_METHOD_HEAD;
        if !answer.body.is_empty() && !head_request {
            append_body(sr, answer.body);
        }
    }
    sys::MK_PLUGIN_RET_END
}

/// Frees the iov behind a finished stream input (Monkey frees the input itself).
unsafe extern "C" fn iov_input_finished(input: *mut sys::mk_stream_input) {
    // SAFETY: Monkey calls this once per input we created, with the input still valid; its
    // buffer is the `mk_iov` we allocated with `iov_create`.
    unsafe {
        let iov = (*input).buffer.cast::<sys::mk_iov>();
        if let (false, Some(free)) = (iov.is_null(), api().iov_free) {
            free(iov);
        }
        (*input).buffer = ptr::null_mut();
    }
}

/// Appends `body` as one IOV stream input (RAW inputs crash on partial writes, §7.4).
///
/// # Safety
/// `sr` must be the live request of the current stage-30 call.
unsafe fn append_body(sr: *mut sys::mk_http_request, body: &[u8]) {
    let a = api();
    let (Some(iov_create), Some(iov_add), Some(mem_alloc)) = (a.iov_create, a.iov_add, a.mem_alloc)
    else {
        return;
    };
    // SAFETY: allocations come from Monkey's allocator (malloc); `iov_add(…, free = 1)` makes
    // Monkey free the copy with the iov. The input is zeroed, filled as §7.3 lists and linked
    // at the tail of the request stream's input list, which Monkey owns from then on.
    unsafe {
        let iov = iov_create(1, 0);
        if iov.is_null() {
            return;
        }
        let copy = mem_alloc(body.len()).cast::<u8>();
        if copy.is_null() {
            return;
        }
        ptr::copy_nonoverlapping(body.as_ptr(), copy, body.len());
        iov_add(iov, copy.cast::<c_void>(), body.len() as c_int, 1);
        let input =
            mem_alloc_z(std::mem::size_of::<sys::mk_stream_input>()).cast::<sys::mk_stream_input>();
        if input.is_null() {
            return;
        }
        (*input).type_ = sys::MK_STREAM_IOV;
        (*input).fd = -1;
        (*input).dynamic = 1;
        (*input).bytes_total = (*iov).total_len as usize;
        (*input).bytes_offset = 0;
        (*input).buffer = iov.cast::<c_void>();
        (*input).cb_finished = Some(iov_input_finished);
        (*input).stream = &mut (*sr).stream;
        let head: *mut sys::mk_list = &mut (*sr).stream.inputs;
        let node: *mut sys::mk_list = &mut (*input)._head;
        (*node).prev = (*head).prev;
        (*node).next = head;
        (*(*head).prev).next = node;
        (*head).prev = node;
    }
}

/// `Content-Type` line for plain-text answers.
pub const TEXT_PLAIN: &CStr = c"Content-Type: text/plain\r\n";
