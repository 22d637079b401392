//! The one request intake every host uses: from the raw parts a host's parser found to a
//! [`ProxyRequest`].
//!
//! A host only frames bytes: it finds the request line (Monkey parses it itself; the stand-in
//! host splits it) and hands over the raw bytes that follow it. Header fields, framing and
//! body are read here, the same way for every host, so that every check that runs in CI
//! runs exactly as it runs in Monkey. Fields are read from the raw bytes rather than from a
//! host's parsed list, because Monkey keeps only the last copy of a repeated known header (a
//! second `Content-Length` would be invisible) and strips the port from `Host`.

use std::net::SocketAddr;

use super::chunked::ChunkedDecoder;
use super::headers::{parse_decimal, tokens, Field};
use super::request::{is_authority, push_target, BodyKind, ProxyRequest, RequestError};
use super::response::{field_line, Stop};

/// Most header fields a request may have (more: 400).
pub const MAX_FIELDS: usize = 128;

/// A request as a host found it.
#[derive(Debug, Clone, Copy)]
pub struct RawRequest<'a> {
    /// The method token.
    pub method: &'a [u8],
    /// The request target's path, as received (not decoded).
    pub path: &'a [u8],
    /// The query as received, without `?`; `None` when the target has no `?`.
    pub query: Option<&'a [u8]>,
    /// HTTP minor version (0 or 1).
    pub minor_version: u8,
    /// The bytes after the request line's CRLF: header fields, the empty line, the body, and
    /// maybe requests pipelined behind it.
    pub rest: &'a [u8],
    /// The client's address, if the host knows it.
    pub peer: Option<SocketAddr>,
    /// The host ends the connection after this request whatever the request says (Monkey
    /// 1.8 keeps no HTTP/1.0 connection, for instance).
    pub host_closes: bool,
}

/// Why [`read_request`] has no request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// The head or the body is not complete yet (a host that buffers whole requests, as
    /// Monkey does, treats this as malformed).
    Incomplete,
    /// The fields cannot be parsed, or a chunked body is malformed: 400.
    Malformed,
}

/// A request [`read_request`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    /// How many bytes of `raw.rest` the request took (anything after them belongs to
    /// requests pipelined behind it).
    pub consumed: usize,
    /// What [`ProxyRequest::validate`] says of the request, found while it was read (the
    /// intake sees every byte once; validating walked the fields a second time).
    pub verdict: Result<(), RequestError>,
}

/// Appends `bytes` as text, invalid UTF-8 replaced. Valid text, the rule, takes
/// `from_utf8`'s quick check rather than `from_utf8_lossy`'s chunk walk (measurable per
/// request).
pub(super) fn push_text(to: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => to.push_str(text),
        Err(_) => to.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// What [`judge_target`] finds in a target part as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetBytes {
    /// A byte below 0x21, DEL or `#`: refused by the verdict.
    Invisible,
    /// Visible ASCII without `#`: pushed as it is.
    Ascii,
    /// Visible once [`push_target`] has percent-encoded its bytes of 0x80 and above.
    EightBit,
}

/// Whether a target part as received becomes visible ASCII without `#` once
/// [`push_target`] has percent-encoded its bytes of 0x80 and above: no byte below 0x21, DEL
/// or `#` (what [`ProxyRequest::validate`] checks of the path and the query), and whether it
/// is ASCII already. Eight bytes at a time.
fn judge_target(part: &[u8]) -> TargetBytes {
    const fn each(b: u8) -> u64 {
        u64::from_le_bytes([b; 8])
    }
    // The high bit of a byte that is zero in `x` (or above one: only "any" is asked).
    fn zero(x: u64) -> u64 {
        x.wrapping_sub(each(1)) & !x & each(0x80)
    }
    // Every byte's bits together: a high bit set is a byte of 0x80 or above.
    let mut high = 0;
    let mut words = part.chunks_exact(8);
    for word in &mut words {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        // Below 0x21: the subtraction borrows into the high bit of a byte under 0x80.
        let low = w.wrapping_sub(each(0x21)) & !w & each(0x80);
        if low | zero(w ^ each(0x7f)) | zero(w ^ each(b'#')) != 0 {
            return TargetBytes::Invisible;
        }
        high |= w;
    }
    for &b in words.remainder() {
        if b <= 0x20 || b == 0x7f || b == b'#' {
            return TargetBytes::Invisible;
        }
        high |= u64::from(b);
    }
    if high & each(0x80) == 0 {
        TargetBytes::Ascii
    } else {
        TargetBytes::EightBit
    }
}

