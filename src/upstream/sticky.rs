//! Sticky sessions by cookie: each server's cookie value, made once when the group is built
//! (off the workers), and the lookups the request path makes.
//!
//! A server's value is HMAC-SHA256, keyed with `StickySecret`, of its `host:port` as the
//! configuration writes it, truncated to 128 bits and written base64url (22 characters). So
//! the value names a server, not a list position: reordering the list or adding servers
//! keeps every cookie valid, and every instance sharing the secret and the server routes
//! the cookie the same way. Without the secret a client cannot make the value of a server
//! it was never sent to; a value that is no server's is ignored.

use ring::hmac;

use crate::config::{ServerSpec, StickyCookie};

/// Bytes of the MAC kept: 128 bits, far past guessing.
const MAC_BYTES: usize = 16;

/// Characters of a value: base64url of [`MAC_BYTES`] without padding.
const VALUE_LEN: usize = (MAC_BYTES * 4).div_ceil(3);

/// Told apart from any other use of the same secret.
const CONTEXT: &[u8] = b"proxy_reverse sticky v1\0";

/// The sticky cookie of one entry: its name, each server's value and `Set-Cookie` line.
#[derive(Debug)]
pub struct Sticky {
    name: String,
    /// (value, server index), sorted by value.
    by_value: Vec<([u8; VALUE_LEN], usize)>,
    /// The `Set-Cookie` line (with CRLF) of each server, in list order.
    lines: Vec<Box<[u8]>>,
}

impl Sticky {
    /// The cookie `cookie` for these servers (in list order).
    pub fn new(cookie: &StickyCookie, servers: &[ServerSpec]) -> Sticky {
        let key = hmac::Key::new(hmac::HMAC_SHA256, cookie.secret.as_bytes());
        let values: Vec<[u8; VALUE_LEN]> = servers.iter().map(|s| value(&key, &s.name)).collect();
        let lines = values
            .iter()
            .map(|v| {
                let v = std::str::from_utf8(v).unwrap_or("");
                cookie.set_cookie_line(v).into_bytes().into_boxed_slice()
            })
            .collect();
        let mut by_value: Vec<([u8; VALUE_LEN], usize)> = values.into_iter().zip(0..).collect();
        by_value.sort_unstable();
        Sticky {
            name: cookie.name.clone(),
            by_value,
            lines,
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server a cookie value names, if it is one of theirs.
    pub fn server_of(&self, value: &[u8]) -> Option<usize> {
        let value: &[u8; VALUE_LEN] = value.try_into().ok()?;
        self.by_value
            .binary_search_by(|(v, _)| v.cmp(value))
            .ok()
            .map(|k| self.by_value[k].1)
    }

    /// The first of `values` (a request's cookies of this name) that names a server.
    pub fn server_in<'v>(&self, values: impl IntoIterator<Item = &'v [u8]>) -> Option<usize> {
        values.into_iter().find_map(|v| self.server_of(v))
    }

    /// The `Set-Cookie` line (with CRLF) that makes server `i` the client's.
    pub fn line(&self, i: usize) -> &[u8] {
        self.lines.get(i).map_or(&[], |l| l)
    }
}

/// The value of the server called `name` under `key`.
fn value(key: &hmac::Key, name: &str) -> [u8; VALUE_LEN] {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(CONTEXT);
    ctx.update(name.as_bytes());
    let tag = ctx.sign();
    base64url(&tag.as_ref()[..MAC_BYTES])
}

/// Base64url without padding (RFC 4648 §5): cookie-safe characters only.
fn base64url(bytes: &[u8]) -> [u8; VALUE_LEN] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = [0u8; VALUE_LEN];
    let mut k = 0;
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for j in 0..=chunk.len() {
            if k < VALUE_LEN {
                out[k] = ALPHABET[(n >> (18 - 6 * j) & 63) as usize];
                k += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ServerSpec {
        ServerSpec {
            name: name.to_string(),
            addr: "127.0.0.1:1".parse().unwrap(),
            weight: 1,
            tls: false,
            backup: false,
        }
    }

    fn cookie(secret: &str) -> StickyCookie {
        let mut c = crate::config::affinity::sticky_cookie("SRV HttpOnly").unwrap();
        c.secret = secret.to_string();
        c
    }

    #[test]
    fn base64url_matches_rfc_4648() {
        // RFC 4648 §10 vectors, unpadded, in the first characters.
        assert_eq!(&base64url(b"foobar")[..8], b"Zm9vYmFy");
        assert_eq!(&base64url(b"\xfb\xff")[..3], b"-_8");
    }

    #[test]
    fn values_name_servers_by_host_port_not_position() {
        let secret = "s".repeat(32);
        let a = Sticky::new(&cookie(&secret), &[spec("a:1"), spec("b:2")]);
        let b = Sticky::new(&cookie(&secret), &[spec("c:3"), spec("b:2"), spec("a:1")]);
        for (i, name) in [(0, "a:1"), (1, "b:2")] {
            let line = std::str::from_utf8(a.line(i)).unwrap();
            let v = line
                .strip_prefix("Set-Cookie: SRV=")
                .and_then(|l| l.split(';').next())
                .unwrap();
            assert_eq!(v.len(), VALUE_LEN);
            assert!(v
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(a.server_of(v.as_bytes()), Some(i));
            let j = [2, 1][i];
            assert_eq!(
                b.server_of(v.as_bytes()),
                Some(j),
                "{name} in the other order"
            );
        }
        assert!(a.line(0).ends_with(b"; Path=/; HttpOnly\r\n"));
        // Another secret makes other values; forged and odd values name no server.
        let other = Sticky::new(&cookie(&"t".repeat(32)), &[spec("a:1")]);
        assert_ne!(other.line(0), a.line(0));
        assert_eq!(a.server_of(b"AAAAAAAAAAAAAAAAAAAAAA"), None);
        assert_eq!(a.server_of(b""), None);
        assert_eq!(a.server_of(&[0xff; 40]), None);
        assert_eq!(a.server_in([&b"bad"[..]]), None);
    }
}
