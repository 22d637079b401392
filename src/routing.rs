//! Routing: which entry serves a request, and the target its backend receives.
//!
//! Entries are tried in file order; the first whose host rules (if any), method rules (if
//! any) and `Match` rules all accept the request serves it. [`Router`] gives exactly that
//! answer without trying the entries one by one, so that its cost does not grow with their
//! number (issue #19):
//!
//! * the entries without `MatchHost` are one `PathIndex`: their `^literal` rules in a hash
//!   map by literal (one lookup of the path's first bytes per distinct literal length),
//!   every other rule in one
//!   multi-pattern regex searched leftmost-first and anchored, each pattern `.*?(RULE)` — so
//!   the pattern that wins is the lowest-numbered one that matches anywhere, i.e. the first
//!   entry in file order. The lower of the two answers is the entry, unless its `MatchMethod`
//!   refuses the method: then every matching rule is listed (the overlapping search) and the
//!   first entry whose method rules accept is taken.
//! * the entries with `MatchHost` are found by the request's host: exact names in a hash
//!   map, wildcards by looking each suffix of the host up in another, regexes in one set; only
//!   those entries' path and method rules are then tried, and only while they come before the
//!   answer of the first part.
//!
//! A configuration without host and method rules costs a few hash lookups and one regex search
//! per request, whatever the number of entries (up to `SEQUENTIAL_MAX` entries are tried
//! one by one instead, as before: cheaper for so few). The property test in `tests` compares the
//! answer with the one-by-one definition over random configurations.

use std::borrow::Cow;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder, RegexSet};
use regex_automata::meta;
use regex_automata::{Anchored, Input};

use crate::config::route_rules::{template, Piece};
use crate::config::{Entry, HostPattern, PathRewrite};

pub mod samples;

/// Up to this many entries without host rules are tried one by one (the shipped example
/// has 3): below it, one regex set per entry costs less than the combined search (see
/// BENCHMARKS.md, "Routing cost").
const SEQUENTIAL_MAX: usize = 4;

/// Size limit of the combined regexes. Each entry's rules passed the regex crate's own
/// limit (10 MiB) when the file was read, so the combined ones get the room of many entries:
/// a file the parser accepted does not fail here in practice.
const COMBINED_LIMIT: usize = 256 << 20;

/// The message of a combined regex that cannot be built.
fn together(e: &dyn std::fmt::Display) -> String {
    format!("the Match rules of all entries cannot be compiled together: {e}")
}

/// "No entry" while the literals' walk looks for the lowest.
const NONE: u32 = u32::MAX;

/// Compiled routing rules of every entry, and their rewrites.
#[derive(Debug)]
pub struct Router {
    /// Per entry, in file order: its own rules (for host-routed entries, the fallback and
    /// `explain`).
    entries: Vec<EntryRules>,
    /// The entries without host rules.
    any_host: PathIndex,
    /// The same entries when they are at most [`SEQUENTIAL_MAX`]: tried one by one, which
    /// costs less than the combined search for so few.
    sequential: Option<Vec<u32>>,
    /// No entry has host or method rules and they are few: routing is the walk over
    /// `entries` that it was before #19, with nothing else to look at (the common case,
    /// kept as cheap as it was: the plugin's instructions per request are tracked).
    simple: bool,
    /// The entries with host rules, by host.
    hosts: HostIndex,
    /// Per entry: how the backend's target is made, if it is rewritten.
    rewrites: Vec<Option<Rewriter>>,
}

/// One entry's rules on their own.
#[derive(Debug)]
struct EntryRules {
    /// Its `Match` rules (`None`: no `Match`, every path).
    set: Option<RegexSet>,
    /// When every rule is `^` and a literal (the common `^/api/`, or `^/api/.*`): the
    /// literals, so that the test is a prefix comparison rather than a regex search.
    prefixes: Option<Vec<String>>,
    /// `MatchMethod` (empty: any).
    methods: Vec<String>,
}

