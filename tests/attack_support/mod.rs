//! The HTTP attack catalogue, run on both hosts: `relay_attacks.rs` through the stand-in
//! host, `monkey_http.rs` through a real Monkey. The cases ([`cases`]) are written once
//! against a [`Harness`]; this module also holds their pieces: the malicious requests, the
//! broken origin replies, and a parser for the request head the origin's `/headers` route
//! echoes.
#![allow(dead_code)]

#[macro_use]
pub mod cases;
mod harness;

pub use harness::{run_case, Harness};

use std::time::Duration;

use crate::common::Client;

/// Both framings at once (RFC 9112 §6.1): the CL says 5 bytes, which happen to be a
/// complete chunked body, so a server reading either way is not left waiting.
pub const CL_AND_TE: &[u8] = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\
Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n";

/// Two different Content-Length fields (Monkey keeps only the last: 5).
pub const TWO_DIFFERENT_CL: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nContent-Length: 5\r\n\r\nhello";

/// Two equal Content-Length fields: still a duplicate, still refused.
pub const TWO_EQUAL_CL: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello";

/// A transfer coding other than a lone `chunked`.
pub const TE_GZIP_CHUNKED: &[u8] =
    b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n";

/// Two Host fields (RFC 9112 §3.2: 400): the proxy and the backend could each route by a
/// different one.
pub const TWO_HOSTS: &[u8] = b"GET /headers HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";

/// A Host that is not an authority (a space inside).
pub const HOST_WITH_A_SPACE: &[u8] = b"GET /headers HTTP/1.1\r\nHost: a b\r\n\r\n";

/// An HTTP/1.1 request without Host (RFC 9112 §3.2: 400).
pub const NO_HOST: &[u8] = b"GET /headers HTTP/1.1\r\nAccept: */*\r\n\r\n";

/// A Host that would close the `Forwarded` quoted-string and add an element claiming
/// another client.
pub const HOST_BREAKING_FORWARDED: &[u8] =
    b"GET /headers HTTP/1.1\r\nHost: a\", for=6.6.6.6;by=\"x\r\n\r\n";

/// A bare CR inside the request target (RFC 9112 §2.2): a backend that ends lines at CR
/// would read a header the proxy never saw.
pub const CR_IN_TARGET: &[u8] = b"GET /headers?a\rX-Inj:1 HTTP/1.1\r\nHost: t\r\n\r\n";

/// A fragment in the request target: routed as `…#.php`, served by a backend that cuts at
/// `#` as `/admin`.
pub const FRAGMENT_IN_TARGET: &[u8] = b"GET /headers#.php HTTP/1.1\r\nHost: t\r\n\r\n";

/// A NUL inside the request path.
pub const NUL_IN_PATH: &[u8] = b"GET /headers\x00/x HTTP/1.1\r\nHost: t\r\n\r\n";

/// Bytes that are not ASCII in the request target: curl sends `café` in a URL as raw UTF-8.
pub const UTF8_TARGET: &[u8] = b"GET /headers?q=caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n";

/// Bytes that are not even UTF-8 in the request target (both hosts take them).
pub const EIGHT_BIT_TARGET: &[u8] =
    b"GET /headers?q=caf\xc3\xa9&r=\xff HTTP/1.1\r\nHost: t\r\n\r\n";

/// `request` (one of the above) through the proxy at `proxy` in front of the test origin:
/// served, with the target's non-ASCII bytes percent-encoded for the backend as
/// `expected_target`, none replaced.
pub fn assert_target_reaches_the_origin_as(
    proxy: std::net::SocketAddr,
    request: &[u8],
    expected_target: &str,
) {
    let mut c = Client::connect(proxy);
    c.send(request);
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let (line, _) = parse_head(&r.body);
    assert_eq!(line, format!("GET {expected_target} HTTP/1.1"));
}

/// A body in a transfer coding the proxy never accepted: relayed without its (hop-by-hop)
/// coding header it would reach the client corrupted.
pub const TE_GZIP_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b\x08\x00gzipped";

/// What a trusted proxy (127.0.0.1, with `ForwardedHeader on`) sends for
/// [`assert_trusted_values_kept`]: the `Host` it was asked for and its own forwarding headers.
pub const TRUSTED_HOST: &str = "inner:8080";
/// See [`TRUSTED_HOST`].
pub const TRUSTED_FORWARDING: &str =
    "X-Forwarded-Proto: https\r\nX-Forwarded-Host: shop.example\r\n\
Forwarded: for=203.0.113.7;proto=https\r\n";

