//! The httparse-based intake [`super::read_request`] replaced, kept as the reference the
//! one-pass intake is held to ([`super::agree`], in the `equivalence` tests and a fuzz target); with
//! [`ProxyRequest::validate`] after it, it is the former intake and validation.

use super::super::chunked::ChunkedDecoder;
use super::super::headers::{has_token, parse_decimal, trim, Field};
use super::super::request::{push_target, BodyKind, ProxyRequest};
use super::{push_text, RawRequest, Unread, MAX_FIELDS};

/// Header fields parsed without the fallback array.
const FEW_FIELDS: usize = 24;

/// The former `read_request`: httparse reads the fields, a walk of them reads the framing.
pub fn read_request(raw: &RawRequest<'_>, into: &mut ProxyRequest) -> Result<usize, Unread> {
    let request = into;
    request.clear();
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
        let field = Field::of(h.name.as_bytes());
        match field {
            Field::ContentLength => {
                length = parse_decimal(value).and_then(|n| usize::try_from(n).ok());
            }
            Field::TransferEncoding => chunked |= has_token(value, "chunked"),
            Field::Connection if has_token(value, "close") => request.client_wants_close = true,
            Field::Host if request.host.is_none() => {
                let mut authority = request.host_buffer();
                authority.extend_from_slice(value);
                request.host = Some(authority);
            }
            _ => {}
        }
        request.headers.push_parsed(field, h.name.as_bytes(), value);
    }

    let body_bytes = &raw.rest[head_len..];
    let body: &[u8] = if chunked {
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
        request.early.extend_from_slice(&raw.rest[consumed..]);
    }
    Ok(consumed)
}
