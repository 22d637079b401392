//! From tokens to the validated [`Config`]: sections, keys, values, defaults, and every error.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::affinity;
use super::headers::{self, Direction, HeaderRule, HeaderRules};
use super::health;
use super::keys::{self, KeyId, KeySpec, Sections};
use super::lexer::{self, Token};
use super::limits;
use super::pem::{self, Holds};
use super::resolve::Resolver;
use super::values::{self, Host};
use super::{
    AccessLogSpec, Cidr, Config, ConfigError, Entry, Expect, HealthCheck, MatchRule, PemFile,
    ProbeKind, ServerSpec,
};

const DEFAULTS: &str = "PROXY_DEFAULTS";

/// The shortest `HealthCheckInterval`.
const MIN_CHECK_INTERVAL: Duration = Duration::from_millis(100);
const ENTRY: &str = "PROXY_ENTRY";

/// Parses and validates configuration text; `file` is only used in messages and the model.
/// A valid configuration may still deserve warnings: [`Config::warnings`].
pub fn parse_bytes(
    text: &[u8],
    file: &Path,
    resolver: &dyn Resolver,
) -> Result<Config, Vec<ConfigError>> {
    let mut p = Parser {
        file,
        resolver,
        errors: Vec::new(),
        resolved: HashMap::new(),
    };
    // Editors on some systems start UTF-8 files with a byte order mark; it is not text.
    let text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
    let tokens = lexer::tokenize(text, file, &mut p.errors);
    let sections = p.sections(&tokens);
    let config = p.build(sections);
    let mut errors = p.errors;
    if errors.is_empty() {
        Ok(config)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(errors)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Defaults,
    Entry,
    Ignored,
}

/// One section's settings; `None` means "not given here".
#[derive(Debug, Default)]
struct Settings {
    line: usize,
    seen: HashMap<KeyId, usize>,
    name: Option<String>,
    matches: Vec<MatchRule>,
    /// `MatchHost`, `MatchMethod`, `PathRewrite` / `PathStripPrefix` (entries only).
    route: super::RouteRules,
    servers: Option<Vec<ServerSpec>>,
    balancer: Option<String>,
    attempts: Option<u32>,
    offline: Option<Duration>,
    connect: Option<Duration>,
    read: Option<Duration>,
    keepalive_idle: Option<u32>,
    keepalive_timeout: Option<Duration>,
    keepalive_requests: Option<u32>,
    trusted: Option<Vec<Cidr>>,
    forwarded: Option<bool>,
    tls_all: Option<bool>,
    tls_name: Option<String>,
    tls_verify: Option<bool>,
    ca_file: Option<PemFile>,
    cert_file: Option<PemFile>,
    key_file: Option<PemFile>,
    stats_url: Option<String>,
    stats_allow: Option<Vec<Cidr>>,
    admin_url: Option<String>,
    admin_allow: Option<Vec<Cidr>>,
    /// `HealthCheck`: `Some(None)` is an explicit `off`.
    check: Option<Option<ProbeKind>>,
    check_host: Option<String>,
    check_expect: Option<Expect>,
    check_interval: Option<Duration>,
    check_timeout: Option<Duration>,
    check_rise: Option<u32>,
    check_fall: Option<u32>,
    slow_start: Option<Duration>,
    outlier_5xx: Option<u32>,
    outlier_time: Option<Duration>,
    outlier_percent: Option<u32>,
    /// `AccessLog`: `Some(None)` for `off`.
    access_log: Option<Option<std::path::PathBuf>>,
    hash_key: Option<super::HashKey>,
    balance_factor: Option<u32>,
    /// `StickyCookie` (its `secret` empty: `StickySecret` fills it in when merged).
    sticky: Option<super::StickyCookie>,
    sticky_secret: Option<String>,
    /// `MaxConnections`, `QueueSize`, `QueueTimeout`, `RetryOn`, `RetryBudget`.
    limits: limits::Given,
    /// `RequestHeader` lines, in order (`None`: none here).
    request_headers: Option<Vec<HeaderRule>>,
    /// `ResponseHeader` lines, in order.
    response_headers: Option<Vec<HeaderRule>>,
}

struct Parser<'a> {
    file: &'a Path,
    resolver: &'a dyn Resolver,
    errors: Vec<ConfigError>,
    resolved: HashMap<(String, u16), Result<SocketAddr, String>>,
}