/// The origin's view of [`TRUSTED_FORWARDING`]: the trusted proxy's protocol and host kept,
/// the proxy's `Forwarded` element after its own.
pub fn assert_trusted_values_kept(h: &[(String, String)]) {
    assert_eq!(values(h, "x-forwarded-proto"), ["https"]);
    assert_eq!(values(h, "x-forwarded-host"), ["shop.example"]);
    assert_eq!(
        values(h, "forwarded"),
        ["for=203.0.113.7;proto=https, for=127.0.0.1;host=\"inner:8080\";proto=http"]
    );
}

/// An HTTP/1.0 request without `Host` (allowed in 1.0) through the proxy at `proxy`: the
/// HTTP/1.1 request the origin gets names a host, `expected` (the entry's first server).
pub fn assert_http10_without_host_gets_a_host(proxy: std::net::SocketAddr, expected: &str) {
    let mut c = Client::connect(proxy);
    c.send(b"GET /headers HTTP/1.0\r\n\r\n");
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    let (line, h) = parse_head(&r.body);
    assert_eq!(line, "GET /headers HTTP/1.1");
    assert_eq!(values(&h, "host"), [expected]);
}

/// Not HTTP at all.
pub const GARBAGE_REPLY: &[u8] = b"this is not http\r\n\r\n";

/// A response with two different lengths (RFC 9112 §6.3 (5): unrecoverable).
pub const TWO_CL_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nokk";

/// A response with an obs-fold continuation line (RFC 9112 §5.2: a proxy must reject or
/// replace it; this one rejects).
pub const OBS_FOLD_REPLY: &[u8] =
    b"HTTP/1.1 200 OK\r\nX-Folded: first\r\n second\r\nContent-Length: 2\r\n\r\nok";

/// An interim 100 Continue before the final response.
pub const INTERIM_100_REPLY: &[u8] =
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// A response head a proxy must clean before the client sees it: bare LF line ends (which
/// the response parser accepts), a field named in `Connection`, `Keep-Alive`, odd spacing.
pub const DIRTY_HEAD_REPLY: &[u8] = b"HTTP/1.1 200 OK\nX-A:1\r\nConnection: keep-alive, X-Secret\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nX-B:  two  \nContent-Length: 2\r\nX-C: 3\r\n\nok";

/// `DIRTY_HEAD_REPLY` through the proxy at `proxy`, read as raw bytes: every line of the
/// head ends in CRLF, the hop-by-hop and `Connection`-named fields are gone, the others are
/// there once each (kept lines as sent, the rewritten bare-LF line trimmed), body intact.
pub fn assert_backend_head_reaches_the_client_clean(proxy: std::net::SocketAddr) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    s.write_all(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)
        .expect("the response, then the close");
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("a head ending in CRLF CRLF");
    assert_eq!(body, "ok", "{text:?}");
    let head = format!("{head}\r\n");
    assert_eq!(
        head.matches('\n').count(),
        head.matches("\r\n").count(),
        "bare LF: {text:?}"
    );
    assert_eq!(
        head.matches('\r').count(),
        head.matches("\r\n").count(),
        "bare CR: {text:?}"
    );
    let lines: Vec<&str> = head.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines[0], "HTTP/1.1 200 OK", "{text:?}");
    let lower = head.to_ascii_lowercase();
    assert!(
        !lower.contains("x-secret") && !lower.contains("keep-alive"),
        "{text:?}"
    );
    for kept in ["X-A:1", "X-B: two", "X-C: 3", "Content-Length: 2"] {
        assert_eq!(
            lines.iter().filter(|l| **l == kept).count(),
            1,
            "{kept}: {text:?}"
        );
    }
}

/// The request head as the origin received it: (request line, [(lower-case name, value)]).
pub fn parse_head(body: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(body);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (first, headers)
}

/// Every value of header `name` (lower case) in a parsed head.
pub fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A GET of `/headers` with `extra` header lines (each ending in CRLF) and `Host: host`.
pub fn headers_request(host: &str, extra: &str) -> Vec<u8> {
    format!("GET /headers HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n").into_bytes()
}

/// After a 400 for an ambiguous request the proxy closes: the next read sees EOF (or a
/// reset), not another response and not a hang.
pub fn assert_closed_after(c: &mut Client) {
    use std::io::Read;
    let s = c.reader.get_mut();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    match c.reader.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "bytes after the 400: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "connection not closed after the 400: {e}"
        ),
    }
}
