//! Value syntax: whole numbers, seconds, `on|off`, CIDR blocks, servers and balancer names.
//! Each parser returns a one-line message on failure; the caller adds `FILE:LINE:`.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use super::balancers::{balancer_named, BALANCERS};
use super::Cidr;

/// Longest host name (DNS allows 253 bytes).
pub const MAX_HOST: usize = 253;

/// Longest accepted duration: one year, in seconds.
pub const MAX_SECONDS: u64 = 31_536_000;

/// Longest entry name.
pub const MAX_NAME: usize = 64;

/// An entry name: 1 to [`MAX_NAME`] letters, digits, `.`, `_` or `-` (it appears in URLs,
/// log lines and metric labels as it is).
pub fn name(text: &str) -> Result<String, String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"._-".contains(&b);
    if text.is_empty() || text.len() > MAX_NAME || !text.bytes().all(ok) {
        return Err(format!(
            "Name: `{text}` is not a name (1 to {MAX_NAME} letters, digits, `.`, `_` or `-`)"
        ));
    }
    Ok(text.to_string())
}

/// A whole number of at least `min`.
pub fn number(key: &str, text: &str, min: u32) -> Result<u32, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{key}: `{text}` is not a whole number"));
    }
    let n: u32 = text
        .parse()
        .map_err(|_| format!("{key}: `{text}` is too large (at most {})", u32::MAX))?;
    if n < min {
        return Err(format!("{key} must be at least {min}, not {n}"));
    }
    Ok(n)
}

/// Seconds with up to 9 decimals (`3`, `0.25`); `positive` forbids zero.
pub fn seconds(key: &str, text: &str, positive: bool) -> Result<Duration, String> {
    let bad = || format!("{key}: `{text}` is not a number of seconds (e.g. 3 or 0.5)");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(frac)
        || (text.contains('.') && frac.is_empty())
    {
        return Err(bad());
    }
    if frac.len() > 9 {
        return Err(format!("{key}: `{text}` has more than 9 decimals"));
    }
    let secs: u64 = whole
        .parse()
        .ok()
        .filter(|s| *s <= MAX_SECONDS)
        .ok_or_else(|| format!("{key}: `{text}` is too long (at most {MAX_SECONDS} seconds)"))?;
    let nanos = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<9}");
        padded.parse::<u32>().map_err(|_| bad())?
    };
    if secs == MAX_SECONDS && nanos > 0 {
        return Err(format!(
            "{key}: `{text}` is too long (at most {MAX_SECONDS} seconds)"
        ));
    }
    let d = Duration::new(secs, nanos);
    if positive && d.is_zero() {
        return Err(format!("{key} must be greater than 0"));
    }
    Ok(d)
}

/// Prints a duration the way [`seconds`] reads it back (`3`, `0.25`).
pub fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        let frac = format!("{:09}", d.subsec_nanos());
        format!("{}.{}", d.as_secs(), frac.trim_end_matches('0'))
    }
}

/// `on` or `off`, any case.
pub fn on_off(key: &str, text: &str) -> Result<bool, String> {
    if text.eq_ignore_ascii_case("on") {
        Ok(true)
    } else if text.eq_ignore_ascii_case("off") {
        Ok(false)
    } else {
        Err(format!("{key}: `{text}` must be on or off"))
    }
}

/// `AccessLog`'s value: `off` (`None`), or an absolute path. A relative path would depend on
/// the directory Monkey was started from.
pub fn access_log(text: &str) -> Result<Option<std::path::PathBuf>, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let path = std::path::Path::new(text);
    if !path.is_absolute() {
        return Err(format!(
            "AccessLog must be an absolute path (or off), not `{text}`"
        ));
    }
    if text.ends_with('/') {
        return Err(format!(
            "AccessLog names a file, not the directory `{text}`"
        ));
    }
    Ok(Some(path.to_path_buf()))
}

