//! Sample request targets: for each entry, one path that its `Match` rules accept and that
//! reaches it (no earlier entry takes it first, and it is not the `StatisticsURL`), for
//! `proxy-reverse-check --urls` and the quick start's "try these URLs".
//!
//! A path is built from the regex's parsed form (literals as written, a letter or digit for a
//! class, the fewest repetitions, the first branch that works), placed after `/` or
//! `/index` when the rule is not anchored at the start, and then checked with the real
//! [`Router`] on the path as Monkey decodes it, so a printed target is never wrong; an entry
//! no such path is found for has none.

use regex_syntax::hir::{Class, Hir, HirKind};

use super::{routing_path, Router};
use crate::config::{Config, Entry, HostPattern};

/// Longest repetition count written out (`a{1000}` gets no sample).
const MAX_REPEAT: u32 = 64;

/// How many different branch choices are tried per rule.
const CHOICES: usize = 4;

/// For each entry in file order: a request target (percent-encoded where needed, e.g.
/// `/index.php`) that the plugin routes to that entry, or `None` if none was found. An
/// entry with `MatchHost` or `MatchMethod` is reached with the request
/// [`sample_request`] names.
pub fn sample_targets(config: &Config) -> Vec<Option<String>> {
    let Ok(router) = Router::new(&config.entries) else {
        return vec![None; config.entries.len()];
    };
    config
        .entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let (host, method) = sample_request(entry)?;
            let reaches = |path: &str| {
                config.statistics_url.as_deref() != Some(path)
                    && router.route_request(path, host.as_deref(), method) == Some(i)
            };
            if entry.matches.is_empty() {
                // MatchHost alone: every path of its hosts.
                return reaches("/").then(|| "/".to_string());
            }
            entry.matches.iter().find_map(|rule| {
                let hir = regex_syntax::Parser::new().parse(&rule.pattern).ok()?;
                let mut ways = [true, false]
                    .into_iter()
                    .flat_map(|dots| (0..CHOICES).map(move |choice| (choice, dots)));
                ways.find_map(|way| {
                    let mut text = String::new();
                    if !sample(&hir, way, &mut text) {
                        return None;
                    }
                    candidates(&text).into_iter().find_map(|path| {
                        let target = encode(&path);
                        let routed = routing_path(&target);
                        (routed == path && reaches(&path)).then_some(target)
                    })
                })
            })
        })
        .collect()
}

/// The `Host` (`None`: any, the entry has no `MatchHost`) and method a sample request to
/// `entry` is sent with: its first exact host, else `www.` and its first wildcard's domain,
/// and its first `MatchMethod` (else `GET`). `None` when only regexes name its hosts.
pub fn sample_request(entry: &Entry) -> Option<(Option<String>, &str)> {
    let method = entry.route.methods.first().map_or("GET", String::as_str);
    if entry.route.hosts.is_empty() {
        return Some((None, method));
    }
    let exact = entry.route.hosts.iter().find_map(|h| match &h.pattern {
        HostPattern::Exact(name) => Some(name.clone()),
        _ => None,
    });
    let host = exact.or_else(|| {
        entry.route.hosts.iter().find_map(|h| match &h.pattern {
            HostPattern::Wildcard(domain) => Some(format!("www.{domain}")),
            _ => None,
        })
    })?;
    Some((Some(host), method))
}

/// Paths to try for a regex sample: itself if it is a path, else after `/index` (for
/// `\.php$`: `/index.php`) or after `/`.
fn candidates(text: &str) -> Vec<String> {
    if text.starts_with('/') {
        return vec![text.to_string()];
    }
    let mut v = Vec::new();
    if text.starts_with('.') {
        v.push(format!("/index{text}"));
    }
    v.push(format!("/{text}"));
    v
}

/// Appends to `out` a string `h` matches (ignoring assertions, which the router checks
/// afterwards). `way.0` picks the branch of each alternation, `way.1` writes `.` for a `.`
/// before a word (`/*.php` as `/index.php`, else `/aphp`). False if none is written.
fn sample(h: &Hir, way: (usize, bool), out: &mut String) -> bool {
    let (choice, dots) = way;
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => true,
        HirKind::Literal(l) => match std::str::from_utf8(&l.0) {
            Ok(s) => {
                out.push_str(s);
                true
            }
            Err(_) => false,
        },
        HirKind::Class(c) => match representative(c) {
            Some(ch) => {
                out.push(ch);
                true
            }
            None => false,
        },
        HirKind::Repetition(r) => {
            r.min <= MAX_REPEAT && (0..r.min).all(|_| sample(&r.sub, way, out))
        }
        HirKind::Capture(c) => sample(&c.sub, way, out),
        HirKind::Concat(items) => items.iter().enumerate().all(|(i, item)| {
            // `.php` after `/*` (the seed's `/*.php`): a dot, so the path reads `/index.php`.
            let dot_before_word = match (item.kind(), items.get(i + 1).map(Hir::kind)) {
                (HirKind::Class(c), Some(HirKind::Literal(next))) if dots => {
                    next.0.first().is_some_and(u8::is_ascii_alphabetic)
                        && ['.', 'a', '/'].iter().all(|ch| contains(c, *ch))
                }
                _ => false,
            };
            if dot_before_word {
                out.push('.');
                true
            } else {
                sample(item, way, out)
            }
        }),
        HirKind::Alternation(branches) => {
            let b = &branches[choice % branches.len()];
            sample(b, way, out)
        }
    }
}

