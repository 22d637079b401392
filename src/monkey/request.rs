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
use crate::http::headers::{has_token, parse_decimal, trim};
use crate::http::request::{push_target, BodyKind, ProxyRequest};

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
    let (method, uri, decoded) =
        unsafe { (bytes(sr.method_p), bytes(sr.uri), bytes(sr.uri_processed)) };
    let raw: &[u8] = if cs.body.is_null() {
        &[]
    } else {
        // SAFETY: `body` holds `body_length` bytes of received request data (§5.4).
        unsafe { slice::from_raw_parts(cs.body.cast::<u8>(), cs.body_length as usize) }
    };

    request.clear();
    set_text(&mut request.method, method);
    request.path.clear();
    push_target(&mut request.path, uri);
    if let Some(query) = query_from_line(raw) {
        let mut text = request.text_buffer();
        push_target(&mut text, query);
        request.query = Some(text);
    }
    request.minor_version = if sr.protocol == sys::MK_HTTP_PROTOCOL_10 {
        0
    } else {
        1
    };
    request.client_wants_close = cs.close_now != 0;

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
            length = parse_decimal(value).and_then(|n| usize::try_from(n).ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked |= has_token(value, "chunked");
        } else if h.name.eq_ignore_ascii_case("connection") && has_token(value, "close") {
            // Monkey recognises `close` only as the whole value: `close, X-Hop` is a close too.
            request.client_wants_close = true;
        } else if h.name.eq_ignore_ascii_case("host") && request.host.is_none() {
            // The authority exactly as sent: Monkey's own `host` and `port` lose a port it
            // cannot parse (`a:0` became `a`). A second Host is refused by `validate`.
            let mut authority = request.text_buffer();
            push_text(&mut authority, value);
            request.host = Some(authority);
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

/// The request's query (without `?`; empty for a target ending in `?`), `None` when the
/// target has none, read from the request line in `raw` rather than from Monkey's
/// `query_string`, which is not reset between the requests of a connection (a request
/// without a query carried the previous one's, or whatever bytes sat where it was:
/// `GET /b HTTP/1.1` after `GET /a?x=1` gave `/b?HTT`) and which keeps pointing into
/// Monkey's first read buffer when a request outgrows it.
///
/// The line is `METHOD SP target SP HTTP/1.x`; Monkey has written a NUL at the end of the
/// path before stage 30, over the `?` or, without a query, over the space before the
/// protocol, so both count as separators.
fn query_from_line(raw: &[u8]) -> Option<&[u8]> {
    let line = &raw[..raw.iter().position(|&b| b == b'\n')?];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // `HTTP/1.x` and the separator before it.
    let target_end = line.len().checked_sub(9)?;
    let target_start = line.iter().position(|&b| b == b' ')? + 1;
    let target = line.get(target_start..target_end)?;
    let mark = target.iter().position(|&b| b == b'?' || b == 0)?;
    Some(&target[mark + 1..])
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::query_from_line;

    #[test]
    fn the_query_comes_from_the_request_line_as_monkey_left_it() {
        let q =
            |line: &[u8]| query_from_line(line).map(|q| String::from_utf8_lossy(q).into_owned());
        // As received, and after Monkey's NUL at the end of the path (over `?` or over the
        // space before the protocol).
        assert_eq!(
            q(b"GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n").as_deref(),
            Some("x=1")
        );
        assert_eq!(q(b"GET /a\0x=1 HTTP/1.1\r\n").as_deref(), Some("x=1"));
        assert_eq!(q(b"GET /a\0HTTP/1.1\r\n"), None);
        assert_eq!(q(b"GET /a HTTP/1.1\r\n"), None);
        assert_eq!(q(b"GET /a? HTTP/1.0\r\n").as_deref(), Some(""));
        assert_eq!(q(b"GET /a\0 HTTP/1.0\r\n").as_deref(), Some(""));
        assert_eq!(
            q(b"POST /a?b?c=%2F HTTP/1.1\r\n").as_deref(),
            Some("b?c=%2F")
        );
        // Not a request line: no query rather than a panic.
        assert_eq!(q(b"GET\r\n"), None);
        assert_eq!(q(b""), None);
        assert_eq!(q(b"HTTP/1.1\n"), None);
    }
}
