//! Warnings: what a valid configuration does that its author most likely did not mean.
//!
//! A warning never makes a file invalid: the checker prints it and still exits 0, the plugin
//! logs it at start-up and serves as configured. Computed from the validated model by
//! [`Config::warnings`], so every caller of [`super::load`] or [`super::parse_bytes`] gets them
//! from the [`Config`] it already has.
//!
//! Found today: an entry that never serves a request, because rules of earlier entries match
//! every path it matches (entries are tried in file order), and a `Match` line that never
//! chooses its entry for the same reason while the entry's other rules still do. A rule is
//! taken by an earlier one when the earlier rule matches every path (`.*`, `^/`, `/`, empty, ...),
//! is the same regex, or is `^LITERAL` and the later rule starts with `^` and that literal.
//! These are sound (a warning is never wrong) but not complete: two regexes that differ in
//! form and match the same paths are not compared.

use regex_syntax::hir::{Hir, HirKind, Look};

use super::{Config, ConfigWarning, MatchRule};

/// Why an earlier rule takes every path a later rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    /// The earlier rule matches every request path.
    Every,
    /// The same regex.
    Same,
    /// `^LITERAL`, and the later rule starts with `^` and a longer literal that begins with it.
    Prefix,
}

/// One earlier rule taking a later one: the earlier entry's index, its rule, and why.
#[derive(Debug, Clone, Copy)]
struct Taken<'a> {
    entry: usize,
    rule: &'a MatchRule,
    cover: Cover,
}