/// Whether the class matches `ch`.
fn contains(c: &Class, ch: char) -> bool {
    match c {
        Class::Unicode(u) => u.ranges().iter().any(|r| r.start() <= ch && ch <= r.end()),
        Class::Bytes(b) => {
            ch.is_ascii()
                && b.ranges()
                    .iter()
                    .any(|r| r.start() <= ch as u8 && ch as u8 <= r.end())
        }
    }
}

/// A character of the class, preferring letters and digits (`.` gives `a`, `[^/]` gives `a`).
fn representative(c: &Class) -> Option<char> {
    const PREFERRED: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_.~";
    PREFERRED
        .chars()
        .chain((' '..='~').filter(|ch| !PREFERRED.contains(*ch)))
        .find(|ch| contains(c, *ch))
        .or_else(|| match c {
            Class::Unicode(u) => u
                .ranges()
                .iter()
                .flat_map(|r| r.start()..=r.end())
                .take(1024)
                .find(|ch| !ch.is_control()),
            Class::Bytes(_) => None,
        })
}

/// `path` as a request target: bytes other than unreserved characters, `/` and sub-delimiters
/// percent-encoded (so `?`, `#`, `%` and spaces stay part of the path).
fn encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Entry, MatchRule, ServerSpec};

    fn config(patterns: &[&[&str]]) -> Config {
        let server = ServerSpec {
            name: "127.0.0.1:1".into(),
            addr: "127.0.0.1:1".parse().unwrap(),
            weight: 1,
            tls: false,
            backup: false,
        };
        Config {
            file: "t.conf".into(),
            statistics_url: Some("/status".into()),
            statistics_allow: Vec::new(),
            admin_url: None,
            admin_allow: Vec::new(),
            access_log: None,
            entries: patterns
                .iter()
                .enumerate()
                .map(|(i, ps)| {
                    let matches = ps
                        .iter()
                        .map(|p| MatchRule {
                            pattern: p.to_string(),
                            line: i + 1,
                        })
                        .collect();
                    Entry::with_defaults(i + 1, matches, vec![server.clone()])
                })
                .collect(),
        }
    }

    fn samples(patterns: &[&[&str]]) -> Vec<Option<String>> {
        sample_targets(&config(patterns))
    }

    #[test]
    fn one_path_per_entry_that_reaches_it() {
        let s = samples(&[
            &["\\.php$", "^/api/"],
            &["\\.(jpg|png|gif|css|js|html)$"],
            &["^/static/[a-z]+/\\d{2}"],
            &["/*.txt"],
            &["/*.html"],
            &["^/"],
        ]);
        assert_eq!(
            s,
            [
                Some("/index.php".to_string()),
                Some("/index.jpg".to_string()),
                Some("/static/a/00".to_string()),
                Some("/index.txt".to_string()),
                // `/index.html` goes to the second entry.
                Some("/ahtml".to_string()),
                Some("/".to_string()),
            ]
        );
    }

    #[test]
    fn a_path_an_earlier_entry_takes_is_not_offered() {
        // `/api/x.php` would go to the first entry; the second needs a path without `.php`.
        let s = samples(&[
            &["\\.php$"],
            &["^/api/.*\\.php$|^/api/"],
            &[".*"],
            &["^/late"],
        ]);
        assert_eq!(s[1].as_deref(), Some("/api/"));
        assert_eq!(s[2].as_deref(), Some("/"));
        assert_eq!(s[3], None);
    }

    #[test]
    fn the_statistics_url_and_odd_bytes() {
        let s = samples(&[&["^/status$|^/status2$"], &["^/a b\\?c%$"], &["^api"]]);
        assert_eq!(s[0].as_deref(), Some("/status2"));
        assert_eq!(s[1].as_deref(), Some("/a%20b%3Fc%25"));
        assert_eq!(s[2], None);
    }
}
