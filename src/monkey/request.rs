//! What stage 30 hands the core's intake: the request line as Monkey's parser split it and
//! the raw bytes behind it ([`crate::http::intake::RawRequest`]).
//!
//! The method and the path come from Monkey's parsed fields, since Monkey writes a NUL into
//! the request line; the query is read from the line itself (see [`query_in_line`]);
//! everything after the line — fields, body, pipelined requests — is the core's to read.

use std::net::SocketAddr;

use super::session::Session;
use crate::http::intake::RawRequest;

/// The request of `session` for the intake, and where its fields start in Monkey's request
/// buffer (the intake's `consumed` counts from there). `None` when the buffer holds no
/// complete request line.
pub fn raw_request(session: &Session, peer: Option<SocketAddr>) -> Option<(RawRequest<'_>, usize)> {
    let raw = session.raw();
    // Header fields start after the request line's CRLF (the line itself has Monkey's NUL).
    // The first LF ends the line for the query too: found once for both.
    let first_lf = find_lf(raw)?;
    let line_end = if first_lf > 0 && raw[first_lf - 1] == b'\r' {
        first_lf + 1
    } else {
        // A bare LF comes first: the fields start after the first CRLF all the same.
        raw.windows(2).position(|w| w == b"\r\n")? + 2
    };
    Some((
        RawRequest {
            method: session.method(),
            path: session.uri(),
            query: query_in_line(&raw[..first_lf]),
            minor_version: session.minor_version(),
            rest: &raw[line_end..],
            peer,
            host_closes: session.closes(),
        },
        line_end,
    ))
}

/// The first LF in `raw`, eight bytes at a time (every request's line is scanned for it; a
/// byte loop cost about five instructions a byte).
fn find_lf(raw: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = raw.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        // Zero where a byte is LF; the lowest flagged byte is the first zero one (a borrow
        // can only flag bytes above a zero byte, never below it).
        let w = u64::from_le_bytes(bytes) ^ (ONES * u64::from(b'\n'));
        let zeros = w.wrapping_sub(ONES) & !w & HIGHS;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == b'\n')
        .map(|p| at + p)
}

/// [`query_in_line`] for the request line at the start of `raw`.
#[cfg(test)]
fn query_from_line(raw: &[u8]) -> Option<&[u8]> {
    query_in_line(&raw[..raw.iter().position(|&b| b == b'\n')?])
}

/// The request's query (without `?`; empty for a target ending in `?`), `None` when the
/// target has none, read from the request line `line` (up to its LF; a CR before the LF
/// is cut) rather than from Monkey's `query_string`, which is not reset between the
/// requests of a connection (a request without a query carried the previous one's, or
/// whatever bytes sat where it was: `GET /b HTTP/1.1` after `GET /a?x=1` gave `/b?HTT`) and
/// which keeps pointing into Monkey's first read buffer when a request outgrows it.
///
/// The line is `METHOD SP target SP HTTP/1.x`; Monkey has written a NUL at the end of the
/// path before stage 30, over the `?` or, without a query, over the space before the
/// protocol, so both count as separators.
fn query_in_line(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    // `HTTP/1.x` and the separator before it.
    let target_end = line.len().checked_sub(9)?;
    let target_start = line.iter().position(|&b| b == b' ')? + 1;
    let target = line.get(target_start..target_end)?;
    let mark = target.iter().position(|&b| b == b'?' || b == 0)?;
    Some(&target[mark + 1..])
}

#[cfg(test)]
mod tests {
    use super::{find_lf, query_from_line};

    #[test]
    fn the_first_lf_is_found_as_a_byte_loop_finds_it() {
        let mut line = Vec::new();
        for len in 0..40 {
            for lf in 0..=len {
                line.clear();
                // Bytes around LF (0x0a) that a borrow could confuse with it.
                line.extend((0..len).map(|i| [0x0b, 0x09, 0x8a, 0x00, b'a'][i % 5]));
                if lf < len {
                    line[lf] = b'\n';
                    if lf + 3 < len {
                        line[lf + 3] = b'\n';
                    }
                }
                let expected = line.iter().position(|&b| b == b'\n');
                assert_eq!(find_lf(&line), expected, "{line:?}");
            }
        }
    }

    #[test]
    fn the_query_comes_from_the_request_line_as_monkey_left_it() {
        let q =
            |line: &[u8]| query_from_line(line).map(|q| String::from_utf8_lossy(q).into_owned());
        // As received, and after Monkey's NUL at the end of the path (over `?` or over the
        // space before the protocol).
        assert_eq!(
            q(b"GET /a?x=1 HTTP/1.1\r\nHost: t\r\n\r\n").as_deref(),
            Some("x=1")
        );
        assert_eq!(q(b"GET /a\0x=1 HTTP/1.1\r\n").as_deref(), Some("x=1"));
        assert_eq!(q(b"GET /a\0HTTP/1.1\r\n"), None);
        assert_eq!(q(b"GET /a HTTP/1.1\r\n"), None);
        assert_eq!(q(b"GET /a? HTTP/1.0\r\n").as_deref(), Some(""));
        assert_eq!(q(b"GET /a\0 HTTP/1.0\r\n").as_deref(), Some(""));
        assert_eq!(
            q(b"POST /a?b?c=%2F HTTP/1.1\r\n").as_deref(),
            Some("b?c=%2F")
        );
        // Not a request line: no query rather than a panic.
        assert_eq!(q(b"GET\r\n"), None);
        assert_eq!(q(b""), None);
        assert_eq!(q(b"HTTP/1.1\n"), None);
    }
}