impl Config {
    /// Warnings about this (valid) configuration, in line order; each prints as
    /// `FILE:LINE: warning: message`. The plugin logs them at start-up, the checker prints
    /// them on stderr; neither refuses the file for them.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        // Parsed once; a rule the regex crate accepted always parses here too (same parser),
        // but a rule that does not is simply never compared.
        let hirs: Vec<Vec<Option<Hir>>> = self
            .entries
            .iter()
            .map(|e| e.matches.iter().map(|m| parse(&m.pattern)).collect())
            .collect();
        let mut out = Vec::new();
        for (j, entry) in self.entries.iter().enumerate() {
            let taken: Vec<Option<Taken>> = hirs[j]
                .iter()
                .map(|hir| hir.as_ref().and_then(|h| self.first_taker(&hirs, j, h)))
                .collect();
            if entry.matches.is_empty() {
                continue;
            }
            if taken.iter().all(Option::is_some) {
                let taken: Vec<Taken> = taken.into_iter().flatten().collect();
                let message = format!(
                    "this entry never serves a request: {}",
                    self.why_entry(&entry.matches, &taken)
                );
                out.push(self.warning(entry.line, message));
                continue;
            }
            for (rule, t) in entry.matches.iter().zip(&taken) {
                if let Some(t) = t {
                    let message = format!(
                        "this Match never chooses its entry: the entry at line {} takes its paths \
                         first ({})",
                        self.entries[t.entry].line,
                        taker(t)
                    );
                    out.push(self.warning(rule.line, message));
                }
            }
        }
        for entry in &self.entries {
            self.tls_warnings(entry, &mut out);
        }
        out.extend(self.health_warnings());
        for (line, message) in super::affinity::cookie_clashes(&self.entries) {
            out.push(self.warning(line, message));
        }
        out.sort_by_key(|w| w.line);
        out
    }

    /// `UpstreamTlsVerify off` on an entry with TLS servers (anyone on the path can then
    /// pose as them), and TLS settings on an entry that has no TLS server.
    fn tls_warnings(&self, entry: &super::Entry, out: &mut Vec<ConfigWarning>) {
        let t = &entry.tls;
        let tls_servers = entry.servers.iter().filter(|s| entry.server_tls(s)).count();
        if tls_servers == 0 {
            let set = t.name.is_some()
                || !t.verify
                || t.ca_file.is_some()
                || t.cert_file.is_some()
                || t.key_file.is_some();
            if set {
                let message = "this entry has UpstreamTls settings but no TLS server \
                               (write https://HOST:PORT or UpstreamTls on); they do nothing"
                    .to_string();
                out.push(self.warning(entry.line, message));
            }
        } else if !t.verify {
            let message = format!(
                "UpstreamTlsVerify off: the certificates of this entry's {tls_servers} TLS \
                 server{} are not verified, so anyone on the path can pose as {}",
                if tls_servers == 1 { "" } else { "s" },
                if tls_servers == 1 { "it" } else { "them" },
            );
            out.push(self.warning(entry.line, message));
        }
    }

    /// Health settings that cannot do what they say: `SlowStart` with a method that has no
    /// weights to ramp, `HashKey` or `HashBalanceFactor` with a method that does not hash,
    /// backups in an entry of backups only.
    fn health_warnings(&self) -> Vec<ConfigWarning> {
        let mut out = Vec::new();
        for e in &self.entries {
            if !e.slow_start.is_zero() && !super::is_weighted(&e.balancer) {
                let message = format!(
                    "SlowStart has no effect with {}: only weighted methods ramp a server up \
                     (RoundRobin, LockingRoundRobin, LeastConnections, PowerOfTwo, Random); \
                     a hash or list-order method keeps its choice",
                    e.balancer
                );
                out.push(self.warning(e.line, message));
            }
            if e.balancer != "SourceHash" {
                let a = &e.affinity;
                let set = [
                    ("HashKey", a.hash_key != super::HashKey::Source),
                    ("HashBalanceFactor", a.balance_factor != 0),
                ];
                for (key, _) in set.iter().filter(|(_, on)| *on) {
                    let message = format!(
                        "{key} has no effect with {}: only LoadBalancer SourceHash hashes",
                        e.balancer
                    );
                    out.push(self.warning(e.line, message));
                }
            }
            if !e.servers.is_empty() && e.servers.iter().all(|s| s.backup) {
                let message = "every server of this entry is a backup, so they all serve as \
                               primaries; mark only the spare ones `backup`"
                    .to_string();
                out.push(self.warning(e.line, message));
            }
        }
        out
    }

    fn warning(&self, line: usize, message: String) -> ConfigWarning {
        ConfigWarning {
            file: self.file.clone(),
            line,
            message,
        }
    }

    /// The first rule of an entry before `j` that takes every path `later` matches. A rule
    /// that matches every path wins over the others, so the message can say so.
    fn first_taker<'a>(
        &'a self,
        hirs: &[Vec<Option<Hir>>],
        j: usize,
        later: &Hir,
    ) -> Option<Taken<'a>> {
        let earlier = || {
            self.entries[..j]
                .iter()
                .enumerate()
                // An earlier entry with MatchHost or MatchMethod takes only some requests of
                // its paths, so it never shadows a later entry here (sound, not complete).
                .filter(|(_, e)| e.route.matches_any_request())
                .flat_map(move |(i, e)| {
                    e.matches
                        .iter()
                        .zip(&hirs[i])
                        .filter_map(move |(rule, hir)| Some((i, rule, hir.as_ref()?)))
                })
        };
        earlier()
            .find(|(_, _, h)| matches_every_path(h))
            .map(|(entry, rule, _)| Taken {
                entry,
                rule,
                cover: Cover::Every,
            })
            .or_else(|| {
                earlier().find_map(|(entry, rule, h)| {
                    covers(h, later).map(|cover| Taken { entry, rule, cover })
                })
            })
    }

    /// Why an entry whose every rule is taken never serves a request.
    fn why_entry(&self, rules: &[MatchRule], taken: &[Taken]) -> String {
        if let Some(t) = taken.iter().find(|t| t.cover == Cover::Every) {
            return format!(
                "the entry at line {} matches every path first (line {}: Match {})",
                self.entries[t.entry].line, t.rule.line, t.rule.pattern
            );
        }
        match taken {
            [t] => format!(
                "the entry at line {} takes its paths first ({})",
                self.entries[t.entry].line,
                taker(t)
            ),
            _ => {
                let parts: Vec<String> = rules
                    .iter()
                    .zip(taken)
                    .map(|(rule, t)| {
                        format!(
                            "for line {}: the entry at line {}, {}",
                            rule.line,
                            self.entries[t.entry].line,
                            taker(t)
                        )
                    })
                    .collect();
                format!(
                    "earlier entries take all its paths first ({})",
                    parts.join("; ")
                )
            }
        }
    }
}

