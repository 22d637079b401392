//! One access log line: nginx's `combined` format, then what the proxy knows of the
//! upstream side. Field by field in `docs/logs.md`:
//!
//! ```text
//! 127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] "GET /a?b=1 HTTP/1.1" 200 1024 "-" "curl/8.5.0" 127.0.0.1:8080 200 0.000 0.001 0.002 1 93 1187 dynamic
//! ```
//!
//! that is `$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
//! "$http_referer" "$http_user_agent"` followed by upstream address, upstream status, connect,
//! first-byte (response head) and total times in seconds with millisecond precision (nginx's
//! `$upstream_connect_time`, `$upstream_header_time`, `$upstream_response_time`), attempts,
//! bytes sent to and received from the upstream, and the entry's name. `-` stands for what
//! does not exist (no referer, no upstream reached, no response head).

use std::net::IpAddr;
use std::time::Duration;

use crate::log::escape::{push_escaped, push_field};

/// Most bytes of the request target a line shows.
pub const TARGET_MAX: usize = 4096;
/// Most bytes of the referer and of the user agent a line shows.
pub const HEADER_MAX: usize = 1024;

/// What one line says about one proxied request.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The client's address.
    pub client: Option<IpAddr>,
    /// The request's method.
    pub method: &'a str,
    /// Its path, as received.
    pub path: &'a str,
    /// Its query, without `?`.
    pub query: Option<&'a str>,
    /// HTTP/1.x: the x.
    pub minor_version: u8,
    /// The status the client got; 0 when it got none (written 499, as nginx does for a client
    /// that closed its connection first).
    pub status: u16,
    /// Bytes of the response body the client was sent (after the head).
    pub body_bytes: u64,
    /// The `Referer` field (empty: none).
    pub referer: &'a [u8],
    /// The `User-Agent` field (empty: none).
    pub user_agent: &'a [u8],
    /// The server of the last try, `host:port` as configured.
    pub upstream: Option<&'a str>,
    /// The status of the last try's response head.
    pub upstream_status: Option<u16>,
    /// How long the last try took to connect (zero on a reused connection).
    pub connect: Option<Duration>,
    /// From the request's start to the response head.
    pub first_byte: Option<Duration>,
    /// From the request's start to its end.
    pub total: Duration,
    /// Tries made.
    pub attempts: u32,
    /// Bytes written to upstreams, all tries.
    pub upstream_sent: u64,
    /// Bytes read from upstreams, all tries.
    pub upstream_received: u64,
    /// The entry's name.
    pub entry: &'a str,
}

impl Line<'_> {
    /// Appends the line (with its `\n`) to `out`; `time` is [`super::time::format`]'s.
    pub fn write(&self, out: &mut Vec<u8>, time: &[u8]) {
        match self.client {
            Some(ip) => {
                use std::io::Write;
                let _ = write!(out, "{ip}");
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b" - - [");
        out.extend_from_slice(time);
        out.extend_from_slice(b"] \"");
        push_escaped(out, self.method.as_bytes(), 32);
        out.push(b' ');
        let path_room = TARGET_MAX.saturating_sub(self.query.map_or(0, |q| q.len() + 1));
        push_escaped(out, self.path.as_bytes(), path_room.max(1));
        if let Some(q) = self.query {
            out.push(b'?');
            push_escaped(
                out,
                q.as_bytes(),
                TARGET_MAX.saturating_sub(self.path.len() + 1).max(1),
            );
        }
        out.extend_from_slice(b" HTTP/1.");
        push_u64(out, u64::from(self.minor_version));
        out.extend_from_slice(b"\" ");
        push_u64(
            out,
            u64::from(if self.status == 0 { 499 } else { self.status }),
        );
        out.push(b' ');
        push_u64(out, self.body_bytes);
        out.extend_from_slice(b" \"");
        push_field(out, self.referer, HEADER_MAX);
        out.extend_from_slice(b"\" \"");
        push_field(out, self.user_agent, HEADER_MAX);
        out.extend_from_slice(b"\" ");
        match self.upstream {
            Some(u) => push_escaped(out, u.as_bytes(), 300),
            None => out.push(b'-'),
        }
        out.push(b' ');
        match self.upstream_status {
            Some(s) => push_u64(out, u64::from(s)),
            None => out.push(b'-'),
        }
        for t in [self.connect, self.first_byte, Some(self.total)] {
            out.push(b' ');
            push_seconds(out, t);
        }
        out.push(b' ');
        push_u64(out, u64::from(self.attempts));
        out.push(b' ');
        push_u64(out, self.upstream_sent);
        out.push(b' ');
        push_u64(out, self.upstream_received);
        out.push(b' ');
        push_escaped(out, self.entry.as_bytes(), 300);
        out.push(b'\n');
    }
}

/// `n` in decimal.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Seconds with three decimals (`0.012`), or `-`.
fn push_seconds(out: &mut Vec<u8>, d: Option<Duration>) {
    let Some(d) = d else {
        out.push(b'-');
        return;
    };
    let ms = d.as_millis().min(u128::from(u64::MAX)) as u64;
    push_u64(out, ms / 1000);
    out.push(b'.');
    let frac = ms % 1000;
    out.extend_from_slice(&[
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Line<'static> {
        Line {
            client: Some("127.0.0.1".parse().unwrap()),
            method: "GET",
            path: "/a",
            query: Some("b=1"),
            minor_version: 1,
            status: 200,
            body_bytes: 1024,
            referer: b"",
            user_agent: b"curl/8.5.0",
            upstream: Some("127.0.0.1:8080"),
            upstream_status: Some(200),
            connect: Some(Duration::ZERO),
            first_byte: Some(Duration::from_micros(1500)),
            total: Duration::from_millis(2),
            attempts: 1,
            upstream_sent: 93,
            upstream_received: 1187,
            entry: "dynamic",
        }
    }

    fn text(l: &Line<'_>) -> String {
        let mut out = Vec::new();
        l.write(&mut out, b"10/Oct/2000:13:55:36 +0000");
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn combined_then_upstream_fields() {
        assert_eq!(
            text(&line()),
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 1024 \"-\" \
             \"curl/8.5.0\" 127.0.0.1:8080 200 0.000 0.001 0.002 1 93 1187 dynamic\n"
        );
    }

    #[test]
    fn nothing_reached_and_hostile_fields() {
        let l = Line {
            client: None,
            path: "/\"x\n",
            query: None,
            minor_version: 0,
            status: 0,
            body_bytes: 0,
            referer: b"http://e/\"",
            user_agent: b"",
            upstream: None,
            upstream_status: None,
            connect: None,
            first_byte: None,
            total: Duration::from_millis(12_345),
            attempts: 0,
            upstream_sent: 0,
            upstream_received: 0,
            ..line()
        };
        assert_eq!(
            text(&l),
            "- - - [10/Oct/2000:13:55:36 +0000] \"GET /\\x22x\\x0A HTTP/1.0\" 499 0 \
             \"http://e/\\x22\" \"-\" - - - - 12.345 0 0 0 dynamic\n"
        );
    }
}
