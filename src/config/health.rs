//! Value syntax of the health keys: `HealthCheck`, `HealthCheckHost`, `HealthCheckExpect`.
//! Each parser returns a one-line message on failure; the caller adds `FILE:LINE:`.

use super::model::{Expect, ProbeKind};

/// Longest probe path, and longest `body` text.
pub const MAX_PROBE_TEXT: usize = 1024;

/// `HealthCheck`: `GET /path`, `HEAD /path`, `tcp`, or `off` (`None`). Methods in any case.
pub fn probe(text: &str) -> Result<Option<ProbeKind>, String> {
    let mut words = text.split_whitespace();
    let first = words.next().unwrap_or("");
    let rest: Vec<&str> = words.collect();
    let usage = "write GET /PATH, HEAD /PATH, tcp or off";
    if first.eq_ignore_ascii_case("off") || first.eq_ignore_ascii_case("tcp") {
        if !rest.is_empty() {
            return Err(format!(
                "HealthCheck: `{text}`: nothing may follow `{first}`; {usage}"
            ));
        }
        return Ok(first.eq_ignore_ascii_case("tcp").then_some(ProbeKind::Tcp));
    }
    let head = if first.eq_ignore_ascii_case("HEAD") {
        true
    } else if first.eq_ignore_ascii_case("GET") {
        false
    } else {
        return Err(format!(
            "HealthCheck: `{text}` is not a probe; {usage} (only GET and HEAD are sent)"
        ));
    };
    let [path] = rest[..] else {
        return Err(format!(
            "HealthCheck: `{text}`: give one path after {first}, e.g. {first} /healthz"
        ));
    };
    if !path.starts_with('/') {
        return Err(format!(
            "HealthCheck: the path `{path}` must start with `/`"
        ));
    }
    if path.len() > MAX_PROBE_TEXT || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "HealthCheck: the path `{path}` must be at most {MAX_PROBE_TEXT} visible ASCII \
             characters (percent-encode others)"
        ));
    }
    Ok(Some(ProbeKind::Http {
        head,
        path: path.to_string(),
    }))
}

/// `HealthCheckHost`: one host name, address or `host:port`, as the probe's `Host` header.
pub fn host(text: &str) -> Result<String, String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b);
    if text.is_empty() || text.len() > 255 || !text.bytes().all(ok) {
        return Err(format!(
            "HealthCheckHost: `{text}` is not a host (letters, digits, `-`, `.`, `_`, and \
             `:PORT` or `[IPv6]`)"
        ));
    }
    Ok(text.to_string())
}

/// `HealthCheckExpect`: status codes and ranges (`200`, `200-399`, separated by commas or
/// blanks), then optionally `body TEXT` (the rest of the line, which the body must contain).
/// Either part may be left out: `body ok` alone keeps the default statuses (`200-399`).
pub fn expect(text: &str) -> Result<Expect, String> {
    let (codes, body) = match split_body(text) {
        Some((codes, body)) => {
            let body = body.trim();
            if body.is_empty() {
                return Err("HealthCheckExpect: `body` needs the text to look for".into());
            }
            if body.len() > MAX_PROBE_TEXT {
                return Err(format!(
                    "HealthCheckExpect: the body text is longer than {MAX_PROBE_TEXT} bytes"
                ));
            }
            (codes, Some(body.to_string()))
        }
        None => (text, None),
    };
    let mut statuses = Vec::new();
    for item in codes.split(|c: char| c == ',' || c.is_whitespace()) {
        if item.is_empty() {
            continue;
        }
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let code = |s: &str| {
            s.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c) && s.len() == 3)
                .ok_or_else(|| {
                    format!(
                        "HealthCheckExpect: `{item}` is not a status code or range of them \
                         (100 to 599, e.g. 200-399)"
                    )
                })
        };
        let (lo, hi) = (code(lo)?, code(hi)?);
        if lo > hi {
            return Err(format!(
                "HealthCheckExpect: the range `{item}` is empty (write the lower code first)"
            ));
        }
        statuses.push((lo, hi));
    }
    if statuses.is_empty() {
        if body.is_none() {
            return Err(
                "HealthCheckExpect: give status codes (e.g. 200-399) and/or `body TEXT`".into(),
            );
        }
        statuses = Expect::default().statuses;
    }
    Ok(Expect { statuses, body })
}

/// Splits `codes body TEXT` at the word `body` (any case): the codes before it and the text
/// after it.
fn split_body(text: &str) -> Option<(&str, &str)> {
    let mut at = 0;
    for word in text.split_whitespace() {
        let start = at + text[at..].find(word)?;
        at = start + word.len();
        if word.eq_ignore_ascii_case("body") {
            return Some((&text[..start], &text[at..]));
        }
    }
    None
}

/// Prints an [`Expect`] the way [`expect`] reads it back.
pub fn format_expect(e: &Expect) -> String {
    let codes: Vec<String> = e
        .statuses
        .iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect();
    let mut out = codes.join(",");
    if let Some(body) = &e.body {
        out.push_str(" body ");
        out.push_str(body);
    }
    out
}

/// Prints a probe the way [`probe`] reads it back.
pub fn format_probe(p: &ProbeKind) -> String {
    match p {
        ProbeKind::Tcp => "tcp".to_string(),
        ProbeKind::Http { head, path } => {
            format!("{} {path}", if *head { "HEAD" } else { "GET" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes() {
        assert_eq!(probe("off"), Ok(None));
        assert_eq!(probe("TCP"), Ok(Some(ProbeKind::Tcp)));
        assert_eq!(
            probe("get /healthz"),
            Ok(Some(ProbeKind::Http {
                head: false,
                path: "/healthz".into()
            }))
        );
        assert_eq!(
            probe("HEAD /a?b=1"),
            Ok(Some(ProbeKind::Http {
                head: true,
                path: "/a?b=1".into()
            }))
        );
        for bad in [
            "",
            "POST /x",
            "GET",
            "GET healthz",
            "GET /a /b",
            "tcp /x",
            "GET /\u{e9}",
        ] {
            assert!(probe(bad).is_err(), "{bad}");
        }
        for p in [
            ProbeKind::Tcp,
            ProbeKind::Http {
                head: true,
                path: "/h".into(),
            },
        ] {
            assert_eq!(probe(&format_probe(&p)), Ok(Some(p)));
        }
    }

    #[test]
    fn expectations() {
        let e = expect("200-399").unwrap();
        assert_eq!(e, Expect::default());
        assert!(e.passes(200) && e.passes(399) && !e.passes(400) && !e.passes(199));
        let e = expect("200, 204 300-302 body all good").unwrap();
        assert_eq!(e.statuses, [(200, 200), (204, 204), (300, 302)]);
        assert_eq!(e.body.as_deref(), Some("all good"));
        let e = expect("BODY ok").unwrap();
        assert_eq!(e.statuses, Expect::default().statuses);
        assert_eq!(e.body.as_deref(), Some("ok"));
        for bad in [
            "",
            "body",
            "200 body  ",
            "99",
            "600",
            "2000",
            "399-200",
            "abc",
            "200-",
        ] {
            assert!(expect(bad).is_err(), "{bad}");
        }
        for text in ["200", "200-299,304 body x y", "100-599"] {
            let e = expect(text).unwrap();
            assert_eq!(expect(&format_expect(&e)).unwrap(), e);
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(host("api.internal"), Ok("api.internal".into()));
        assert!(host("h:8080").is_ok() && host("[::1]:80").is_ok());
        assert!(host("a b").is_err() && host("").is_err() && host("h/x").is_err());
    }
}