impl EntryRules {
    // Inlined even into the simple walk of every request: its call and prologue cost more
    // than the common test (one `^/` prefix) itself.
    #[inline(always)]
    fn path_ok(&self, path: &str) -> bool {
        match (&self.prefixes, &self.set) {
            (_, None) => true,
            (Some(p), _) => p.iter().any(|p| path.starts_with(p.as_str())),
            (None, Some(set)) => set.is_match(path),
        }
    }

    fn method_ok(&self, method: &str) -> bool {
        self.methods.is_empty() || self.methods.iter().any(|m| m == method)
    }
}

/// The literal a pattern anchors at the start of the path, if it is nothing else: `^/api/`,
/// and `^/api/.*` as well (the seed's own example is `Match ^/.*`): a trailing `.*` may
/// match nothing, so a path matches the pattern exactly when it starts with the literal.
fn anchored_literal(pattern: &str) -> Option<&str> {
    let literal = pattern.strip_prefix('^')?;
    let literal = literal.strip_suffix(".*").unwrap_or(literal);
    let plain = !literal.contains([
        '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
    ]);
    plain.then_some(literal)
}

/// The `^literal` rules of a group of entries, by length: for each length some literal
/// has, one hash lookup of the path's first bytes. The cost grows with the number of
/// distinct lengths (a handful in practice), not with the number of literals, and has no
/// data-dependent branching per entry (a trie's child search grew with the fan-out).
#[derive(Debug, Default)]
struct Literals {
    /// The distinct literal lengths, ascending.
    lengths: Vec<usize>,
    /// Literal → the entries that have it, ascending.
    map: HashMap<Box<[u8]>, Vec<u32>, Fnv>,
}

/// FNV-1a: short keys hashed in a few instructions (SipHash costs more than the lookup it
/// serves; no key here comes from a client, only from the configuration's rules).
#[derive(Debug, Default, Clone, Copy)]
struct Fnv;

/// The state of [`Fnv`].
struct FnvHasher(u64);

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

impl Literals {
    /// The literals (entry, literal), given in file order.
    fn new<'a>(literals: impl Iterator<Item = (u32, &'a str)>) -> Literals {
        let mut out = Literals::default();
        for (entry, literal) in literals {
            let list = out.map.entry(literal.as_bytes().into()).or_default();
            if list.last() != Some(&entry) {
                list.push(entry);
            }
            if let Err(i) = out.lengths.binary_search(&literal.len()) {
                out.lengths.insert(i, literal.len());
            }
        }
        out
    }

    /// Calls `found` with the entries of every literal that starts `path`, shortest
    /// literal first.
    fn walk(&self, path: &str, mut found: impl FnMut(&[u32])) {
        let path = path.as_bytes();
        for &len in &self.lengths {
            let Some(start) = path.get(..len) else { return };
            if let Some(entries) = self.map.get(start) {
                found(entries);
            }
        }
    }

    /// The lowest entry whose literal starts `path`.
    fn first(&self, path: &str) -> Option<u32> {
        let mut best = NONE;
        self.walk(path, |e| best = best.min(e[0]));
        (best != NONE).then_some(best)
    }
}

/// The `Match` rules of a group of entries, searched together.
#[derive(Debug)]
struct PathIndex {
    /// The `^literal` rules.
    literals: Literals,
    /// Every rule that is not a `^literal`, as `(?s:.)*?(?:RULE)` (leftmost-first, anchored:
    /// the lowest pattern that matches anywhere wins).
    combined: Option<meta::Regex>,
    /// Entry of each pattern of `combined`.
    pattern_entry: Vec<u32>,
    /// The same rules as written, for the overlapping search (which needs every match, not
    /// the leftmost-first one).
    every: Option<RegexSet>,
}