/// An address block `ADDR/PREFIX`, or a single address.
pub fn cidr(text: &str) -> Result<Cidr, String> {
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{text}` is not an IP address or CIDR block (e.g. 10.0.0.0/8)"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max)
            .ok_or_else(|| format!("`{text}`: prefix length must be 0 to {max}"))?,
    };
    Ok(Cidr { addr, prefix })
}

/// Prints a block the way [`cidr`] reads it back.
pub fn format_cidr(c: &Cidr) -> String {
    format!("{}/{}", c.addr, c.prefix)
}

/// Where a `ServerList` token points before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// An IP literal (no resolution needed).
    Ip(IpAddr),
    /// A name for the resolver.
    Name(String),
}

/// The protocol a backend is spoken to in. Only plain HTTP for now; `https://` is recognised so
/// that its message can say so. TLS backends are one more variant here (with its default
/// port in [`Scheme::default_port`]), carried from [`server`] into the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP/1.1 over TCP: `HOST:PORT` or `http://HOST[:PORT]`.
    Http,
}

impl Scheme {
    /// The port of a server written with this scheme and no port (`http://host` is port 80).
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
        }
    }
}

/// One `ServerList` item, parsed but not resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// How the backend is spoken to.
    pub scheme: Scheme,
    /// The host, an IP literal or a name to resolve.
    pub host: Host,
    /// The port, given or the scheme's default.
    pub port: u16,
    /// `HOST:PORT` without the scheme (`http://h` is `h:80`): the server's name in logs and
    /// statistics, and the `Host` of HTTP/1.0 requests that send none. Items with the same
    /// name are one server (repeating it adds weight).
    pub name: String,
}

/// Parses one `ServerList` item: `HOST:PORT`, `[IPv6]:PORT`, or the same after `http://`
/// (where the port may be left out). This is the one place that knows about schemes.
pub fn server(text: &str) -> Result<Server, String> {
    let Some((scheme, rest)) = text.split_once("://") else {
        let (host, port) = split_host_port(text, text, None)?;
        return Ok(Server {
            scheme: Scheme::Http,
            host,
            port,
            name: text.to_string(),
        });
    };
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        Scheme::Http
    } else if scheme.eq_ignore_ascii_case("https") {
        return Err(format!(
            "server `{text}`: HTTPS backends are not supported yet; the plugin speaks plain \
             HTTP to its servers (write HOST:PORT or http://HOST:PORT)"
        ));
    } else {
        return Err(format!(
            "server `{text}`: `{scheme}://` is not a scheme the plugin speaks; write HOST:PORT \
             or http://HOST:PORT"
        ));
    };
    // One `/` after the authority is what a pasted URL often has; a path is not a server.
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if let Some(at) = authority.find('/') {
        return Err(format!(
            "server `{text}`: a server is a host and port; the path `{}` cannot be given here",
            &authority[at..]
        ));
    }
    if authority.contains('@') {
        return Err(format!(
            "server `{text}`: a server is a host and port; `user@` is not supported"
        ));
    }
    let default = scheme.default_port();
    let (host, port) = split_host_port(text, authority, Some(default))?;
    let has_port = if authority.starts_with('[') {
        !authority.ends_with(']')
    } else {
        authority.contains(':')
    };
    let name = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:{port}")
    };
    Ok(Server {
        scheme,
        host,
        port,
        name,
    })
}

/// Splits `host:port` (or `[v6]:port`) and checks the port.
pub fn host_port(text: &str) -> Result<(Host, u16), String> {
    split_host_port(text, text, None)
}

