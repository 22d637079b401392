//! The validated configuration model shared by routing, balancing, relay and statistics.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A whole validated `proxy_reverse.conf`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The file it was read from (for messages).
    pub file: PathBuf,
    /// `StatisticsURL` from `[PROXY_DEFAULTS]`: the request path answered with statistics.
    pub statistics_url: Option<String>,
    /// `StatisticsAllow`: clients allowed to read statistics (loopback is always allowed).
    pub statistics_allow: Vec<Cidr>,
    /// `AdminURL` from `[PROXY_DEFAULTS]`: the path prefix of the admin endpoint (off when
    /// `None`).
    pub admin_url: Option<String>,
    /// `AdminAllow`: clients allowed to use the admin endpoint (loopback is always allowed).
    pub admin_allow: Vec<Cidr>,
    /// `AccessLog` from `[PROXY_DEFAULTS]`: where the access log goes (off when `None`).
    pub access_log: Option<AccessLogSpec>,
    /// The `[PROXY_ENTRY]` sections in file order, defaults already applied.
    pub entries: Vec<Entry>,
}

impl Config {
    /// What the file sets up, in one phrase for logs and the checker:
    /// `2 entries, 5 servers, statistics at /proxy-status` (or `statistics off`).
    pub fn summary(&self) -> String {
        let n = self.entries.len();
        let servers: usize = self.entries.iter().map(|e| e.servers.len()).sum();
        format!(
            "{n} {}, {servers} {}, {}",
            if n == 1 { "entry" } else { "entries" },
            if servers == 1 { "server" } else { "servers" },
            match &self.statistics_url {
                Some(url) => format!("statistics at {url}"),
                None => "statistics off".to_string(),
            }
        )
    }
}

/// `AccessLog FILE`: the file, and the line that names it (for messages about it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogSpec {
    /// The file (an absolute path).
    pub path: PathBuf,
    /// The line of the `AccessLog` key.
    pub line: usize,
}

/// One `[PROXY_ENTRY]`: which requests it serves and where they go.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// `Name`: what logs, statistics, metrics and admin URLs call the entry (unique; the
    /// default is `entry-N`, N its 1-based position).
    pub name: String,
    /// Line of the `[PROXY_ENTRY]` header.
    pub line: usize,
    /// `Match` regexes, tested against the request path (first entry with any match wins).
    pub matches: Vec<MatchRule>,
    /// `MatchHost`, `MatchMethod`, `PathRewrite` / `PathStripPrefix` (all empty by default).
    pub route: super::route_rules::RouteRules,
    /// The servers, each once, with its weight (repetition in `ServerList` adds weight).
    pub servers: Vec<ServerSpec>,
    /// Canonical balancer name from the balancer registry (e.g. `RoundRobin`).
    pub balancer: String,
    /// `AttemptsCount`: consecutive failures that take a server offline.
    pub attempts_count: u32,
    /// `OfflineTimeOut`: how long an offline server is skipped; zero disables high availability.
    pub offline_timeout: Duration,
    /// `ConnectTimeout`: how long a backend connect may take.
    pub connect_timeout: Duration,
    /// `ReadTimeout`: the longest silence of a backend while a response is expected.
    pub read_timeout: Duration,
    /// Idle upstream connections kept per server and worker (0 disables reuse).
    pub keepalive_idle: u32,
    /// How long an idle upstream connection is kept.
    pub keepalive_timeout: Duration,
    /// Requests sent on one upstream connection before it is retired.
    pub keepalive_requests: u32,
    /// Clients whose `X-Forwarded-For` is trusted and appended to rather than replaced.
    pub trusted_proxies: Vec<Cidr>,
    /// Whether to add an RFC 7239 `Forwarded` header.
    pub forwarded_header: bool,
    /// `HealthCheck` and the keys that shape it: how the entry's servers are probed
    /// (`None`: no active checks, only passive health).
    pub health_check: Option<HealthCheck>,
    /// `SlowStart`: how long a server that comes back ramps up to its full weight (zero:
    /// no ramp).
    pub slow_start: Duration,
    /// `OutlierConsecutive5xx`, `OutlierEjectionTime`, `OutlierMaxEjectionPercent`.
    pub outlier: OutlierDetection,
    /// How the entry's TLS servers are spoken to (`UpstreamTls…` keys).
    pub tls: TlsSettings,
    /// `HashKey`, `HashBalanceFactor`, `StickyCookie` and `StickySecret`.
    pub affinity: super::Affinity,
    /// `MaxConnections`, `QueueSize`, `QueueTimeout`, `RetryOn`, `RetryBudget`.
    pub limits: super::limits::Limits,
    /// `RequestHeader` rules: fields of the request the backend gets.
    pub request_headers: super::headers::HeaderRules,
    /// `ResponseHeader` rules: fields of the backend's response the client gets.
    pub response_headers: super::headers::HeaderRules,
}

