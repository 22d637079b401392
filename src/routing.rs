//! Routing: ordered entries, each a set of regexes; the first entry with any match wins.

use std::borrow::Cow;

use regex::RegexSet;

use crate::config::Entry;

pub mod samples;

/// Compiled `Match` rules of every entry, in file order.
#[derive(Debug)]
pub struct Router {
    sets: Vec<RegexSet>,
    /// Per entry, when every rule is `^` and a literal (the common `^/api/`): the literals,
    /// so that routing is a prefix comparison rather than a regex search.
    prefixes: Vec<Option<Vec<String>>>,
}

/// The literal a pattern anchors at the start of the path, if it is nothing else.
fn anchored_literal(pattern: &str) -> Option<&str> {
    let literal = pattern.strip_prefix('^')?;
    let plain = !literal.contains([
        '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
    ]);
    plain.then_some(literal)
}

/// Why a path was routed where it was: the entry and the rule that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the entry (0-based, file order).
    pub entry: usize,
    /// Index of the first matching `Match` rule within that entry.
    pub rule: usize,
}

/// The path `Match` rules (and `StatisticsURL`) are compared with: the request path without
/// its query, percent-decoded the way Monkey decodes it before its own handler rules and
/// stage 30 (`mk_utils_url_decode`, whose result the plugin routes by). Decoding first means
/// `/%61dmin` cannot slip past a rule for `/admin`. As in Monkey: each `%XX` becomes its
/// byte; a `%` without two characters after it stays; a `%` followed by anything but two
/// hex digits leaves the whole path undecoded; a decoded NUL ends the path; bytes that are
/// not UTF-8 become U+FFFD.
pub fn routing_path(raw: &str) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
    let Some(first) = bytes.iter().position(|&b| b == b'%') else {
        return Cow::Borrowed(raw);
    };
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = bytes[..first].to_vec();
    let mut i = first;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) else {
                return Cow::Borrowed(raw);
            };
            let byte = (hi * 16 + lo) as u8;
            if byte == 0 {
                break;
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

impl Router {
    /// Compiles every entry's rules once; fails with the first invalid regex's message.
    pub fn new(entries: &[Entry]) -> Result<Router, regex::Error> {
        let sets = entries
            .iter()
            .map(|e| RegexSet::new(e.matches.iter().map(|m| m.pattern.as_str())))
            .collect::<Result<Vec<_>, _>>()?;
        let prefixes = entries
            .iter()
            .map(|e| {
                e.matches
                    .iter()
                    .map(|m| anchored_literal(&m.pattern).map(str::to_string))
                    .collect::<Option<Vec<_>>>()
            })
            .collect();
        Ok(Router { sets, prefixes })
    }

    /// The entry that serves `path`, if any.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.sets
            .iter()
            .zip(&self.prefixes)
            .position(|(set, prefixes)| match prefixes {
                Some(p) => p.iter().any(|p| path.starts_with(p.as_str())),
                None => set.is_match(path),
            })
    }

    /// Like [`Router::route`], also naming the first rule of that entry that matched.
    pub fn explain(&self, path: &str) -> Option<RouteMatch> {
        self.sets.iter().enumerate().find_map(|(entry, set)| {
            set.matches(path)
                .iter()
                .next()
                .map(|rule| RouteMatch { entry, rule })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_path_decodes_as_monkey_does() {
        assert_eq!(routing_path("/plain/x.php"), "/plain/x.php");
        assert_eq!(routing_path("/%61dmin/x"), "/admin/x");
        assert_eq!(routing_path("/space%20d/%2e%2E"), "/space d/..");
        assert_eq!(routing_path("/a%2Fb"), "/a/b");
        // Too short to be an escape: kept.
        assert_eq!(routing_path("/a%4"), "/a%4");
        assert_eq!(routing_path("/a%"), "/a%");
        // Not hex: Monkey gives up and routes the raw path.
        assert_eq!(routing_path("/%61/%zz"), "/%61/%zz");
        // A NUL ends Monkey's C string.
        assert_eq!(routing_path("/a%00/b"), "/a");
        assert_eq!(routing_path("/%ff"), "/\u{fffd}");
    }
    use crate::config::MatchRule;

    fn entry(patterns: &[&str]) -> Entry {
        let rules = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| MatchRule {
                pattern: p.to_string(),
                line: i + 1,
            })
            .collect();
        Entry::with_defaults(1, rules, Vec::new())
    }

    #[test]
    fn first_entry_with_any_match_wins() {
        let r = Router::new(&[entry(&[r"\.php$"]), entry(&[r"\.jpg$", r"^/"])]).unwrap();
        assert_eq!(r.route("/index.php"), Some(0));
        assert_eq!(r.route("/a.jpg"), Some(1));
        assert_eq!(r.explain("/a.jpg"), Some(RouteMatch { entry: 1, rule: 0 }));
        assert_eq!(r.explain("/x"), Some(RouteMatch { entry: 1, rule: 1 }));
    }

    #[test]
    fn literal_prefixes_route_like_their_regexes() {
        let patterns = [
            r"^/api/", "^/", r"^/a.b", r"^/x\.y", "^/(?i)q", "/mid", "^/end$",
        ];
        let paths = [
            "/api/v1", "/", "/a-b", "/a.b", "/x.y", "/xzy", "/Q", "/q", "/a/mid", "/end", "/endx",
            "",
        ];
        for pattern in patterns {
            let r = Router::new(&[entry(&[pattern])]).unwrap();
            let re = regex::Regex::new(pattern).unwrap();
            for path in paths {
                assert_eq!(
                    r.route(path).is_some(),
                    re.is_match(path),
                    "{pattern} on {path:?}"
                );
            }
        }
        assert_eq!(anchored_literal(r"^/api/"), Some("/api/"));
        assert_eq!(anchored_literal(r"^/a.b"), None);
        assert_eq!(anchored_literal("/api"), None);
    }

    #[test]
    fn no_match_is_none() {
        let r = Router::new(&[entry(&["^/api/"])]).unwrap();
        assert_eq!(r.route("/static/x"), None);
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(Router::new(&[entry(&["(unclosed"])]).is_err());
    }
}