impl PathIndex {
    fn new<'a>(rules: impl Iterator<Item = (u32, &'a str)>) -> Result<PathIndex, String> {
        let mut literals = Vec::new();
        let mut patterns = Vec::new();
        let mut written = Vec::new();
        let mut pattern_entry = Vec::new();
        for (entry, pattern) in rules {
            match anchored_literal(pattern) {
                Some(literal) => literals.push((entry, literal)),
                None => {
                    patterns.push(format!("(?s:.)*?(?:{pattern})"));
                    written.push(pattern);
                    pattern_entry.push(entry);
                }
            }
        }
        let combined = if patterns.is_empty() {
            None
        } else {
            let config = meta::Config::new()
                .match_kind(regex_automata::MatchKind::LeftmostFirst)
                .nfa_size_limit(Some(COMBINED_LIMIT));
            let re = meta::Builder::new()
                .configure(config)
                .build_many(&patterns)
                .map_err(|e| together(&e))?;
            Some(re)
        };
        let literals = Literals::new(literals.into_iter());
        let every = if written.is_empty() {
            None
        } else {
            Some(
                regex::RegexSetBuilder::new(&written)
                    .size_limit(COMBINED_LIMIT)
                    .build()
                    .map_err(|e| together(&e))?,
            )
        };
        Ok(PathIndex {
            literals,
            combined,
            pattern_entry,
            every,
        })
    }

    /// The lowest entry with a rule that matches `path`.
    fn first(&self, path: &str) -> Option<u32> {
        let literal = self.literals.first(path);
        // No regex rule comes before the literal that matched: the search cannot change
        // the answer (the common `^/api/` before a catch-all costs no regex search).
        if literal.is_some_and(|l| self.pattern_entry.first().map_or(true, |&r| r >= l)) {
            return literal;
        }
        let regex = self.combined.as_ref().and_then(|re| {
            let input = Input::new(path).anchored(Anchored::Yes);
            re.search(&input)
                .map(|m| self.pattern_entry[m.pattern().as_usize()])
        });
        match (literal, regex) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every entry with a rule that matches `path`, ascending, each once.
    fn all(&self, path: &str) -> Vec<u32> {
        let mut out = Vec::new();
        self.literals.walk(path, |e| out.extend_from_slice(e));
        if let Some(set) = &self.every {
            out.extend(set.matches(path).iter().map(|p| self.pattern_entry[p]));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The entries with `MatchHost` rules, by host.
#[derive(Debug, Default)]
struct HostIndex {
    /// Exact host → entries, ascending.
    exact: HashMap<String, Vec<u32>>,
    /// Wildcard domain (`example.org` for `*.example.org`) → entries, ascending.
    wildcard: HashMap<String, Vec<u32>>,
    /// Every regex rule, case-insensitive.
    regex: Option<RegexSet>,
    /// Entry of each regex.
    regex_entry: Vec<u32>,
}

impl HostIndex {
    fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.wildcard.is_empty() && self.regex.is_none()
    }

    /// Calls `visit` with each list of entries (ascending, each list on its own) that accept
    /// `host` by one kind of rule.
    fn candidates(&self, host: &str, mut visit: impl FnMut(&mut dyn Iterator<Item = u32>)) {
        if let Some(list) = self.exact.get(host) {
            visit(&mut list.iter().copied());
        }
        if !self.wildcard.is_empty() {
            for (i, _) in host.match_indices('.') {
                if let Some(list) = self.wildcard.get(&host[i + 1..]) {
                    visit(&mut list.iter().copied());
                }
            }
        }
        if let Some(set) = &self.regex {
            let matched = set.matches(host);
            visit(&mut matched.iter().map(|i| self.regex_entry[i]));
        }
    }
}

/// The host as `MatchHost` rules see it: without the port and one trailing dot, in lower
/// case (borrowed when it already is).
pub fn routing_host(authority: &str) -> Cow<'_, str> {
    let host = host_part(authority);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

/// The host of an authority without its port and one trailing dot.
fn host_part(authority: &str) -> &str {
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        }
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.strip_suffix('.').unwrap_or(host)
}

/// [`routing_host`], lower-casing into `buf` when the host is not lower case already and
/// fits (a DNS name does: 253 bytes at most), so that routing by host allocates nothing.
fn routing_host_in<'a>(authority: &'a str, buf: &'a mut [u8; 255]) -> Cow<'a, str> {
    let host = host_part(authority);
    if !host.bytes().any(|b| b.is_ascii_uppercase()) {
        return Cow::Borrowed(host);
    }
    match buf.get_mut(..host.len()) {
        Some(out) => {
            for (o, b) in out.iter_mut().zip(host.bytes()) {
                *o = b.to_ascii_lowercase();
            }
            // ASCII case changes keep UTF-8 valid.
            Cow::Borrowed(std::str::from_utf8(out).unwrap_or(host))
        }
        None => Cow::Owned(host.to_ascii_lowercase()),
    }
}

/// Why a request was routed where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteMatch {
    /// Index of the entry (0-based, file order).
    pub entry: usize,
    /// Index of the first matching `Match` rule within that entry (`None`: the entry has no
    /// `Match`, so every path).
    pub rule: Option<usize>,
    /// Index of the first `MatchHost` value of the entry that accepted the host (`None`: the
    /// entry has no host rules).
    pub host: Option<usize>,
}