/// The `UpstreamTls…` keys of an entry: which of its servers speak TLS, and how they are
/// verified. Files are read while the configuration is read (never on a worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `UpstreamTls on`: every server of the entry speaks TLS (else only `https://` ones).
    pub all_servers: bool,
    /// `UpstreamTlsName`: the name sent (SNI) and verified; default each server's host.
    pub name: Option<String>,
    /// `UpstreamTlsVerify`: whether the server's certificate is verified (default on).
    pub verify: bool,
    /// `UpstreamCaFile`: the trust roots; default the system's.
    pub ca_file: Option<PemFile>,
    /// `UpstreamCertFile`: a client certificate chain presented to the servers.
    pub cert_file: Option<PemFile>,
    /// `UpstreamKeyFile`: the private key of `cert_file`.
    pub key_file: Option<PemFile>,
}

impl Default for TlsSettings {
    /// No server forced to TLS; verification on, system roots, no client certificate.
    fn default() -> TlsSettings {
        TlsSettings {
            all_servers: false,
            name: None,
            verify: true,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }
}

/// A PEM file named by the configuration, with the bytes read when the configuration was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PemFile {
    /// The path as written in the file.
    pub path: PathBuf,
    /// The file's contents (checked to hold what the key needs).
    pub pem: Vec<u8>,
}

/// What a health probe does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProbeKind {
    /// `tcp`: a connection that completes passes.
    Tcp,
    /// `GET /path` or `HEAD /path`: an HTTP/1.1 request whose response must match the
    /// entry's [`Expect`].
    Http {
        /// `HEAD` rather than `GET`.
        head: bool,
        /// The request target (starts with `/`).
        path: String,
    },
}

/// `HealthCheckExpect`: what a passing HTTP probe's response looks like.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expect {
    /// Status ranges that pass, inclusive (`200-399` is `(200, 399)`).
    pub statuses: Vec<(u16, u16)>,
    /// Text the body must contain (`body TEXT`), if any.
    pub body: Option<String>,
}

impl Default for Expect {
    /// `200-399`, any body.
    fn default() -> Expect {
        Expect {
            statuses: vec![(200, 399)],
            body: None,
        }
    }
}

impl Expect {
    /// Whether `status` is one that passes.
    pub fn passes(&self, status: u16) -> bool {
        self.statuses
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// Active health checks of an entry's servers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HealthCheck {
    /// `HealthCheck`: the probe.
    pub probe: ProbeKind,
    /// `HealthCheckHost`: the probe's `Host` header (`None`: the server's `host:port`).
    pub host: Option<String>,
    /// `HealthCheckExpect`.
    pub expect: Expect,
    /// `HealthCheckInterval`: time between two probes of one server (jittered).
    pub interval: Duration,
    /// `HealthCheckTimeout`: connect and response deadline of one probe.
    pub timeout: Duration,
    /// `HealthCheckRise`: consecutive passes that bring a server up.
    pub rise: u32,
    /// `HealthCheckFall`: consecutive failures that take it down.
    pub fall: u32,
}

impl HealthCheck {
    /// A check with `probe` and the documented defaults: expect `200-399`, every 2 s,
    /// timeout 1 s, rise 2, fall 3, the server's `host:port` as `Host`.
    pub fn with_defaults(probe: ProbeKind) -> HealthCheck {
        HealthCheck {
            probe,
            host: None,
            expect: Expect::default(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
        }
    }
}

/// Outlier detection (Envoy's consecutive-5xx ejection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OutlierDetection {
    /// `OutlierConsecutive5xx`: consecutive 5xx responses that eject a server (0: off).
    pub consecutive_5xx: u32,
    /// `OutlierEjectionTime`: the first ejection's length; each repeat is longer, up to 10x.
    pub ejection_time: Duration,
    /// `OutlierMaxEjectionPercent`: the largest share of the entry's servers ejected at once
    /// (at least one server may always be ejected when the entry has two or more).
    pub max_ejection_percent: u32,
}

impl Default for OutlierDetection {
    /// Off; 30 s ejections; at most 10 % of the servers (at least one).
    fn default() -> OutlierDetection {
        OutlierDetection {
            consecutive_5xx: 0,
            ejection_time: Duration::from_secs(30),
            max_ejection_percent: 10,
        }
    }
}

/// One `Match` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatchRule {
    /// The regular expression as written.
    pub pattern: String,
    /// Its line in the file.
    pub line: usize,
}

