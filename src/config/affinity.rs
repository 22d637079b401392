//! Request affinity: what the hash method hashes (`HashKey`), how much one server may take
//! beyond its share of the load (`HashBalanceFactor`), and sticky sessions by cookie
//! (`StickyCookie`, `StickySecret`) — their model, their values' syntax and their text.

use std::fmt::Write as _;

/// The shortest `StickySecret`: 32 characters (HMAC-SHA256 keys shorter than the hash add
/// nothing, and a short secret is guessable).
pub const MIN_SECRET: usize = 32;

/// The entry's affinity settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Affinity {
    /// `HashKey`: what the hash method (`SourceHash`) hashes.
    pub hash_key: HashKey,
    /// `HashBalanceFactor`: bounded loads, in percent of the mean load (0: off, else > 100).
    pub balance_factor: u32,
    /// `StickyCookie` with its `StickySecret` (`None`: no sticky sessions).
    pub sticky: Option<StickyCookie>,
}

/// `HashKey`: the part of the request the hash method maps to a server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum HashKey {
    /// `source`: the client's address (past `TrustedProxies`), the default.
    #[default]
    Source,
    /// `path`: the request path as received, without its query.
    Path,
    /// `uri`: the whole target as received, path and query.
    Uri,
    /// `header NAME`: the value of the first field of that name (any case).
    Header(String),
    /// `cookie NAME`: the value of the first cookie of that name (exact case).
    Cookie(String),
    /// `query NAME`: the value of the first query parameter of that name, as sent (not
    /// decoded).
    Query(String),
}

