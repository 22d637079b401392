//! Copies a request out of Monkey's session into a core [`ProxyRequest`].
//!
//! Header fields are read from the raw request bytes (`cs->body`) rather than from Monkey's
//! parsed list, because Monkey keeps only the last copy of a repeated known header (a second
//! `Content-Length` would be invisible) and strips the port from `Host`. The request line is
//! taken from Monkey's parsed fields, since Monkey writes a NUL into it.

use std::borrow::Cow;
use std::slice;

use super::sys;
use crate::http::chunked::ChunkedDecoder;
use crate::http::headers::{decimal, has_token, trim};
use crate::http::request::{BodyKind, ProxyRequest};

/// Header fields parsed without the fallback array.
const FEW_FIELDS: usize = 24;
/// Most header fields a request may have (more: 400).
const MAX_FIELDS: usize = 128;

/// What stage 30 needs besides the request.
pub struct Copied<'a> {
    /// The request for the core.
    pub request: ProxyRequest,
    /// The decoded path Monkey matched its handler rules against (used for routing); it
    /// points into Monkey's request buffer, valid until stage 30 returns.
    pub routing_path: Cow<'a, str>,
    /// Where this request ends in Monkey's request buffer (`cs->body`): any bytes after it
    /// belong to requests pipelined behind it.
    pub request_end: usize,
}

/// Bytes of a Monkey `mk_ptr_t` (empty when NULL).
///
/// # Safety
/// `p` must describe `len` readable bytes that stay valid for `'a`.
unsafe fn bytes<'a>(p: sys::mk_ptr_t) -> &'a [u8] {
    if p.data.is_null() || p.len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller.
    unsafe { slice::from_raw_parts(p.data.cast::<u8>(), p.len as usize) }
}

/// Sets `to` to `b` as text (invalid UTF-8 replaced), reusing its allocation.
fn set_text(to: &mut String, b: &[u8]) {
    to.clear();
    push_text(to, b);
}

/// Appends `b` as text (invalid UTF-8 replaced).
fn push_text(to: &mut String, b: &[u8]) {
    to.push_str(&text(b));
}

/// `b` as text, invalid UTF-8 replaced. Valid text, the rule, takes `from_utf8`'s quick
/// check rather than `from_utf8_lossy`'s chunk walk (measurable per request).
fn text(b: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(valid) => Cow::Borrowed(valid),
        Err(_) => String::from_utf8_lossy(b),
    }
}

/// Copies the request into `request` (an empty one from [`crate::relay::Worker::take_request`],
/// whose buffers are reused); `None` when the raw bytes cannot be parsed (answer 400).
///
/// # Safety
/// `cs` and `sr` must be the live session and request Monkey passed to stage 30; the result
/// borrows from them until stage 30 returns.
pub unsafe fn copy<'a>(
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
    mut request: ProxyRequest,
) -> Option<Copied<'a>> {
    // SAFETY: stage 30 receives valid pointers; the fields below point into `cs->body`, which
    // stays put until stage 30 returns (we copy everything before that).
    let (cs, sr) = unsafe { (&*cs, &*sr) };
    // SAFETY: as above, each mk_ptr_t describes bytes inside the request buffer.
    let (method, uri, decoded, query, host) = unsafe {
        (
            bytes(sr.method_p),
            bytes(sr.uri),
            bytes(sr.uri_processed),
            bytes(sr.query_string),
            bytes(sr.host),
        )
    };
    let raw: &[u8] = if cs.body.is_null() {
        &[]
    } else {
        // SAFETY: `body` holds `body_length` bytes of received request data (§5.4).
        unsafe { slice::from_raw_parts(cs.body.cast::<u8>(), cs.body_length as usize) }
    };

    request.clear();
    set_text(&mut request.method, method);
    set_text(&mut request.path, uri);
    if !query.is_empty() {
        let mut text = request.text_buffer();
        push_text(&mut text, query);
        request.query = Some(text);
    }
    request.minor_version = if sr.protocol == sys::MK_HTTP_PROTOCOL_10 {
        0
    } else {
        1
    };
    request.client_wants_close = cs.close_now != 0;
    if !host.is_empty() {
        // Monkey strips the port from `Host`; the backend gets the authority as sent.
        let mut authority = request.text_buffer();
        push_text(&mut authority, host);
        if let Ok(port @ 1..) = u64::try_from(sr.port) {
            authority.push(':');
            push_text(&mut authority, decimal(port, &mut [0u8; 20]));
        }
        request.host = Some(authority);
    }

    // Header fields start after the request line's CRLF (the line itself has Monkey's NUL).
    let line_end = find(raw, b"\r\n")? + 2;
    // Most requests have a few fields: a small array first spares initialising the large one.
    let mut few = [httparse::EMPTY_HEADER; FEW_FIELDS];
    let mut many;
    let (head_len, parsed) = match httparse::parse_headers(&raw[line_end..], &mut few) {
        Ok(httparse::Status::Complete((n, parsed))) => (line_end + n, parsed),
        Err(httparse::Error::TooManyHeaders) => {
            many = [httparse::EMPTY_HEADER; MAX_FIELDS];
            match httparse::parse_headers(&raw[line_end..], &mut many) {
                Ok(httparse::Status::Complete((n, parsed))) => (line_end + n, parsed),
                _ => return None,
            }
        }
        _ => return None,
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for h in parsed {
        let value = trim(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= has_token(value, "chunked");
        }
        request.headers.push(h.name, value);
    }

    let rest = &raw[head_len.min(raw.len())..];
    let body: &[u8] = if chunked {
        // Monkey does not decode chunked bodies (§5.6): find the message end in the raw bytes
        // (a pipelined request may follow) and forward the chunks as they are.
        let mut decoder = ChunkedDecoder::default();
        let used = decoder.feed(rest, |_| {}).ok()?;
        if !decoder.is_done() {
            return None;
        }
        &rest[..used]
    } else {
        &rest[..length.unwrap_or(0).min(rest.len())]
    };
    request.body.extend_from_slice(body);
    request.body_kind = match (chunked, body.is_empty()) {
        (true, _) => BodyKind::Chunked,
        (false, true) => BodyKind::None,
        (false, false) => BodyKind::Length,
    };
    Some(Copied {
        request,
        routing_path: text(decoded),
        request_end: head_len.min(raw.len()) + body.len(),
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