/// How one entry's target is rewritten for its backend.
#[derive(Debug)]
pub enum Rewriter {
    /// `PathStripPrefix`, without a trailing `/`.
    Strip(String),
    /// `PathRewrite`: the regex and the replacement's pieces.
    Replace(Regex, Vec<Piece>),
}

impl Rewriter {
    fn new(rewrite: &PathRewrite) -> Result<Rewriter, String> {
        Ok(match rewrite {
            PathRewrite::StripPrefix(p) => Rewriter::Strip(p.clone()),
            PathRewrite::Replace {
                pattern,
                replacement,
            } => Rewriter::Replace(
                Regex::new(pattern).map_err(|e| e.to_string())?,
                template(replacement)?,
            ),
        })
    }

    /// Appends to `out` the path the backend receives for `path` (as the client sent it),
    /// always starting with `/`. The query is not part of it: the caller keeps it.
    pub fn write(&self, path: &str, out: &mut Vec<u8>) {
        let start = out.len();
        match self {
            Rewriter::Strip(prefix) => {
                let rest = match path.strip_prefix(prefix.as_str()) {
                    Some("") => "/",
                    Some(rest) if rest.starts_with('/') => rest,
                    _ => path,
                };
                out.extend_from_slice(rest.as_bytes());
            }
            Rewriter::Replace(regex, pieces) => {
                let Some(caps) = regex.captures(path) else {
                    out.extend_from_slice(path.as_bytes());
                    return;
                };
                let whole = caps.get(0).map_or(0..0, |m| m.range());
                out.extend_from_slice(&path.as_bytes()[..whole.start]);
                for piece in pieces {
                    let text = match piece {
                        Piece::Text(t) => t.as_str(),
                        Piece::Index(i) => caps.get(*i).map_or("", |m| m.as_str()),
                        Piece::Name(n) => caps.name(n).map_or("", |m| m.as_str()),
                    };
                    out.extend_from_slice(text.as_bytes());
                }
                out.extend_from_slice(&path.as_bytes()[whole.end..]);
            }
        }
        if out.get(start) != Some(&b'/') {
            out.insert(start, b'/');
        }
    }