/// [`push_target`] for a part [`judge_target`] judged already: ASCII has no byte to
/// percent-encode, so it is pushed after its UTF-8 check alone, without `push_target`'s
/// scan for such bytes.
fn push_judged_target(to: &mut String, part: &[u8], judged: TargetBytes) {
    match std::str::from_utf8(part) {
        Ok(text) if judged == TargetBytes::Ascii => to.push_str(text),
        _ => push_target(to, part),
    }
}

/// What the intake's one pass over the fields gathers for the framing and for the verdict.
#[derive(Default)]
struct Gathered<'b> {
    /// `Content-Length` fields, and the last one's value.
    lengths: u32,
    length_value: &'b [u8],
    /// A `Transfer-Encoding` field was seen; the codings all of them list, and whether
    /// the first is `chunked`.
    codings: bool,
    coding_count: u32,
    first_chunked: bool,
    /// `chunked` is one of the codings (the body is framed by chunks).
    chunked: bool,
    /// `Host` fields, and whether one is no authority.
    hosts: u32,
    bad_host: bool,
    /// `Connection` lists `upgrade`; the first `Upgrade` value.
    connection_upgrade: bool,
    upgrade: Option<&'b [u8]>,
}

impl Gathered<'_> {
    /// [`ProxyRequest::validate`]'s verdict, its checks in its order (the target's first).
    fn verdict(&self, target_ok: bool, minor_version: u8) -> Result<(), RequestError> {
        if !target_ok {
            return Err(RequestError::BadTarget);
        }
        // Field by field, a bad `Host` value was the first refusal validation could meet.
        if self.bad_host {
            return Err(RequestError::BadHost);
        }
        if self.codings && self.lengths > 0 {
            return Err(RequestError::LengthAndTransferEncoding);
        }
        // Exactly one coding, `chunked` (RFC 9112 §6.3 (4)).
        if self.codings && !(self.coding_count == 1 && self.first_chunked) {
            return Err(RequestError::UnsupportedTransferEncoding);
        }
        if self.lengths > 1 {
            return Err(RequestError::BadContentLength);
        }
        // Digits only, and a value that fits: a length too large to hold would frame no body
        // and let the body be read as the next request.
        if self.lengths == 1
            && parse_decimal(self.length_value)
                .and_then(|n| usize::try_from(n).ok())
                .is_none()
        {
            return Err(RequestError::BadContentLength);
        }
        if self.hosts > 1 || (self.hosts == 0 && minor_version >= 1) {
            return Err(RequestError::BadHost);
        }
        Ok(())
    }
}

