//! The routing keys beyond `Match`: `MatchHost`, `MatchMethod`, `PathRewrite` and
//! `PathStripPrefix` — their model, how their values are read and checked, and how the
//! printer writes them back.
//!
//! Semantics (the user documentation in the README says the same):
//!
//! * `MatchHost` compares the request's host — the `Host` header, without its port and a
//!   trailing dot, in lower case — with exact names (`api.example.com`), wildcards
//!   (`*.example.org`: one or more labels before `.example.org`, never `example.org` itself,
//!   as nginx) and regexes (`~^img[0-9]+\.example\.net$`, matched case-insensitively).
//!   Several values per line and several lines per entry add up: any of them accepts.
//! * `MatchMethod` lists method tokens, compared exactly (methods are case-sensitive).
//! * An entry serves a request when its host rules (if any), method rules (if any) and
//!   `Match` rules all accept it. An entry needs `Match` or `MatchHost`; one with `MatchHost`
//!   and no `Match` serves every path of its hosts.
//! * `PathRewrite REGEX REPLACEMENT` and `PathStripPrefix /PREFIX` change the target sent to
//!   the backend (never the path routing uses), on the path as the client sent it
//!   (percent-encoded: a rewrite never decodes, so `%2F` stays `%2F`), the query kept as it
//!   came. See [`PathRewrite`].

use std::fmt::Write as _;

/// The host, method and rewrite rules of one entry (all empty: the entry routes by path
/// alone and forwards the target as it came, as before these keys).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteRules {
    /// `MatchHost` values in file order (empty: any host).
    pub hosts: Vec<HostRule>,
    /// `MatchMethod` tokens in file order (empty: any method).
    pub methods: Vec<String>,
    /// `PathRewrite` or `PathStripPrefix`, if given.
    pub rewrite: Option<RewriteRule>,
}

impl RouteRules {
    /// Whether the entry has no host and no method rule (its routing is by path alone).
    pub fn matches_any_request(&self) -> bool {
        self.hosts.is_empty() && self.methods.is_empty()
    }
}

/// One `MatchHost` value and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRule {
    /// What the value accepts.
    pub pattern: HostPattern,
    /// The line it is on.
    pub line: usize,
}

/// A `MatchHost` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `api.example.com`: this host only (stored in lower case, without a trailing dot).
    Exact(String),
    /// `*.example.org`: any host ending in `.example.org` (stored as `example.org`, lower
    /// case): at least one label before it, so not `example.org` itself.
    Wildcard(String),
    /// `~REGEX`: a host the regex matches (case-insensitively; stored without the `~`).
    Regex(String),
}

impl HostPattern {
    /// The value as `MatchHost` writes it.
    pub fn written(&self) -> String {
        match self {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Wildcard(s) => format!("*.{s}"),
            HostPattern::Regex(r) => format!("~{r}"),
        }
    }
}

/// `PathRewrite` or `PathStripPrefix` and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewriteRule {
    /// What it does.
    pub rewrite: PathRewrite,
    /// The line it is on.
    pub line: usize,
}

/// How the path sent to the backend is made from the path the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRewrite {
    /// `PathStripPrefix /api`: a path that is the prefix (`/api`) becomes `/`; one that
    /// continues with `/` after it (`/api/x`) loses the prefix (`/x`); any other path
    /// (`/apix`, `/other`) is sent as it came — the prefix ends at a segment boundary.
    /// Stored without a trailing `/`, compared case-sensitively.
    StripPrefix(String),
    /// `PathRewrite REGEX REPLACEMENT`: the first match of the regex in the path is replaced
    /// by the replacement, in which `$1`, `${1}`, `$name` and `${name}` insert a capture
    /// group (empty when it did not take part) and `$$` is a `$`. A path the regex does not
    /// match is sent as it came. A result that does not start with `/` gets one in front.
    Replace {
        /// The regex as written.
        pattern: String,
        /// The replacement as written.
        replacement: String,
    },
}

impl PathRewrite {
    /// The key and value that write this rewrite (`("PathStripPrefix", "/api")`).
    pub fn written(&self) -> (&'static str, String) {
        match self {
            PathRewrite::StripPrefix(p) => ("PathStripPrefix", p.clone()),
            PathRewrite::Replace {
                pattern,
                replacement,
            } => ("PathRewrite", format!("{pattern} {replacement}")),
        }
    }
}

