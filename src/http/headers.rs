//! Header-name helpers shared by the request and response rewriters.

/// Hop-by-hop headers (RFC 9110 §7.6.1) that a proxy never forwards as received; framing
/// headers are listed too because the proxy re-frames every message it forwards.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
];

/// The header fields the proxy acts on, recognised once per field: comparing names
/// case-insensitively again in every pass over a message was the hot path's most repeated
/// work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Field {
    /// Any field the proxy passes through untouched.
    #[default]
    Other,
    /// `Connection`.
    Connection,
    /// `Keep-Alive`.
    KeepAlive,
    /// `Proxy-Connection`.
    ProxyConnection,
    /// `TE`.
    Te,
    /// `Trailer`.
    Trailer,
    /// `Transfer-Encoding`.
    TransferEncoding,
    /// `Upgrade`.
    Upgrade,
    /// `Content-Length`.
    ContentLength,
    /// `Host`.
    Host,
    /// `Expect`.
    Expect,
    /// `X-Forwarded-For`.
    XForwardedFor,
    /// `X-Forwarded-Proto`.
    XForwardedProto,
    /// `X-Forwarded-Host`.
    XForwardedHost,
    /// `Forwarded`.
    Forwarded,
}

impl Field {
    /// The field a header name denotes (case-insensitive).
    pub fn of(name: &[u8]) -> Field {
        // The length picks at most two candidates, so most names cost one comparison, of a
        // length known in each arm (the comparison unrolls to a word or two, or a few bytes).
        let is = |lower: &[u8]| eq_lowercase(name, lower);
        match name.len() {
            2 if is(b"te") => Field::Te,
            4 if is(b"host") => Field::Host,
            6 if is(b"expect") => Field::Expect,
            7 if is(b"trailer") => Field::Trailer,
            7 if is(b"upgrade") => Field::Upgrade,
            9 if is(b"forwarded") => Field::Forwarded,
            10 if is(b"connection") => Field::Connection,
            10 if is(b"keep-alive") => Field::KeepAlive,
            14 if is(b"content-length") => Field::ContentLength,
            15 if is(b"x-forwarded-for") => Field::XForwardedFor,
            16 if is(b"proxy-connection") => Field::ProxyConnection,
            16 if is(b"x-forwarded-host") => Field::XForwardedHost,
            17 if is(b"transfer-encoding") => Field::TransferEncoding,
            17 if is(b"x-forwarded-proto") => Field::XForwardedProto,
            _ => Field::Other,
        }
    }

    /// Whether the field is hop-by-hop or framing (see [`HOP_BY_HOP`]).
    pub fn is_hop_by_hop(self) -> bool {
        matches!(
            self,
            Field::Connection
                | Field::KeepAlive
                | Field::ProxyConnection
                | Field::Te
                | Field::Trailer
                | Field::TransferEncoding
                | Field::Upgrade
                | Field::ContentLength
        )
    }
}

/// Whether `name` equals `lower` ignoring ASCII case, where `lower` is made of lowercase
/// letters, digits and `-` only (the names the proxy recognises). Compared eight bytes at a
/// time: every response and request field name passes through here.
///
/// Exact for any `name`: a byte of `lower` that is a letter (bit 0x40 set) lets the
/// matching byte of `name` differ in the case bit (0x20) only, a digit or `-` must match as
/// is (so no other byte folds onto `-`, as CR would under a plain `| 0x20`).
pub fn eq_lowercase(name: &[u8], lower: &[u8]) -> bool {
    debug_assert!(lower
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-'));
    if name.len() != lower.len() {
        return false;
    }
    let same = |n: u64, l: u64| n | ((l & 0x4040_4040_4040_4040) >> 1) == l;
    let word = |b: &[u8], at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let len = name.len();
    if len < 8 {
        return name
            .iter()
            .zip(lower)
            .all(|(&n, &l)| n | ((l & 0x40) >> 1) == l);
    }
    // Whole words, then the last eight bytes (overlapping the previous word if need be).
    let mut at = 0;
    while at + 8 < len {
        if !same(word(name, at), word(lower, at)) {
            return false;
        }
        at += 8;
    }
    same(word(name, len - 8), word(lower, len - 8))
}

/// Whether a message's `Connection` values name anything but `keep-alive` and `upgrade`
/// (both hop-by-hop anyway): only then must each other field be checked against them with
/// [`named_in_connection`].
pub fn connection_names_fields<'a>(connection: impl IntoIterator<Item = &'a [u8]>) -> bool {
    ConnectionOptions::of(connection).names_fields
}

/// What a message's `Connection` values say, read in one pass (a response's head needs all
/// of it, and reading the values once per question showed in profiles).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// `close` is listed.
    pub close: bool,
    /// `keep-alive` is listed.
    pub keep_alive: bool,
    /// Something other than `keep-alive` and `upgrade` is listed (`close` included): each
    /// other field must be checked against the list with [`named_in_connection`].
    pub names_fields: bool,
}

