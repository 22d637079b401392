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

/// Whether `name` is hop-by-hop (or a framing header the proxy regenerates).
pub fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Iterates the comma-separated tokens of a header value, trimmed, empty ones skipped.
pub fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim)
        .filter(|t| !t.is_empty())
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
pub fn named_in_connection<'a>(connection: impl IntoIterator<Item = &'a [u8]>, name: &str) -> bool {
    connection.into_iter().any(|v| has_token(v, name))
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
    fn hop_by_hop_names() {
        assert!(is_hop_by_hop("Connection"));
        assert!(is_hop_by_hop("TRANSFER-ENCODING"));
        assert!(!is_hop_by_hop("X-Forwarded-For"));
    }
}