/// `line 5: Match \.php$, the same rule` and the like.
fn taker(t: &Taken) -> String {
    let how = match t.cover {
        Cover::Every => "which matches every path",
        Cover::Same => "the same rule",
        Cover::Prefix => "a prefix of it",
    };
    format!("line {}: Match {}, {how}", t.rule.line, t.rule.pattern)
}

/// The regex as the `regex` crate reads it (same parser, same default flags).
fn parse(pattern: &str) -> Option<Hir> {
    regex_syntax::Parser::new().parse(pattern).ok()
}

/// Whether `pattern` matches every request path (a path always starts with `/`): `.*`, `^`,
/// `^/`, `/`, `^/.*`, an empty rule, an alternation with such a branch, and the like. False
/// when unsure, and for a pattern that is not a valid regex.
pub fn pattern_matches_every_path(pattern: &str) -> bool {
    parse(pattern).is_some_and(|h| matches_every_path(&h))
}

/// Whether a search for `h` succeeds in every string that starts with `/`.
fn matches_every_path(h: &Hir) -> bool {
    match h.kind() {
        HirKind::Alternation(branches) => branches.iter().any(matches_every_path),
        HirKind::Capture(c) => matches_every_path(&c.sub),
        HirKind::Concat(items) => every_path_sequence(items),
        _ => every_path_sequence(std::slice::from_ref(h)),
    }
}

/// `[^] [/] E*` or `E* [$]`, where each `E` can match the empty string without assertions.
fn every_path_sequence(items: &[Hir]) -> bool {
    let mut rest = items;
    if let [first, tail @ ..] = rest {
        if is_start(first) {
            rest = tail;
            if let [slash, tail @ ..] = rest {
                if is_literal(slash, b"/") {
                    rest = tail;
                }
            }
        } else if is_literal(first, b"/") {
            rest = tail;
        }
    }
    if let [init @ .., last] = rest {
        if rest.len() == items.len() && is_end(last) {
            // `X$`: X matches the empty string at the end of every path.
            rest = init;
        }
    }
    rest.iter().all(empty_anywhere)
}

/// Matches the empty string without any assertion, so at every position of every string.
fn empty_anywhere(h: &Hir) -> bool {
    h.properties().minimum_len() == Some(0) && h.properties().look_set().is_empty()
}

fn is_start(h: &Hir) -> bool {
    matches!(
        h.kind(),
        HirKind::Look(Look::Start | Look::StartLF | Look::StartCRLF)
    )
}

fn is_end(h: &Hir) -> bool {
    matches!(
        h.kind(),
        HirKind::Look(Look::End | Look::EndLF | Look::EndCRLF)
    )
}

fn is_literal(h: &Hir, bytes: &[u8]) -> bool {
    matches!(h.kind(), HirKind::Literal(l) if &*l.0 == bytes)
}

/// Whether `earlier` takes every path `later` matches (other than by matching every path,
/// which the caller checks first), and how.
fn covers(earlier: &Hir, later: &Hir) -> Option<Cover> {
    if earlier == later {
        return Some(Cover::Same);
    }
    let prefix = anchored_literal(earlier)?;
    let starts = anchored_starts(later)?;
    starts
        .iter()
        .all(|s| s.starts_with(&prefix))
        .then_some(Cover::Prefix)
}