/// `StickyCookie NAME [attributes]` and `StickySecret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    /// The cookie's name (an RFC 6265 token).
    pub name: String,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite=…` (`None`: the attribute is not sent).
    pub same_site: Option<SameSite>,
    /// `Max-Age=N` in seconds (`None`: a session cookie).
    pub max_age: Option<u64>,
    /// `Path=…`, `/` unless given (a cookie without a path would only come back under the
    /// directory of the first response's request).
    pub path: String,
    /// `Domain=…` (`None`: the host of the request only).
    pub domain: Option<String>,
    /// `StickySecret`: the key of the values' MAC.
    pub secret: String,
}

/// The `SameSite` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    /// `Lax`.
    Lax,
    /// `Strict`.
    Strict,
    /// `None` (browsers require `Secure` with it).
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// RFC 9110 `tchar`: what header names, cookie names and tokens are made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Parses a `HashKey` value.
pub fn hash_key(value: &str) -> Result<HashKey, String> {
    let mut words = value.split_whitespace();
    let kind = words.next().unwrap_or("");
    let name = words.next();
    if words.next().is_some() {
        return Err(format!(
            "HashKey takes a kind and at most one name, not `{value}`"
        ));
    }
    let named = |what: &str, ok: &dyn Fn(&str) -> bool| -> Result<String, String> {
        match name {
            Some(n) if ok(n) => Ok(n.to_string()),
            Some(n) => Err(format!("HashKey {kind}: `{n}` is not a {what} name")),
            None => Err(format!(
                "HashKey {kind} needs the {what} name (e.g. HashKey {kind} X)"
            )),
        }
    };
    let key = match kind.to_ascii_lowercase().as_str() {
        "source" | "path" | "uri" if name.is_some() => {
            return Err(format!("HashKey {kind} takes no name"))
        }
        "source" => HashKey::Source,
        "path" => HashKey::Path,
        "uri" => HashKey::Uri,
        "header" => HashKey::Header(named("header", &is_token)?),
        "cookie" => HashKey::Cookie(named("cookie", &is_token)?),
        "query" => HashKey::Query(named("query parameter", &|n| {
            n.bytes()
                .all(|b| b.is_ascii_graphic() && !b"&=#".contains(&b))
        })?),
        _ => {
            return Err(format!(
                "HashKey: `{kind}` is not a key; use source, path, uri, header NAME, \
                 cookie NAME or query NAME"
            ))
        }
    };
    Ok(key)
}

/// The `HashKey` value as the configuration writes it.
pub fn format_hash_key(key: &HashKey) -> String {
    match key {
        HashKey::Source => "source".to_string(),
        HashKey::Path => "path".to_string(),
        HashKey::Uri => "uri".to_string(),
        HashKey::Header(n) => format!("header {n}"),
        HashKey::Cookie(n) => format!("cookie {n}"),
        HashKey::Query(n) => format!("query {n}"),
    }
}

/// Parses a `HashBalanceFactor` value: 0 (off) or a percentage above 100.
pub fn balance_factor(value: &str) -> Result<u32, String> {
    let n = super::values::number("HashBalanceFactor", value, 0)?;
    if (1..=100).contains(&n) {
        return Err(format!(
            "HashBalanceFactor is a percentage of the mean load above 100 (e.g. 125), or 0 \
             for off; {n} would leave no server room for a request"
        ));
    }
    Ok(n)
}

/// Parses a `StickyCookie` value (its secret comes from `StickySecret`, filled in later).
pub fn sticky_cookie(value: &str) -> Result<StickyCookie, String> {
    let mut words = value.split_whitespace();
    let name = words.next().unwrap_or("");
    if !is_token(name) || name.contains('=') {
        return Err(format!(
            "StickyCookie: `{name}` is not a cookie name (letters, digits and !#$%&'*+-.^_`|~)"
        ));
    }
    let mut c = StickyCookie {
        name: name.to_string(),
        secure: false,
        http_only: false,
        same_site: None,
        max_age: None,
        path: "/".to_string(),
        domain: None,
        secret: String::new(),
    };
    let mut seen: Vec<String> = Vec::new();
    for word in words {
        let (attr, arg) = match word.split_once('=') {
            Some((a, v)) => (a, Some(v)),
            None => (word, None),
        };
        let lower = attr.to_ascii_lowercase();
        if seen.contains(&lower) {
            return Err(format!("StickyCookie: {attr} is given twice"));
        }
        seen.push(lower.clone());
        let needs = |what: &str| format!("StickyCookie: {attr} needs a value ({attr}={what})");
        match (lower.as_str(), arg) {
            ("secure", None) => c.secure = true,
            ("httponly", None) => c.http_only = true,
            ("secure" | "httponly", Some(_)) => {
                return Err(format!("StickyCookie: {attr} takes no value"))
            }
            ("samesite", Some(v)) => {
                c.same_site = Some(match v.to_ascii_lowercase().as_str() {
                    "lax" => SameSite::Lax,
                    "strict" => SameSite::Strict,
                    "none" => SameSite::None,
                    _ => {
                        return Err(format!(
                            "StickyCookie: SameSite is Lax, Strict or None, not `{v}`"
                        ))
                    }
                })
            }
            ("max-age", Some(v)) => {
                let n: u64 = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0 && v.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| {
                        format!(
                            "StickyCookie: Max-Age is a whole number of seconds above 0, \
                             not `{v}`"
                        )
                    })?;
                c.max_age = Some(n);
            }
            ("path", Some(v)) => {
                if !v.starts_with('/') || !v.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
                    return Err(format!(
                        "StickyCookie: Path must start with `/` and hold no `;`, not `{v}`"
                    ));
                }
                c.path = v.to_string();
            }
            ("domain", Some(v)) => {
                let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'.';
                if v.is_empty() || !v.bytes().all(ok) {
                    return Err(format!("StickyCookie: `{v}` is not a Domain"));
                }
                c.domain = Some(v.to_string());
            }
            ("samesite", None) => return Err(needs("Lax|Strict|None")),
            ("max-age", None) => return Err(needs("SECONDS")),
            ("path", None) => return Err(needs("/PATH")),
            ("domain", None) => return Err(needs("DOMAIN")),
            _ => {
                return Err(format!(
                    "StickyCookie: `{word}` is not an attribute; use Secure, HttpOnly, \
                     SameSite=Lax|Strict|None, Max-Age=N, Path=/P, Domain=D"
                ))
            }
        }
    }
    if c.same_site == Some(SameSite::None) && !c.secure {
        return Err(
            "StickyCookie: SameSite=None needs Secure (browsers reject such a cookie, so no \
             client would stay)"
                .to_string(),
        );
    }
    Ok(c)
}

/// Parses a `StickySecret` value.
pub fn sticky_secret(value: &str) -> Result<String, String> {
    let n = value.chars().count();
    if n < MIN_SECRET {
        return Err(format!(
            "StickySecret must be at least {MIN_SECRET} characters (it keys the cookie \
             values), not {n}"
        ));
    }
    if value.contains(char::is_whitespace) || value.chars().any(char::is_control) {
        return Err("StickySecret is one word: no blanks or control characters".to_string());
    }
    Ok(value.to_string())
}

/// The `StickyCookie` value as the configuration writes it (without the secret).
pub fn format_sticky_cookie(c: &StickyCookie) -> String {
    let mut out = c.name.clone();
    out.push_str(&attributes(c, " "));
    out
}

/// The cookie's attributes, each after `sep` (` ` in the configuration, `; ` in
/// `Set-Cookie`).
fn attributes(c: &StickyCookie, sep: &str) -> String {
    let mut out = String::new();
    let _ = write!(out, "{sep}Path={}", c.path);
    if let Some(d) = &c.domain {
        let _ = write!(out, "{sep}Domain={d}");
    }
    if let Some(n) = c.max_age {
        let _ = write!(out, "{sep}Max-Age={n}");
    }
    if c.secure {
        let _ = write!(out, "{sep}Secure");
    }
    if c.http_only {
        let _ = write!(out, "{sep}HttpOnly");
    }
    if let Some(s) = c.same_site {
        let _ = write!(out, "{sep}SameSite={}", s.as_str());
    }
    out
}

