//! The one table of configuration keys: name, aliases, value type, default, allowed sections
//! and a one-line doc. The parser, the checker's `--help` and the "did you mean" suggestions
//! are all generated from [`KEYS`].

/// Identifies a key independently of the spelling used in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyId {
    /// `Name NAME`.
    Name,
    /// `Match REGEX`.
    Match,
    /// `MatchHost HOST|*.DOMAIN|~REGEX ...`.
    MatchHost,
    /// `MatchMethod METHOD ...`.
    MatchMethod,
    /// `PathRewrite REGEX REPLACEMENT`.
    PathRewrite,
    /// `PathStripPrefix /PREFIX`.
    PathStripPrefix,
    /// `ServerList host:port [weight=N] ...`.
    ServerList,
    /// `LoadBalancer NAME` (alias `LoadBalance`).
    LoadBalancer,
    /// `AttemptsCount N`.
    AttemptsCount,
    /// `OfflineTimeOut SECONDS`.
    OfflineTimeOut,
    /// `ConnectTimeout SECONDS`.
    ConnectTimeout,
    /// `ReadTimeout SECONDS`.
    ReadTimeout,
    /// `UpstreamKeepAlive N`.
    UpstreamKeepAlive,
    /// `UpstreamKeepAliveTimeout SECONDS`.
    UpstreamKeepAliveTimeout,
    /// `UpstreamKeepAliveRequests N`.
    UpstreamKeepAliveRequests,
    /// `TrustedProxies CIDR ...`.
    TrustedProxies,
    /// `ForwardedHeader on|off`.
    ForwardedHeader,
    /// `UpstreamTls on|off`.
    UpstreamTls,
    /// `UpstreamTlsName NAME`.
    UpstreamTlsName,
    /// `UpstreamTlsVerify on|off`.
    UpstreamTlsVerify,
    /// `UpstreamCaFile PATH`.
    UpstreamCaFile,
    /// `UpstreamCertFile PATH`.
    UpstreamCertFile,
    /// `UpstreamKeyFile PATH`.
    UpstreamKeyFile,
    /// `StatisticsURL /path`.
    StatisticsUrl,
    /// `StatisticsAllow CIDR ...`.
    StatisticsAllow,
    /// `AdminURL /path`.
    AdminUrl,
    /// `AdminAllow CIDR ...`.
    AdminAllow,
    /// `HealthCheck GET /path | HEAD /path | tcp | off`.
    HealthCheck,
    /// `HealthCheckHost HOST`.
    HealthCheckHost,
    /// `HealthCheckExpect STATUSES [body TEXT]`.
    HealthCheckExpect,
    /// `HealthCheckInterval SECONDS`.
    HealthCheckInterval,
    /// `HealthCheckTimeout SECONDS`.
    HealthCheckTimeout,
    /// `HealthCheckRise N`.
    HealthCheckRise,
    /// `HealthCheckFall N`.
    HealthCheckFall,
    /// `SlowStart SECONDS`.
    SlowStart,
    /// `OutlierConsecutive5xx N`.
    OutlierConsecutive5xx,
    /// `OutlierEjectionTime SECONDS`.
    OutlierEjectionTime,
    /// `OutlierMaxEjectionPercent PERCENT`.
    OutlierMaxEjectionPercent,
    /// `AccessLog FILE|off`.
    AccessLog,
    /// `HashKey source|path|uri|header NAME|cookie NAME|query NAME`.
    HashKey,
    /// `HashBalanceFactor PERCENT`.
    HashBalanceFactor,
    /// `StickyCookie NAME [attributes]`.
    StickyCookie,
    /// `StickySecret SECRET`.
    StickySecret,
    /// `MaxConnections N`.
    MaxConnections,
    /// `QueueSize N`.
    QueueSize,
    /// `QueueTimeout SECONDS`.
    QueueTimeout,
    /// `RetryOn KIND ...`.
    RetryOn,
    /// `RetryBudget PERCENT`.
    RetryBudget,
    /// `RequestHeader set|add|remove NAME [VALUE]`.
    RequestHeader,
    /// `ResponseHeader set|add|remove NAME [VALUE]`.
    ResponseHeader,
}

/// Which sections a key may appear in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sections {
    /// Only `[PROXY_DEFAULTS]`.
    DefaultsOnly,
    /// Only `[PROXY_ENTRY]`.
    EntryOnly,
    /// Either; a value in `[PROXY_DEFAULTS]` is copied into each entry that lacks the key.
    Both,
}