impl Parser<'_> {
    fn error(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_path_buf(),
            line,
            message,
        });
    }

    /// Groups key lines into sections, parsing each value.
    fn sections(&mut self, tokens: &[Token]) -> Vec<(Kind, Settings)> {
        let mut out: Vec<(Kind, Settings)> = Vec::new();
        for token in tokens {
            match token {
                Token::Section { name, line } => {
                    let kind = if name.eq_ignore_ascii_case(DEFAULTS) {
                        Kind::Defaults
                    } else if name.eq_ignore_ascii_case(ENTRY) {
                        Kind::Entry
                    } else {
                        let hint = match keys::closest(name, [DEFAULTS, ENTRY]) {
                            Some(s) => format!("did you mean [{s}]?"),
                            None => format!("the sections are [{DEFAULTS}] and [{ENTRY}]"),
                        };
                        self.error(*line, format!("unknown section [{name}]; {hint}"));
                        Kind::Ignored
                    };
                    let settings = Settings {
                        line: *line,
                        ..Settings::default()
                    };
                    out.push((kind, settings));
                }
                Token::Pair { key, value, line } => match out.last_mut() {
                    None => self.error(
                        *line,
                        format!(
                            "`{key}` is outside any section; start with [{DEFAULTS}] or [{ENTRY}]"
                        ),
                    ),
                    Some((Kind::Ignored, _)) => {}
                    Some((kind, settings)) => {
                        let kind = *kind;
                        self.pair(kind, settings, key, value, *line);
                    }
                },
            }
        }
        out
    }

    /// Checks one `Key Value` line against the key table and stores its value.
    fn pair(&mut self, kind: Kind, s: &mut Settings, key: &str, value: &str, line: usize) {
        let Some(spec) = keys::find(key) else {
            let hint = keys::suggest(key)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            self.error(line, format!("unknown key `{key}`{hint}"));
            return;
        };
        let allowed = match spec.sections {
            Sections::Both => true,
            Sections::DefaultsOnly => kind == Kind::Defaults,
            Sections::EntryOnly => kind == Kind::Entry,
        };
        if !allowed {
            let only = spec.sections.describe();
            self.error(line, format!("{} is only allowed in [{only}]", spec.name));
            return;
        }
        if !spec.repeatable {
            if let Some(first) = s.seen.get(&spec.id) {
                let msg = format!(
                    "{} is given twice in this section (lines {first} and {line}); keep one",
                    spec.name
                );
                self.error(line, msg);
                return;
            }
        }
        s.seen.entry(spec.id).or_insert(line);
        if let Err(message) = self.value(spec, s, value, line) {
            self.error(line, message);
        }
    }

    fn value(
        &mut self,
        spec: &KeySpec,
        s: &mut Settings,
        value: &str,
        line: usize,
    ) -> Result<(), String> {
        let name = spec.name;
        match spec.id {
            KeyId::Name => s.name = Some(values::name(value)?),
            KeyId::Match => {
                regex::Regex::new(value).map_err(|e| regex_error(value, &e))?;
                s.matches.push(MatchRule {
                    pattern: value.to_string(),
                    line,
                });
            }
            KeyId::MatchHost | KeyId::MatchMethod | KeyId::PathRewrite | KeyId::PathStripPrefix => {
                route_rule(spec.id, &mut s.route, &s.seen, value, line)?
            }
            KeyId::ServerList => {
                let list = s.servers.get_or_insert_with(Vec::new);
                let mut list = std::mem::take(list);
                self.servers(value, &mut list, line);
                s.servers = Some(list);
            }
            KeyId::LoadBalancer => {
                s.balancer = Some(values::balancer_name(value)?.to_string());
            }
            KeyId::AttemptsCount => s.attempts = Some(values::number(name, value, 1)?),
            KeyId::OfflineTimeOut => s.offline = Some(values::seconds(name, value, false)?),
            KeyId::ConnectTimeout => s.connect = Some(values::seconds(name, value, true)?),
            KeyId::ReadTimeout => s.read = Some(values::seconds(name, value, true)?),
            KeyId::UpstreamKeepAlive => s.keepalive_idle = Some(values::number(name, value, 0)?),
            KeyId::UpstreamKeepAliveTimeout => {
                s.keepalive_timeout = Some(values::seconds(name, value, true)?)
            }
            KeyId::UpstreamKeepAliveRequests => {
                s.keepalive_requests = Some(values::number(name, value, 1)?)
            }
            KeyId::TrustedProxies => cidrs(value, s.trusted.get_or_insert_with(Vec::new))?,
            KeyId::ForwardedHeader => s.forwarded = Some(values::on_off(name, value)?),
            KeyId::UpstreamTls => s.tls_all = Some(values::on_off(name, value)?),
            KeyId::UpstreamTlsName => s.tls_name = Some(values::tls_name(name, value)?),
            KeyId::UpstreamTlsVerify => s.tls_verify = Some(values::on_off(name, value)?),
            KeyId::UpstreamCaFile => {
                s.ca_file = Some(pem::read(name, value, self.file, Holds::Authorities)?)
            }
            KeyId::UpstreamCertFile => {
                s.cert_file = Some(pem::read(name, value, self.file, Holds::Chain)?)
            }
            KeyId::UpstreamKeyFile => {
                s.key_file = Some(pem::read(name, value, self.file, Holds::Key)?)
            }
            KeyId::StatisticsUrl => {
                if !value.starts_with('/') || value.contains(char::is_whitespace) {
                    return Err(format!(
                        "StatisticsURL must be one path starting with `/`, not `{value}`"
                    ));
                }
                s.stats_url = Some(value.to_string());
            }
            KeyId::StatisticsAllow => cidrs(value, s.stats_allow.get_or_insert_with(Vec::new))?,
            KeyId::AdminUrl => {
                if !value.starts_with('/') || value.len() < 2 || value.contains(char::is_whitespace)
                {
                    return Err(format!(
                        "AdminURL must be one path starting with `/` (not `/` alone), not `{value}`"
                    ));
                }
                s.admin_url = Some(value.trim_end_matches('/').to_string());
            }
            KeyId::AdminAllow => cidrs(value, s.admin_allow.get_or_insert_with(Vec::new))?,
            KeyId::HealthCheck => s.check = Some(health::probe(value)?),
            KeyId::HealthCheckHost => s.check_host = Some(health::host(value)?),
            KeyId::HealthCheckExpect => s.check_expect = Some(health::expect(value)?),
            KeyId::HealthCheckInterval => {
                let d = values::seconds(name, value, true)?;
                if d < MIN_CHECK_INTERVAL {
                    return Err(format!("{name} must be at least 0.1 seconds, not {value}"));
                }
                s.check_interval = Some(d);
            }
            KeyId::HealthCheckTimeout => {
                s.check_timeout = Some(values::seconds(name, value, true)?)
            }
            KeyId::HealthCheckRise => s.check_rise = Some(values::number(name, value, 1)?),
            KeyId::HealthCheckFall => s.check_fall = Some(values::number(name, value, 1)?),
            KeyId::SlowStart => s.slow_start = Some(values::seconds(name, value, false)?),
            KeyId::OutlierConsecutive5xx => s.outlier_5xx = Some(values::number(name, value, 0)?),
            KeyId::OutlierEjectionTime => {
                s.outlier_time = Some(values::seconds(name, value, true)?)
            }
            KeyId::OutlierMaxEjectionPercent => {
                let n = values::number(name, value, 0)?;
                if n > 100 {
                    return Err(format!("{name} is a percentage (0 to 100), not {n}"));
                }
                s.outlier_percent = Some(n);
            }
            KeyId::AccessLog => s.access_log = Some(values::access_log(value)?),
            KeyId::HashKey => s.hash_key = Some(affinity::hash_key(value)?),
            KeyId::HashBalanceFactor => s.balance_factor = Some(affinity::balance_factor(value)?),
            KeyId::StickyCookie => s.sticky = Some(affinity::sticky_cookie(value)?),
            KeyId::StickySecret => s.sticky_secret = Some(affinity::sticky_secret(value)?),
            KeyId::MaxConnections
            | KeyId::QueueSize
            | KeyId::QueueTimeout
            | KeyId::RetryOn
            | KeyId::RetryBudget => limits::value(spec.id, name, value, line, &mut s.limits)?,
            KeyId::RequestHeader => {
                let rule = headers::rule(name, Direction::Request, value)?;
                s.request_headers.get_or_insert_with(Vec::new).push(rule);
            }
            KeyId::ResponseHeader => {
                let rule = headers::rule(name, Direction::Response, value)?;
                s.response_headers.get_or_insert_with(Vec::new).push(rule);
            }
        }
        Ok(())
    }

    /// Appends the servers of one `ServerList` line; repetition and `weight=N` add weight.
    /// Every bad item of the line is reported (at `line`, each message naming its item), and
    /// the good ones are still taken, so one run of the checker shows them all.
    fn servers(&mut self, value: &str, list: &mut Vec<ServerSpec>, line: usize) {
        /// What the previous item was, for the `weight=N` that may follow it.
        enum Last {
            /// Nothing yet on this line.
            Nothing,
            /// The server at this index of `list`, and whether it already got a `weight=`.
            Server(usize, bool),
            /// An item already reported as wrong: a weight after it says nothing more.
            Bad,
        }
        let mut last = Last::Nothing;
        for token in value.split_whitespace() {
            if token.eq_ignore_ascii_case("backup") {
                match last {
                    Last::Server(i, _) => list[i].backup = true,
                    Last::Nothing => {
                        self.error(line, format!("`{token}` must follow the server it marks"))
                    }
                    Last::Bad => {}
                }
                continue;
            }
            if let Some(w) = values::weight(token) {
                let w = match w {
                    Ok(w) => w,
                    Err(e) => {
                        self.error(line, format!("`{token}`: {e}"));
                        last = Last::Bad;
                        continue;
                    }
                };
                match last {
                    Last::Server(i, false) => {
                        // The occurrence counted 1 already; it now counts `w`.
                        let s = &mut list[i];
                        s.weight = s.weight.saturating_sub(1).saturating_add(w);
                        last = Last::Server(i, true);
                    }
                    Last::Server(_, true) => {
                        self.error(line, format!("`{token}`: a server takes only one weight=N"))
                    }
                    Last::Nothing => {
                        self.error(line, format!("`{token}` must follow the server it weighs"))
                    }
                    Last::Bad => {}
                }
                continue;
            }
            let server = match values::server(token) {
                Ok(server) => server,
                Err(e) => {
                    self.error(line, e);
                    last = Last::Bad;
                    continue;
                }
            };
            let addr = match server.host {
                Host::Ip(ip) => SocketAddr::new(ip, server.port),
                Host::Name(ref name) => match self.resolve(name, server.port, token) {
                    Ok(addr) => addr,
                    Err(e) => {
                        self.error(line, e);
                        last = Last::Bad;
                        continue;
                    }
                },
            };
            let tls = server.scheme == values::Scheme::Https;
            let i = match list.iter().position(|s| s.name == server.name) {
                Some(i) if list[i].tls != tls => {
                    let msg = format!(
                        "server `{token}`: {} is listed both with and without https://; \
                         write it one way",
                        server.name
                    );
                    self.error(line, msg);
                    last = Last::Bad;
                    continue;
                }
                Some(i) => {
                    list[i].weight = list[i].weight.saturating_add(1);
                    i
                }
                None => {
                    list.push(ServerSpec {
                        name: server.name,
                        addr,
                        weight: 1,
                        tls,
                        backup: false,
                    });
                    list.len() - 1
                }
            };
            last = Last::Server(i, false);
        }
    }

    fn resolve(&mut self, host: &str, port: u16, token: &str) -> Result<SocketAddr, String> {
        let resolver = self.resolver;
        self.resolved
            .entry((host.to_string(), port))
            .or_insert_with(|| resolver.resolve(host, port))
            .clone()
            .map_err(|e| format!("cannot resolve server `{token}`: {e}"))
    }

    /// Applies the defaults to every entry and checks what each entry must have.
    fn build(&mut self, sections: Vec<(Kind, Settings)>) -> Config {
        let mut defaults: Option<Settings> = None;
        let mut entries_raw = Vec::new();
        for (kind, s) in sections {
            match kind {
                Kind::Defaults => match &defaults {
                    Some(first) => {
                        let msg = format!(
                            "second [{DEFAULTS}] section (the first is at line {}); merge them",
                            first.line
                        );
                        self.error(s.line, msg);
                    }
                    None => defaults = Some(s),
                },
                Kind::Entry => entries_raw.push(s),
                Kind::Ignored => {}
            }
        }
        let d = defaults.unwrap_or_default();
        if entries_raw.is_empty() {
            self.error(0, format!("no [{ENTRY}] section; nothing would be proxied"));
        }
        let mut entries = Vec::new();
        // Names: as given, else `entry-N`; each once.
        let mut names: HashMap<String, usize> = HashMap::new();
        for (i, s) in entries_raw.iter().enumerate() {
            let name = s.name.clone().unwrap_or_else(|| format!("entry-{}", i + 1));
            if let Some(first) = names.get(&name.to_ascii_lowercase()) {
                let line = s.seen.get(&KeyId::Name).copied().unwrap_or(s.line);
                let msg = format!(
                    "two entries are called `{name}` (the first at line {first}); names must \
                     be unique (entries without a Name are called entry-N)"
                );
                self.error(line, msg);
            } else {
                names.insert(name.to_ascii_lowercase(), s.line);
            }
        }
        for (i, s) in entries_raw.into_iter().enumerate() {
            let name = s.name.clone().unwrap_or_else(|| format!("entry-{}", i + 1));
            // An entry with MatchHost and no Match serves every path of its hosts.
            let routed =
                s.seen.contains_key(&KeyId::Match) || s.seen.contains_key(&KeyId::MatchHost);
            if s.matches.is_empty() && !routed {
                self.error(
                    s.line,
                    format!("[{ENTRY}] has no Match (or MatchHost) line"),
                );
            }
            let servers = s.servers.clone().or_else(|| d.servers.clone());
            let server_lines =
                s.seen.contains_key(&KeyId::ServerList) || d.seen.contains_key(&KeyId::ServerList);
            if servers.as_ref().map_or(true, Vec::is_empty) && !server_lines {
                self.error(
                    s.line,
                    format!("[{ENTRY}] has no ServerList, and [{DEFAULTS}] gives none"),
                );
            }
            self.check_client_certificate(&s, &d);
            self.check_sticky(&s, &d);
            let entry_limits = limits::merge(&s.limits, &d.limits);
            let mut e = merge(s, &d, servers.unwrap_or_default());
            match entry_limits {
                Ok(l) => e.limits = l,
                Err((line, message)) => self.error(line, message),
            }
            e.name = name;
            self.check_tls(&e);
            entries.push(e);
        }
        if self.errors.is_empty() {
            self.check_router(&entries);
        }
        Config {
            file: self.file.to_path_buf(),
            statistics_url: d.stats_url.clone(),
            statistics_allow: d.stats_allow.clone().unwrap_or_default(),
            admin_url: d.admin_url.clone(),
            admin_allow: d.admin_allow.clone().unwrap_or_default(),
            access_log: d.access_log.clone().flatten().map(|path| AccessLogSpec {
                path,
                line: d.seen.get(&KeyId::AccessLog).copied().unwrap_or(0),
            }),
            entries,
        }
    }

    /// `UpstreamCertFile` and `UpstreamKeyFile` go together (given in the entry or in the
    /// defaults).
    fn check_client_certificate(&mut self, s: &Settings, d: &Settings) {
        let line = |id: KeyId| s.seen.get(&id).or_else(|| d.seen.get(&id)).copied();
        match (line(KeyId::UpstreamCertFile), line(KeyId::UpstreamKeyFile)) {
            (Some(l), None) => {
                self.error(l, "UpstreamCertFile needs an UpstreamKeyFile".to_string())
            }
            (None, Some(l)) => {
                self.error(l, "UpstreamKeyFile needs an UpstreamCertFile".to_string())
            }
            _ => {}
        }
    }

    /// `StickyCookie` needs a `StickySecret` (given in the entry or in the defaults).
    fn check_sticky(&mut self, s: &Settings, d: &Settings) {
        let line = |id: KeyId| s.seen.get(&id).or_else(|| d.seen.get(&id)).copied();
        if let (Some(l), None) = (line(KeyId::StickyCookie), line(KeyId::StickySecret)) {
            let msg = format!(
                "StickyCookie needs a StickySecret (one word of at least {} characters) to key \
                 its values",
                affinity::MIN_SECRET
            );
            self.error(l, msg);
        }
    }

    /// An entry with TLS servers: a name TLS can check for each, and a client configuration
    /// that builds (a certificate and key that belong together, usable roots).
    fn check_tls(&mut self, e: &Entry) {
        let mut tls = false;
        for spec in e.servers.iter().filter(|s| e.server_tls(s)) {
            tls = true;
            if let Err(message) = super::tls::server_name(e, spec) {
                self.error(e.line, message);
            }
        }
        if tls && self.errors.is_empty() {
            if let Err(message) = super::tls::client_config(&e.tls) {
                self.error(e.line, message);
            }
        }
    }

    /// Every regex compiled alone; this catches an entry whose set is too big together.
    fn check_router(&mut self, entries: &[Entry]) {
        for e in entries {
            if let Err(err) = regex::RegexSet::new(e.matches.iter().map(|m| m.pattern.as_str())) {
                let msg = format!(
                    "the Match rules of this entry cannot be compiled together: {}",
                    first_line(&err)
                );
                self.error(e.line, msg);
            }
        }
    }
}

