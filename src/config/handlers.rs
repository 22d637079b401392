//! The `Match ... proxy_reverse` lines for Monkey's vhost `[HANDLERS]` section.
//!
//! Monkey only calls the plugin for requests whose path matches one of those lines, and its
//! handler regexes are a tiny engine (monkey-abi.md §4.3): `.` `^` `$` `*` `+` `?`, `[...]`
//! with one buffer shared by every rule, escapes; no groups, no alternation, no counted
//! repetition, no spaces (the line is split on spaces), byte-wise matching. When every entry
//! regex means the same thing in both engines we print one line per regex, so Monkey keeps
//! serving everything else itself. Otherwise we print a catch-all: the plugin then receives
//! every request, serves those an entry matches, answers the statistics URL, and gives 404 to
//! the rest — correct, but Monkey no longer serves its own files for that vhost.
//!
//! One known difference is accepted: `.` is one character in Rust and one byte in Monkey, so
//! `a.b` matches `/aéb` here but not in Monkey. Only paths with non-ASCII characters are
//! affected, and the seed's own rules (`/*.php`) rely on `.`.

use super::Config;

/// The plugin's short name, as Monkey's `Match` lines must name it.
pub const PLUGIN: &str = "proxy_reverse";

/// Most tokens Monkey's handler engine compiles (`MAX_REGEXP_OBJECTS` is 512, one kept spare).
const MAX_TOKENS: usize = 511;

/// The lines to paste under `[HANDLERS]`, comment lines (`# ...`) first.
pub fn handler_lines(config: &Config) -> Vec<String> {
    let mut lines = vec![
        "# Paste under [HANDLERS] in Monkey's sites/default (or the vhost that proxies),"
            .to_string(),
        "# before any other Match line: Monkey uses the first matching line.".to_string(),
    ];
    let stats = config.statistics_url.as_deref();
    let blocker = config
        .entries
        .iter()
        .flat_map(|e| e.matches.iter())
        .find_map(|m| monkey_regex(&m.pattern).err().map(|why| (m, why)));
    let stats_regex = stats.map(exact_path);
    // An entry with MatchHost and no Match serves every path of its hosts: the plugin must
    // see every request.
    let every_path = config.entries.iter().find(|e| e.matches.is_empty());
    match (blocker, stats_regex) {
        (None, None | Some(Ok(_))) if every_path.is_none() => {
            lines.push(
                "# Every Match regex means the same in Monkey's handler engine, so Monkey hands"
                    .to_string(),
            );
            lines.push(
                "# the plugin exactly the requests an entry matches (and the statistics URL)."
                    .to_string(),
            );
            let mut seen: Vec<&str> = Vec::new();
            for m in config.entries.iter().flat_map(|e| e.matches.iter()) {
                if !seen.contains(&m.pattern.as_str()) {
                    seen.push(&m.pattern);
                    lines.push(format!("    Match {} {PLUGIN}", m.pattern));
                }
            }
            if let Some(Ok(re)) = stats.map(exact_path) {
                lines.push(format!("    Match {re} {PLUGIN}"));
            }
        }
        (blocker, stats_regex) => {
            let why = match (blocker, stats_regex) {
                _ if every_path.is_some() => format!(
                    "# The entry at line {} has MatchHost and no Match (every path), which Monkey's",
                    every_path.map_or(0, |e| e.line)
                ),
                (Some((m, why)), _) => {
                    format!("# Line {}: `{}` {why}, which Monkey's", m.line, m.pattern)
                }
                (None, _) => format!(
                    "# StatisticsURL `{}` cannot be written for Monkey's",
                    stats.unwrap_or_default()
                ),
            };
            lines.push(why);
            lines.push(
                "# handler engine cannot express; so Monkey hands every request to the plugin,"
                    .to_string(),
            );
            lines.push(
                "# which serves what an entry matches and the statistics URL, and answers 404 to"
                    .to_string(),
            );
            lines.push(
                "# what no entry matches (Monkey serves no static files on this vhost)."
                    .to_string(),
            );
            lines.push(format!("    Match /.* {PLUGIN}"));
        }
    }
    lines
}

/// `^PATH$` in Monkey's syntax, escaping its metacharacters.
fn exact_path(path: &str) -> Result<String, String> {
    if !path.is_ascii() || path.contains(char::is_whitespace) {
        return Err("has non-ASCII characters or spaces".to_string());
    }
    let mut re = String::from("^");
    for c in path.chars() {
        if ".^$*+?[]\\".contains(c) {
            re.push('\\');
        }
        re.push(c);
    }
    re.push('$');
    Ok(re)
}