/// For `^LITERAL`, followed by nothing or only by what matches the empty string: the literal.
fn anchored_literal(h: &Hir) -> Option<Vec<u8>> {
    let HirKind::Concat(items) = h.kind() else {
        return None;
    };
    let [start, literal, rest @ ..] = items.as_slice() else {
        return None;
    };
    match literal.kind() {
        HirKind::Literal(l) if is_plain_start(start) && rest.iter().all(empty_anywhere) => {
            Some(l.0.to_vec())
        }
        _ => None,
    }
}

/// For a rule anchored at the start of the path: a literal each of its matches starts with,
/// one per way it can start (an empty one when a way starts with anything else).
fn anchored_starts(h: &Hir) -> Option<Vec<Vec<u8>>> {
    match h.kind() {
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for b in branches {
                all.extend(anchored_starts(b)?);
            }
            Some(all)
        }
        HirKind::Capture(c) => anchored_starts(&c.sub),
        HirKind::Concat(items) => match items.split_first() {
            Some((start, rest)) if is_plain_start(start) => Some(starts(rest)),
            _ => None,
        },
        _ => None,
    }
}

/// The literals a match of the sequence `seq` can start with (see [`anchored_starts`]).
fn starts(seq: &[Hir]) -> Vec<Vec<u8>> {
    let Some(first) = seq.first() else {
        return vec![Vec::new()];
    };
    match first.kind() {
        HirKind::Literal(l) => vec![l.0.to_vec()],
        HirKind::Alternation(branches) => branches.iter().flat_map(|b| starts(as_seq(b))).collect(),
        HirKind::Capture(c) => starts(as_seq(&c.sub)),
        _ => vec![Vec::new()],
    }
}

fn as_seq(h: &Hir) -> &[Hir] {
    match h.kind() {
        HirKind::Concat(items) => items,
        _ => std::slice::from_ref(h),
    }
}

/// `^` or `\A` (not the multi-line `(?m)^`, which also matches after a newline).
fn is_plain_start(h: &Hir) -> bool {
    matches!(h.kind(), HirKind::Look(Look::Start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_that_match_every_path() {
        for p in [
            ".*", "^/", "/", "^/.*", "^.*", "^", "", "/.*", ".*$", "$", "(?:)", "(^/)", "x|^/",
            "^/?", "(?i)^/", "a*", "(?m)^/",
        ] {
            assert!(pattern_matches_every_path(p), "{p}");
        }
        for p in [
            "^/$", "^.*$", "^/api", "\\.php$", "^$", "/a", ".+x", "\\b", "^/.+", "(", "x", "^a",
        ] {
            assert!(!pattern_matches_every_path(p), "{p}");
        }
    }

    #[test]
    fn earlier_rules_that_take_a_later_one() {
        let c = |a: &str, b: &str| covers(&parse(a).unwrap(), &parse(b).unwrap());
        assert_eq!(c("\\.php$", "\\.php$"), Some(Cover::Same));
        assert_eq!(c("\\.php$", "(?:\\.php)$"), Some(Cover::Same));
        assert_eq!(c("^/api/", "^/api/v1/"), Some(Cover::Prefix));
        assert_eq!(c("^/api/", "^/api/v1/.*\\.json$"), Some(Cover::Prefix));
        assert_eq!(c("^/api", "^/api/x|^/apix"), Some(Cover::Prefix));
        assert_eq!(c("^/api/", "^/api"), None);
        assert_eq!(c("^/api/", "/api/v1/"), None);
        assert_eq!(c("^/api/$", "^/api/v1/"), None);
        assert_eq!(c("\\.php$", "^/x\\.php$"), None);
        assert_eq!(c("^/api", "^/api/x|^/b"), None);
        assert_eq!(c("^/api", "^(/api/x|/apiy)"), Some(Cover::Prefix));
        assert_eq!(c("^/api", "^(/api/x|.)"), None);
        assert_eq!(c("^/api", "(?m)^/api/x"), None);
    }
}
