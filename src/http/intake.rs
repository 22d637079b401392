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
use super::headers::{has_token, parse_decimal, trim, Field};
use super::request::{push_target, BodyKind, ProxyRequest};

/// Header fields parsed without the fallback array.
const FEW_FIELDS: usize = 24;
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

/// Appends `bytes` as text, invalid UTF-8 replaced. Valid text, the rule, takes
/// `from_utf8`'s quick check rather than `from_utf8_lossy`'s chunk walk (measurable per
/// request).
fn push_text(to: &mut String, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(text) => to.push_str(text),
        Err(_) => to.push_str(&String::from_utf8_lossy(bytes)),
    }
}

/// Reads `raw` into `into` (cleared first; its buffers are reused) and returns how many bytes
/// of `raw.rest` the request took (anything after them belongs to requests pipelined behind
/// it). The request is not validated yet ([`ProxyRequest::validate`]).
pub fn read_request(raw: &RawRequest<'_>, into: &mut ProxyRequest) -> Result<usize, Unread> {
    let request = into;
    request.clear();
    // The common methods need no UTF-8 check.
    match raw.method {
        b"GET" => request.method.push_str("GET"),
        b"HEAD" => request.method.push_str("HEAD"),
        b"POST" => request.method.push_str("POST"),
        other => push_text(&mut request.method, other),
    }
    push_target(&mut request.path, raw.path);
    if let Some(query) = raw.query {
        let mut text = request.text_buffer();
        push_target(&mut text, query);
        request.query = Some(text);
    }
    request.minor_version = raw.minor_version;
    request.client = raw.peer;
    request.client_wants_close = raw.host_closes;

    // Most requests have a few fields: a small array first spares initialising the large one.
    let mut few = [httparse::EMPTY_HEADER; FEW_FIELDS];
    let mut many;
    let parsed = match httparse::parse_headers(raw.rest, &mut few) {
        Err(httparse::Error::TooManyHeaders) => {
            many = [httparse::EMPTY_HEADER; MAX_FIELDS];
            httparse::parse_headers(raw.rest, &mut many)
        }
        other => other,
    };
    let (head_len, fields) = match parsed {
        Ok(httparse::Status::Complete(done)) => done,
        Ok(httparse::Status::Partial) => return Err(Unread::Incomplete),
        Err(_) => return Err(Unread::Malformed),
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    for h in fields {
        let value = trim(h.value);
        // Recognised once: the same answer serves the framing here and the list's entry.
        let field = Field::of(h.name.as_bytes());
        match field {
            Field::ContentLength => {
                // An unreadable length is refused by `validate`; here it frames no body.
                length = parse_decimal(value).and_then(|n| usize::try_from(n).ok());
            }
            Field::TransferEncoding => chunked |= has_token(value, "chunked"),
            // `close` may be one token of a list (Monkey recognises only the whole value).
            Field::Connection if has_token(value, "close") => request.client_wants_close = true,
            Field::Host if request.host.is_none() => {
                // The authority exactly as sent (Monkey's own parse loses a port it cannot
                // read). A second Host is refused by `validate`.
                let mut authority = request.text_buffer();
                push_text(&mut authority, value);
                request.host = Some(authority);
            }
            _ => {}
        }
        request.headers.push_parsed(field, h.name, value);
    }

    let body_bytes = &raw.rest[head_len..];
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
    if request.upgrade_protocol().is_some() {
        // What follows an upgrade request is no pipelined request but, if the backend
        // switches, the new protocol's first bytes: kept for the tunnel (nginx and haproxy
        // carry them too). If it does not switch, they are read as the next request.
        request.early.extend_from_slice(&raw.rest[consumed..]);
    }
    Ok(consumed)
}

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
    fn fields_body_and_the_pipelined_rest_are_told_apart() {
        let mut r = ProxyRequest::default();
        let rest = b"Host: h:81\r\nContent-Length: 3\r\nConnection: x, close\r\n\r\nabcGET /next";
        let used = read_request(&raw(rest), &mut r).unwrap();
        assert_eq!(&rest[used..], b"GET /next");
        assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/a"));
        assert_eq!(r.query.as_deref(), Some("x=1"));
        assert_eq!(r.host.as_deref(), Some("h:81"));
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
        let used = read_request(&raw(rest), &mut r).unwrap();
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
            assert_eq!(
                read_request(&raw(rest.as_bytes()), &mut r),
                Ok(rest.len() - 5)
            );
            assert!(r.validate().is_err(), "{value}");
        }
    }
}
