//! The httparse-based response-head parser this module replaced, kept as the reference the
//! one-pass parser is checked against (`equivalence` tests): same decisions, same bytes.

use std::mem::MaybeUninit;

use super::super::framing::Framing;
use super::super::headers::{
    named_in_connection, parse_decimal, push_decimal, trim, ConnectionOptions, Field,
};
use super::{ClientSide, HeadEdits, ResponseError, ResponseHead, MAX_HEADERS};

/// The former [`super::parse_head`]: httparse reads the head, a second walk classifies it.
///
/// Returns `Ok(None)` while the head is incomplete; interim 1xx responses (other than 101) are
/// skipped (`head_len` then covers them too). On success the head the client should receive is
/// appended to `out`: status line and end-to-end headers, without hop-by-hop fields and
/// without the fields the backend's `Connection` names, re-framed for the client, with
/// `edits` made.
pub fn parse_head(
    buf: &[u8],
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
) -> Result<Option<ResponseHead>, ResponseError> {
    // Most heads have a few fields: a small array first, for the rare head with more the
    // large one. Neither is initialised: httparse writes the fields it returns.
    let mut few = [MaybeUninit::uninit(); FEW_HEADERS];
    match parse_with(buf, client, edits, out, &mut few) {
        Err(Oversized::TooManyFields) => {
            let mut many = [MaybeUninit::uninit(); MAX_HEADERS];
            // The old parser called every refusal of such a head `Malformed`; the one-pass
            // parser keeps its kind (`BadContentLength`...), as for shorter heads. Callers
            // treat every kind alike (502), so the reference keeps the kind too.
            parse_with(buf, client, edits, out, &mut many).map_err(|e| match e {
                Oversized::Refused(e) => e,
                Oversized::TooManyFields => ResponseError::Malformed,
            })
        }
        Err(Oversized::Refused(e)) => Err(e),
        Ok(head) => Ok(head),
    }
}

/// Fields parsed without the fallback array.
const FEW_HEADERS: usize = 24;

/// Why [`parse_with`] failed.
enum Oversized {
    /// More fields than the array given holds.
    TooManyFields,
    /// The head is refused.
    Refused(ResponseError),
}

/// [`parse_head`] with `fields` as room for the header fields.
fn parse_with<'b>(
    buf: &'b [u8],
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
    fields: &mut [MaybeUninit<httparse::Header<'b>>],
) -> Result<Option<ResponseHead>, Oversized> {
    let mut skipped = 0;
    let config = httparse::ParserConfig::default();
    loop {
        let mut resp = httparse::Response::new(&mut []);
        let len = match config.parse_response_with_uninit_headers(
            &mut resp,
            &buf[skipped..],
            &mut *fields,
        ) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(httparse::Error::TooManyHeaders) => return Err(Oversized::TooManyFields),
            Err(_) => return Err(Oversized::Refused(ResponseError::Malformed)),
        };
        let status = resp.code.unwrap_or(0);
        let minor = resp.version.unwrap_or(0);
        if !(100..=999).contains(&status) {
            return Err(Oversized::Refused(ResponseError::Malformed));
        }
        if (100..200).contains(&status) && status != 101 {
            // Interim responses (100 Continue, 103 Early Hints) are dropped: the client's whole
            // request was already received by the server in front of us.
            skipped += len;
            continue;
        }
        let headers = resp.headers;
        // One pass: each name recognised once (the passes below use the kinds), and what
        // the framing rules need gathered on the way.
        let mut kinds = [Field::Other; MAX_HEADERS];
        let mut framing = FramingFields::default();
        let mut connection = ConnectionOptions::default();
        for (kind, h) in kinds.iter_mut().zip(headers.iter()) {
            *kind = Field::of(h.name.as_bytes());
            match *kind {
                Field::Connection => connection.add(h.value),
                Field::ContentLength if framing.first_length.is_some() => {
                    framing.more_lengths = true
                }
                Field::ContentLength => framing.first_length = Some(h.value),
                Field::TransferEncoding => framing.has_codings = true,
                Field::Upgrade => framing.has_upgrade = true,
                _ => {}
            }
        }
        let kinds = &kinds[..headers.len()];
        let fields = Fields {
            raw: &buf[skipped..skipped + len],
            headers,
            kinds,
            connection,
        };
        let head = decide(status, minor, &fields, &framing, client).map_err(Oversized::Refused)?;
        write_client_head(
            status,
            resp.reason.unwrap_or(""),
            &fields,
            &head,
            client,
            edits,
            out,
        );
        return Ok(Some(ResponseHead {
            head_len: skipped + len,
            ..head
        }));
    }
}

