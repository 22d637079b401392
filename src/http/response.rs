//! Strict parsing of a backend's response head and the head the client receives instead.

use std::mem::MaybeUninit;

use super::framing::Framing;
use super::headers::{
    named_in_connection, parse_decimal, push_decimal, trim, ConnectionOptions, Field,
};
use super::rules::Applied;

/// Most header fields accepted in one response head.
const MAX_HEADERS: usize = 100;

/// Why a backend response is refused (the client gets 502, the connection is discarded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseError {
    /// Not an HTTP/1.x response head, invalid header bytes, obs-fold, or too many fields.
    Malformed,
    /// Several `Content-Length` fields, or one with an invalid value (RFC 9112 §6.3 (5)).
    BadContentLength,
    /// Both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3 (3): "ought to be handled
    /// as an error").
    LengthAndTransferEncoding,
    /// A transfer coding other than a lone `chunked`. The proxy sends no `TE`, so a backend
    /// may apply no other (RFC 9112 §7.4); passed on without its coding (hop-by-hop) the
    /// body would reach the client silently corrupted, as nginx also refuses it.
    UnsupportedTransferEncoding,
}

/// What the relay needs to know about a parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Bytes of the head (status line through the empty line) in the parsed buffer.
    pub head_len: usize,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the backend will close the connection after this response.
    pub backend_closes: bool,
    /// Whether the client connection must close after this response.
    pub client_closes: bool,
    /// Whether the body must be de-chunked for the client (HTTP/1.0 client, chunked body).
    pub dechunk: bool,
    /// Whether a body that ends when the backend closes goes to the client chunked, so that
    /// an HTTP/1.1 client keeps its connection (as nginx does) instead of losing it with the
    /// backend's.
    pub enchunk: bool,
    /// A `101 Switching Protocols` to a requested upgrade: the connection becomes a tunnel.
    pub upgrade: bool,
}

/// Facts about the exchange that shape the client's response head.
#[derive(Debug, Clone, Copy)]
pub struct ClientSide {
    /// The request was `HEAD`.
    pub head_request: bool,
    /// The client's HTTP minor version.
    pub minor_version: u8,
    /// The client connection ends after this exchange anyway.
    pub wants_close: bool,
    /// The request asked to upgrade the connection and the upgrade was forwarded, so a
    /// `101 Switching Protocols` is acceptable.
    pub upgrade: bool,
}

/// What the proxy changes in a backend's response head besides the framing and hop-by-hop
/// fields it owns: the entry's `ResponseHeader` rules, and complete field lines the exchange
/// adds (such as a `Set-Cookie` of its own). The default changes nothing. Both kinds are
/// written after the backend's kept fields, rules first, before the proxy's framing lines.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeadEdits<'a> {
    /// The entry's response rules with the exchange's values (`None`: no rules).
    pub rules: Option<Applied<'a>>,
    /// More field lines, each `Name: value\r\n`, appended as they are (empty: none).
    pub extra_lines: &'a [u8],
}