impl Sections {
    /// How the checker's help names these sections.
    pub fn describe(self) -> &'static str {
        match self {
            Sections::DefaultsOnly => "PROXY_DEFAULTS",
            Sections::EntryOnly => "PROXY_ENTRY",
            Sections::Both => "PROXY_DEFAULTS, PROXY_ENTRY",
        }
    }
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    /// Which key this is.
    pub id: KeyId,
    /// The canonical spelling (keys compare case-insensitively).
    pub name: &'static str,
    /// Other accepted spellings.
    pub aliases: &'static [&'static str],
    /// The value's shape, as shown in help (e.g. `SECONDS`).
    pub value: &'static str,
    /// The default when neither the entry nor the defaults give it, as text.
    pub default: &'static str,
    /// Where the key may appear.
    pub sections: Sections,
    /// Whether the key may be given on several lines of one section (their values add up).
    pub repeatable: bool,
    /// One-line description.
    pub doc: &'static str,
}

/// Every key the configuration accepts, in the order the help lists them.
pub static KEYS: &[KeySpec] = &[
    KeySpec {
        id: KeyId::Name,
        name: "Name",
        aliases: &[],
        value: "NAME",
        default: "(entry-N: its position)",
        sections: Sections::EntryOnly,
        repeatable: false,
        doc: "what logs, statistics, metrics and the admin URLs call the entry (letters, digits, \
              `.`, `_`, `-`; unique): a named entry keeps its statistics across reloads and \
              reorderings",
    },
    KeySpec {
        id: KeyId::Match,
        name: "Match",
        aliases: &[],
        value: "REGEX",
        default: "(required)",
        sections: Sections::EntryOnly,
        repeatable: true,
        doc: "request paths (decoded, without query) this entry serves; the first entry that matches wins",
    },
    KeySpec {
        id: KeyId::MatchHost,
        name: "MatchHost",
        aliases: &[],
        value: "HOST|*.DOMAIN|~REGEX ...",
        default: "(any host)",
        sections: Sections::EntryOnly,
        repeatable: true,
        doc: "hosts this entry serves, from the Host header without its port or a trailing dot, \
              case-insensitive: `api.example.com` exactly, `*.example.org` any subdomain (not \
              example.org itself), `~REGEX` a regex; an entry serves a request only when its \
              MatchHost (if any), MatchMethod (if any) and Match rules all accept it; with \
              MatchHost and no Match, every path of those hosts",
    },
    KeySpec {
        id: KeyId::MatchMethod,
        name: "MatchMethod",
        aliases: &[],
        value: "METHOD ...",
        default: "(any method)",
        sections: Sections::EntryOnly,
        repeatable: true,
        doc: "request methods this entry serves (`GET HEAD`), compared exactly (methods are \
              case-sensitive)",
    },
    KeySpec {
        id: KeyId::PathRewrite,
        name: "PathRewrite",
        aliases: &[],
        value: "REGEX REPLACEMENT",
        default: "(none)",
        sections: Sections::EntryOnly,
        repeatable: false,
        doc: "the target sent to the backend: the first match of REGEX in the path as the \
              client sent it (percent-encoded) replaced by REPLACEMENT, where $1, ${1}, $name, \
              ${name} insert a capture group (each must exist) and $$ is `$`; the query is \
              kept, a result without a leading `/` gets one, routing still uses the original \
              path; not with PathStripPrefix",
    },
    KeySpec {
        id: KeyId::PathStripPrefix,
        name: "PathStripPrefix",
        aliases: &[],
        value: "/PREFIX",
        default: "(none)",
        sections: Sections::EntryOnly,
        repeatable: false,
        doc: "the target sent to the backend loses this literal prefix at a segment boundary: \
              with /api, /api/x is sent as /x and /api as /, /apix as it came; the query is \
              kept; not with PathRewrite",
    },
    KeySpec {
        id: KeyId::ServerList,
        name: "ServerList",
        aliases: &[],
        value: "HOST:PORT [weight=N] [backup] ...",
        default: "(required)",
        sections: Sections::Both,
        repeatable: true,
        doc: "backend servers; repeating a server or `weight=N` after it adds weight; \
              `backup` after it: used only while no other server is usable; \
              more ServerList lines add servers",
    },
    KeySpec {
        id: KeyId::LoadBalancer,
        name: "LoadBalancer",
        aliases: &["LoadBalance"],
        value: "NAME",
        default: "FirstAlive",
        sections: Sections::Both,
        repeatable: false,
        doc: "how requests are spread over the servers (see the balancer list)",
    },
    KeySpec {
        id: KeyId::AttemptsCount,
        name: "AttemptsCount",
        aliases: &[],
        value: "N",
        default: "2",
        sections: Sections::Both,
        repeatable: false,
        doc: "consecutive failures (>= 1) that take a server offline",
    },
    KeySpec {
        id: KeyId::OfflineTimeOut,
        name: "OfflineTimeOut",
        aliases: &[],
        value: "SECONDS",
        default: "10",
        sections: Sections::Both,
        repeatable: false,
        doc: "how long an offline server is skipped; 0 disables high availability",
    },
    KeySpec {
        id: KeyId::ConnectTimeout,
        name: "ConnectTimeout",
        aliases: &[],
        value: "SECONDS",
        default: "3",
        sections: Sections::Both,
        repeatable: false,
        doc: "longest wait for a backend connection (> 0, decimals allowed)",
    },
    KeySpec {
        id: KeyId::ReadTimeout,
        name: "ReadTimeout",
        aliases: &[],
        value: "SECONDS",
        default: "60",
        sections: Sections::Both,
        repeatable: false,
        doc: "longest backend silence while a response is expected (> 0, decimals allowed)",
    },
    KeySpec {
        id: KeyId::UpstreamKeepAlive,
        name: "UpstreamKeepAlive",
        aliases: &[],
        value: "N",
        default: "256",
        sections: Sections::Both,
        repeatable: false,
        doc: "idle backend connections kept per server and worker (a burst's extra ones close within 0.1 s); 0 disables reuse",
    },
    KeySpec {
        id: KeyId::UpstreamKeepAliveTimeout,
        name: "UpstreamKeepAliveTimeout",
        aliases: &[],
        value: "SECONDS",
        default: "60",
        sections: Sections::Both,
        repeatable: false,
        doc: "how long an idle backend connection is kept (> 0)",
    },
    KeySpec {
        id: KeyId::UpstreamKeepAliveRequests,
        name: "UpstreamKeepAliveRequests",
        aliases: &[],
        value: "N",
        default: "1000",
        sections: Sections::Both,
        repeatable: false,
        doc: "requests sent on one backend connection before it is closed (>= 1)",
    },
    KeySpec {
        id: KeyId::TrustedProxies,
        name: "TrustedProxies",
        aliases: &[],
        value: "CIDR ...",
        default: "(none)",
        sections: Sections::Both,
        repeatable: true,
        doc: "clients whose forwarding headers are kept and appended to; SourceHash looks past them",
    },
    KeySpec {
        id: KeyId::ForwardedHeader,
        name: "ForwardedHeader",
        aliases: &[],
        value: "on|off",
        default: "off",
        sections: Sections::Both,
        repeatable: false,
        doc: "add an RFC 7239 Forwarded header to proxied requests",
    },
    KeySpec {
        id: KeyId::UpstreamTls,
        name: "UpstreamTls",
        aliases: &[],
        value: "on|off",
        default: "off",
        sections: Sections::Both,
        repeatable: false,
        doc: "speak TLS to every server of the entry (https://HOST:PORT in ServerList does it \
              for one server)",
    },
    KeySpec {
        id: KeyId::UpstreamTlsName,
        name: "UpstreamTlsName",
        aliases: &[],
        value: "NAME",
        default: "(each server's host as written)",
        sections: Sections::Both,
        repeatable: false,
        doc: "the name sent to TLS servers (SNI) and checked in their certificates",
    },
    KeySpec {
        id: KeyId::UpstreamTlsVerify,
        name: "UpstreamTlsVerify",
        aliases: &[],
        value: "on|off",
        default: "on",
        sections: Sections::Both,
        repeatable: false,
        doc: "verify TLS servers' certificates; off accepts any certificate (a warning says so)",
    },
    KeySpec {
        id: KeyId::UpstreamCaFile,
        name: "UpstreamCaFile",
        aliases: &[],
        value: "PATH",
        default: "(the system's trust roots)",
        sections: Sections::Both,
        repeatable: false,
        doc: "PEM file of the certificate authorities TLS servers are verified against",
    },
    KeySpec {
        id: KeyId::UpstreamCertFile,
        name: "UpstreamCertFile",
        aliases: &[],
        value: "PATH",
        default: "(none)",
        sections: Sections::Both,
        repeatable: false,
        doc: "PEM certificate chain presented to TLS servers that ask for one (with UpstreamKeyFile)",
    },
    KeySpec {
        id: KeyId::UpstreamKeyFile,
        name: "UpstreamKeyFile",
        aliases: &[],
        value: "PATH",
        default: "(none)",
        sections: Sections::Both,
        repeatable: false,
        doc: "PEM private key of UpstreamCertFile",
    },
    KeySpec {
        id: KeyId::StatisticsUrl,
        name: "StatisticsURL",
        aliases: &[],
        value: "/PATH",
        default: "(off)",
        sections: Sections::DefaultsOnly,
        repeatable: false,
        doc: "request path answered with the plugin's statistics",
    },
    KeySpec {
        id: KeyId::StatisticsAllow,
        name: "StatisticsAllow",
        aliases: &[],
        value: "CIDR ...",
        default: "(loopback only)",
        sections: Sections::DefaultsOnly,
        repeatable: true,
        doc: "clients allowed to read the statistics (loopback always is)",
    },
    KeySpec {
        id: KeyId::AdminUrl,
        name: "AdminURL",
        aliases: &[],
        value: "/PATH",
        default: "(off)",
        sections: Sections::DefaultsOnly,
        repeatable: false,
        doc: "path prefix of the admin endpoint: GET PATH/servers, POST \
              PATH/servers/ENTRY/HOST:PORT (state=ready|drain|maint, weight=N), POST \
              PATH/reload; POSTs need the header X-Proxy-Admin: 1",
    },
    KeySpec {
        id: KeyId::AdminAllow,
        name: "AdminAllow",
        aliases: &[],
        value: "CIDR ...",
        default: "(loopback only)",
        sections: Sections::DefaultsOnly,
        repeatable: true,
        doc: "clients allowed to use the admin endpoint (loopback always is)",
    },
    KeySpec {
        id: KeyId::HealthCheck,
        name: "HealthCheck",
        aliases: &[],
        value: "GET /PATH | HEAD /PATH | tcp | off",
        default: "off",
        sections: Sections::Both,
        repeatable: false,
        doc: "active health checks: each server is probed every HealthCheckInterval (one \
              probe for the whole plugin, never a user request); tcp only connects",
    },
    KeySpec {
        id: KeyId::HealthCheckHost,
        name: "HealthCheckHost",
        aliases: &[],
        value: "HOST",
        default: "(the server's host:port)",
        sections: Sections::Both,
        repeatable: false,
        doc: "Host header of the probe",
    },
    KeySpec {
        id: KeyId::HealthCheckExpect,
        name: "HealthCheckExpect",
        aliases: &[],
        value: "STATUS[-STATUS][,...] [body TEXT]",
        default: "200-399",
        sections: Sections::Both,
        repeatable: false,
        doc: "status codes or ranges that pass, and text the body must contain",
    },
    KeySpec {
        id: KeyId::HealthCheckInterval,
        name: "HealthCheckInterval",
        aliases: &[],
        value: "SECONDS",
        default: "2",
        sections: Sections::Both,
        repeatable: false,
        doc: "time between two probes of one server (>= 0.1; each is up to 10 % earlier, \
              jittered)",
    },
    KeySpec {
        id: KeyId::HealthCheckTimeout,
        name: "HealthCheckTimeout",
        aliases: &[],
        value: "SECONDS",
        default: "1",
        sections: Sections::Both,
        repeatable: false,
        doc: "connect and response deadline of one probe (> 0)",
    },
    KeySpec {
        id: KeyId::HealthCheckRise,
        name: "HealthCheckRise",
        aliases: &[],
        value: "N",
        default: "2",
        sections: Sections::Both,
        repeatable: false,
        doc: "consecutive passing probes that bring a down server up (>= 1)",
    },
    KeySpec {
        id: KeyId::HealthCheckFall,
        name: "HealthCheckFall",
        aliases: &[],
        value: "N",
        default: "3",
        sections: Sections::Both,
        repeatable: false,
        doc: "consecutive failing probes that take an up server down (>= 1)",
    },
    KeySpec {
        id: KeyId::SlowStart,
        name: "SlowStart",
        aliases: &[],
        value: "SECONDS",
        default: "0",
        sections: Sections::Both,
        repeatable: false,
        doc: "a server that comes back (or is new) ramps from 10 % to its full weight over \
              this long (0: off); weighted balancers only (not SourceHash, Naive, FirstAlive)",
    },
    KeySpec {
        id: KeyId::OutlierConsecutive5xx,
        name: "OutlierConsecutive5xx",
        aliases: &[],
        value: "N",
        default: "0",
        sections: Sections::Both,
        repeatable: false,
        doc: "consecutive 5xx responses that eject a server for OutlierEjectionTime (0: off)",
    },
    KeySpec {
        id: KeyId::OutlierEjectionTime,
        name: "OutlierEjectionTime",
        aliases: &[],
        value: "SECONDS",
        default: "30",
        sections: Sections::Both,
        repeatable: false,
        doc: "the first ejection; each repeat ejects for one more such period, at most 10 (> 0)",
    },
    KeySpec {
        id: KeyId::OutlierMaxEjectionPercent,
        name: "OutlierMaxEjectionPercent",
        aliases: &[],
        value: "PERCENT",
        default: "10",
        sections: Sections::Both,
        repeatable: false,
        doc: "most of an entry's servers ejected at once, in % (0 to 100; one may always be \
              ejected when there are two or more, never the last usable one)",
    },
    KeySpec {
        id: KeyId::AccessLog,
        name: "AccessLog",
        aliases: &[],
        value: "FILE|off",
        default: "(off)",
        sections: Sections::DefaultsOnly,
        repeatable: false,
        doc: "absolute path of the access log: one line per proxied request, nginx's combined \
              format plus upstream address, status, times, attempts and bytes (docs/logs.md); \
              written off the workers, reopened by every reload",
    },
    KeySpec {
        id: KeyId::HashKey,
        name: "HashKey",
        aliases: &[],
        value: "source | path | uri | header NAME | cookie NAME | query NAME",
        default: "source",
        sections: Sections::Both,
        repeatable: false,
        doc: "what SourceHash maps to a server: the client address, the path (no query), \
              the whole target, or the first header, cookie or query parameter of that name \
              (as sent); a request without it (or with it empty) hashes on the client address",
    },
    KeySpec {
        id: KeyId::HashBalanceFactor,
        name: "HashBalanceFactor",
        aliases: &[],
        value: "PERCENT",
        default: "0",
        sections: Sections::Both,
        repeatable: false,
        doc: "SourceHash with bounded loads: a server takes a request only while its requests \
              in flight stay within PERCENT of the mean (by weight); a key whose server is \
              full goes to the next server of its own hash sequence (0: off, else > 100)",
    },
    KeySpec {
        id: KeyId::StickyCookie,
        name: "StickyCookie",
        aliases: &[],
        value: "NAME [Secure] [HttpOnly] [SameSite=Lax|Strict|None] [Max-Age=N] [Path=/P] [Domain=D]",
        default: "(off)",
        sections: Sections::Both,
        repeatable: false,
        doc: "sticky sessions: the proxy sets cookie NAME naming the server that answered (a \
              MAC keyed with StickySecret of its host:port), and a request carrying it goes \
              to that server while it is usable; Path defaults to /; needs StickySecret",
    },
    KeySpec {
        id: KeyId::StickySecret,
        name: "StickySecret",
        aliases: &[],
        value: "SECRET",
        default: "(none)",
        sections: Sections::Both,
        repeatable: false,
        doc: "the key of StickyCookie values (one word of at least 32 characters); every \
              instance with the same secret and servers reads the others' cookies",
    },
    KeySpec {
        id: KeyId::MaxConnections,
        name: "MaxConnections",
        aliases: &[],
        value: "N",
        default: "0",
        sections: Sections::Both,
        repeatable: false,
        doc: "requests in flight per server, across all workers (0: unlimited); when every \
              server is at it, requests wait in the queue (QueueSize) or get 503 with Retry-After",
    },
    KeySpec {
        id: KeyId::QueueSize,
        name: "QueueSize",
        aliases: &[],
        value: "N",
        default: "0",
        sections: Sections::Both,
        repeatable: false,
        doc: "requests of the entry that may wait for a server under MaxConnections (needs \
              it); beyond, 503 with Retry-After (the QueueTimeout rounded up)",
    },
    KeySpec {
        id: KeyId::QueueTimeout,
        name: "QueueTimeout",
        aliases: &[],
        value: "SECONDS",
        default: "5",
        sections: Sections::Both,
        repeatable: false,
        doc: "longest wait in the queue (> 0, decimals allowed); then 503 with Retry-After",
    },
    KeySpec {
        id: KeyId::RetryOn,
        name: "RetryOn",
        aliases: &[],
        value: "none | connect reset-before-response 502 503 504",
        default: "connect reset-before-response",
        sections: Sections::Both,
        repeatable: false,
        doc: "failures tried again on another server: connect (refused, timed out, TLS), \
              reset-before-response, and for idempotent methods a 502/503/504 from the backend \
              (at most AttemptsCount tries then); none: no retry",
    },
    KeySpec {
        id: KeyId::RetryBudget,
        name: "RetryBudget",
        aliases: &[],
        value: "PERCENT",
        default: "20",
        sections: Sections::Both,
        repeatable: false,
        doc: "retries of a 502/503/504 (RetryOn) in flight at most this % of the entry's \
              requests in flight, 3 always allowed (0 to 100; 100: no budget); a refused retry \
              passes the answer on; connection failures fail over outside the budget",
    },
    KeySpec {
        id: KeyId::RequestHeader,
        name: "RequestHeader",
        aliases: &[],
        value: "set|add|remove NAME [VALUE]",
        default: "(none)",
        sections: Sections::Both,
        repeatable: true,
        doc: "header rules for the request the backend gets, applied in file order after the \
              proxy's own rewrite: set replaces every field of NAME, add appends one, remove \
              drops them all; VALUE may use $client_addr $entry $server $request_id ($$ for \
              $); an entry's lines replace the defaults' lines; hop-by-hop, framing, \
              forwarding headers and Expect are refused, Host may only be set",
    },
    KeySpec {
        id: KeyId::ResponseHeader,
        name: "ResponseHeader",
        aliases: &[],
        value: "set|add|remove NAME [VALUE]",
        default: "(none)",
        sections: Sections::Both,
        repeatable: true,
        doc: "header rules for the backend's response the client gets (not the proxy's own \
              error pages), as RequestHeader: e.g. `remove Server`; hop-by-hop and framing \
              headers are refused",
    },
];