    /// [`Rewriter::write`] into a new string (for the checker and tests).
    pub fn rewrite(&self, path: &str) -> String {
        let mut out = Vec::new();
        self.write(path, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The path `Match` rules (and `StatisticsURL`) are compared with: the request path without
/// its query, percent-decoded the way Monkey decodes it before its own handler rules and
/// stage 30 (`mk_utils_url_decode`, whose result the plugin routes by). Decoding first means
/// `/%61dmin` cannot slip past a rule for `/admin`. As in Monkey: each `%XX` becomes its
/// byte; a `%` without two characters after it stays; a `%` followed by anything but two
/// hex digits leaves the whole path undecoded; a decoded NUL ends the path; bytes that are
/// not UTF-8 become U+FFFD.
// Inlined: nearly every path has no `%` and is routed as it is, a test cheaper than the
// call; the decoding is out of line.
#[inline]
pub fn routing_path(raw: &str) -> Cow<'_, str> {
    match raw.as_bytes().iter().position(|&b| b == b'%') {
        None => Cow::Borrowed(raw),
        Some(first) => decoded_path(raw, first),
    }
}

/// [`routing_path`] for a path whose first `%` is at `first`.
#[inline(never)]
fn decoded_path(raw: &str, first: usize) -> Cow<'_, str> {
    let bytes = raw.as_bytes();
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
    pub fn new(entries: &[Entry]) -> Result<Router, String> {
        Router::build(entries, SEQUENTIAL_MAX)
    }

    /// [`Router::new`], trying up to `sequential_max` entries without host rules one by one.
    fn build(entries: &[Entry], sequential_max: usize) -> Result<Router, String> {
        let mut rules = Vec::with_capacity(entries.len());
        let mut hosts = HostIndex::default();
        let mut host_regexes = Vec::new();
        let mut rewrites = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let i = i as u32;
            let set = if e.matches.is_empty() {
                None
            } else {
                Some(
                    RegexSet::new(e.matches.iter().map(|m| m.pattern.as_str()))
                        .map_err(|e| e.to_string())?,
                )
            };
            let prefixes = e
                .matches
                .iter()
                .map(|m| anchored_literal(&m.pattern).map(str::to_string))
                .collect::<Option<Vec<_>>>();
            rules.push(EntryRules {
                set,
                prefixes,
                methods: e.route.methods.clone(),
            });
            for h in &e.route.hosts {
                let push = |map: &mut HashMap<String, Vec<u32>>, key: &str| {
                    let list = map.entry(key.to_string()).or_default();
                    if list.last() != Some(&i) {
                        list.push(i);
                    }
                };
                match &h.pattern {
                    HostPattern::Exact(name) => push(&mut hosts.exact, name),
                    HostPattern::Wildcard(domain) => push(&mut hosts.wildcard, domain),
                    HostPattern::Regex(re) => {
                        host_regexes.push(re.as_str());
                        hosts.regex_entry.push(i);
                    }
                }
            }
            rewrites.push(match &e.route.rewrite {
                Some(r) => Some(Rewriter::new(&r.rewrite)?),
                None => None,
            });
        }
        if !host_regexes.is_empty() {
            let set = regex::RegexSetBuilder::new(&host_regexes)
                .case_insensitive(true)
                .build()
                .map_err(|e| e.to_string())?;
            hosts.regex = Some(set);
        }
        let any_host = PathIndex::new(
            entries
                .iter()
                .enumerate()
                .filter(|(_, e)| e.route.hosts.is_empty())
                .flat_map(|(i, e)| {
                    e.matches
                        .iter()
                        .map(move |m| (i as u32, m.pattern.as_str()))
                }),
        )?;
        let plain: Vec<u32> = (0..entries.len() as u32)
            .filter(|&i| entries[i as usize].route.hosts.is_empty())
            .collect();
        let simple = plain.len() == entries.len()
            && plain.len() <= sequential_max
            && entries.iter().all(|e| e.route.methods.is_empty());
        let sequential = (plain.len() <= sequential_max).then_some(plain);
        Ok(Router {
            entries: rules,
            any_host,
            sequential,
            simple,
            hosts,
            rewrites,
        })
    }

    /// The entry that serves `path` (decoded, see [`routing_path`]) for any host and method:
    /// the answer for a configuration without host or method rules.
    pub fn route(&self, path: &str) -> Option<usize> {
        self.route_request(path, None, "GET")
    }

    /// The entry that serves a request for `path` (decoded, see [`routing_path`]) with the
    /// authority `host` (the `Host` header as received, port and case included; `None`: the
    /// request has none, so no host rule accepts it) and `method`.
    #[inline]
    pub fn route_request(&self, path: &str, host: Option<&str>, method: &str) -> Option<usize> {
        if self.simple {
            return self.entries.iter().position(|r| r.path_ok(path));
        }
        self.route_full(path, host, method)
    }

    /// Whether some entry's `MatchHost` reads the host (without one, [`Router::route_request`]
    /// answers the same for every host, so a caller need not make it text).
    pub fn reads_host(&self) -> bool {
        !self.simple && !self.hosts.is_empty()
    }