/// Builds the entry: its own value, else the defaults' value, else the built-in default.
fn merge(s: Settings, d: &Settings, servers: Vec<ServerSpec>) -> Entry {
    let mut e = Entry::with_defaults(s.line, s.matches, servers);
    e.route = s.route;
    if let Some(b) = s.balancer.or_else(|| d.balancer.clone()) {
        e.balancer = b;
    }
    e.attempts_count = s.attempts.or(d.attempts).unwrap_or(e.attempts_count);
    e.offline_timeout = s.offline.or(d.offline).unwrap_or(e.offline_timeout);
    e.connect_timeout = s.connect.or(d.connect).unwrap_or(e.connect_timeout);
    e.read_timeout = s.read.or(d.read).unwrap_or(e.read_timeout);
    e.keepalive_idle = s
        .keepalive_idle
        .or(d.keepalive_idle)
        .unwrap_or(e.keepalive_idle);
    e.keepalive_timeout = s
        .keepalive_timeout
        .or(d.keepalive_timeout)
        .unwrap_or(e.keepalive_timeout);
    e.keepalive_requests = s
        .keepalive_requests
        .or(d.keepalive_requests)
        .unwrap_or(e.keepalive_requests);
    e.trusted_proxies = s.trusted.or_else(|| d.trusted.clone()).unwrap_or_default();
    e.forwarded_header = s.forwarded.or(d.forwarded).unwrap_or(e.forwarded_header);
    let t = &mut e.tls;
    t.all_servers = s.tls_all.or(d.tls_all).unwrap_or(t.all_servers);
    t.name = s.tls_name.or_else(|| d.tls_name.clone());
    t.verify = s.tls_verify.or(d.tls_verify).unwrap_or(t.verify);
    t.ca_file = s.ca_file.or_else(|| d.ca_file.clone());
    t.cert_file = s.cert_file.or_else(|| d.cert_file.clone());
    t.key_file = s.key_file.or_else(|| d.key_file.clone());
    let probe = s.check.clone().or_else(|| d.check.clone()).flatten();
    e.health_check = probe.map(|probe| {
        let mut c = HealthCheck::with_defaults(probe);
        c.host = s.check_host.clone().or_else(|| d.check_host.clone());
        c.expect = s
            .check_expect
            .clone()
            .or_else(|| d.check_expect.clone())
            .unwrap_or(c.expect);
        c.interval = s.check_interval.or(d.check_interval).unwrap_or(c.interval);
        c.timeout = s.check_timeout.or(d.check_timeout).unwrap_or(c.timeout);
        c.rise = s.check_rise.or(d.check_rise).unwrap_or(c.rise);
        c.fall = s.check_fall.or(d.check_fall).unwrap_or(c.fall);
        c
    });
    e.slow_start = s.slow_start.or(d.slow_start).unwrap_or(e.slow_start);
    let o = &mut e.outlier;
    o.consecutive_5xx = s.outlier_5xx.or(d.outlier_5xx).unwrap_or(o.consecutive_5xx);
    o.ejection_time = s.outlier_time.or(d.outlier_time).unwrap_or(o.ejection_time);
    o.max_ejection_percent = s
        .outlier_percent
        .or(d.outlier_percent)
        .unwrap_or(o.max_ejection_percent);
    let a = &mut e.affinity;
    a.hash_key = s
        .hash_key
        .or_else(|| d.hash_key.clone())
        .unwrap_or_default();
    a.balance_factor = s.balance_factor.or(d.balance_factor).unwrap_or(0);
    let secret = s.sticky_secret.or_else(|| d.sticky_secret.clone());
    a.sticky = s.sticky.or_else(|| d.sticky.clone()).map(|mut c| {
        c.secret = secret.unwrap_or_default();
        c
    });
    // An entry's own header rules replace the defaults' (of the same direction), as every
    // other key given in both places does.
    let rules = |own: Option<Vec<HeaderRule>>, default: &Option<Vec<HeaderRule>>| {
        HeaderRules::new(own.or_else(|| default.clone()).unwrap_or_default())
    };
    e.request_headers = rules(s.request_headers, &d.request_headers);
    e.response_headers = rules(s.response_headers, &d.response_headers);
    e
}