/// Reads `raw` into `into` (cleared first; its buffers are reused) and, in the same pass,
/// judges it as [`ProxyRequest::validate`] would.
///
/// The fields are read with the response head's field-line reader
/// (`http::response::field_line`: httparse's grammar, which read them before; the
/// equivalence tests hold this intake to the httparse-based one): names of token
/// characters followed at once by `:`, values of HTAB, SP, VCHAR and obs-text, CRLF or a
/// bare LF, no obs-fold, at most [`MAX_FIELDS`] fields.
pub fn read_request(raw: &RawRequest<'_>, into: &mut ProxyRequest) -> Result<Read, Unread> {
    let request = into;
    request.clear();
    // The common methods need no UTF-8 check.
    match raw.method {
        b"GET" => request.method.push_str("GET"),
        b"HEAD" => request.method.push_str("HEAD"),
        b"POST" => request.method.push_str("POST"),
        other => push_text(&mut request.method, other),
    }
    let judged = judge_target(raw.path);
    push_judged_target(&mut request.path, raw.path, judged);
    let mut target_ok = raw.path.first() == Some(&b'/') && judged != TargetBytes::Invisible;
    if let Some(query) = raw.query {
        let judged = judge_target(query);
        let mut text = request.text_buffer();
        push_judged_target(&mut text, query, judged);
        request.query = Some(text);
        target_ok &= judged != TargetBytes::Invisible;
    }
    request.minor_version = raw.minor_version;
    request.client = raw.peer;
    request.client_wants_close = raw.host_closes;

    let buf = raw.rest;
    let mut seen = Gathered::default();
    let mut length: Option<usize> = None;
    let mut count = 0;
    let mut at = 0;
    let head_len = loop {
        let line = match field_line(buf, at) {
            Ok(Ok(line)) => line,
            Ok(Err(end)) => break end,
            Err(Stop::Incomplete) => return Err(Unread::Incomplete),
            Err(Stop::Refused(_)) => return Err(Unread::Malformed),
        };
        count += 1;
        if count > MAX_FIELDS {
            return Err(Unread::Malformed);
        }
        at = line.end;
        let name = &buf[line.start..line.name_end];
        // Trimmed by the reader.
        let value = &buf[line.value];
        // Recognised once: the same answer serves the framing, the verdict and the list.
        let field = Field::of(name);
        match field {
            Field::ContentLength => {
                seen.lengths += 1;
                seen.length_value = value;
                // An unreadable length frames no body; the verdict refuses it.
                length = parse_decimal(value).and_then(|n| usize::try_from(n).ok());
            }
            Field::TransferEncoding => {
                seen.codings = true;
                for coding in tokens(value) {
                    let chunked = coding.eq_ignore_ascii_case(b"chunked");
                    if seen.coding_count == 0 {
                        seen.first_chunked = chunked;
                    }
                    seen.coding_count += 1;
                    seen.chunked |= chunked;
                }
            }
            Field::Connection => {
                // `close` may be one token of a list (Monkey recognises only the whole
                // value).
                for option in tokens(value) {
                    if option.eq_ignore_ascii_case(b"close") {
                        request.client_wants_close = true;
                    } else if option.eq_ignore_ascii_case(b"upgrade") {
                        seen.connection_upgrade = true;
                    }
                }
            }
            Field::Upgrade if seen.upgrade.is_none() => seen.upgrade = Some(value),
            Field::Host => {
                seen.hosts += 1;
                seen.bad_host |= !is_authority(value);
                if request.host.is_none() {
                    // The authority exactly as sent (Monkey's own parse loses a port it
                    // cannot read). A second Host is refused by the verdict, and so is
                    // one that is no authority: what is routed is ASCII.
                    let mut authority = request.host_buffer();
                    authority.extend_from_slice(value);
                    request.host = Some(authority);
                }
            }
            _ => {}
        }
        request.headers.push_parsed(field, name, value);
    };
    let verdict = seen.verdict(target_ok, raw.minor_version);

    let body_bytes = &buf[head_len..];
    let chunked = seen.chunked;
    let body: &[u8] = if chunked {
        // The chunks are forwarded as they are; only the message's end is found here (a
        // pipelined request may follow).
        let mut decoder = ChunkedDecoder::default();
        let used = decoder
            .feed(body_bytes, |_| {})
            .map_err(|_| Unread::Malformed)?;
        if !decoder.is_done() {
            return Err(Unread::Incomplete);
        }
        &body_bytes[..used]
    } else {
        let n = length.unwrap_or(0);
        body_bytes.get(..n).ok_or(Unread::Incomplete)?
    };
    request.body.extend_from_slice(body);
    request.body_kind = match (chunked, body.is_empty()) {
        (true, _) => BodyKind::Chunked,
        (false, true) => BodyKind::None,
        (false, false) => BodyKind::Length,
    };
    let consumed = head_len + body.len();
    // [`ProxyRequest::upgrade_protocol`], from what the pass saw.
    let upgrade = raw.minor_version != 0
        && seen.connection_upgrade
        && seen.upgrade.is_some_and(|v| !v.is_empty());
    if upgrade {
        // What follows an upgrade request is no pipelined request but, if the backend
        // switches, the new protocol's first bytes: kept for the tunnel (nginx and haproxy
        // carry them too). If it does not switch, they are read as the next request.
        request.early.extend_from_slice(&buf[consumed..]);
    }
    Ok(Read { consumed, verdict })
}

// The reference intake and the check against it: for the tests, and for the fuzz targets
// through the `fuzz-reference` feature (which brings in httparse).
#[cfg(any(test, feature = "fuzz-reference"))]
pub mod reference;

#[cfg(any(test, feature = "fuzz-reference"))]
pub mod agree;