/// One piece of a parsed replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text copied as it is.
    Text(String),
    /// A capture group by number.
    Index(usize),
    /// A capture group by name.
    Name(String),
}

/// A replacement read into its pieces: `/v2/$1` is `Text("/v2/")`, `Index(1)`.
pub fn template(replacement: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    let mut rest = replacement;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (group, used) = if let Some(braced) = after.strip_prefix('{') {
            let end = braced
                .find('}')
                .ok_or_else(|| format!("`${{` without a closing `}}` in `{replacement}`"))?;
            (&braced[..end], end + 2)
        } else if let Some(after_dollar) = after.strip_prefix('$') {
            text.push('$');
            rest = after_dollar;
            continue;
        } else {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            let len = if digits > 0 {
                digits
            } else {
                after
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count()
            };
            (&after[..len], len)
        };
        if group.is_empty() {
            return Err(format!(
                "`$` must name a capture group (`$1`, `${{name}}`) in `{replacement}`; \
                 write `$$` for a `$`"
            ));
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(match group.parse::<usize>() {
            Ok(n) => Piece::Index(n),
            Err(_) => {
                let ok = group
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !ok {
                    return Err(format!(
                        "`${{{group}}}` is not a capture group name in `{replacement}`"
                    ));
                }
                Piece::Name(group.to_string())
            }
        });
        rest = &after[used..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

/// Reads one `MatchHost` value.
pub fn host_pattern(value: &str) -> Result<HostPattern, String> {
    if let Some(regex) = value.strip_prefix('~') {
        if regex.is_empty() {
            return Err("MatchHost `~` needs a regex after it".to_string());
        }
        regex::RegexBuilder::new(regex)
            .case_insensitive(true)
            .build()
            .map_err(|e| format!("invalid MatchHost regex `{regex}`: {}", first_line(&e)))?;
        return Ok(HostPattern::Regex(regex.to_string()));
    }
    let lower = value.to_ascii_lowercase();
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let bracketed = name.starts_with('[') && name.ends_with(']') && name.len() > 2 && {
        let inner = &name[1..name.len() - 1];
        inner
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    };
    if name.contains(':') && !bracketed {
        return Err(format!(
            "MatchHost `{value}`: write the host without a port (the port is not compared)"
        ));
    }
    if !bracketed && !name.split('.').all(label_ok) {
        let hint = if value.contains('*') {
            "a wildcard is `*.` followed by a domain (`*.example.org`)"
        } else {
            "write a host name (`api.example.com`), `*.domain` or `~regex`"
        };
        return Err(format!("MatchHost `{value}` is not a host name; {hint}"));
    }
    if wild && bracketed {
        return Err(format!(
            "MatchHost `{value}`: an address cannot be a wildcard"
        ));
    }
    Ok(if wild {
        HostPattern::Wildcard(name.to_string())
    } else {
        HostPattern::Exact(name.to_string())
    })
}

/// Whether `token` is an HTTP method token (RFC 9110 §9.1: a `token`).
fn is_token(token: &str) -> bool {
    !token.is_empty()
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Reads one `MatchMethod` token. Methods are case-sensitive, so a standard method written
/// in lower case (which no client sends) is refused rather than left never to match.
pub fn method(token: &str) -> Result<String, String> {
    if !is_token(token) {
        return Err(format!(
            "MatchMethod `{token}` is not a method token (letters, digits, `-`, ...)"
        ));
    }
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    ];
    let upper = token.to_ascii_uppercase();
    if upper != token && STANDARD.contains(&upper.as_str()) {
        return Err(format!(
            "MatchMethod `{token}`: methods are case-sensitive; write `{upper}`"
        ));
    }
    Ok(token.to_string())
}

/// Reads `PathStripPrefix /PREFIX` (a trailing `/` is dropped: the prefix ends at a segment
/// boundary either way).
pub fn strip_prefix(value: &str) -> Result<PathRewrite, String> {
    let trimmed = value.trim_end_matches('/');
    if !value.starts_with('/') || trimmed.is_empty() || !visible(value) {
        return Err(format!(
            "PathStripPrefix must be one path of visible characters starting with `/` (not `/` \
             alone), not `{value}`"
        ));
    }
    Ok(PathRewrite::StripPrefix(trimmed.to_string()))
}

/// Reads `PathRewrite REGEX REPLACEMENT`, checking that the regex compiles and that every
/// group the replacement names exists in it.
pub fn path_rewrite(value: &str) -> Result<PathRewrite, String> {
    let words: Vec<&str> = value.split_whitespace().collect();
    let [pattern, replacement] = words[..] else {
        return Err(format!(
            "PathRewrite takes a regex and a replacement (`PathRewrite ^/api/(.*) /$1`), not \
             `{value}`"
        ));
    };
    let regex = regex::Regex::new(pattern)
        .map_err(|e| format!("invalid PathRewrite regex `{pattern}`: {}", first_line(&e)))?;
    if !visible(replacement) || replacement.contains(['?', '#']) {
        return Err(format!(
            "PathRewrite replacement `{replacement}` must be visible characters without `?` \
             or `#` (the query is kept as the client sent it)"
        ));
    }
    for piece in template(replacement)? {
        match piece {
            Piece::Index(n) if n >= regex.captures_len() => {
                return Err(format!(
                    "PathRewrite replacement uses `${n}`, but `{pattern}` has {} capture \
                     group{}",
                    regex.captures_len() - 1,
                    if regex.captures_len() == 2 { "" } else { "s" }
                ));
            }
            Piece::Name(name) if !regex.capture_names().flatten().any(|n| n == name) => {
                let mut names = String::new();
                for n in regex.capture_names().flatten() {
                    let _ = write!(names, " {n}");
                }
                return Err(format!(
                    "PathRewrite replacement uses `${{{name}}}`, but `{pattern}` has no group \
                     of that name (named groups:{})",
                    if names.is_empty() { " none" } else { &names }
                ));
            }
            _ => {}
        }
    }
    Ok(PathRewrite::Replace {
        pattern: pattern.to_string(),
        replacement: replacement.to_string(),
    })
}

/// Visible ASCII only: what a request target may hold.
fn visible(s: &str) -> bool {
    s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The informative line of a regex error (its first line is only "regex parse error:").
fn first_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_read_and_normalised() {
        assert_eq!(
            host_pattern("API.Example.com."),
            Ok(HostPattern::Exact("api.example.com".into()))
        );
        assert_eq!(
            host_pattern("*.Example.org"),
            Ok(HostPattern::Wildcard("example.org".into()))
        );
        assert_eq!(
            host_pattern("~^img[0-9]+$"),
            Ok(HostPattern::Regex("^img[0-9]+$".into()))
        );
        assert_eq!(
            host_pattern("[::1]"),
            Ok(HostPattern::Exact("[::1]".into()))
        );
        for bad in [
            "a:80", "*", "a.*.b", "*.", "~", "~(", "a b", "a..b", "*.[::1]",
        ] {
            assert!(host_pattern(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn methods_are_tokens_in_their_case() {
        assert_eq!(method("GET"), Ok("GET".into()));
        assert_eq!(method("PROPFIND"), Ok("PROPFIND".into()));
        assert!(method("get").unwrap_err().contains("write `GET`"));
        assert!(method("G(T").is_err());
    }

    #[test]
    fn replacements_name_existing_groups() {
        assert_eq!(
            template("/v2/$1/${name}$$x"),
            Ok(vec![
                Piece::Text("/v2/".into()),
                Piece::Index(1),
                Piece::Text("/".into()),
                Piece::Name("name".into()),
                Piece::Text("$x".into()),
            ])
        );
        assert!(path_rewrite("^/api/(.*) /$1").is_ok());
        assert!(path_rewrite("^/api/(?P<rest>.*) /${rest}").is_ok());
        assert!(path_rewrite("^/api/(.*) /$2")
            .unwrap_err()
            .contains("has 1 capture group"));
        assert!(path_rewrite("^/api/(.*) /${nope}")
            .unwrap_err()
            .contains("no group of that name"));
        assert!(path_rewrite("^/api/(.*)").is_err());
        assert!(path_rewrite("^/api/(.* /$1").is_err());
        assert!(path_rewrite("^/a /b?c").is_err());
        assert!(path_rewrite("^/a /b$").is_err());
        assert!(path_rewrite("^/a /b${").is_err());
    }

    #[test]
    fn prefixes_end_at_a_segment() {
        assert_eq!(
            strip_prefix("/api/"),
            Ok(PathRewrite::StripPrefix("/api".into()))
        );
        assert!(strip_prefix("/").is_err());
        assert!(strip_prefix("api").is_err());
    }
}
