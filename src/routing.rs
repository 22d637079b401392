//! Routing: ordered entries, each a set of regexes; the first entry with any match wins.

use regex::RegexSet;

use crate::config::Entry;

/// Compiled `Match` rules of every entry, in file order.
#[derive(Debug)]
pub struct Router {
    sets: Vec<RegexSet>,
}

/// Why a path was routed where it was: the entry and the rule that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the entry (0-based, file order).
    pub entry: usize,
    /// Index of the first matching `Match` rule within that entry.
    pub rule: usize,
}

impl Router {
    /// Compiles every entry's rules once; fails with the first invalid regex's message.
    pub fn new(entries: &[Entry]) -> Result<Router, regex::Error> {
        let sets = entries
            .iter()
            .map(|e| RegexSet::new(e.matches.iter().map(|m| m.pattern.as_str())))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Router { sets })
    }

    /// The entry that serves `path`, if any.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.sets.iter().position(|set| set.is_match(path))
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
    fn no_match_is_none() {
        let r = Router::new(&[entry(&["^/api/"])]).unwrap();
        assert_eq!(r.route("/static/x"), None);
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(Router::new(&[entry(&["(unclosed"])]).is_err());
    }
}