#[cfg(test)]
mod equivalence;

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(rest: &'a [u8]) -> RawRequest<'a> {
        RawRequest {
            method: b"POST",
            path: b"/a",
            query: Some(b"x=1"),
            minor_version: 1,
            rest,
            peer: None,
            host_closes: false,
        }
    }

    #[test]
    fn target_judgement_agrees_with_a_byte_walk() {
        // Every byte at every place of parts shorter and longer than a word.
        let walk = |part: &[u8]| {
            if part.iter().any(|&b| b <= 0x20 || b == 0x7f || b == b'#') {
                TargetBytes::Invisible
            } else if part.is_ascii() {
                TargetBytes::Ascii
            } else {
                TargetBytes::EightBit
            }
        };
        for base in [&b"/"[..], b"/1k", b"/static/app.js", b"/a/b/c/d/e/f/g/h/i"] {
            for at in 0..=base.len() {
                for b in 0..=255u8 {
                    let part = [&base[..at], &[b], &base[at..]].concat();
                    assert_eq!(judge_target(&part), walk(&part), "{part:?}");
                }
            }
        }
    }

    #[test]
    fn fields_body_and_the_pipelined_rest_are_told_apart() {
        let mut r = ProxyRequest::default();
        let rest = b"Host: h:81\r\nContent-Length: 3\r\nConnection: x, close\r\n\r\nabcGET /next";
        let used = read_request(&raw(rest), &mut r).unwrap().consumed;
        assert_eq!(&rest[used..], b"GET /next");
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/a"));
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.host.as_deref(), Some(&b"h:81"[..]));
        assert_eq!(
            (r.body.as_slice(), r.body_kind),
            (&b"abc"[..], BodyKind::Length)
        );
        assert!(r.client_wants_close);
        assert_eq!(r.headers.len(), 3);
    }

    #[test]
    fn a_chunked_body_ends_at_its_last_chunk() {
        let mut r = ProxyRequest::default();
        let rest = b"Host: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT";
        let used = read_request(&raw(rest), &mut r).unwrap().consumed;
        assert_eq!(&rest[used..], b"NEXT");
        assert_eq!(r.body_kind, BodyKind::Chunked);
        assert_eq!(r.body, b"3\r\nabc\r\n0\r\n\r\n");
    }

    #[test]
    fn incomplete_and_malformed_requests_are_told_apart() {
        let mut r = ProxyRequest::default();
        let cases: [(&[u8], Unread); 5] = [
            (b"Host: h\r\n", Unread::Incomplete),
            (
                b"Host: h\r\nContent-Length: 5\r\n\r\nab",
                Unread::Incomplete,
            ),
            (
                b"Host: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
                Unread::Incomplete,
            ),
            (
                b"Host: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                Unread::Malformed,
            ),
            (b"Bad Field\r\n\r\n", Unread::Malformed),
        ];
        for (rest, expected) in cases {
            assert_eq!(read_request(&raw(rest), &mut r), Err(expected), "{rest:?}");
        }
    }

    #[test]
    fn fields_the_parser_reads_have_no_byte_validation_would_refuse() {
        // `validate` skips its byte checks for fields read here: every byte, in a name and
        // in a value, is either refused by the parser or one those checks accept.
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        let mut r = ProxyRequest::default();
        for b in 0..=255u8 {
            let mut name = b"Host: h\r\nX-A".to_vec();
            name.push(b);
            name.extend_from_slice(b"b: 1\r\n\r\n");
            let mut value = b"Host: h\r\nX-A: 1".to_vec();
            value.push(b);
            value.extend_from_slice(b"2\r\n\r\n");
            for rest in [name, value] {
                if read_request(&raw(&rest), &mut r).is_err() {
                    continue;
                }
                for (_, name, value) in r.headers.fields() {
                    assert!(!name.is_empty() && name.iter().all(|&c| tchar(c)), "{b:#x}");
                    assert!(
                        !value.iter().any(|&c| c == b'\r' || c == b'\n' || c == 0),
                        "{b:#x}"
                    );
                }
                // The same request with its fields checked byte by byte is judged the same.
                let mut by_hand = r.clone();
                by_hand.headers = r.headers.iter().collect();
                assert_eq!(r.validate(), by_hand.validate(), "{b:#x}");
            }
        }
    }

    #[test]
    fn an_unreadable_length_frames_no_body_and_is_left_to_validation() {
        let mut r = ProxyRequest::default();
        for value in ["+5", "5, 44", "-1"] {
            let rest = format!("Host: h\r\nContent-Length: {value}\r\n\r\nhello");
            let read = read_request(&raw(rest.as_bytes()), &mut r).unwrap();
            assert_eq!(read.consumed, rest.len() - 5);
            assert_eq!(read.verdict, Err(RequestError::BadContentLength), "{value}");
            assert_eq!(r.validate(), read.verdict, "{value}");
        }
    }
}