impl StickyCookie {
    /// The `Set-Cookie` field line (with its CRLF) that gives a client `value`.
    pub fn set_cookie_line(&self, value: &str) -> String {
        format!(
            "Set-Cookie: {}={value}{}\r\n",
            self.name,
            attributes(self, "; ")
        )
    }
}

/// Entries that would overwrite each other's sticky cookie: the same name, path and domain
/// over different servers (a client of both would move on every request that changes
/// entry). Each as the later entry's line and the message.
pub fn cookie_clashes(entries: &[super::Entry]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (j, later) in entries.iter().enumerate() {
        let Some(b) = &later.affinity.sticky else {
            continue;
        };
        let clash = entries[..j].iter().find(|e| {
            e.affinity
                .sticky
                .as_ref()
                .is_some_and(|a| a.name == b.name && a.path == b.path && a.domain == b.domain)
                && e.servers
                    .iter()
                    .map(|s| &s.name)
                    .ne(later.servers.iter().map(|s| &s.name))
        });
        if let Some(first) = clash {
            out.push((
                later.line,
                format!(
                    "this entry's StickyCookie {} has the name, Path and Domain of the entry at \
                     line {} over other servers: a client of both gets its cookie replaced \
                     by each; give one another name or Path",
                    b.name, first.line
                ),
            ));
        }
    }
    out
}

/// What `--explain` says of an entry's affinity, one line each (nothing for the defaults).
pub fn describe(a: &Affinity) -> Vec<String> {
    let mut out = Vec::new();
    if a.hash_key != HashKey::Source || a.balance_factor != 0 {
        let mut line = format!("hash key: {}", format_hash_key(&a.hash_key));
        if !matches!(a.hash_key, HashKey::Source) {
            line.push_str(" (a request without it hashes on the client address)");
        }
        if a.balance_factor != 0 {
            let _ = write!(
                line,
                "; bounded loads: at most {}% of the mean in flight per server",
                a.balance_factor
            );
        }
        out.push(line);
    }
    if let Some(c) = &a.sticky {
        out.push(format!(
            "sticky cookie: {} (set when the request had none valid for the server that \
             answers)",
            format_sticky_cookie(c)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_keys_parse_and_print_back() {
        for text in [
            "source",
            "path",
            "uri",
            "header X-User",
            "cookie sid",
            "query user",
        ] {
            let k = hash_key(text).unwrap();
            assert_eq!(format_hash_key(&k), text);
        }
        assert_eq!(
            hash_key("HEADER x-u").unwrap(),
            HashKey::Header("x-u".into())
        );
        for bad in [
            "",
            "host",
            "header",
            "header a b",
            "path x",
            "header X:Y",
            "query a&b",
        ] {
            assert!(hash_key(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn balance_factor_is_off_or_above_100() {
        assert_eq!(balance_factor("0"), Ok(0));
        assert_eq!(balance_factor("125"), Ok(125));
        assert!(balance_factor("100").is_err());
        assert!(balance_factor("1").is_err());
        assert!(balance_factor("x").is_err());
    }

    #[test]
    fn sticky_cookie_attributes() {
        let c = sticky_cookie("SRV Secure HttpOnly SameSite=Lax Max-Age=3600 Path=/app").unwrap();
        assert!(c.secure && c.http_only);
        assert_eq!(c.same_site, Some(SameSite::Lax));
        assert_eq!(c.max_age, Some(3600));
        assert_eq!(c.path, "/app");
        assert_eq!(
            c.set_cookie_line("v"),
            "Set-Cookie: SRV=v; Path=/app; Max-Age=3600; Secure; HttpOnly; SameSite=Lax\r\n"
        );
        assert_eq!(
            sticky_cookie(&format_sticky_cookie(&c)).unwrap(),
            c,
            "prints back"
        );
        assert_eq!(sticky_cookie("S").unwrap().path, "/");
        for bad in [
            "",
            "a=b",
            "S Secure Secure",
            "S SameSite=None",
            "S SameSite=Loose",
            "S Max-Age=0",
            "S Max-Age=-1",
            "S Path=x",
            "S Path",
            "S Domain=a_b",
            "S Expires=1",
            "S Secure=1",
        ] {
            assert!(sticky_cookie(bad).is_err(), "{bad}");
        }
        assert!(sticky_cookie("S SameSite=None Secure").is_ok());
    }

    #[test]
    fn secrets_are_long_single_words() {
        assert!(sticky_secret(&"x".repeat(31)).is_err());
        assert!(sticky_secret(&"x".repeat(32)).is_ok());
        assert!(sticky_secret(&format!("{} y", "x".repeat(32))).is_err());
    }
}
