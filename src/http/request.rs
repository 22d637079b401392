//! The client request as the core sees it, and the request the proxy sends upstream.
//!
//! Hosts (the Monkey adapter, the test host) copy what their parser found into a
//! [`ProxyRequest`]; [`ProxyRequest::write_upstream`] then rebuilds the upstream request from
//! those fields — never from a host's raw buffer, which Monkey mutates in place.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

use super::headers::{
    connection_names_fields, has_token, named_in_connection, only_chunked, parse_decimal,
    push_decimal, push_ip, tokens, trim, Field,
};
use super::rules::Applied;
use crate::config::Cidr;

/// How the request body was framed by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyKind {
    /// No body.
    #[default]
    None,
    /// `Content-Length` bytes.
    Length,
    /// `Transfer-Encoding: chunked`; `body` holds the raw chunked bytes, forwarded as they are.
    Chunked,
}

/// A complete client request (Monkey buffers the whole body before the plugin sees it).
#[derive(Debug, Clone, Default)]
pub struct ProxyRequest {
    /// Method token as received (e.g. `GET`, `PATCH`).
    pub method: String,
    /// Request target path as received (not decoded), starting with `/`.
    pub path: String,
    /// Query string without `?`, if the target had one.
    pub query: Option<String>,
    /// HTTP minor version of the client request (0 or 1).
    pub minor_version: u8,
    /// Header fields in received order (name, value), values trimmed.
    pub headers: HeaderList,
    /// The `Host` authority (with port) the client asked for, if any, as received: bytes,
    /// not text, so that the intake copies it without a UTF-8 check (a request whose `Host`
    /// is no authority, ASCII by definition, is refused before anything reads it as text).
    pub host: Option<Vec<u8>>,
    /// Body bytes to forward (raw chunked bytes when `body_kind` is `Chunked`).
    pub body: Vec<u8>,
    /// How `body` is framed.
    pub body_kind: BodyKind,
    /// The client's address.
    pub client: Option<SocketAddr>,
    /// Whether the client connection ends after this request (HTTP/1.0, `Connection: close`).
    pub client_wants_close: bool,
    /// Bytes the client sent right behind an upgrade request, before any answer (a
    /// WebSocket client's first frames, say): the start of the new protocol, which goes into
    /// the tunnel once the backend has switched (empty for other requests).
    pub early: Vec<u8>,
    /// The `query` string of the request before [`ProxyRequest::clear`], emptied, for
    /// [`ProxyRequest::text_buffer`] (so that a recycled request refills it without
    /// allocating).
    spare_text: Vec<String>,
    /// The `host` buffer of the request before [`ProxyRequest::clear`], emptied, for
    /// [`ProxyRequest::host_buffer`].
    spare_host: Vec<u8>,
}

/// Header fields of a request in received order, stored in one buffer (two allocations per
/// request however many fields it has, none once a worker recycles the list), each field
/// recognised once when it is added.
#[derive(Debug, Clone, Default)]
pub struct HeaderList {
    bytes: Vec<u8>,
    /// Name start, name end (= value start), value end in `bytes`, what the name denotes,
    /// and whether the intake's parser checked the field's bytes already (in the entry's
    /// padding: the list, and every request and exchange that holds one, keep their size).
    fields: Vec<(u32, u32, u32, Field, bool)>,
    /// One bit per kind of field the list holds (`1 << field as u16`): most requests have
    /// no `Connection`, `Upgrade` or forwarding field, and the askers for one of them
    /// (several per request) learn so from one test instead of a walk of the list.
    kinds: u16,
}

impl HeaderList {
    /// Appends a field (`value` already trimmed). Its bytes are judged by
    /// [`ProxyRequest::validate`].
    pub fn push(&mut self, name: &str, value: &[u8]) {
        self.push_field(name, value, false);
    }

    /// Appends a field the intake's parser read (`value` already trimmed): httparse admits
    /// only `tchar` in a name and no CR, LF or NUL in a value (its `TOKEN_MAP` and
    /// `HEADER_VALUE_MAP`), the same bytes [`ProxyRequest::validate`] refuses, so validation
    /// does not walk them a second time.
    /// `field` is what `name` denotes (the intake recognised it to read framing fields).
    /// `name` is made of token characters (ASCII).
    pub(crate) fn push_parsed(&mut self, field: Field, name: &[u8], value: &[u8]) {
        self.push_known(field, name, value, true);
    }

    fn push_field(&mut self, name: &str, value: &[u8], parsed: bool) {
        self.push_known(Field::of(name.as_bytes()), name.as_bytes(), value, parsed);
    }

    // Inlined into the intake's loop: once per field of every request.
    #[inline]
    fn push_known(&mut self, field: Field, name: &[u8], value: &[u8], parsed: bool) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(name);
        let middle = self.bytes.len() as u32;
        self.bytes.extend_from_slice(value);
        self.fields
            .push((start, middle, self.bytes.len() as u32, field, parsed));
        self.kinds |= kind_bit(field);
    }

    /// Whether the list holds a field of this kind.
    #[inline]
    pub fn has(&self, kind: Field) -> bool {
        self.kinds & kind_bit(kind) != 0
    }

    /// The fields as (name, value), in received order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields()
            .map(|(_, name, value)| (std::str::from_utf8(name).unwrap_or(""), value))
    }

    /// The fields as (what the name denotes, name bytes, value), in received order.
    pub fn fields(&self) -> impl Iterator<Item = (Field, &[u8], &[u8])> + Clone + '_ {
        self.checked_fields()
            .map(|(field, name, value, _)| (field, name, value))
    }

    /// [`HeaderList::fields`] with, for each, whether the intake's parser checked its bytes.
    fn checked_fields(&self) -> impl Iterator<Item = (Field, &[u8], &[u8], bool)> + Clone + '_ {
        self.fields.iter().map(|&(a, b, c, field, parsed)| {
            (
                field,
                &self.bytes[a as usize..b as usize],
                &self.bytes[b as usize..c as usize],
                parsed,
            )
        })
    }

    /// The values of the fields of one kind, in received order.
    pub fn values_of(&self, kind: Field) -> impl Iterator<Item = &[u8]> + Clone + '_ {
        // No field of the kind (the rule for all but `Host`): nothing is walked. Otherwise
        // filtered on the entry before any slice is cut: the fields of other kinds (nearly
        // all of them) cost one comparison each.
        let fields = if self.has(kind) {
            &self.fields[..]
        } else {
            &[]
        };
        fields
            .iter()
            .filter(move |entry| entry.3 == kind)
            .map(|&(_, b, c, _, _)| &self.bytes[b as usize..c as usize])
    }

    /// Removes every field, keeping the buffers' capacity.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.fields.clear();
        self.kinds = 0;
    }

    /// Bytes of buffer capacity held (to decide whether a recycled list is worth keeping).
    pub fn capacity_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.fields.capacity() * std::mem::size_of::<(u32, u32, u32, Field, bool)>()
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there is no field.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// The bit of [`HeaderList::kinds`] that stands for `field`.
#[inline]
fn kind_bit(field: Field) -> u16 {
    1 << field as u16
}