/// Parses a response head at the start of `buf`.
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
            parse_with(buf, client, edits, out, &mut many).map_err(|_| ResponseError::Malformed)
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
    if has_codings && !super::headers::only_chunked(codings) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const GET11: ClientSide = ClientSide {
        head_request: false,
        minor_version: 1,
        wants_close: false,
        upgrade: false,
    };

    fn parse(
        raw: &str,
        client: ClientSide,
    ) -> Result<Option<(ResponseHead, String)>, ResponseError> {
        let mut out = Vec::new();
        Ok(
            parse_head(raw.as_bytes(), client, &HeadEdits::default(), &mut out)?
                .map(|h| (h, String::from_utf8(out).unwrap())),
        )
    }

    fn parse_with_rules(raw: &str, lines: &[&str], extra: &[u8]) -> String {
        use super::super::rules::Vars;
        use crate::config::headers::{rule, Direction, HeaderRules};
        let rules = HeaderRules::new(
            lines
                .iter()
                .map(|l| rule("ResponseHeader", Direction::Response, l).unwrap())
                .collect(),
        );
        let edits = HeadEdits {
            rules: Some(Applied {
                rules: &rules,
                vars: &Vars {
                    server: "10.0.0.1:80",
                    ..Vars::default()
                },
            }),
            extra_lines: extra,
        };
        let mut out = Vec::new();
        parse_head(raw.as_bytes(), GET11, &edits, &mut out)
            .unwrap()
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn response_rules_cut_runs_and_append_before_the_framing() {
        let raw = "HTTP/1.1 200 OK\r\nServer: nginx\r\nA: 1\r\nX-Twice: 1\r\nB:  2\r\nx-twice: 2\nC: 3\r\nContent-Length: 0\r\n\r\n";
        let out = parse_with_rules(
            raw,
            &[
                "remove Server",
                "set X-Twice once",
                "add X-From $server",
                "set Host h",
            ],
            b"Set-Cookie: s=1\r\n",
        );
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nA: 1\r\nB:  2\r\nC: 3\r\nX-Twice: once\r\nX-From: 10.0.0.1:80\r\nHost: h\r\n\
             Set-Cookie: s=1\r\nContent-Length: 0\r\n\r\n"
        );
        // A 101's rules and extra lines come before its Upgrade pair.
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nServer: x\r\n\r\n";
        let asked = ClientSide {
            upgrade: true,
            ..GET11
        };
        use super::super::rules::Vars;
        use crate::config::headers::{rule, Direction, HeaderRules};
        let rules = HeaderRules::new(vec![rule(
            "ResponseHeader",
            Direction::Response,
            "remove server",
        )
        .unwrap()]);
        let edits = HeadEdits {
            rules: Some(Applied {
                rules: &rules,
                vars: &Vars::default(),
            }),
            extra_lines: b"",
        };
        let mut out = Vec::new();
        parse_head(raw.as_bytes(), asked, &edits, &mut out)
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
    }

    #[test]
    fn many_fields_are_kept_and_too_many_refused() {
        let fields: String = (0..60).map(|i| format!("X-F{i}: {i}\r\n")).collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nok");
        let (h, out) = parse(&raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Length(2));
        assert!(
            out.contains("X-F0: 0\r\n") && out.contains("X-F59: 59\r\n"),
            "{out}"
        );
        let fields: String = (0..MAX_HEADERS)
            .map(|i| format!("X-F{i}: {i}\r\n"))
            .collect();
        let raw = format!("HTTP/1.1 200 OK\r\n{fields}Content-Length: 2\r\n\r\nok");
        assert_eq!(parse(&raw, GET11), Err(ResponseError::Malformed));
    }

    #[test]
    fn content_length_response() {
        let (h, out) = parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        assert_eq!(h.head_len, 46);
        assert!(!h.backend_closes && !h.client_closes);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 5\r\n\r\n"
        );
    }

    #[test]
    fn partial_head_waits() {
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Le", GET11).unwrap(), None);
    }

    #[test]
    fn no_body_for_head_204_304() {
        let head = ClientSide {
            head_request: true,
            ..GET11
        };
        let (h, out) = parse("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", head)
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::None);
        assert!(
            out.contains("Content-Length: 10\r\n"),
            "HEAD keeps the length of the GET body"
        );
        for s in ["204 No Content", "304 Not Modified"] {
            let (h, _) = parse(&format!("HTTP/1.1 {s}\r\n\r\n"), GET11)
                .unwrap()
                .unwrap();
            assert_eq!(h.framing, Framing::None);
        }
    }

    #[test]
    fn interim_responses_are_skipped() {
        let raw = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        let (h, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.head_len, raw.len());
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
    }

    #[test]
    fn chunked_passes_through_for_1_1_and_is_dechunked_for_1_0() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (h, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.dechunk && out.contains("Transfer-Encoding: chunked\r\n"));
        let old = ClientSide {
            minor_version: 0,
            ..GET11
        };
        let (h, out) = parse(raw, old).unwrap().unwrap();
        assert!(h.dechunk && h.client_closes && !out.contains("chunked"));
    }

    #[test]
    fn close_delimited_goes_chunked_to_1_1_clients_and_closes_the_others() {
        let raw = "HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n";
        let (h, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(h.backend_closes && h.enchunk && !h.client_closes);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
        );
        let old = ClientSide {
            minor_version: 0,
            ..GET11
        };
        let closing = ClientSide {
            wants_close: true,
            ..GET11
        };
        for client in [old, closing] {
            let (h, out) = parse(raw, client).unwrap().unwrap();
            assert!(h.backend_closes && !h.enchunk && h.client_closes);
            assert!(!out.contains("chunked") && out.contains("Connection: close\r\n"));
        }
    }

    #[test]
    fn backend_connection_header_names_are_dropped() {
        let raw = "HTTP/1.1 200 OK\r\nConnection: x-internal, keep-alive\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 0\r\n\r\n";
        let (_, out) = parse(raw, GET11).unwrap().unwrap();
        assert!(!out.to_ascii_lowercase().contains("internal"));
        assert!(!out.contains("Keep-Alive"));
    }

    #[test]
    fn kept_lines_go_as_received_and_bare_line_feeds_become_crlf() {
        // Neighbouring lines as received (spacing included), the Connection line between
        // them cut out, the proxy's framing appended.
        let raw = "HTTP/1.1 200 OK\r\nA:1\r\nB:  two  \r\nConnection: keep-alive\r\nC: 3\r\nContent-Length: 0\r\nD: 4\r\n\r\n";
        let (_, out) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nA:1\r\nB:  two  \r\nC: 3\r\nD: 4\r\nContent-Length: 0\r\n\r\n"
        );
        // A bare LF (accepted by the parser) never reaches the client, wherever it is:
        // between fields, ending the last field, ending the head.
        for raw in [
            "HTTP/1.1 200 OK\r\nA: 1\nB: 2\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nA: 1\r\nB: 2\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nA: 1\r\nB: 2\r\n\n",
            "HTTP/1.1 200 OK\nContent-Length: 0\nA: 1\nB: 2\n\n",
        ] {
            let (h, out) = parse(raw, GET11).unwrap().unwrap();
            assert_eq!(h.head_len, raw.len());
            assert!(
                out.contains("\r\nA: 1\r\nB: 2\r\n") && out.ends_with("Content-Length: 0\r\n\r\n"),
                "{raw:?} gave {out:?}"
            );
            assert_eq!(
                out.matches('\n').count(),
                out.matches("\r\n").count(),
                "{out:?}"
            );
        }
    }

    #[test]
    fn http_1_0_backend_closes_unless_keep_alive() {
        let (h, _) = parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", GET11)
            .unwrap()
            .unwrap();
        assert!(h.backend_closes);
        let (h, _) = parse(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert!(!h.backend_closes);
    }

    #[test]
    fn attack_conflicting_lengths() {
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                GET11
            ),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
                GET11
            ),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\n", GET11),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", GET11),
            Err(ResponseError::BadContentLength)
        );
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                GET11
            ),
            Err(ResponseError::LengthAndTransferEncoding)
        );
    }

    #[test]
    fn attack_obs_fold_and_bad_bytes() {
        assert_eq!(
            parse(
                "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 0\r\n\r\n",
                GET11
            ),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nX A: a\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("garbage\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
        assert_eq!(
            parse("HTTP/1.1 20 OK\r\n\r\n", GET11),
            Err(ResponseError::Malformed)
        );
    }

    #[test]
    fn switching_protocols_only_answers_an_upgrade() {
        let raw = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n";
        assert_eq!(parse(raw, GET11), Err(ResponseError::Malformed));
        let asked = ClientSide {
            upgrade: true,
            ..GET11
        };
        let (h, out) = parse(raw, asked).unwrap().unwrap();
        assert!(h.upgrade);
        assert_eq!(
            out,
            "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
        );
        let nameless = "HTTP/1.1 101 Switching Protocols\r\n\r\n";
        assert_eq!(parse(nameless, asked), Err(ResponseError::Malformed));
    }

    #[test]
    fn transfer_codings_other_than_chunked_are_refused() {
        for codings in [
            "gzip",
            "gzip, chunked",
            "chunked, chunked",
            "identity",
            "chunked\r\nTransfer-Encoding: chunked",
        ] {
            let raw = format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {codings}\r\n\r\n");
            assert_eq!(
                parse(&raw, GET11),
                Err(ResponseError::UnsupportedTransferEncoding),
                "{codings:?}"
            );
        }
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n";
        let (h, _) = parse(raw, GET11).unwrap().unwrap();
        assert_eq!(h.framing, Framing::Chunked);
    }

    #[test]
    fn no_content_length_where_none_may_be_sent() {
        let (_, out) = parse(
            "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert!(!out.contains("Content-Length"), "{out}");
        let (_, out) = parse(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
            GET11,
        )
        .unwrap()
        .unwrap();
        assert!(out.contains("Content-Length: 7\r\n"), "{out}");
    }
}