/// The key whose name or alias equals `name`, ignoring ASCII case.
pub fn find(name: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| {
        k.name.eq_ignore_ascii_case(name) || k.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// The row for `id`.
pub fn spec(id: KeyId) -> &'static KeySpec {
    // Every KeyId has a row; the table test checks it. Fall back to the first row rather
    // than panic.
    KEYS.iter().find(|k| k.id == id).unwrap_or(&KEYS[0])
}

/// The known key closest to `name` (edit distance, case-insensitive), if close enough to be a
/// plausible typo.
pub fn suggest(name: &str) -> Option<&'static str> {
    let words = KEYS
        .iter()
        .flat_map(|k| std::iter::once(k.name).chain(k.aliases.iter().copied()));
    let best = closest(name, words)?;
    // Suggest the canonical name even when the typo is nearest to an alias.
    find(best).map(|k| k.name)
}

/// The candidate closest to `word` by case-insensitive edit distance, if the distance is at
/// most a third of the word's length (and at least 2 is always allowed).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The key list for the checker's `--help`, one key per line.
pub fn help_text() -> String {
    let mut out = String::new();
    for k in KEYS {
        let aliases = if k.aliases.is_empty() {
            String::new()
        } else {
            format!(" (also {})", k.aliases.join(", "))
        };
        out.push_str(&format!(
            "  {} {}{}\n      {}\n      default {}; in {}{}\n",
            k.name,
            k.value,
            aliases,
            k.doc,
            k.default,
            k.sections.describe(),
            if k.repeatable { "; repeatable" } else { "" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_has_one_row() {
        for k in KEYS {
            assert_eq!(KEYS.iter().filter(|o| o.id == k.id).count(), 1);
            assert_eq!(spec(k.id).name, k.name);
        }
    }

    #[test]
    fn find_is_case_insensitive_and_knows_aliases() {
        assert_eq!(find("match").map(|k| k.id), Some(KeyId::Match));
        assert_eq!(find("LOADBALANCE").map(|k| k.id), Some(KeyId::LoadBalancer));
        assert!(find("Nope").is_none());
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("Matc"), Some("Match"));
        assert_eq!(suggest("ServerLst"), Some("ServerList"));
        assert_eq!(suggest("LoadBalanse"), Some("LoadBalancer"));
        assert_eq!(suggest("OfflineTimeout"), Some("OfflineTimeOut"));
        assert_eq!(suggest("Completely"), None);
    }

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", "abc"), 0);
    }

    #[test]
    fn help_lists_every_key() {
        let h = help_text();
        for k in KEYS {
            assert!(h.contains(k.name));
        }
        assert!(h.contains("LoadBalance"));
    }
}