// Every kind has its bit.
const _: () = assert!((Field::Forwarded as u16) < 16);

impl<'a> FromIterator<(&'a str, &'a [u8])> for HeaderList {
    fn from_iter<I: IntoIterator<Item = (&'a str, &'a [u8])>>(iter: I) -> Self {
        let mut list = HeaderList::default();
        for (name, value) in iter {
            list.push(name, value);
        }
        list
    }
}

/// Why a request is refused with 400 before anything reaches a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// Both `Content-Length` and `Transfer-Encoding` (RFC 9112 §6.1: smuggling vector).
    LengthAndTransferEncoding,
    /// A transfer coding other than a single final `chunked`.
    UnsupportedTransferEncoding,
    /// More than one `Content-Length` field or an invalid value.
    BadContentLength,
    /// A header name or value with bytes HTTP does not allow (e.g. CR, LF, NUL).
    InvalidHeader,
    /// More than one `Host` field, a `Host` value that is not an authority, or an HTTP/1.1
    /// request without `Host` (RFC 9112 §3.2: the server MUST answer 400). With two hosts the
    /// proxy and the backend could each pick a different one.
    BadHost,
    /// A request target that is not origin-form (`/path?query`) of visible ASCII: a space,
    /// CR, NUL, 8-bit byte or fragment (`#`) inside it would reach the backend as something
    /// else than the proxy routed (RFC 9112 §3.2.1, §2.2: a bare CR must not be passed on).
    BadTarget,
}