    /// [`Router::route_request`] with host or method rules, or many entries.
    #[inline(never)]
    fn route_full(&self, path: &str, host: Option<&str>, method: &str) -> Option<usize> {
        let mut best = match &self.sequential {
            Some(list) => list.iter().map(|&e| e as usize).find(|&e| {
                let rules = &self.entries[e];
                rules.path_ok(path) && rules.method_ok(method)
            }),
            None => self.any_host.first(path).map(|e| e as usize),
        };
        if let (Some(e), None) = (best, &self.sequential) {
            if !self.entries[e].method_ok(method) {
                best = self
                    .any_host
                    .all(path)
                    .into_iter()
                    .map(|e| e as usize)
                    .find(|&e| self.entries[e].method_ok(method));
            }
        }
        if self.hosts.is_empty() {
            return best;
        }
        let Some(host) = host else { return best };
        // Lower case on the stack: no allocation for a host of up to 255 bytes.
        let mut lower = [0u8; 255];
        let host = routing_host_in(host, &mut lower);
        self.hosts
            .candidates(&host, &mut |list: &mut dyn Iterator<Item = u32>| {
                for e in list.map(|e| e as usize) {
                    if best.is_some_and(|b| e >= b) {
                        return;
                    }
                    let rules = &self.entries[e];
                    if rules.path_ok(path) && rules.method_ok(method) {
                        best = Some(e);
                        return;
                    }
                }
            });
        best
    }

    /// Like [`Router::route_request`], also naming the rules of that entry that accepted
    /// the request. Tries the entries one by one (for the checker, not the request path).
    pub fn explain(
        &self,
        entries: &[Entry],
        path: &str,
        host: Option<&str>,
        method: &str,
    ) -> Option<RouteMatch> {
        let host = host.map(routing_host);
        entries
            .iter()
            .zip(&self.entries)
            .enumerate()
            .find_map(|(entry, (e, rules))| {
                if !rules.method_ok(method) {
                    return None;
                }
                let host_rule = if e.route.hosts.is_empty() {
                    None
                } else {
                    let h = host.as_deref()?;
                    Some(
                        e.route
                            .hosts
                            .iter()
                            .position(|r| host_accepts(&r.pattern, h))?,
                    )
                };
                let rule = match &rules.set {
                    None => None,
                    Some(set) => Some(set.matches(path).iter().next()?),
                };
                Some(RouteMatch {
                    entry,
                    rule,
                    host: host_rule,
                })
            })
    }

    /// How the target of a request routed to `entry` is rewritten for its backend, if it is.
    pub fn rewriter(&self, entry: usize) -> Option<&Rewriter> {
        self.rewrites.get(entry).and_then(Option::as_ref)
    }
}

