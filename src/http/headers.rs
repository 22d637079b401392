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
        // The length picks at most two candidates, so most names cost one comparison.
        let candidates: &[(&[u8], Field)] = match name.len() {
            2 => &[(b"te", Field::Te)],
            4 => &[(b"host", Field::Host)],
            6 => &[(b"expect", Field::Expect)],
            7 => &[(b"trailer", Field::Trailer), (b"upgrade", Field::Upgrade)],
            9 => &[(b"forwarded", Field::Forwarded)],
            10 => &[
                (b"connection", Field::Connection),
                (b"keep-alive", Field::KeepAlive),
            ],
            14 => &[(b"content-length", Field::ContentLength)],
            15 => &[(b"x-forwarded-for", Field::XForwardedFor)],
            16 => &[
                (b"proxy-connection", Field::ProxyConnection),
                (b"x-forwarded-host", Field::XForwardedHost),
            ],
            17 => &[
                (b"transfer-encoding", Field::TransferEncoding),
                (b"x-forwarded-proto", Field::XForwardedProto),
            ],
            _ => &[],
        };
        candidates
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or(Field::Other, |&(_, f)| f)
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

/// Whether a message's `Connection` values name anything but `keep-alive` and `upgrade`
/// (both hop-by-hop anyway): only then must each other field be checked against them with
/// [`named_in_connection`].
pub fn connection_names_fields<'a>(connection: impl IntoIterator<Item = &'a [u8]>) -> bool {
    connection.into_iter().any(|v| {
        tokens(v)
            .any(|t| !t.eq_ignore_ascii_case(b"keep-alive") && !t.eq_ignore_ascii_case(b"upgrade"))
    })
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

/// `n` in decimal, written into the end of `digits` (the hot path's integers, without `fmt`).
pub fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[i..]
}

/// Appends an IP address as text (IPv4 without `fmt`, the common case).
pub fn push_ip(out: &mut Vec<u8>, ip: std::net::IpAddr) {
    match ip {
        std::net::IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, u64::from(*octet));
            }
        }
        std::net::IpAddr::V6(v6) => {
            use std::io::Write;
            let _ = write!(out, "{v6}");
        }
    }
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
    fn fields_are_recognised_by_name_only() {
        assert_eq!(Field::of(b"X-Forwarded-Host"), Field::XForwardedHost);
        assert_eq!(Field::of(b"proxy-CONNECTION"), Field::ProxyConnection);
        assert_eq!(Field::of(b"Hos"), Field::Other);
        assert_eq!(Field::of(b"Hostx"), Field::Other);
        assert_eq!(Field::of(b"x-forwarded-fox"), Field::Other);
        assert_eq!(Field::of(b""), Field::Other);
    }

    #[test]
    fn only_unusual_connection_options_name_fields() {
        assert!(!connection_names_fields([&b"keep-alive"[..], b" Upgrade "]));
        assert!(!connection_names_fields(std::iter::empty()));
        assert!(connection_names_fields([&b"keep-alive, X-Secret"[..]]));
        assert!(connection_names_fields([&b"close"[..]]));
    }
}