/// A response head's fields, each name recognised once, and its `Connection` options.
struct Fields<'h, 'b> {
    /// The whole head as received (status line to the empty line); `headers` point into it.
    raw: &'b [u8],
    headers: &'h [httparse::Header<'b>],
    kinds: &'h [Field],
    connection: ConnectionOptions,
}

/// What the framing rules read from a head's fields, gathered while they are recognised.
#[derive(Clone, Copy, Default)]
struct FramingFields<'b> {
    /// The first `Content-Length` value.
    first_length: Option<&'b [u8]>,
    /// More than one `Content-Length`.
    more_lengths: bool,
    /// A `Transfer-Encoding` field.
    has_codings: bool,
    /// An `Upgrade` field.
    has_upgrade: bool,
}

/// RFC 9112 §6.3: the message-length rules, in their order.
fn decide(
    status: u16,
    minor: u8,
    fields: &Fields<'_, '_>,
    framing_fields: &FramingFields<'_>,
    client: ClientSide,
) -> Result<ResponseHead, ResponseError> {
    let Fields {
        headers,
        kinds,
        connection,
        ..
    } = *fields;
    let FramingFields {
        first_length,
        more_lengths,
        has_codings,
        has_upgrade,
    } = *framing_fields;
    let codings = values_of(headers, kinds, Field::TransferEncoding);

    // Strictness before the rules: a response with conflicting framing is refused even when
    // its status says no body follows, since the backend connection is in an unknown state.
    if has_codings && first_length.is_some() {
        return Err(ResponseError::LengthAndTransferEncoding);
    }
    if more_lengths {
        return Err(ResponseError::BadContentLength);
    }
    if has_codings && !super::super::headers::only_chunked(codings) {
        return Err(ResponseError::UnsupportedTransferEncoding);
    }
    let length = match first_length {
        Some(value) => {
            let v = trim(value);
            // At most 19 digits: every such length fits in a u64 (and 20 would be absurd).
            if v.len() > 19 {
                return Err(ResponseError::BadContentLength);
            }
            Some(parse_decimal(v).ok_or(ResponseError::BadContentLength)?)
        }
        None => None,
    };

    // (1) HEAD responses and 1xx, 204, 304 have no body.
    let framing =
        if client.head_request || status == 204 || status == 304 || (100..200).contains(&status) {
            Framing::None
        // (3) Transfer-Encoding with chunked last means chunked (and a lone `chunked` is the
        // only coding accepted, checked above).
        } else if has_codings {
            Framing::Chunked
        // (5) A valid Content-Length gives the length.
        } else if let Some(n) = length {
            Framing::Length(n)
        // (7) Otherwise the body lasts until the connection closes.
        } else {
            Framing::UntilClose
        };

    let backend_closes = connection.close
        || (minor == 0 && !connection.keep_alive)
        || framing == Framing::UntilClose
        || status == 101;
    let dechunk = framing == Framing::Chunked && client.minor_version == 0;
    // RFC 9112 §7.1: chunked lets the end of the body be told without closing.
    let enchunk =
        framing == Framing::UntilClose && client.minor_version == 1 && !client.wants_close;
    let client_closes = client.wants_close
        || client.minor_version == 0
        || (framing == Framing::UntilClose && !enchunk)
        || dechunk;
    // RFC 9110 §15.2.2: 101 only answers a request's Upgrade, and names the new protocol.
    let upgrade = status == 101;
    if upgrade && (!client.upgrade || !has_upgrade) {
        return Err(ResponseError::Malformed);
    }
    Ok(ResponseHead {
        status,
        head_len: 0,
        framing,
        backend_closes,
        client_closes,
        dechunk,
        enchunk,
        upgrade,
    })
}