/// `Ok` when `pattern` (a Rust regex) matches exactly the same paths in Monkey's handler
/// engine; otherwise what prevents it, as a phrase ("uses a group").
pub fn monkey_regex(pattern: &str) -> Result<(), String> {
    let chars: Vec<char> = pattern.chars().collect();
    // Whether the previous token can take a quantifier.
    let mut quantifiable = false;
    let mut tokens = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        tokens += 1;
        match c {
            '^' if i == 0 => quantifiable = false,
            '$' if i + 1 == chars.len() => quantifiable = false,
            '^' | '$' => return Err("uses an anchor inside the pattern".into()),
            // Rust's `.` is one character, Monkey's one byte: they differ only on a path
            // with non-ASCII characters at that spot, which we accept (see the module doc).
            '.' => quantifiable = true,
            '*' | '+' | '?' => {
                if !quantifiable {
                    return Err(format!("uses `{c}` after something it cannot repeat"));
                }
                quantifiable = false;
            }
            '\\' => match chars.get(i + 1) {
                Some(n) if n.is_ascii_punctuation() => {
                    i += 1;
                    quantifiable = true;
                }
                _ => return Err("uses an escape class such as \\d or \\b".into()),
            },
            '(' | ')' => return Err("uses a group".into()),
            '|' => return Err("uses alternation".into()),
            '[' | ']' => return Err("uses a character class".into()),
            '{' | '}' => return Err("uses counted repetition".into()),
            c if c.is_whitespace() => return Err("contains a space".into()),
            c if !c.is_ascii() || c.is_ascii_control() => {
                return Err("contains a non-ASCII or control character".into())
            }
            _ => quantifiable = true,
        }
        i += 1;
    }
    if tokens > MAX_TOKENS {
        return Err("is too long".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Entry, MatchRule};

    fn config(patterns: &[&str], stats: Option<&str>) -> Config {
        let matches = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| MatchRule {
                pattern: p.to_string(),
                line: i + 3,
            })
            .collect();
        Config {
            file: "t.conf".into(),
            statistics_url: stats.map(str::to_string),
            statistics_allow: Vec::new(),
            admin_url: None,
            admin_allow: Vec::new(),
            access_log: None,
            entries: vec![Entry::with_defaults(2, matches, Vec::new())],
        }
    }

    #[test]
    fn simple_patterns_pass() {
        for p in ["/*.php", r"\.jpg$", "^/api/.*", "^/a+b?c", r"/x\-y", "^/$"] {
            assert_eq!(monkey_regex(p), Ok(()), "{p}");
        }
    }

    #[test]
    fn inexpressible_patterns_say_why() {
        let cases = [
            ("(a|b)", "group"),
            ("a|b", "alternation"),
            ("[a-z]", "character class"),
            ("a{2}", "counted"),
            (r"\d+", "escape class"),
            ("a b", "space"),
            ("é", "non-ASCII"),
            ("a*?", "cannot repeat"),
            ("a^b", "anchor"),
        ];
        for (p, why) in cases {
            let e = monkey_regex(p).unwrap_err();
            assert!(e.contains(why), "{p}: {e}");
        }
        assert!(monkey_regex(&"a".repeat(600)).is_err());
    }

    #[test]
    fn one_line_per_regex_plus_statistics() {
        let lines = handler_lines(&config(
            &["/*.php", "/*.jpg", "/*.php"],
            Some("/proxy.status"),
        ));
        let rules: Vec<&String> = lines.iter().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            rules,
            [
                "    Match /*.php proxy_reverse",
                "    Match /*.jpg proxy_reverse",
                r"    Match ^/proxy\.status$ proxy_reverse"
            ]
        );
    }

    #[test]
    fn catch_all_when_a_regex_is_too_rich() {
        let lines = handler_lines(&config(&["/*.php", r"\.(jpg|png)$"], Some("/s")));
        assert_eq!(lines.last().unwrap(), "    Match /.* proxy_reverse");
        assert!(lines
            .iter()
            .any(|l| l.contains("Line 4") && l.contains("group")));
        assert!(lines.iter().any(|l| l.contains("404")));
    }

    #[test]
    fn an_entry_with_match_host_and_no_match_needs_the_catch_all() {
        let mut c = config(&[r"\.php$"], None);
        let mut host_only = crate::config::Entry::with_defaults(9, Vec::new(), Vec::new());
        host_only.route.hosts.push(crate::config::HostRule {
            pattern: crate::config::HostPattern::Exact("a.test".into()),
            line: 10,
        });
        c.entries.push(host_only);
        let lines = handler_lines(&c);
        assert_eq!(lines.last().unwrap(), "    Match /.* proxy_reverse");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("line 9 has MatchHost and no Match")),
            "{lines:?}"
        );
    }
}