impl ConnectionOptions {
    /// Reads the `Connection` values of one message.
    pub fn of<'a>(connection: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut options = ConnectionOptions::default();
        for value in connection {
            options.add(value);
        }
        options
    }

    /// Reads one more `Connection` value of the message, in received order.
    pub fn add(&mut self, value: &[u8]) {
        // Nearly every message has exactly `keep-alive` or `close`: no list to split.
        if eq_lowercase(value, b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        if eq_lowercase(value, b"close") {
            self.names_fields = true;
            self.close = true;
            return;
        }
        for token in tokens(value) {
            if eq_lowercase(token, b"keep-alive") {
                self.keep_alive = true;
            } else if !eq_lowercase(token, b"upgrade") {
                self.names_fields = true;
                self.close |= eq_lowercase(token, b"close");
            }
        }
    }
}

/// Iterates the comma-separated tokens of a header value, trimmed, empty ones skipped.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
}

/// Whether the `Transfer-Encoding` values name exactly one coding, `chunked`: the only one
/// the proxy accepts in either direction (anything else is a request it cannot delimit
/// safely or a response body it cannot pass on intact).
pub fn only_chunked<'a>(codings: impl IntoIterator<Item = &'a [u8]>) -> bool {
    let mut all = codings.into_iter().flat_map(tokens);
    all.next()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"))
        && all.next().is_none()
}

/// Appends `n` in decimal (the hot path's integers, without `fmt`).
pub fn push_decimal(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(decimal(n, &mut [0u8; 20]));
}

/// The two digits of every number below 100, for [`decimal`].
static PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0u8; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

/// `n` in decimal, written into the end of `digits` (the hot path's integers, without `fmt`).
/// Two digits a step: one division per two digits.
pub fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    while n >= 100 {
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[(n % 100) as usize]);
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[n as usize]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    &digits[i..]
}

/// Each octet's decimal text followed by a dot, in four bytes, and the text's length with
/// the dot, for [`push_ip`].
static OCTETS: [([u8; 4], u8); 256] = {
    let mut octets = [([0u8; 4], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (h, t, o) = ((n / 100) as u8, (n / 10 % 10) as u8, (n % 10) as u8);
        octets[n] = if n >= 100 {
            ([b'0' + h, b'0' + t, b'0' + o, b'.'], 4)
        } else if n >= 10 {
            ([b'0' + t, b'0' + o, b'.', 0], 3)
        } else {
            ([b'0' + o, b'.', 0, 0], 2)
        };
        n += 1;
    }
    octets
};

/// Appends an IP address as text (IPv4 without `fmt`, the common case).
pub fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // Four table entries copied whole into a stack array, the last dot dropped, then
            // appended once (every request carries the client's address in
            // X-Forwarded-For).
            let mut text = [0u8; 16];
            let mut len = 0;
            for octet in v4.octets() {
                let (digits, n) = OCTETS[usize::from(octet)];
                // At most 12 before the fourth octet: in bounds.
                text[len..len + 4].copy_from_slice(&digits);
                len += usize::from(n);
            }
            out.extend_from_slice(&text[..len - 1]);
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
}

/// The value of a string of ASCII digits, `None` when it is empty, holds anything else or
/// does not fit in a `u64` (a `Content-Length` on the hot path, without `str::parse`'s
/// UTF-8 check).
pub fn parse_decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// `value` without leading and trailing spaces and tabs.
pub fn trim(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |p| p + 1);
    &value[start..end]
}

