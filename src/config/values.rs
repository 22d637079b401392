//! Value syntax: whole numbers, seconds, `on|off`, CIDR blocks, `host:port` and balancer names.
//! Each parser returns a one-line message on failure; the caller adds `FILE:LINE:`.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use super::balancers::{balancer_named, BALANCERS};
use super::Cidr;

/// Longest host name (DNS allows 253 bytes).
pub const MAX_HOST: usize = 253;

/// Longest accepted duration: one year, in seconds.
pub const MAX_SECONDS: u64 = 31_536_000;

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

/// Splits `host:port` (or `[v6]:port`) and checks the port.
pub fn host_port(text: &str) -> Result<(Host, u16), String> {
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (v6, port) = rest
            .split_once(']')
            .ok_or_else(|| format!("server `{text}`: missing `]` after the IPv6 address"))?;
        let v6: Ipv6Addr = v6
            .parse()
            .map_err(|_| format!("server `{text}`: `{v6}` is not an IPv6 address"))?;
        let port = port
            .strip_prefix(':')
            .ok_or_else(|| format!("server `{text}` has no port (write [ADDRESS]:PORT)"))?;
        (Host::Ip(IpAddr::V6(v6)), port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("server `{text}` has no port (write HOST:PORT)"))?;
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
        return Err(format!("server `{text}` has no port (write HOST:PORT)"));
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