/// Appends a request-target part (path or query) as received, with every byte of 0x80 and
/// above percent-encoded: what browsers send for non-ASCII text, and the standard mapping
/// of an IRI to a URI (RFC 3987 §3.1). A client that sends raw UTF-8 (curl with `café` in a
/// URL) is then served, and the backend sees the bytes it decodes to, never a replacement
/// character. Other bytes are left for [`ProxyRequest::validate`] to judge.
pub fn push_target(to: &mut String, raw: &[u8]) {
    if raw.is_ascii() {
        // ASCII is UTF-8: the quick path of nearly every request.
        to.push_str(std::str::from_utf8(raw).unwrap_or_default());
        return;
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw {
        if b.is_ascii() {
            to.push(char::from(b));
        } else {
            to.push('%');
            to.push(char::from(HEX[usize::from(b >> 4)]));
            to.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// Whether a `Host` value is an authority without userinfo (RFC 9110 §7.2, RFC 3986 §3.2):
/// a reg-name or IPv4 address (unreserved, percent-encoded and sub-delims characters, less
/// `,` and `;`, which no host name has and which would read as list or parameter separators
/// in `X-Forwarded-Host` and `Forwarded`), or an IP literal in brackets, then an optional
/// `:port` of digits. Empty is allowed (a target without authority). Spaces, quotes, `@`,
/// `/` and the like are not.
pub(super) fn is_authority(value: &[u8]) -> bool {
    let literal = match name_end(value) {
        None => return true,
        // A name or IPv4 address and its port (every request's Host).
        Some(end) if value[end] == b':' => return value[end + 1..].iter().all(u8::is_ascii_digit),
        Some(0) if value[0] == b'[' => &value[1..],
        Some(_) => return false,
    };
    let Some(end) = literal.iter().position(|&b| b == b']') else {
        return false;
    };
    let inside = &literal[..end];
    let ok = !inside.is_empty()
        && inside
            .iter()
            .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b));
    ok && match literal[end + 1..].split_first() {
        None => true,
        Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// The index of the first byte of `value` that is not one of [`HOST_BYTES`], `None` when all
/// are. Eight bytes at a time while they are letters, digits, `-` and `.` (nearly every
/// host's bytes), the other bytes by the table.
fn name_end(value: &[u8]) -> Option<usize> {
    const fn each(b: u8) -> u64 {
        u64::from_le_bytes([b; 8])
    }
    // The high bit of each byte of `x` that lies strictly between `m` and `n` (both below
    // 0x80): the sums stay inside each byte, so every byte's answer is exact.
    fn between(x: u64, m: u8, n: u8) -> u64 {
        let low = x & each(0x7f);
        (each(127 + n) - low) & !x & (low + each(127 - m)) & each(0x80)
    }
    let mut at = 0;
    while let Some(word) = value.get(at..at + 8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        let w = u64::from_le_bytes(w);
        // Letters of either case (setting 0x20 maps only letters onto `a`..=`z`), digits,
        // `-` and `.`.
        let good = between(w | each(0x20), b'a' - 1, b'z' + 1)
            | between(w, b'0' - 1, b'9' + 1)
            | between(w, b'-' - 1, b'.' + 1);
        let other = !good & each(0x80);
        if other == 0 {
            at += 8;
            continue;
        }
        at += (other.trailing_zeros() / 8) as usize;
        if !HOST_BYTES[usize::from(value[at])] {
            return Some(at);
        }
        at += 1;
    }
    value[at..]
        .iter()
        .position(|&b| !HOST_BYTES[usize::from(b)])
        .map(|n| at + n)
}

/// The bytes of a reg-name or IPv4 address in `Host` (see [`is_authority`]): letters, digits
/// and `-._~%!$&'()*+=`, one lookup per byte on every request.
const HOST_BYTES: [bool; 256] = {
    let mut set = [false; 256];
    let mut b = 0;
    while b < 256 {
        set[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~%!$&'()*+=";
    let mut i = 0;
    while i < others.len() {
        set[others[i] as usize] = true;
        i += 1;
    }
    set
};

/// An address of an `X-Forwarded-For` chain: `192.0.2.7`, `2001:db8::7`, or either with a
/// port (`192.0.2.7:5555`, `[2001:db8::7]:5555`), as some proxies write them.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(hop).ok()?;
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            inner.parse::<IpAddr>().ok()
        })
}

/// Idempotent methods (RFC 9110 §9.2.2): safe to retry on another server.
pub fn is_idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

/// How the forwarding headers are written.
#[derive(Debug, Clone, Default)]
pub struct ForwardPolicy<'a> {
    /// Clients whose `X-Forwarded-For` is kept and appended to (others' is replaced).
    pub trusted_proxies: &'a [Cidr],
    /// Also write an RFC 7239 `Forwarded` header.
    pub forwarded_header: bool,
    /// Ask the backend to close after the response (no upstream connection reuse).
    pub close: bool,
    /// `Host` for a request that has none (HTTP/1.0 allows that; the HTTP/1.1 request sent
    /// upstream must have one, or strict backends answer 400): the entry's first server,
    /// as nginx sends its upstream's name.
    pub default_host: &'a str,
    /// The path to send instead of the client's (an entry's `PathRewrite` or
    /// `PathStripPrefix` applied: starts with `/`, visible ASCII); the query follows it as
    /// the client sent it. `None`: the path as received.
    pub target: Option<&'a str>,
    /// The entry's `RequestHeader` rules with this request's values (`None` when it has
    /// none: then the writer does nothing more than without rules).
    pub headers: Option<Applied<'a>>,
}

impl ProxyRequest {
    /// Resets every field to its default while keeping the capacity of the method, path,
    /// header and body buffers, so that a worker can refill one request per exchange instead
    /// of allocating them anew. Every field is named, so a new field cannot be forgotten here
    /// (a recycled request must never carry anything of the previous one).
    // Inlined: twice per request (put back, then refilled), mostly stores of lengths.
    #[inline]
    pub fn clear(&mut self) {
        let ProxyRequest {
            method,
            path,
            query,
            minor_version,
            headers,
            host,
            body,
            body_kind,
            client,
            client_wants_close,
            early,
            spare_text,
            spare_host,
        } = self;
        method.clear();
        path.clear();
        // The two optional buffers are kept, emptied, as spares (each is emptied as it goes
        // in, so a request cleared twice — put back, then refilled by the intake — finds
        // nothing to do the second time).
        if let Some(mut text) = query.take() {
            if spare_text.is_empty() {
                text.clear();
                spare_text.push(text);
            }
        }
        if let Some(mut bytes) = host.take() {
            bytes.clear();
            *spare_host = bytes;
        }
        *minor_version = 0;
        headers.clear();
        body.clear();
        *body_kind = BodyKind::None;
        *client = None;
        *client_wants_close = false;
        early.clear();
    }

    /// An empty string for `query`, with the buffer it had before the request was cleared
    /// when there is one.
    pub fn text_buffer(&mut self) -> String {
        self.spare_text.pop().unwrap_or_default()
    }

    /// An empty buffer for `host`, the one it had before the request was cleared when there
    /// is one.
    pub fn host_buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.spare_host)
    }

    /// Whether the method is `HEAD` (its response has no body).
    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    /// The values of every header named `name` (case-insensitive).
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s [u8]> + 's {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Checks the request for framing ambiguities that would let a client smuggle a second
    /// request past the proxy (RFC 9112 §6.1, §6.3), for bytes no header may contain, for a
    /// target that is not origin-form visible ASCII, and for a missing, repeated or invalid
    /// `Host` (RFC 9112 §3.2).
    pub fn validate(&self) -> Result<(), RequestError> {
        // Visible ASCII; no `#`: origin-form has no fragment (RFC 9112 §3.2.1), and a backend
        // that cuts the target at `#` would serve another path than the one routed.
        let visible = |s: &str| s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'#');
        if !self.path.starts_with('/')
            || !visible(&self.path)
            || !self.query.as_deref().map_or(true, visible)
        {
            return Err(RequestError::BadTarget);
        }
        let mut lengths = 0;
        let mut length_value: &[u8] = &[];
        let mut has_codings = false;
        let mut hosts = 0;
        // Fields the intake's parser read were checked byte for byte there.
        for (field, name, value, parsed) in self.headers.checked_fields() {
            if !parsed {
                let bad_name = name.is_empty() || !name.iter().copied().all(is_token_byte);
                let bad_value = value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0);
                if bad_name || bad_value {
                    return Err(RequestError::InvalidHeader);
                }
            }
            match field {
                Field::ContentLength => {
                    lengths += 1;
                    length_value = value;
                }
                Field::TransferEncoding => has_codings = true,
                Field::Host => {
                    hosts += 1;
                    if !is_authority(value) {
                        return Err(RequestError::BadHost);
                    }
                }
                _ => {}
            }
        }
        if has_codings && lengths > 0 {
            return Err(RequestError::LengthAndTransferEncoding);
        }
        if has_codings {
            // RFC 9112 §6.3 (4): a request whose final coding is not chunked cannot be
            // delimited; we accept exactly one coding, `chunked`.
            if !only_chunked(self.headers.values_of(Field::TransferEncoding)) {
                return Err(RequestError::UnsupportedTransferEncoding);
            }
        }
        if lengths > 1 {
            return Err(RequestError::BadContentLength);
        }
        if lengths == 1 {
            // Digits only, and a value that fits (see the intake's verdict).
            let v = trim(length_value);
            if parse_decimal(v)
                .and_then(|n| usize::try_from(n).ok())
                .is_none()
            {
                return Err(RequestError::BadContentLength);
            }
        }
        if hosts > 1 || (hosts == 0 && self.minor_version >= 1) {
            return Err(RequestError::BadHost);
        }
        Ok(())
    }

    /// The address of the client the request comes from, for balancing by source: the
    /// connection's peer, unless that peer is a trusted proxy, then the address its
    /// `X-Forwarded-For` chain names, read from the right past every trusted proxy (as
    /// nginx's `real_ip_recursive`). A chain entry that is not an address ends the walk at
    /// the last good one. `None` without a peer address.
    // Inlined: every proxied request asks, and without trusted proxies (the rule) the peer
    // is the answer at once.
    #[inline]
    pub fn original_client(&self, trusted_proxies: &[Cidr]) -> Option<IpAddr> {
        let peer = self.client?.ip();
        if trusted_proxies.is_empty() {
            return Some(peer);
        }
        Some(self.client_past(peer, trusted_proxies))
    }

    /// [`ProxyRequest::original_client`] for a request from `peer` when some proxies are
    /// trusted.
    fn client_past(&self, peer: IpAddr, trusted_proxies: &[Cidr]) -> IpAddr {
        let trusted = |ip: IpAddr| trusted_proxies.iter().any(|c| c.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let connection = self.headers.values_of(Field::Connection);
        let check_connection = connection_names_fields(connection.clone());
        let chain = self
            .headers
            .fields()
            .filter(|&(field, name, _)| {
                field == Field::XForwardedFor
                    && !(check_connection && named_in_connection(connection.clone(), name))
            })
            .flat_map(|(_, _, value)| tokens(value));
        // One pass from the left, without collecting the chain: `found` is what the walk
        // from the right end of the hops seen so far gives, `None` when it stops at once
        // (no hops yet, or the last one is not an address). A trusted hop on the right
        // hands the walk on to the hops before it, and is the answer if they give none.
        let mut found: Option<IpAddr> = None;
        for hop in chain {
            found = match parse_hop(hop) {
                None => None,
                Some(ip) if trusted(ip) => Some(found.unwrap_or(ip)),
                Some(ip) => Some(ip),
            };
        }
        found.unwrap_or(peer)
    }

    /// Appends the upstream request (head and body) to `out`.
    ///
    /// The request line keeps the method and the target exactly as received (the path
    /// replaced by [`ForwardPolicy::target`] when the entry rewrites it) and speaks HTTP/1.1. Hop-by-hop headers, every header the client's `Connection` names, and the
    /// client's framing headers are dropped; the body is re-framed with `Content-Length` or
    /// passed as raw `chunked` bytes. `Host` is preserved. `X-Forwarded-For` carries the client
    /// address (replacing a client-supplied value unless the client is a trusted proxy, then
    /// appended), with `X-Forwarded-Proto` and `X-Forwarded-Host`; `Expect` is dropped because
    /// the whole body is already here. Then the entry's header rules (`policy.headers`):
    /// received fields a `set` or `remove` names are left out, a `set Host` is the one Host
    /// line, and the rules' lines follow the proxy's forwarding headers.
    pub fn write_upstream(&self, policy: &ForwardPolicy<'_>, out: &mut Vec<u8>) {
        let target = policy.target.unwrap_or(&self.path);
        out.reserve(self.upstream_len_bound(target, policy));
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(target.as_bytes());
        if let Some(q) = &self.query {
            out.push(b'?');
            out.extend_from_slice(q.as_bytes());
        }
        out.extend_from_slice(b" HTTP/1.1\r\n");

        let connection = self.headers.values_of(Field::Connection);
        let check_connection = connection_names_fields(connection.clone());
        let client_ip = self.client.map(|a| a.ip());
        let trusted =
            client_ip.is_some_and(|ip| policy.trusted_proxies.iter().any(|c| c.contains(ip)));
        let mut wrote_host = false;
        // Header rules run after the proxy's own rewrite: their `set` and `remove` take the
        // fields of their names that survived it away, their lines come after the proxy's.
        let rules = policy.headers.as_ref();
        let rule_drops = rules.filter(|r| r.rules.drops_any());
        // One test per field for both kinds of names (the common request has neither).
        let check_names = check_connection || rule_drops.is_some();
        for (field, name, value) in self.headers.fields() {
            if field.is_hop_by_hop()
                || (check_names
                    && ((check_connection && named_in_connection(connection.clone(), name))
                        || rule_drops.is_some_and(|r| r.drops(name))))
            {
                continue;
            }
            match field {
                // Replaced by the proxy's own values below; a trusted client's
                // X-Forwarded-For is kept there as the list's start.
                Field::Expect
                | Field::XForwardedProto
                | Field::XForwardedHost
                | Field::Forwarded
                | Field::XForwardedFor => continue,
                _ => {}
            }
            if field == Field::Host {
                if wrote_host {
                    continue;
                }
                wrote_host = true;
                out.extend_from_slice(b"Host: ");
                match &self.host {
                    Some(h) => out.extend_from_slice(h),
                    None => out.extend_from_slice(value),
                }
                out.extend_from_slice(b"\r\n");
                continue;
            }
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if !wrote_host && !rules.is_some_and(|r| r.write_host(out)) {
            let host = self
                .host
                .as_deref()
                .unwrap_or(policy.default_host.as_bytes());
            if !host.is_empty() {
                out.extend_from_slice(b"Host: ");
                out.extend_from_slice(host);
                out.extend_from_slice(b"\r\n");
            }
        }
        // From an untrusted client with a Host (nearly every request), the end of the
        // X-Forwarded-For line, the whole X-Forwarded-Proto line and the name of the
        // X-Forwarded-Host line are constant: one append instead of three.
        let merged = client_ip.is_some() && !trusted && self.host.is_some();
        if let Some(ip) = client_ip {
            out.extend_from_slice(b"X-Forwarded-For: ");
            if trusted {
                for (field, name, v) in self.headers.fields() {
                    // A chain the client's own `Connection` names is hop-by-hop: not kept.
                    if field != Field::XForwardedFor
                        || (check_connection && named_in_connection(connection.clone(), name))
                    {
                        continue;
                    }
                    out.extend_from_slice(v);
                    out.extend_from_slice(b", ");
                }
            }
            push_ip(out, ip);
            if merged {
                out.extend_from_slice(b"\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ");
            } else {
                out.extend_from_slice(b"\r\n");
            }
        }
        // A trusted proxy in front knows better what the client used (HTTPS it terminated,
        // the host it was asked for): its X-Forwarded-Proto and -Host are kept, and its
        // Forwarded elements start the list. From anyone else they are replaced.
        let connection = &connection;
        // From anyone else (the rule) the fields are not walked at all.
        let walked = if trusted { self.headers.len() } else { 0 };
        let from_trusted = |kind: Field| {
            self.headers
                .fields()
                .take(walked)
                .filter(move |&(field, name, _)| {
                    field == kind
                        && !(check_connection && named_in_connection(connection.clone(), name))
                })
        };
        let forwarded_host = if trusted {
            out.extend_from_slice(b"X-Forwarded-Proto: ");
            match from_trusted(Field::XForwardedProto).next() {
                Some((_, _, proto)) => out.extend_from_slice(proto),
                None => out.extend_from_slice(b"http"),
            }
            out.extend_from_slice(b"\r\n");
            from_trusted(Field::XForwardedHost)
                .next()
                .map(|(_, _, v)| v)
                .or(self.host.as_deref())
        } else {
            // One line of one piece: every request from an untrusted client.
            if !merged {
                out.extend_from_slice(b"X-Forwarded-Proto: http\r\n");
            }
            self.host.as_deref()
        };
        if let Some(h) = forwarded_host {
            if !merged {
                out.extend_from_slice(b"X-Forwarded-Host: ");
            }
            out.extend_from_slice(h);
            out.extend_from_slice(b"\r\n");
        }
        if policy.forwarded_header {
            out.extend_from_slice(b"Forwarded: ");
            for (_, _, earlier) in from_trusted(Field::Forwarded) {
                out.extend_from_slice(earlier);
                out.extend_from_slice(b", ");
            }
            match client_ip {
                Some(std::net::IpAddr::V6(ip)) => {
                    let _ = write!(out, "for=\"[{ip}]\";");
                }
                Some(ip) => {
                    let _ = write!(out, "for={ip};");
                }
                None => {}
            }
            if let Some(h) = &self.host {
                // A quoted-string (RFC 7239 §4): `validate` admits no quote or backslash in
                // Host, but escape them all the same so that no Host can add an element.
                out.extend_from_slice(b"host=\"");
                for &b in h {
                    if b == b'"' || b == b'\\' {
                        out.push(b'\\');
                    }
                    out.push(b);
                }
                out.extend_from_slice(b"\";");
            }
            out.extend_from_slice(b"proto=http\r\n");
        }
        if let Some(rules) = rules {
            rules.write_request_lines(out);
        }
        match self.body_kind {
            BodyKind::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            BodyKind::Length => {
                out.extend_from_slice(b"Content-Length: ");
                push_decimal(out, self.body.len() as u64);
                out.extend_from_slice(b"\r\n");
            }
            BodyKind::None => {
                // A POST or PUT without a body still states its length (RFC 9110 §8.6).
                if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") {
                    out.extend_from_slice(b"Content-Length: 0\r\n");
                }
            }
        }
        if let Some(protocol) = self.upgrade_protocol() {
            // Upgrade is hop-by-hop: re-sent on purpose so the backend may switch protocols.
            out.extend_from_slice(b"Upgrade: ");
            out.extend_from_slice(protocol);
            out.extend_from_slice(b"\r\nConnection: upgrade\r\n");
        } else if policy.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }

    /// An upper bound of the bytes [`ProxyRequest::write_upstream`] appends (the header
    /// rules' own lines aside), so that the buffer is reserved once rather than grown line
    /// by line: the received fields at most once each with their separators (or, from a
    /// trusted client, kept in the forwarding lines too), the proxy's own lines at their
    /// longest, the body.
    fn upstream_len_bound(&self, target: &str, policy: &ForwardPolicy<'_>) -> usize {
        // Forwarding lines, framing, `Upgrade`/`Connection` and the request line's fixed
        // parts, with IPv6 addresses and 20 digits of length: under 256 bytes.
        const FIXED: usize = 256;
        let fields = self.headers.bytes.len() + 4 * self.headers.len();
        let host = self.host.as_ref().map_or(0, Vec::len) + policy.default_host.len();
        let query = self.query.as_ref().map_or(0, String::len);
        // Each field goes once at most: as received, or its value in a forwarding line (a
        // trusted client's) or in `Upgrade`. Host goes in `Host`, `X-Forwarded-Host` and,
        // escaped (twice its length at most), in `Forwarded`.
        FIXED + self.method.len() + target.len() + query + 4 * host + fields + self.body.len()
    }

    /// The protocol the client asks to switch to (`Upgrade` listed in `Connection` and an
    /// `Upgrade` header present), e.g. `websocket`. HTTP/1.0 requests have none: a server
    /// must ignore `Upgrade` in them (RFC 9110 §7.8).
    // Inlined: asked three times per request, and the common answer (no `Connection`
    // field) is one bit test; a call cost more than the test.
    #[inline(always)]
    pub fn upgrade_protocol(&self) -> Option<&[u8]> {
        if self.minor_version == 0 || !self.headers.has(Field::Connection) {
            return None;
        }
        self.upgrade_listed()
    }

    /// [`ProxyRequest::upgrade_protocol`] for a request with a `Connection` field.
    fn upgrade_listed(&self) -> Option<&[u8]> {
        if !self
            .headers
            .values_of(Field::Connection)
            .any(|v| has_token(v, "upgrade"))
        {
            return None;
        }
        self.headers
            .values_of(Field::Upgrade)
            .next()
            .filter(|v| !v.is_empty())
    }
}