/// Whether the comma-separated `value` lists `token` (case-insensitive).
pub fn has_token(value: &[u8], token: &str) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether `name` is listed in any of the `Connection` header values given.
pub fn named_in_connection<'a>(
    connection: impl IntoIterator<Item = &'a [u8]>,
    name: &[u8],
) -> bool {
    connection
        .into_iter()
        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_trimmed_and_case_insensitive() {
        assert!(has_token(b" Keep-Alive , Upgrade", "upgrade"));
        assert!(!has_token(b"close", "keep-alive"));
        assert_eq!(
            tokens(b"a,, b ,").collect::<Vec<_>>(),
            vec![&b"a"[..], b"b"]
        );
    }

    #[test]
    fn decimal_and_ip_text() {
        let mut out = Vec::new();
        for n in [0u64, 7, 10, 65535, u64::MAX] {
            out.clear();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for ip in ["0.0.0.0", "192.0.2.255", "10.1.20.3", "::1", "2001:db8::7"] {
            out.clear();
            push_ip(&mut out, ip.parse().unwrap());
            assert_eq!(out, ip.as_bytes());
        }
    }

    #[test]
    fn tables_write_what_fmt_writes() {
        // `fmt` is the reference: every number up to 100 000, around every power of ten,
        // and every octet value at every place of an address.
        let mut out = Vec::new();
        let mut p = 1u64;
        let around_powers = (0..20).flat_map(|_| {
            p = p.saturating_mul(10);
            [p - 1, p, p.saturating_add(1)]
        });
        for n in (0..=100_000)
            .chain(around_powers)
            .chain([u64::MAX - 1, u64::MAX])
        {
            out.clear();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for octet in 0..=255u8 {
            for at in 0..4 {
                let mut octets = [1, 22, 203, 9];
                octets[at] = octet;
                let ip = std::net::IpAddr::from(octets);
                out.clear();
                push_ip(&mut out, ip);
                assert_eq!(out, ip.to_string().as_bytes());
            }
        }
    }

    #[test]
    fn decimal_values() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"001024"), Some(1024));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"+1",
            b"-1",
            b"1e3",
            b"0x10",
            b"\xd9\xa1",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hop_by_hop_names() {
        assert!(Field::of(b"Connection").is_hop_by_hop());
        assert!(Field::of(b"TRANSFER-ENCODING").is_hop_by_hop());
        assert!(!Field::of(b"X-Forwarded-For").is_hop_by_hop());
        // The classifier agrees with the list for every listed name in any case.
        for name in HOP_BY_HOP {
            assert!(Field::of(name.as_bytes()).is_hop_by_hop(), "{name}");
            assert!(Field::of(name.to_ascii_uppercase().as_bytes()).is_hop_by_hop());
        }
    }

    #[test]
    fn word_comparison_agrees_with_byte_comparison() {
        // Every byte value at every position of names of every length the classifier
        // knows (and around the word boundaries): the fast comparison is the plain one.
        let names: &[&[u8]] = &[
            b"te",
            b"host",
            b"expect",
            b"trailer",
            b"x-forwar",
            b"forwarded",
            b"keep-alive",
            b"content-length",
            b"x-forwarded-for",
            b"x-forwarded-host",
            b"transfer-encoding",
            b"abc123-xyz",
        ];
        for lower in names {
            let mut name = lower.to_vec();
            assert!(eq_lowercase(&name, lower));
            assert!(eq_lowercase(&name.to_ascii_uppercase(), lower));
            for at in 0..name.len() {
                let keep = name[at];
                for b in 0..=255u8 {
                    name[at] = b;
                    assert_eq!(
                        eq_lowercase(&name, lower),
                        name.eq_ignore_ascii_case(lower),
                        "{:?} against {:?}",
                        String::from_utf8_lossy(&name),
                        String::from_utf8_lossy(lower)
                    );
                }
                name[at] = keep;
            }
            assert!(!eq_lowercase(&name[1..], lower));
            assert!(!eq_lowercase(&[&name[..], b"x"].concat(), lower));
        }
    }

    #[test]
    fn token_lists_with_empty_items_and_spaces() {
        assert!(has_token(b"close", "close"));
        assert!(has_token(b",, close ,", "close"));
        assert!(has_token(b"a,\tCLOSE", "close"));
        assert!(!has_token(b"", "close"));
        assert!(!has_token(b",", "close"));
        assert!(!has_token(b"closed, clos", "close"));
        assert!(!has_token(b"close-x", "close"));
    }

    #[test]
    fn fields_are_recognised_by_name_only() {
        assert_eq!(Field::of(b"X-Forwarded-Host"), Field::XForwardedHost);
        assert_eq!(Field::of(b"proxy-CONNECTION"), Field::ProxyConnection);
        assert_eq!(Field::of(b"Hos"), Field::Other);
        assert_eq!(Field::of(b"Hostx"), Field::Other);
        assert_eq!(Field::of(b"x-forwarded-fox"), Field::Other);
        assert_eq!(Field::of(b""), Field::Other);
    }

    #[test]
    fn connection_options_in_one_pass() {
        let of = |values: &[&[u8]]| ConnectionOptions::of(values.iter().copied());
        assert_eq!(of(&[]), ConnectionOptions::default());
        let o = of(&[b"Keep-Alive, Upgrade"]);
        assert!(o.keep_alive && !o.close && !o.names_fields);
        let o = of(&[b"keep-alive", b" CLOSE "]);
        assert!(o.keep_alive && o.close && o.names_fields);
        let o = of(&[b"x-secret"]);
        assert!(!o.keep_alive && !o.close && o.names_fields);
        assert!(!of(&[b"closed"]).close);
    }

    #[test]
    fn only_unusual_connection_options_name_fields() {
        assert!(!connection_names_fields([&b"keep-alive"[..], b" Upgrade "]));
        assert!(!connection_names_fields(std::iter::empty()));
        assert!(connection_names_fields([&b"keep-alive, X-Secret"[..]]));
        assert!(connection_names_fields([&b"close"[..]]));
    }
}