/// Whether one `MatchHost` value accepts `host` (already as [`routing_host`] gives it): the
/// definition the `HostIndex` implements.
pub fn host_accepts(pattern: &HostPattern, host: &str) -> bool {
    match pattern {
        HostPattern::Exact(name) => host == name,
        HostPattern::Wildcard(domain) => host
            .strip_suffix(domain.as_str())
            .and_then(|rest| rest.strip_suffix('.'))
            .is_some_and(|label| !label.is_empty()),
        HostPattern::Regex(re) => RegexBuilder::new(re)
            .case_insensitive(true)
            .build()
            .is_ok_and(|r| r.is_match(host)),
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
        let entries = [entry(&[r"\.php$"]), entry(&[r"\.jpg$", r"^/"])];
        let m = |entry, rule| {
            Some(RouteMatch {
                entry,
                rule: Some(rule),
                host: None,
            })
        };
        assert_eq!(r.explain(&entries, "/a.jpg", None, "GET"), m(1, 0));
        assert_eq!(r.explain(&entries, "/x", None, "GET"), m(1, 1));
    }

    #[test]
    fn literal_prefixes_route_like_their_regexes() {
        let patterns = [
            r"^/api/", "^/", r"^/a.b", r"^/x\.y", "^/(?i)q", "/mid", "^/end$", "^/.*", "^.*",
            "^/api/.*", r"^/x\.*", "^/a.*.*", "^/a.*?", "^/a.*$", "^/a.+",
        ];
        let paths = [
            "/api/v1", "/", "/a-b", "/a.b", "/x.y", "/xzy", "/Q", "/q", "/a/mid", "/end", "/endx",
            "", "/api/", "/api", "/x", "/x..", "/a", "/ab\nc", "/a\n", "x/",
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
        assert_eq!(anchored_literal(r"^/.*"), Some("/"));
        assert_eq!(anchored_literal(r"^/api/.*"), Some("/api/"));
        assert_eq!(anchored_literal(r"^/x\.*"), None);
        assert_eq!(anchored_literal(r"^/a.*?"), None);
        assert_eq!(anchored_literal(r"^/a.*$"), None);
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

    use crate::config::route_rules::{host_pattern, path_rewrite, strip_prefix};
    use crate::config::HostRule;
    use proptest::prelude::*;

    /// An entry with these path rules, hosts (as `MatchHost` writes them) and methods.
    fn full(patterns: &[&str], hosts: &[&str], methods: &[&str]) -> Entry {
        let mut e = entry(patterns);
        e.route.hosts = hosts
            .iter()
            .map(|h| HostRule {
                pattern: host_pattern(h).unwrap(),
                line: 1,
            })
            .collect();
        e.route.methods = methods.iter().map(|m| m.to_string()).collect();
        e
    }

    /// The definition: the first entry in file order whose every kind of rule accepts.
    fn reference(entries: &[Entry], path: &str, host: Option<&str>, method: &str) -> Option<usize> {
        let host = host.map(routing_host);
        entries.iter().position(|e| {
            let path_ok = e.matches.is_empty()
                || e.matches
                    .iter()
                    .any(|m| regex::Regex::new(&m.pattern).unwrap().is_match(path));
            let host_ok = e.route.hosts.is_empty()
                || host
                    .as_deref()
                    .is_some_and(|h| e.route.hosts.iter().any(|r| host_accepts(&r.pattern, h)));
            let method_ok =
                e.route.methods.is_empty() || e.route.methods.iter().any(|m| m == method);
            path_ok && host_ok && method_ok
        })
    }

    #[test]
    fn hosts_route_case_insensitively_without_port() {
        let entries = [
            full(&["^/"], &["api.example.com"], &[]),
            full(&["^/"], &["*.example.org"], &[]),
            full(&[], &[r"~^img[0-9]+\.example\.net$"], &[]),
            full(&["^/"], &[], &["POST"]),
            full(&["^/"], &[], &[]),
        ];
        let r = Router::new(&entries).unwrap();
        let route = |host, method| r.route_request("/x", host, method);
        assert_eq!(route(Some("API.Example.com:8080"), "GET"), Some(0));
        assert_eq!(route(Some("api.example.com."), "GET"), Some(0));
        assert_eq!(route(Some("a.b.example.org"), "GET"), Some(1));
        // The bare domain is not a subdomain of itself.
        assert_eq!(route(Some("example.org"), "GET"), Some(4));
        assert_eq!(route(Some("IMG12.example.net"), "GET"), Some(2));
        assert_eq!(route(Some("other"), "POST"), Some(3));
        assert_eq!(route(None, "GET"), Some(4));
        assert_eq!(route(Some("[::1]:80"), "GET"), Some(4));
        assert_eq!(
            r.route_request("/x", Some("img1.example.net"), "GET"),
            Some(2)
        );
        assert_eq!(
            r.explain(&entries, "/y", Some("img1.example.net"), "GET"),
            Some(RouteMatch {
                entry: 2,
                rule: None,
                host: Some(0)
            })
        );
    }

    #[test]
    fn a_refused_method_falls_through_to_the_next_entry() {
        let entries = [
            full(&["^/api/"], &[], &["GET", "HEAD"]),
            full(&[r"^/api/.*"], &[], &["POST"]),
            full(&["/"], &[], &[]),
        ];
        let r = Router::new(&entries).unwrap();
        assert_eq!(r.route_request("/api/x", None, "GET"), Some(0));
        assert_eq!(r.route_request("/api/x", None, "POST"), Some(1));
        assert_eq!(r.route_request("/api/x", None, "PUT"), Some(2));
        assert_eq!(r.route_request("/api/x", None, "get"), Some(2));
    }

    #[test]
    fn rewrites_strip_at_a_segment_and_replace_with_captures() {
        let strip = Rewriter::new(&strip_prefix("/api").unwrap()).unwrap();
        assert_eq!(strip.rewrite("/api"), "/");
        assert_eq!(strip.rewrite("/api/"), "/");
        assert_eq!(strip.rewrite("/api/v1/x"), "/v1/x");
        assert_eq!(strip.rewrite("/apix"), "/apix");
        assert_eq!(strip.rewrite("/other/api"), "/other/api");
        let re = |p| Rewriter::new(&path_rewrite(p).unwrap()).unwrap();
        assert_eq!(re("^/api/(.*) /$1").rewrite("/api/a%20b"), "/a%20b");
        assert_eq!(re("^/api/(.*) /$1").rewrite("/static/x"), "/static/x");
        assert_eq!(re("^/api/(.*) $1").rewrite("/api/x"), "/x");
        assert_eq!(re("^/api/(.*) $1").rewrite("/api/"), "/");
        assert_eq!(
            re("^/u/(?P<id>[0-9]+)/(.*) /users/${id}/$2$$").rewrite("/u/42/p"),
            "/users/42/p$"
        );
        // Only the first match is replaced; the rest of the path stays.
        assert_eq!(re("a /b").rewrite("/xaya"), "/x/bya");
        // A group that did not take part is empty.
        assert_eq!(re("^/(x)?y(.*) /$1-$2").rewrite("/yz"), "/-z");
    }

    /// Small vocabularies, so that random rules and requests often meet.
    const PATTERNS: &[&str] = &[
        "^/",
        "^/api",
        "^/api/",
        "^/api/v1",
        "^/a",
        r"\.php$",
        r"^/api/.*\.json$",
        "/v1",
        "^/b$",
        "x",
        "(?i)^/API",
        r"^/[ab]",
        "^",
        "^/api/v",
        r"^/img/[0-9]+",
        "^/a$",
        "^/.*",
        "^/api/.*",
    ];
    const HOSTS: &[&str] = &[
        "a.test",
        "b.test",
        "*.test",
        "*.b.test",
        r"~^[ab]\.",
        "~test$",
        "example.org",
        "*.org",
    ];
    const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT"];
    const PATHS: &[&str] = &[
        "/",
        "/api",
        "/api/",
        "/api/v1",
        "/api/v1/x.json",
        "/a",
        "/a/b.php",
        "/b",
        "/bx",
        "/x",
        "/API/z",
        "/img/42",
        "/v1",
        "",
        "/apix",
        "/index.php",
    ];
    const REQUEST_HOSTS: &[&str] = &[
        "a.test",
        "A.Test:8080",
        "b.test.",
        "c.b.test",
        "test",
        "example.org",
        "www.example.org",
        "[::1]",
        "b.x",
    ];

    fn random_entry() -> impl Strategy<Value = Entry> {
        (
            prop::collection::vec(prop::sample::select(PATTERNS), 0..3),
            prop::collection::vec(prop::sample::select(HOSTS), 0..3),
            prop::collection::vec(prop::sample::select(METHODS), 0..2),
        )
            .prop_map(|(mut patterns, hosts, methods)| {
                // An entry needs Match or MatchHost.
                if patterns.is_empty() && hosts.is_empty() {
                    patterns.push("^/");
                }
                full(&patterns, &hosts, &methods)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        #[test]
        fn the_combined_matcher_gives_the_first_entry_in_file_order(
            entries in prop::collection::vec(random_entry(), 1..12),
            requests in prop::collection::vec(
                (
                    prop::sample::select(PATHS),
                    prop::option::of(prop::sample::select(REQUEST_HOSTS)),
                    prop::sample::select(METHODS),
                ),
                1..24,
            ),
        ) {
            let combined = Router::build(&entries, 0).unwrap();
            let sequential = Router::build(&entries, usize::MAX).unwrap();
            let router = Router::new(&entries).unwrap();
            for (path, host, method) in requests {
                let expected = reference(&entries, path, host, method);
                for (how, router) in [("combined", &combined), ("one by one", &sequential)] {
                    prop_assert_eq!(
                        router.route_request(path, host, method),
                        expected,
                        "{} {} {:?} {}", how, path, host, method
                    );
                }
                prop_assert_eq!(
                    router.explain(&entries, path, host, method).map(|m| m.entry),
                    expected
                );
            }
        }
    }
}