/// `tchar` of RFC 9110 §5.6.2.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_field_s_parser_flag_costs_no_room() {
        // Requests and exchanges are moved whole (stage 30, the spare list): a larger
        // request took `memcpy` past a size class and cost more than the flag saved.
        assert_eq!(
            std::mem::size_of::<(u32, u32, u32, Field, bool)>(),
            std::mem::size_of::<(u32, u32, u32, Field)>()
        );
    }

    #[test]
    fn values_of_a_kind_agree_with_a_walk_of_the_list() {
        // The kinds' bits only skip walks that would find nothing: every kind asked of
        // lists of every mix (and of one cleared and refilled) gives what a walk gives.
        let names = [
            "Connection",
            "Upgrade",
            "Host",
            "X-Forwarded-For",
            "Forwarded",
            "TE",
            "X-Other",
            "content-length",
            "Transfer-Encoding",
            "Expect",
        ];
        let kinds: Vec<Field> = names.iter().map(|n| Field::of(n.as_bytes())).collect();
        let mut list = HeaderList::default();
        for mix in 0..(1u32 << names.len()) {
            list.clear();
            for (i, name) in names.iter().enumerate() {
                if mix & (1 << i) != 0 {
                    list.push(name, format!("v{i}").as_bytes());
                }
            }
            for &kind in kinds.iter().chain([Field::Other, Field::KeepAlive].iter()) {
                let walked: Vec<&[u8]> = list
                    .fields()
                    .filter(|&(f, _, _)| f == kind)
                    .map(|(_, _, v)| v)
                    .collect();
                assert_eq!(
                    list.values_of(kind).collect::<Vec<_>>(),
                    walked,
                    "{mix} {kind:?}"
                );
                assert_eq!(list.has(kind), !walked.is_empty(), "{mix} {kind:?}");
            }
        }
    }

    /// The former [`is_authority`], byte by byte: the reference of the table scan.
    fn is_authority_by_bytes(value: &[u8]) -> bool {
        let Some(literal) = value.strip_prefix(b"[") else {
            let mut bytes = value.iter();
            for &b in bytes.by_ref() {
                if b == b':' {
                    return bytes.all(u8::is_ascii_digit);
                }
                if !HOST_BYTES[usize::from(b)] {
                    return false;
                }
            }
            return true;
        };
        let Some(end) = literal.iter().position(|&b| b == b']') else {
            return false;
        };
        let inside = &literal[..end];
        let ok = !inside.is_empty()
            && inside
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b":.vV".contains(&b));
        ok && match literal[end + 1..].split_first() {
            None => true,
            Some((b':', digits)) => digits.iter().all(u8::is_ascii_digit),
            Some(_) => false,
        }
    }

    #[test]
    fn authority_scan_agrees_with_the_byte_walk() {
        // Every string of up to four bytes over an alphabet of each kind of byte the check
        // tells apart, and each with every byte value in front, inside and behind.
        let alphabet = b"a9:[]-.@ /\x00\xff%";
        let mut cases: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let longer: Vec<Vec<u8>> = cases
                .iter()
                .filter(|c| c.len() == cases.last().map_or(0, Vec::len))
                .flat_map(|c| alphabet.iter().map(move |&b| [&c[..], &[b]].concat()))
                .collect();
            cases.extend(longer);
        }
        for base in [
            &b"example.com:80"[..],
            b"[::1]:8080",
            b"10.0.0.1",
            b"[v1.x]",
        ] {
            for at in 0..=base.len() {
                for b in 0..=255u8 {
                    cases.push([&base[..at], &[b], &base[at..]].concat());
                    if at < base.len() {
                        cases.push([&base[..at], &[b], &base[at + 1..]].concat());
                    }
                }
            }
        }
        for case in &cases {
            assert_eq!(is_authority(case), is_authority_by_bytes(case), "{case:?}");
        }
    }

    #[test]
    fn host_bytes_are_the_reg_name_set() {
        for b in 0..=255u8 {
            let listed = b.is_ascii_alphanumeric() || b"-._~%!$&'()*+=".contains(&b);
            assert_eq!(HOST_BYTES[usize::from(b)], listed, "{b:#x}");
        }
    }

    fn req(headers: &[(&str, &str)]) -> ProxyRequest {
        ProxyRequest {
            method: "GET".into(),
            path: "/a%20b".into(),
            query: Some("x=1&y=%2F".into()),
            minor_version: 1,
            headers: headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect(),
            host: Some("example.com:8080".into()),
            client: Some("192.0.2.7:5555".parse().unwrap()),
            ..Default::default()
        }
    }

    fn upstream(r: &ProxyRequest, policy: &ForwardPolicy<'_>) -> String {
        let mut out = Vec::new();
        r.write_upstream(policy, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn forwarding_lines_are_exact_with_and_without_client_host_and_trust() {
        // The merged append (untrusted client with a Host) and each case it must not take.
        let trusted = [Cidr {
            addr: "192.0.2.0".parse().unwrap(),
            prefix: 24,
        }];
        for (client, host, trust, lines) in [
            (true, true, false, "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com:8080\r\n"),
            (true, false, false, "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"),
            (false, true, false, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com:8080\r\n"),
            (false, false, false, "\r\nX-Forwarded-Proto: http\r\n"),
            (true, true, true, "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: example.com:8080\r\n"),
            (true, false, true, "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"),
        ] {
            let mut r = req(&[]);
            if !client {
                r.client = None;
            }
            if !host {
                r.host = None;
            }
            let policy = ForwardPolicy {
                trusted_proxies: if trust { &trusted } else { &[] },
                default_host: "d:1",
                ..Default::default()
            };
            let text = upstream(&r, &policy);
            assert!(text.contains(lines), "{client} {host} {trust}: {text}");
            assert_eq!(text.matches("X-Forwarded-Proto").count(), 1, "{text}");
            assert_eq!(text.matches("X-Forwarded-Host").count(), usize::from(host), "{text}");
        }
    }

    #[test]
    fn a_cleared_request_keeps_nothing_but_capacity() {
        let mut r = req(&[("Cookie", "secret"), ("Content-Length", "3")]);
        r.body = b"abc".to_vec();
        r.body_kind = BodyKind::Length;
        r.client_wants_close = true;
        let mut out = Vec::new();
        r.write_upstream(&ForwardPolicy::default(), &mut out);
        let (path_cap, header_cap) = (r.path.capacity(), r.headers.capacity_bytes());
        r.clear();
        assert!(r.method.is_empty() && r.path.is_empty() && r.body.is_empty());
        assert!(r.headers.is_empty() && r.query.is_none() && r.host.is_none());
        assert!(r.client.is_none() && !r.client_wants_close && r.minor_version == 0);
        assert_eq!(r.body_kind, BodyKind::None);
        assert_eq!(r.path.capacity(), path_cap);
        assert_eq!(r.headers.capacity_bytes(), header_cap);
        // The query's and host's buffers come back empty, for the next request's.
        let (a, b) = (r.text_buffer(), r.host_buffer());
        assert!(a.is_empty() && b.is_empty());
        assert!(a.capacity() >= "x=1&y=%2F".len() && b.capacity() >= "example.com:8080".len());
        assert_eq!(r.text_buffer().capacity(), 0);
        assert_eq!(r.host_buffer().capacity(), 0);
        // Refilled, it writes exactly what a fresh request with the same fields writes.
        r.method.push_str("GET");
        r.path.push('/');
        r.minor_version = 1;
        let mut refilled = Vec::new();
        r.write_upstream(&ForwardPolicy::default(), &mut refilled);
        let fresh = ProxyRequest {
            method: "GET".into(),
            path: "/".into(),
            minor_version: 1,
            ..Default::default()
        };
        let mut expected = Vec::new();
        fresh.write_upstream(&ForwardPolicy::default(), &mut expected);
        assert_eq!(refilled, expected);
        assert!(!String::from_utf8_lossy(&refilled).contains("secret"));
    }

    #[test]
    fn target_is_kept_exactly_and_version_is_1_1() {
        let text = upstream(&req(&[("Host", "example.com")]), &ForwardPolicy::default());
        assert!(text.starts_with("GET /a%20b?x=1&y=%2F HTTP/1.1\r\nHost: example.com:8080\r\n"));
    }

    #[test]
    fn connection_cannot_remove_the_proxys_own_headers() {
        let r = req(&[
            ("Connection", "X-Forwarded-For, x-secret"),
            ("X-Secret", "1"),
            ("Keep-Alive", "5"),
        ]);
        let text = upstream(&r, &ForwardPolicy::default());
        assert!(!text.to_ascii_lowercase().contains("x-secret"));
        assert!(!text.contains("Keep-Alive"));
        assert!(text.contains("X-Forwarded-For: 192.0.2.7\r\n"));
    }

    #[test]
    fn spoofed_x_forwarded_for_is_replaced_unless_trusted() {
        let r = req(&[("X-Forwarded-For", "6.6.6.6")]);
        let text = upstream(&r, &ForwardPolicy::default());
        assert!(text.contains("X-Forwarded-For: 192.0.2.7\r\n"));
        assert!(!text.contains("6.6.6.6"));
        let trusted = [Cidr {
            addr: "192.0.2.0".parse().unwrap(),
            prefix: 24,
        }];
        let policy = ForwardPolicy {
            trusted_proxies: &trusted,
            ..Default::default()
        };
        assert!(upstream(&r, &policy).contains("X-Forwarded-For: 6.6.6.6, 192.0.2.7\r\n"));
    }

    #[test]
    fn body_is_reframed() {
        let mut r = req(&[("Content-Length", "999")]);
        r.method = "POST".into();
        r.body = b"hello".to_vec();
        r.body_kind = BodyKind::Length;
        let text = upstream(&r, &ForwardPolicy::default());
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(!text.contains("999"));
        assert!(text.ends_with("\r\n\r\nhello"));
    }

    #[test]
    fn smuggling_shapes_are_rejected() {
        let cl_te = req(&[("Content-Length", "5"), ("Transfer-Encoding", "chunked")]);
        assert_eq!(
            cl_te.validate(),
            Err(RequestError::LengthAndTransferEncoding)
        );
        let gzip = req(&[("Transfer-Encoding", "gzip, chunked")]);
        assert_eq!(
            gzip.validate(),
            Err(RequestError::UnsupportedTransferEncoding)
        );
        let two = req(&[("Content-Length", "5"), ("Content-Length", "6")]);
        assert_eq!(two.validate(), Err(RequestError::BadContentLength));
        let sign = req(&[("Content-Length", "+5")]);
        assert_eq!(sign.validate(), Err(RequestError::BadContentLength));
        // Digits that overflow would frame no body: the body would be read as a request.
        let huge = req(&[("Content-Length", "99999999999999999999")]);
        assert_eq!(huge.validate(), Err(RequestError::BadContentLength));
        let crlf = req(&[("X-A", "a\r\nX-B: b")]);
        assert_eq!(crlf.validate(), Err(RequestError::InvalidHeader));
        assert!(req(&[("Host", "h"), ("Transfer-Encoding", "Chunked")])
            .validate()
            .is_ok());
    }

    #[test]
    fn host_must_be_one_authority() {
        for good in [
            "example.com",
            "example.com:8080",
            "10.0.0.1:80",
            "[::1]:8080",
            "[2001:db8::7]",
            "xn--bcher-kva.example",
            "",
        ] {
            assert_eq!(req(&[("Host", good)]).validate(), Ok(()), "{good:?}");
        }
        for bad in [
            "a b",
            "a/b",
            "user@example.com",
            "example.com:80x",
            "[::1",
            "[zz]:80",
            "a\\b",
        ] {
            assert_eq!(
                req(&[("Host", bad)]).validate(),
                Err(RequestError::BadHost),
                "{bad:?}"
            );
        }
        let two = req(&[("Host", "a"), ("Host", "b")]);
        assert_eq!(two.validate(), Err(RequestError::BadHost));
        let same_twice = req(&[("Host", "a"), ("host", "a")]);
        assert_eq!(same_twice.validate(), Err(RequestError::BadHost));
        // HTTP/1.1 requires Host; HTTP/1.0 predates it.
        assert_eq!(req(&[]).validate(), Err(RequestError::BadHost));
        let mut old = req(&[]);
        old.minor_version = 0;
        assert_eq!(old.validate(), Ok(()));
    }

    #[test]
    fn upgrade_is_forwarded_only_when_requested() {
        let ws = req(&[
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "websocket"),
        ]);
        let text = upstream(
            &ws,
            &ForwardPolicy {
                close: true,
                ..Default::default()
            },
        );
        assert!(text.contains("Upgrade: websocket\r\nConnection: upgrade\r\n"));
        assert!(!text.contains("Connection: close"));
        let lone = req(&[("Upgrade", "websocket")]);
        let text = upstream(&lone, &ForwardPolicy::default());
        assert!(
            !text.contains("Upgrade"),
            "Upgrade without Connection: upgrade is dropped"
        );
        let mut old = ws.clone();
        old.minor_version = 0;
        assert_eq!(old.upgrade_protocol(), None, "HTTP/1.0 cannot upgrade");
        assert!(!upstream(&old, &ForwardPolicy::default()).contains("Upgrade"));
    }

    #[test]
    fn non_ascii_target_bytes_are_percent_encoded() {
        let mut out = String::new();
        push_target(&mut out, b"/caf\xc3\xa9/\xff?");
        assert_eq!(out, "/caf%C3%A9/%FF?");
        out.clear();
        push_target(&mut out, b"/plain?q=1");
        assert_eq!(out, "/plain?q=1");
    }

    #[test]
    fn target_must_be_origin_form_of_visible_ascii() {
        let with = |path: &str, query: Option<&str>| {
            let mut r = req(&[("Host", "h")]);
            r.path = path.into();
            r.query = query.map(str::to_string);
            r.validate()
        };
        assert_eq!(with("/a%20b/~x", Some("q=1&r=%2F")), Ok(()));
        assert_eq!(with("/a", Some("")), Ok(()));
        for (path, query) in [
            ("/a b", None),
            ("/a\rb", None),
            ("/a\0", None),
            ("/caf\u{e9}", None),
            ("/\u{fffd}", None),
            ("*", None),
            ("http://h/a", None),
            ("/a", Some("x\ry")),
            ("/a", Some("x y")),
            ("/a", Some("x\0")),
            ("/admin#.php", None),
            ("/a", Some("x#y")),
        ] {
            assert_eq!(
                with(path, query),
                Err(RequestError::BadTarget),
                "{path:?} {query:?}"
            );
        }
    }

    #[test]
    fn original_client_is_read_past_trusted_proxies() {
        let trusted = [
            Cidr {
                addr: "192.0.2.0".parse().unwrap(),
                prefix: 24,
            },
            Cidr {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: 8,
            },
        ];
        let from = |peer: &str, xff: &[&str]| {
            let mut r = req(&[]);
            r.client = Some(format!("{peer}:1").parse().unwrap());
            for v in xff {
                r.headers.push("X-Forwarded-For", v.as_bytes());
            }
            r.original_client(&trusted).map(|ip| ip.to_string())
        };
        let some = |s: &str| Some(s.to_string());
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(from("203.0.113.9", &["6.6.6.6"]), some("203.0.113.9"));
        // A trusted peer: the last address its chain names, past trusted hops.
        assert_eq!(from("192.0.2.7", &["6.6.6.6"]), some("6.6.6.6"));
        assert_eq!(
            from("192.0.2.7", &["1.1.1.1, 6.6.6.6, 10.1.1.1"]),
            some("6.6.6.6")
        );
        assert_eq!(from("192.0.2.7", &["1.1.1.1", "6.6.6.6"]), some("6.6.6.6"));
        assert_eq!(
            from("192.0.2.7", &["[2001:db8::7]:5555"]),
            some("2001:db8::7")
        );
        assert_eq!(from("192.0.2.7", &["6.6.6.6:80"]), some("6.6.6.6"));
        // Garbage stops the walk at the last good address.
        assert_eq!(from("192.0.2.7", &["6.6.6.6, unknown"]), some("192.0.2.7"));
        assert_eq!(from("192.0.2.7", &["unknown, 10.1.1.1"]), some("10.1.1.1"));
        // No chain: the peer.
        assert_eq!(from("192.0.2.7", &[]), some("192.0.2.7"));
    }

    #[test]
    fn a_request_without_host_gets_the_default_one() {
        let mut old = req(&[]);
        old.minor_version = 0;
        old.host = None;
        let policy = ForwardPolicy {
            default_host: "10.0.0.4:80",
            ..Default::default()
        };
        let text = upstream(&old, &policy);
        assert!(text.contains("\r\nHost: 10.0.0.4:80\r\n"), "{text}");
        assert!(!text.contains("X-Forwarded-Host"), "{text}");
    }

    #[test]
    fn forwarded_host_cannot_add_an_element() {
        let mut r = req(&[("Host", "h")]);
        r.host = Some("a\", for=6.6.6.6;by=\"x".into());
        let policy = ForwardPolicy {
            forwarded_header: true,
            ..Default::default()
        };
        let text = upstream(&r, &policy);
        assert!(
            text.contains("host=\"a\\\", for=6.6.6.6;by=\\\"x\";proto=http\r\n"),
            "{text}"
        );
    }

    fn request_rules(lines: &[&str]) -> crate::config::headers::HeaderRules {
        use crate::config::headers::{rule, Direction, HeaderRules};
        HeaderRules::new(
            lines
                .iter()
                .map(|l| rule("RequestHeader", Direction::Request, l).unwrap())
                .collect(),
        )
    }

    #[test]
    fn header_rules_apply_after_the_proxys_rewrite() {
        use super::super::rules::Vars;
        let rules = request_rules(&[
            "set X-Env prod",
            "add X-Tag $entry",
            "remove X-Secret",
            "set Host $server",
        ]);
        // A client naming X-Env in Connection (the Traefik trick) loses its own X-Env to
        // the hop-by-hop rule; the rule's line is the proxy's own and goes all the same.
        let r = req(&[
            ("Host", "example.com:8080"),
            ("Connection", "X-Env"),
            ("X-Env", "dev"),
            ("x-env", "dev2"),
            ("X-Tag", "client"),
            ("X-Secret", "s"),
        ]);
        let policy = ForwardPolicy {
            headers: Some(Applied {
                rules: &rules,
                vars: &Vars {
                    entry: "api",
                    server: "10.0.0.1:80",
                    ..Vars::default()
                },
            }),
            ..Default::default()
        };
        let text = upstream(&r, &policy);
        assert!(text.contains("\r\nHost: 10.0.0.1:80\r\n"), "{text}");
        assert_eq!(text.matches("\r\nHost:").count(), 1, "{text}");
        assert!(
            !text.contains("dev") && !text.contains("X-Secret"),
            "{text}"
        );
        assert!(
            text.contains("X-Tag: client\r\n") && text.contains("X-Tag: api\r\n"),
            "{text}"
        );
        assert!(text.contains("X-Env: prod\r\n"), "{text}");
        // The client's original host still goes as X-Forwarded-Host.
        assert!(
            text.contains("X-Forwarded-Host: example.com:8080\r\n"),
            "{text}"
        );
        assert!(text.contains("X-Forwarded-For: 192.0.2.7\r\n"), "{text}");
        // Without rules, the same request is written as before.
        let plain = upstream(&r, &ForwardPolicy::default());
        assert!(plain.contains("X-Secret: s\r\n") && plain.contains("Host: example.com:8080"));
    }

    #[test]
    fn forwarded_header_is_optional() {
        let r = req(&[]);
        assert!(!upstream(&r, &ForwardPolicy::default()).contains("Forwarded:"));
        let policy = ForwardPolicy {
            forwarded_header: true,
            ..Default::default()
        };
        assert!(upstream(&r, &policy)
            .contains("Forwarded: for=192.0.2.7;host=\"example.com:8080\";proto=http\r\n"));
    }

    #[test]
    fn a_rewritten_target_keeps_the_query() {
        let r = req(&[("Host", "h")]);
        let policy = ForwardPolicy {
            target: Some("/b"),
            ..Default::default()
        };
        assert!(upstream(&r, &policy).starts_with("GET /b?x=1&y=%2F HTTP/1.1\r\n"));
        assert!(upstream(&r, &ForwardPolicy::default()).starts_with("GET /a%20b?x=1&y=%2F "));
    }
}