fn cidrs(value: &str, out: &mut Vec<Cidr>) -> Result<(), String> {
    for token in value.split_whitespace() {
        out.push(values::cidr(token)?);
    }
    Ok(())
}

/// Stores a `MatchHost`, `MatchMethod`, `PathRewrite` or `PathStripPrefix` value
/// (`seen` already holds this line: an entry takes one of the two rewrite keys).
fn route_rule(
    id: KeyId,
    route: &mut super::RouteRules,
    seen: &HashMap<KeyId, usize>,
    value: &str,
    line: usize,
) -> Result<(), String> {
    use super::route_rules as r;
    let name = keys::spec(id).name;
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() {
        return Err(format!("{name} needs a value"));
    }
    match id {
        KeyId::MatchHost => {
            for word in words {
                let pattern = r::host_pattern(word)?;
                route.hosts.push(super::HostRule { pattern, line });
            }
        }
        KeyId::MatchMethod => {
            for word in words {
                route.methods.push(r::method(word)?);
            }
        }
        _ => {
            let other = if id == KeyId::PathRewrite {
                KeyId::PathStripPrefix
            } else {
                KeyId::PathRewrite
            };
            if let Some(first) = seen.get(&other) {
                return Err(format!(
                    "{name} and {} (line {first}) both rewrite the path; keep one",
                    keys::spec(other).name
                ));
            }
            let rewrite = if id == KeyId::PathRewrite {
                r::path_rewrite(value)?
            } else {
                r::strip_prefix(value)?
            };
            route.rewrite = Some(super::RewriteRule { rewrite, line });
        }
    }
    Ok(())
}

/// `invalid regex` message with the informative line of the regex crate's error: for a syntax
/// error that is the `error: ...` line (its first line is only "regex parse error:").
fn regex_error(pattern: &str, e: &regex::Error) -> String {
    format!("invalid regex `{pattern}`: {}", first_line(e))
}

fn first_line(e: &regex::Error) -> String {
    let text = e.to_string();
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .or_else(|| text.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    line.to_string()
}
