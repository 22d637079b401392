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

use crate::http::headers::Field;
use crate::http::request::HeaderList;
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
    ///
    /// Written for the request path: the fixed parts and the numbers go through a buffer on
    /// the stack and reach `out` in a few copies (most fields are a handful of bytes, where a
    /// copy per field would cost more than the field).
    pub fn write(&self, out: &mut Vec<u8>, time: &[u8; super::time::LEN]) {
        out.reserve(
            160 + self.method.len()
                + self.path.len()
                + self.query.map_or(0, str::len)
                + self.referer.len()
                + self.user_agent.len()
                + self.upstream.map_or(1, str::len)
                + self.entry.len(),
        );
        let mut s = Stack::new();
        match self.client {
            Some(IpAddr::V4(ip)) => {
                let [a, b, c, d] = ip.octets();
                s.num(u64::from(a));
                for o in [b, c, d] {
                    s.byte(b'.');
                    s.num(u64::from(o));
                }
            }
            Some(ip) => {
                use std::io::Write;
                let _ = write!(out, "{ip}");
            }
            None => s.byte(b'-'),
        }
        s.bytes(b" - - [");
        s.time(time);
        s.bytes(b"] \"");
        s.drain(out);
        push_escaped(out, self.method.as_bytes(), 32);
        out.push(b' ');
        let path_room = TARGET_MAX.saturating_sub(self.query.map_or(0, |q| q.len() + 1));
        push_escaped(out, self.path.as_bytes(), path_room.max(1));
        if let Some(q) = self.query {
            out.push(b'?');
            let room = TARGET_MAX.saturating_sub(self.path.len() + 1).max(1);
            push_escaped(out, q.as_bytes(), room);
        }
        s.bytes(b" HTTP/1.");
        s.num(u64::from(self.minor_version));
        s.bytes(b"\" ");
        s.num(u64::from(if self.status == 0 { 499 } else { self.status }));
        s.byte(b' ');
        s.num(self.body_bytes);
        s.bytes(b" \"");
        s.drain(out);
        push_field(out, self.referer, HEADER_MAX);
        out.extend_from_slice(b"\" \"");
        push_field(out, self.user_agent, HEADER_MAX);
        out.extend_from_slice(b"\" ");
        // Escaped although the configuration's names are plain: a line must stay one line
        // whatever a future name syntax allows (clean text costs one scan and one copy).
        push_escaped(out, self.upstream.unwrap_or("-").as_bytes(), 300);
        s.byte(b' ');
        match self.upstream_status {
            Some(st) => s.num(u64::from(st)),
            None => s.byte(b'-'),
        }
        for t in [self.connect, self.first_byte, Some(self.total)] {
            s.byte(b' ');
            s.seconds(t);
        }
        s.byte(b' ');
        s.num(u64::from(self.attempts));
        s.byte(b' ');
        s.num(self.upstream_sent);
        s.byte(b' ');
        s.num(self.upstream_received);
        s.byte(b' ');
        s.drain(out);
        push_escaped(out, self.entry.as_bytes(), 300);
        out.push(b'\n');
    }
}

/// The first `Referer` and `User-Agent` values of `headers` (empty for none), found in one
/// pass.
pub fn referer_and_agent(headers: &HeaderList) -> (&[u8], &[u8]) {
    let (mut referer, mut agent): (&[u8], &[u8]) = (b"", b"");
    for (field, name, value) in headers.fields() {
        if field != Field::Other {
            continue;
        }
        if referer.is_empty() && name.eq_ignore_ascii_case(b"referer") {
            referer = value;
        } else if agent.is_empty() && name.eq_ignore_ascii_case(b"user-agent") {
            agent = value;
        }
    }
    (referer, agent)
}

/// A few dozen bytes built on the stack, then copied out at once.
struct Stack {
    buf: [u8; 192],
    len: usize,
}

impl Stack {
    fn new() -> Stack {
        Stack {
            buf: [0; 192],
            len: 0,
        }
    }

    #[inline]
    fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Short constant text.
    #[inline]
    fn bytes(&mut self, text: &[u8]) {
        for &b in text {
            self.byte(b);
        }
    }

    fn time(&mut self, time: &[u8; super::time::LEN]) {
        if let Some(room) = self.buf.get_mut(self.len..self.len + time.len()) {
            room.copy_from_slice(time);
            self.len += time.len();
        }
    }

    /// `n` in decimal, each digit written where it goes.
    fn num(&mut self, mut n: u64) {
        let digits = n.checked_ilog10().map_or(1, |l| l as usize + 1);
        let Some(room) = self.buf.get_mut(self.len..self.len + digits) else {
            return;
        };
        for slot in room.iter_mut().rev() {
            *slot = b'0' + (n % 10) as u8;
            n /= 10;
        }
        self.len += digits;
    }

    /// Seconds with three decimals (`0.012`), or `-`.
    fn seconds(&mut self, d: Option<Duration>) {
        let Some(d) = d else {
            self.byte(b'-');
            return;
        };
        let ms = d.as_millis().min(u128::from(u64::MAX >> 1)) as u64;
        self.num(ms / 1000);
        self.byte(b'.');
        let frac = ms % 1000;
        self.byte(b'0' + (frac / 100) as u8);
        self.byte(b'0' + (frac / 10 % 10) as u8);
        self.byte(b'0' + (frac % 10) as u8);
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.buf[..self.len]);
        self.len = 0;
    }
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

    #[test]
    fn ipv6_clients_and_the_largest_numbers_fit() {
        let l = Line {
            client: Some("2001:db8::1".parse().unwrap()),
            status: 599,
            body_bytes: u64::MAX,
            upstream_status: Some(599),
            connect: Some(Duration::from_secs(u64::MAX)),
            first_byte: Some(Duration::from_secs(u64::MAX)),
            total: Duration::from_secs(u64::MAX),
            attempts: u32::MAX,
            upstream_sent: u64::MAX,
            upstream_received: u64::MAX,
            ..line()
        };
        let t = text(&l);
        let m = u64::MAX;
        let secs = (u64::MAX >> 1) / 1000;
        let ms = (u64::MAX >> 1) % 1000;
        assert_eq!(
            t,
            format!(
                "2001:db8::1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 599 {m} \"-\" \
                 \"curl/8.5.0\" 127.0.0.1:8080 599 {secs}.{ms:03} {secs}.{ms:03} {secs}.{ms:03} {} {m} {m} dynamic\n",
                u32::MAX
            )
        );
    }
}