/// One backend server of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// `host:port` as written in the file, without an `http://` in front (`http://h` is
    /// `h:80`); used in logs and statistics.
    pub name: String,
    /// The address resolved at start-up.
    pub addr: SocketAddr,
    /// Relative share of traffic (≥ 1).
    pub weight: u32,
    /// `backup` after it in `ServerList`: used only while no other server of the entry is
    /// usable.
    pub backup: bool,
    /// Written `https://`: spoken to over TLS (see also [`TlsSettings::all_servers`]).
    pub tls: bool,
}

/// An address block such as `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// The network address.
    pub addr: IpAddr,
    /// Prefix length in bits.
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` lies inside this block (IPv4-mapped IPv6 addresses match IPv4 blocks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let bits = u32::from(self.prefix.min(32));
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                (u32::from(net) & mask) == (u32::from(ip) & mask)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let bits = u32::from(self.prefix.min(128));
                let mask = if bits == 0 {
                    0
                } else {
                    u128::MAX << (128 - bits)
                };
                (u128::from(net) & mask) == (u128::from(ip) & mask)
            }
            _ => false,
        }
    }
}

impl ServerSpec {
    /// The server as `ServerList` writes it: `host:port` (after `https://` for a TLS server),
    /// then ` weight=N` when N > 1, then
    /// ` backup` for a backup server.
    pub fn list_item(&self) -> String {
        let mut item = if self.tls {
            format!("https://{}", self.name)
        } else {
            self.name.clone()
        };
        if self.weight > 1 {
            item.push_str(&format!(" weight={}", self.weight));
        }
        if self.backup {
            item.push_str(" backup");
        }
        item
    }

    /// The host as written (`host:port` without the port, brackets off an IPv6 address).
    pub fn host(&self) -> &str {
        super::values::host_of(&self.name)
    }
}

impl Entry {
    /// Whether server `spec` of this entry is spoken to over TLS.
    pub fn server_tls(&self, spec: &ServerSpec) -> bool {
        spec.tls || self.tls.all_servers
    }

    /// An entry with the documented defaults for every optional key, for `matches` and `servers`
    /// (its `name` empty: the parser names every entry):
    /// `FirstAlive`, `AttemptsCount 2`, `OfflineTimeOut 10`, `ConnectTimeout 3`, `ReadTimeout 60`,
    /// 256 idle upstream connections per server and worker kept 60 s for up to 1000 requests,
    /// no trusted proxies, no `Forwarded` header, no health checks, no slow start, no outlier
    /// detection, TLS only to `https://` servers (verified against the system's roots), hashing
    /// on the client address, no bounded loads, no sticky cookie, no per-server limit,
    /// retries of connect failures and resets (no status), a 20 % budget, no header rules.
    pub fn with_defaults(line: usize, matches: Vec<MatchRule>, servers: Vec<ServerSpec>) -> Entry {
        Entry {
            name: String::new(),
            line,
            matches,
            route: super::route_rules::RouteRules::default(),
            servers,
            balancer: "FirstAlive".to_string(),
            attempts_count: 2,
            offline_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(60),
            keepalive_idle: 256,
            keepalive_timeout: Duration::from_secs(60),
            keepalive_requests: 1000,
            trusted_proxies: Vec::new(),
            forwarded_header: false,
            health_check: None,
            slow_start: Duration::ZERO,
            outlier: OutlierDetection::default(),
            tls: TlsSettings::default(),
            affinity: super::Affinity::default(),
            limits: super::limits::Limits::default(),
            request_headers: super::headers::HeaderRules::default(),
            response_headers: super::headers::HeaderRules::default(),
        }
    }
}