/// The values of the fields of one kind, in received order.
fn values_of<'h>(
    headers: &'h [httparse::Header<'_>],
    kinds: &'h [Field],
    kind: Field,
) -> impl Iterator<Item = &'h [u8]> + Clone + 'h {
    headers
        .iter()
        .zip(kinds)
        .filter(move |(_, k)| **k == kind)
        .map(|(h, _)| h.value)
}

fn write_client_head(
    status: u16,
    reason: &str,
    fields: &Fields<'_, '_>,
    head: &ResponseHead,
    client: ClientSide,
    edits: &HeadEdits<'_>,
    out: &mut Vec<u8>,
) {
    let Fields {
        raw,
        headers,
        kinds,
        connection: options,
    } = *fields;
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let connection = values_of(headers, kinds, Field::Connection);
    let check_connection = options.names_fields;
    // Kept fields are copied as received, runs of neighbouring lines at once (most heads
    // lose only their `Connection` line): a handful of copies instead of four per field.
    // `pending` is the run of raw bytes not copied yet.
    let offset = |name: &str| name.as_ptr() as usize - raw.as_ptr() as usize;
    // Where the field lines end: before the empty line (CRLF, or a bare LF httparse accepts).
    let fields_end = raw.len() - if raw.ends_with(b"\r\n\r\n") { 2 } else { 1 };
    let mut pending = 0..0;
    // A response without a body keeps its length (HEAD, 304: the length a GET would have
    // had), except where none may be sent (RFC 9110 §8.6: 1xx, 204).
    let keep_lengths =
        head.framing == Framing::None && status != 204 && !(100..200).contains(&status);
    // Fields a `set` or `remove` rule names end a run like the hop-by-hop ones.
    let rule_drops = edits.rules.as_ref().filter(|r| r.rules.drops_any());
    // One test per field for both kinds of names (the common head has neither).
    let check_names = check_connection || rule_drops.is_some();
    for (i, (h, &field)) in headers.iter().zip(kinds).enumerate() {
        let keep_length = keep_lengths && field == Field::ContentLength;
        let name = h.name.as_bytes();
        if (!keep_length && field.is_hop_by_hop())
            || (check_names
                && ((check_connection && named_in_connection(connection.clone(), name))
                    || rule_drops.is_some_and(|r| r.drops(name))))
        {
            continue;
        }
        let start = offset(h.name);
        let end = headers
            .get(i + 1)
            .map_or(fields_end, |next| offset(next.name));
        // Only lines ending in CRLF go as received; one ending in a bare LF is rewritten.
        if raw[start..end].ends_with(b"\r\n") {
            if pending.end != start {
                out.extend_from_slice(&raw[pending]);
                pending = start..start;
            }
            pending.end = end;
            continue;
        }
        out.extend_from_slice(&raw[pending]);
        pending = 0..0;
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(&raw[pending]);
    if let Some(rules) = &edits.rules {
        rules.write_lines(out);
    }
    if !edits.extra_lines.is_empty() {
        out.extend_from_slice(edits.extra_lines);
    }
    if head.upgrade {
        // The tunnel's own hop-by-hop pair, which the loop above left out.
        for value in values_of(headers, kinds, Field::Upgrade) {
            out.extend_from_slice(b"Upgrade: ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Connection: upgrade\r\n\r\n");
        return;
    }
    match head.framing {
        Framing::Length(n) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, n);
            out.extend_from_slice(b"\r\n");
        }
        Framing::Chunked if !head.dechunk => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
        }
        Framing::UntilClose if head.enchunk => {
            out.extend_from_slice(b"Transfer-Encoding: chunked\r\n")
        }
        _ => {}
    }
    if head.client_closes {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if client.minor_version == 0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