/// Splits `authority` (`host:port`, `[v6]:port`, or without the port when `default` is
/// given); messages name the whole item `text`.
fn split_host_port(
    text: &str,
    authority: &str,
    default: Option<u16>,
) -> Result<(Host, u16), String> {
    let no_port = |form: &str| format!("server `{text}` has no port (write {form})");
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (v6, port) = rest
            .split_once(']')
            .ok_or_else(|| format!("server `{text}`: missing `]` after the IPv6 address"))?;
        let v6: Ipv6Addr = v6
            .parse()
            .map_err(|_| format!("server `{text}`: `{v6}` is not an IPv6 address"))?;
        let port = match (port.strip_prefix(':'), default) {
            (Some(p), _) => p,
            (None, Some(_)) if port.is_empty() => "",
            (None, _) => return Err(no_port("[ADDRESS]:PORT")),
        };
        (Host::Ip(IpAddr::V6(v6)), port)
    } else {
        let (host, port) = match (authority.rsplit_once(':'), default) {
            (Some(split), _) => split,
            (None, Some(_)) => (authority, ""),
            (None, None) => return Err(no_port("HOST:PORT")),
        };
        if host.contains(':') {
            return Err(format!(
                "server `{text}`: write IPv6 addresses in brackets, e.g. [::1]:8080"
            ));
        }
        if host.is_empty() {
            return Err(format!("server `{text}` has no host (write HOST:PORT)"));
        }
        if host.len() > MAX_HOST {
            return Err(format!(
                "server `{text}`: host names are at most {MAX_HOST} bytes"
            ));
        }
        let host = match host.parse::<std::net::Ipv4Addr>() {
            Ok(v4) => Host::Ip(IpAddr::V4(v4)),
            Err(_) => Host::Name(host.to_string()),
        };
        (host, port)
    };
    if port.is_empty() {
        // `http://h` (no colon) takes the scheme's port; `h:` and `http://h:` are unfinished.
        let bare = !authority.ends_with(':');
        return match default {
            Some(p) if bare => Ok((host, p)),
            _ => Err(no_port("HOST:PORT")),
        };
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("server `{text}`: port `{port}` is not a number"));
    }
    match port.parse::<u32>() {
        Ok(p @ 1..=65535) if port.len() <= 5 => Ok((host, p as u16)),
        _ => Err(format!(
            "server `{text}`: port {port} is out of range (1 to 65535)"
        )),
    }
}

/// A `weight=N` token's number, if `token` is one.
pub fn weight(token: &str) -> Option<Result<u32, String>> {
    let (k, v) = token.split_once('=')?;
    if !k.eq_ignore_ascii_case("weight") {
        return None;
    }
    Some(number("weight", v, 1))
}

/// The canonical balancer name for `text`, or a message listing the accepted names.
pub fn balancer_name(text: &str) -> Result<&'static str, String> {
    if let Some(r) = balancer_named(text) {
        return Ok(r.name);
    }
    let names = BALANCERS
        .iter()
        .flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied()));
    let hint = super::keys::closest(text, names)
        .and_then(balancer_named)
        .map(|r| format!(" did you mean {}?", r.name))
        .unwrap_or_default();
    let accepted: Vec<String> = BALANCERS
        .iter()
        .map(|r| {
            if r.aliases.is_empty() {
                r.name.to_string()
            } else {
                format!("{} ({})", r.name, r.aliases.join(", "))
            }
        })
        .collect();
    Err(format!(
        "unknown LoadBalancer `{text}`;{hint} accepted: {}",
        accepted.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("N", "12", 1), Ok(12));
        assert!(number("N", "0", 1).unwrap_err().contains("at least 1"));
        assert!(number("N", "-1", 0)
            .unwrap_err()
            .contains("not a whole number"));
        assert!(number("N", "+1", 0).is_err());
        assert!(number("N", "99999999999", 0)
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn seconds_with_decimals() {
        assert_eq!(seconds("T", "3", true), Ok(Duration::from_secs(3)));
        assert_eq!(seconds("T", "0.25", true), Ok(Duration::from_millis(250)));
        assert_eq!(seconds("T", "0", false), Ok(Duration::ZERO));
        assert!(seconds("T", "0", true)
            .unwrap_err()
            .contains("greater than 0"));
        assert!(seconds("T", "0.000", true).is_err());
        for bad in ["", ".5", "5.", "1e3", "-1", "1.2.3", "abc"] {
            assert!(seconds("T", bad, false).is_err(), "{bad}");
        }
        assert!(seconds("T", "1.0000000001", false).is_err());
        assert!(seconds("T", "31536000.5", false).is_err());
        assert!(seconds("T", "31536000", false).is_ok());
        assert!(seconds("T", "99999999999999999999999", false).is_err());
    }

    #[test]
    fn seconds_round_trip() {
        for d in [
            Duration::ZERO,
            Duration::from_millis(1500),
            Duration::new(7, 1),
            Duration::from_secs(60),
        ] {
            assert_eq!(seconds("T", &format_seconds(d), false), Ok(d));
        }
    }

    #[test]
    fn cidrs() {
        assert_eq!(format_cidr(&cidr("10.0.0.0/8").unwrap()), "10.0.0.0/8");
        assert_eq!(cidr("127.0.0.1").unwrap().prefix, 32);
        assert_eq!(cidr("::1").unwrap().prefix, 128);
        assert!(cidr("10.0.0.0/33").is_err());
        assert!(cidr("fe80::/129").is_err());
        assert!(cidr("nope/8").is_err());
    }

    #[test]
    fn host_ports() {
        assert_eq!(
            host_port("127.0.0.1:80"),
            Ok((Host::Ip("127.0.0.1".parse().unwrap()), 80))
        );
        assert_eq!(
            host_port("Host1:8080"),
            Ok((Host::Name("Host1".into()), 8080))
        );
        assert_eq!(
            host_port("[::1]:81"),
            Ok((Host::Ip("::1".parse().unwrap()), 81))
        );
        assert!(host_port("Host1").unwrap_err().contains("has no port"));
        assert!(host_port("Host1:").unwrap_err().contains("has no port"));
        assert!(host_port(":80").unwrap_err().contains("has no host"));
        assert!(host_port("h:70000").unwrap_err().contains("out of range"));
        assert!(host_port("h:0").unwrap_err().contains("out of range"));
        assert!(host_port("h:http").unwrap_err().contains("not a number"));
        assert!(host_port("::1:80").unwrap_err().contains("brackets"));
        assert!(host_port("[::1]").unwrap_err().contains("has no port"));
        assert!(host_port("[zz]:1").is_err());
        assert!(host_port("h:000080").unwrap_err().contains("out of range"));
        assert!(host_port(&format!("{}:1", "h".repeat(254)))
            .unwrap_err()
            .contains("at most 253 bytes"));
    }

    #[test]
    fn servers_with_and_without_a_scheme() {
        let s = |t: &str| server(t).map(|s| (s.host, s.port, s.name));
        let ip = |a: &str| Host::Ip(a.parse().unwrap());
        assert_eq!(
            s("127.0.0.1:8080"),
            Ok((ip("127.0.0.1"), 8080, "127.0.0.1:8080".into()))
        );
        assert_eq!(
            s("http://127.0.0.1:18081"),
            Ok((ip("127.0.0.1"), 18081, "127.0.0.1:18081".into()))
        );
        assert_eq!(
            s("HTTP://Host1:81/"),
            Ok((Host::Name("Host1".into()), 81, "Host1:81".into()))
        );
        assert_eq!(
            s("http://Host1"),
            Ok((Host::Name("Host1".into()), 80, "Host1:80".into()))
        );
        assert_eq!(s("http://[::1]"), Ok((ip("::1"), 80, "[::1]:80".into())));
        assert_eq!(s("http://[::1]:82"), Ok((ip("::1"), 82, "[::1]:82".into())));
        assert_eq!(server("http://h").unwrap().scheme, Scheme::Http);
        let e = |t: &str| server(t).unwrap_err();
        assert!(e("https://h:443").contains("HTTPS backends are not supported yet"));
        assert!(e("HTTPS://h").contains("HTTPS backends are not supported yet"));
        assert!(e("ftp://h:21").contains("`ftp://` is not a scheme the plugin speaks"));
        assert!(e("http://h:80/app").contains("the path `/app` cannot be given"));
        assert!(e("http://u@h:80").contains("`user@` is not supported"));
        assert!(e("http://h:").contains("has no port"));
        assert!(e("http://:80").contains("has no host"));
        assert!(e("http://h:0").contains("out of range"));
        assert!(e("http://::1").contains("brackets"));
        assert!(e("h").contains("has no port"));
        assert!(e("[::1]").contains("has no port"));
    }

    #[test]
    fn weights_and_balancers() {
        assert_eq!(weight("weight=3"), Some(Ok(3)));
        assert!(weight("weight=0").unwrap().is_err());
        assert_eq!(weight("h:80"), None);
        assert_eq!(balancer_name("first-alive"), Ok("FirstAlive"));
        assert_eq!(balancer_name("Round-Robin"), Ok("RoundRobin"));
        let e = balancer_name("RoundRobbin").unwrap_err();
        assert!(e.contains("did you mean RoundRobin?"), "{e}");
        assert!(e.contains("LeastConnections"));
    }
}
