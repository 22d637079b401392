//! Property tests: any model the printer can print parses back to itself, and no input makes
//! the parser panic (the CI stand-in for the `fuzz/` target).

mod config_common;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use proxy_reverse::config::headers::{
    HeaderAction, HeaderRule, HeaderRules, ValuePart, Variable, VARIABLES,
};
use proxy_reverse::config::limits::{Limits, RetryOn};
use proxy_reverse::config::BALANCERS as REGISTRY;
use proxy_reverse::config::{
    self, AccessLogSpec, Affinity, Cidr, Config, Entry, Expect, HashKey, HealthCheck, MatchRule,
    OutlierDetection, PemFile, ProbeKind, SameSite, ServerSpec, StickyCookie, TlsSettings,
};
use proxy_reverse::config::{HostPattern, HostRule, PathRewrite, RewriteRule, RouteRules};
use std::sync::OnceLock;

/// PEM files for the TLS keys, made once per run: a CA, and a client certificate and key.
fn pem_files() -> &'static [PemFile; 3] {
    static FILES: OnceLock<[PemFile; 3]> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("roundtrip-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["client.example".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &key)
            .unwrap();
        let file = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, &text).unwrap();
            PemFile {
                path,
                pem: text.into_bytes(),
            }
        };
        [
            file("ca.pem", ca.pem()),
            file("client.pem", leaf.pem()),
            file("client.key", leaf_key.serialize_pem()),
        ]
    })
}

fn tls_settings() -> impl Strategy<Value = TlsSettings> {
    (
        any::<bool>(),
        prop::option::of(prop_oneof![
            Just("backend.example".to_string()),
            Just("10.1.2.3".to_string()),
            Just("a-b.c".to_string()),
        ]),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(all_servers, name, verify, ca, client)| {
            let [ca_file, cert, key] = pem_files().clone();
            TlsSettings {
                all_servers,
                name,
                verify,
                ca_file: ca.then_some(ca_file),
                cert_file: client.then_some(cert),
                key_file: client.then_some(key),
            }
        })
}

fn duration(min_nanos: u64) -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0u64..100_000).prop_map(Duration::from_secs),
        (0u64..10_000_000_000_000).prop_map(Duration::from_nanos),
    ]
    .prop_filter("range", move |d| d.as_nanos() >= u128::from(min_nanos))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(IpAddr::from),
        any::<[u16; 8]>().prop_map(IpAddr::from),
    ]
}

fn cidr() -> impl Strategy<Value = Cidr> {
    ip().prop_flat_map(|addr| {
        let max: u8 = if addr.is_ipv4() { 32 } else { 128 };
        (0..=max).prop_map(move |prefix| Cidr { addr, prefix })
    })
}

fn servers() -> impl Strategy<Value = Vec<ServerSpec>> {
    prop::collection::vec(
        (ip(), 1u16..=65535, 1u32..20, any::<bool>(), any::<bool>()),
        1..12,
    )
    .prop_map(|list| {
        let mut out: Vec<ServerSpec> = Vec::new();
        for (ip, port, weight, backup, tls) in list {
            let addr = SocketAddr::new(ip, port);
            let name = addr.to_string();
            if out.iter().all(|s| s.name != name) {
                out.push(ServerSpec {
                    name,
                    addr,
                    weight,
                    tls,
                    backup,
                });
            }
        }
        out
    })
}

fn probe() -> impl Strategy<Value = ProbeKind> {
    prop_oneof![
        Just(ProbeKind::Tcp),
        (any::<bool>(), "/[a-zA-Z0-9_./?=&-]{0,20}")
            .prop_map(|(head, path)| ProbeKind::Http { head, path }),
    ]
}

fn expect() -> impl Strategy<Value = Expect> {
    (
        prop::collection::vec((100u16..600, 0u16..100), 1..4),
        prop::option::of("[a-zA-Z0-9:_-]([a-zA-Z0-9 :_-]{0,10}[a-zA-Z0-9:_-])?"),
    )
        .prop_map(|(ranges, body)| Expect {
            statuses: ranges
                .into_iter()
                .map(|(lo, span)| (lo, (lo + span).min(599)))
                .collect(),
            body,
        })
}

/// `HealthCheck` and its keys, `SlowStart`, outlier detection.
fn health() -> impl Strategy<Value = (Option<HealthCheck>, Duration, OutlierDetection)> {
    let check = (
        probe(),
        prop::option::of("[a-z][a-z0-9.-]{0,12}(:[0-9]{1,5})?"),
        expect(),
        (duration(100_000_000), duration(1), 1u32..10, 1u32..10),
    )
        .prop_map(
            |(probe, host, expect, (interval, timeout, rise, fall))| HealthCheck {
                probe,
                host,
                expect,
                interval,
                timeout,
                rise,
                fall,
            },
        );
    let outlier = (0u32..20, duration(1), 0u32..=100).prop_map(|(n, t, p)| OutlierDetection {
        consecutive_5xx: n,
        ejection_time: t,
        max_ejection_percent: p,
    });
    (prop::option::of(check), duration(0), outlier)
}

/// `HashKey`, `HashBalanceFactor`, `StickyCookie` and `StickySecret`.
fn affinity() -> impl Strategy<Value = Affinity> {
    let name = "[A-Za-z0-9_-][A-Za-z0-9!#$%&'*+.^_`|~-]{0,12}";
    let hash_key = prop_oneof![
        Just(HashKey::Source),
        Just(HashKey::Path),
        Just(HashKey::Uri),
        name.prop_map(HashKey::Header),
        name.prop_map(HashKey::Cookie),
        "[a-zA-Z0-9_.%+-]{1,12}".prop_map(HashKey::Query),
    ];
    let factor = prop_oneof![Just(0u32), 101u32..100_000];
    let same_site = prop::option::of(prop_oneof![
        Just(SameSite::Lax),
        Just(SameSite::Strict),
        Just(SameSite::None),
    ]);
    let sticky = (
        name,
        (any::<bool>(), any::<bool>(), same_site),
        prop::option::of(1u64..10_000_000),
        "/[a-zA-Z0-9_./-]{0,12}",
        prop::option::of("[a-z0-9]([a-z0-9.-]{0,12}[a-z0-9])?"),
        // No `#` after a blank: the lexer takes that for a comment.
        "[!-\"$-~][!-~]{31,47}",
    )
        .prop_map(
            |(name, (secure, http_only, same_site), max_age, path, domain, secret)| StickyCookie {
                name,
                // SameSite=None needs Secure.
                secure: secure || same_site == Some(SameSite::None),
                http_only,
                same_site,
                max_age,
                path,
                domain,
                secret,
            },
        );
    (hash_key, factor, prop::option::of(sticky)).prop_map(|(hash_key, balance_factor, sticky)| {
        Affinity {
            hash_key,
            balance_factor,
            sticky,
        }
    })
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("/*.php".to_string()),
        Just(r"^/api/v[0-9]+/".to_string()),
        Just(r"\.(jpg|png)$".to_string()),
        "[a-z/]{1,12}",
        "/[a-zA-Z0-9_.-]{0,10}( [a-z]{1,5})?",
    ]
}

/// `MatchHost`, `MatchMethod` and a rewrite, in the forms the parser stores (lower case,
/// no trailing dot or `/`).
fn route_rules() -> impl Strategy<Value = RouteRules> {
    let host = prop_oneof![
        "[a-z0-9]{1,8}(\\.[a-z0-9-]{1,6}){0,2}".prop_map(HostPattern::Exact),
        "[a-z0-9]{1,8}\\.[a-z]{2,4}".prop_map(HostPattern::Wildcard),
        Just(HostPattern::Regex(r"^img[0-9]+\.example\.net$".to_string())),
        Just(HostPattern::Exact("[::1]".to_string())),
    ];
    let rewrite = prop_oneof![
        "(/[a-z0-9_.-]{1,8}){1,3}".prop_map(PathRewrite::StripPrefix),
        Just(PathRewrite::Replace {
            pattern: "^/api/(.*)".to_string(),
            replacement: "/$1".to_string(),
        }),
        Just(PathRewrite::Replace {
            pattern: "^/u/(?P<id>[0-9]+)".to_string(),
            replacement: "/users/${id}$$".to_string(),
        }),
    ];
    (
        prop::collection::vec(host, 0..4),
        prop::collection::vec(
            prop_oneof![Just("GET"), Just("HEAD"), Just("POST"), Just("PROPFIND")],
            0..3,
        ),
        prop::option::of(rewrite),
    )
        .prop_map(|(hosts, methods, rewrite)| RouteRules {
            hosts: hosts
                .into_iter()
                .map(|pattern| HostRule { pattern, line: 0 })
                .collect(),
            methods: methods.into_iter().map(str::to_string).collect(),
            rewrite: rewrite.map(|rewrite| RewriteRule { rewrite, line: 0 }),
        })
}

/// A piece of a header rule's value: text (no `#`, braces or control bytes) or a variable.
fn value_part() -> impl Strategy<Value = ValuePart> {
    prop_oneof![
        "[a-zA-Z0-9 $.:/=;,_\"'()*+-]{1,10}".prop_map(ValuePart::Text),
        prop::sample::select(VARIABLES.iter().map(|(_, v)| *v).collect::<Vec<_>>())
            .prop_map(ValuePart::Var),
    ]
}

/// A value as the parser makes it: texts merged, no blank at either end, never empty.
fn rule_value() -> impl Strategy<Value = Vec<ValuePart>> {
    prop::collection::vec(value_part(), 1..5).prop_map(|parts| {
        let mut out: Vec<ValuePart> = Vec::new();
        for part in parts {
            match (out.last_mut(), part) {
                (Some(ValuePart::Text(t)), ValuePart::Text(more)) => t.push_str(&more),
                (_, part) => out.push(part),
            }
        }
        if let Some(ValuePart::Text(t)) = out.first_mut() {
            *t = t.trim_start().to_string();
        }
        if let Some(ValuePart::Text(t)) = out.last_mut() {
            *t = t.trim_end().to_string();
        }
        out.retain(|p| *p != ValuePart::Text(String::new()));
        if out.is_empty() {
            out.push(ValuePart::Var(Variable::Entry));
        }
        out
    })
}

/// `RequestHeader` or `ResponseHeader` rules (none protected), compiled.
fn header_rules() -> impl Strategy<Value = HeaderRules> {
    let rule = (
        prop::sample::select(vec![
            HeaderAction::Set,
            HeaderAction::Add,
            HeaderAction::Remove,
        ]),
        prop_oneof![
            "X-[A-Za-z0-9_-]{1,8}",
            Just("Server".to_string()),
            Just("cache-control".to_string()),
        ],
        rule_value(),
    )
        .prop_map(|(action, name, value)| HeaderRule {
            action,
            name,
            value: if action == HeaderAction::Remove {
                Vec::new()
            } else {
                value
            },
        });
    prop::collection::vec(rule, 0..4).prop_map(HeaderRules::new)
}

fn entry() -> impl Strategy<Value = Entry> {
    (
        prop::collection::vec(pattern(), 1..4),
        servers(),
        0..REGISTRY.len(),
        (1u32..10, duration(0), duration(1), duration(1)),
        (any::<u32>(), duration(1), 1u32..5000),
        prop::collection::vec(cidr(), 0..10),
        any::<bool>(),
        health(),
        tls_settings(),
        affinity(),
        route_rules(),
        (header_rules(), header_rules()),
    )
        .prop_map(
            |(
                patterns,
                servers,
                b,
                (attempts, offline, connect, read),
                (idle, kt, kr),
                trusted,
                fwd,
                (check, slow_start, outlier),
                tls,
                affinity,
                route,
                (request_headers, response_headers),
            )| {
                let matches = patterns
                    .into_iter()
                    .map(|pattern| MatchRule { pattern, line: 0 })
                    .collect();
                let mut e = Entry::with_defaults(0, matches, servers);
                e.balancer = REGISTRY[b].name.to_string();
                e.attempts_count = attempts;
                e.offline_timeout = offline;
                e.connect_timeout = connect;
                e.read_timeout = read;
                e.keepalive_idle = idle;
                e.keepalive_timeout = kt;
                e.keepalive_requests = kr;
                e.trusted_proxies = trusted;
                e.forwarded_header = fwd;
                e.health_check = check;
                e.slow_start = slow_start;
                e.outlier = outlier;
                e.tls = tls;
                e.affinity = affinity;
                e.route = route;
                e.request_headers = request_headers;
                e.response_headers = response_headers;
                // Without a CA file the system's roots would be needed; the test does not
                // depend on the machine's.
                if e.tls.verify && e.servers.iter().any(|s| e.server_tls(s)) {
                    e.tls.ca_file = Some(pem_files()[0].clone());
                }
                e
            },
        )
}

/// `MaxConnections`, `QueueSize` (only with a limit, as the parser requires), `QueueTimeout`,
/// `RetryOn` (any set, `none` included) and `RetryBudget`.
fn limits() -> impl Strategy<Value = Limits> {
    (
        prop_oneof![Just(0u32), 1u32..10_000],
        0u32..1000,
        duration(1),
        0u8..32,
        0u32..=100,
    )
        .prop_map(|(max, queue, timeout, bits, budget)| {
            let mut retry_on = RetryOn::NONE;
            for (i, flag) in [
                RetryOn::CONNECT,
                RetryOn::RESET,
                RetryOn::S502,
                RetryOn::S503,
                RetryOn::S504,
            ]
            .into_iter()
            .enumerate()
            {
                if bits & (1 << i) != 0 {
                    retry_on = retry_on.with(flag);
                }
            }
            Limits {
                max_connections: max,
                queue_size: if max == 0 { 0 } else { queue },
                queue_timeout: timeout,
                retry_on,
                retry_budget: budget,
            }
        })
}

fn entry_with_limits() -> impl Strategy<Value = Entry> {
    (entry(), limits()).prop_map(|(mut e, limits)| {
        e.limits = limits;
        e
    })
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop::option::of("/[a-z0-9_.-]{0,16}"),
        prop::collection::vec(cidr(), 0..10),
        prop::collection::vec(
            (
                entry_with_limits(),
                prop::option::of("[a-z][a-z0-9_.-]{0,8}"),
            ),
            1..5,
        ),
        prop::option::of("/[a-z0-9_.-]{1,12}(/[a-z0-9_. -]{1,12}){0,2}\\.log"),
    )
        .prop_map(|(statistics_url, statistics_allow, entries, log)| Config {
            file: "gen.conf".into(),
            statistics_url,
            statistics_allow,
            admin_url: None,
            admin_allow: Vec::new(),
            access_log: log.map(|path| AccessLogSpec {
                path: path.into(),
                line: 0,
            }),
            // Named or not (then `entry-N`, as the parser names them); names made unique by
            // their position.
            entries: entries
                .into_iter()
                .enumerate()
                .map(|(i, (mut e, name))| {
                    e.name = match name {
                        Some(n) => format!("{n}-{i}x"),
                        None => format!("entry-{}", i + 1),
                    };
                    e
                })
                .collect(),
        })
}

/// The model without line numbers (which the printed text decides).
fn without_lines(mut c: Config) -> Config {
    if let Some(log) = &mut c.access_log {
        log.line = 0;
    }
    for e in &mut c.entries {
        e.line = 0;
        for m in &mut e.matches {
            m.line = 0;
        }
        for h in &mut e.route.hosts {
            h.line = 0;
        }
        if let Some(r) = &mut e.route.rewrite {
            r.line = 0;
        }
    }
    c
}

fn no_dns(_: &str, _: u16) -> Result<SocketAddr, String> {
    Err("no DNS in this test".to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn print_then_parse_gives_the_same_model(c in config()) {
        let text = config::print(&c);
        let parsed = config::parse_str(&text, Path::new("gen.conf"), &no_dns)
            .map_err(|e| TestCaseError::fail(format!("{e:?}\n{text}")))?;
        prop_assert_eq!(without_lines(parsed.clone()), c);
        // Printing the parsed model again is stable, line numbers included.
        let again = config::print(&parsed);
        prop_assert_eq!(&again, &text);
        let reparsed = config::parse_str(&again, Path::new("gen.conf"), &no_dns).unwrap();
        prop_assert_eq!(reparsed, parsed);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
        let _ = config::parse_bytes(&bytes, Path::new("f.conf"), &config_common::resolver);
    }

    #[test]
    fn config_like_lines_never_panic(lines in prop::collection::vec(line(), 0..40)) {
        let text = lines.join("\n");
        match config::parse_str(&text, Path::new("f.conf"), &config_common::resolver) {
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for e in errors {
                    prop_assert!(!e.message.contains('\n'), "multi-line message: {}", e.message);
                    prop_assert!(e.line <= lines.len());
                }
            }
            // Whatever the parser accepts, the printer reproduces.
            Ok(c) => {
                let printed = config::print(&c);
                let again = config::parse_str(&printed, Path::new("f.conf"), &config_common::resolver);
                prop_assert_eq!(again.map(without_lines), Ok(without_lines(c)));
            }
        }
    }
}

/// A line built from the language's own pieces, often almost right.
fn line() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        prop::sample::select(
            config::keys::KEYS
                .iter()
                .map(|k| k.name)
                .collect::<Vec<_>>()
        ),
        Just("LoadBalance"),
        Just("@INCLUDE"),
        Just("Matc"),
    ];
    let value = prop_oneof![
        Just(String::new()),
        "[ -~]{0,20}",
        "(Host[1-6]|127\\.0\\.0\\.1|\\[::1\\])(:[0-9]{0,6})?( weight=[0-9]{1,3})?",
        "[0-9]{0,12}(\\.[0-9]{0,12})?",
        prop::sample::select(vec![
            "on",
            "off",
            "First-Alive",
            "Fastest",
            "/stats",
            "10.0.0.0/8",
            "/var/log/x.log",
            "header X-User",
            "cookie",
            "SRV Secure HttpOnly SameSite=Lax Max-Age=60 Path=/",
            "0123456789abcdef0123456789abcdef",
            "(",
            "# x",
            "set X-A $entry",
            "add Host $server",
            "remove X-Forwarded-For",
            "set X-B ${request_id}-$$",
            "set X-C $nope"
        ])
        .prop_map(str::to_string),
    ];
    prop_oneof![
        prop::sample::select(vec![
            "[PROXY_ENTRY]",
            "[PROXY_DEFAULTS]",
            "[proxy_entry",
            "[X]",
            "",
            "# c",
            "\t",
            "---"
        ])
        .prop_map(str::to_string),
        ("[ \t]{0,3}", key, "[ \t]{1,2}", value).prop_map(|(i, k, s, v)| format!("{i}{k}{s}{v}")),
    ]
}

#[test]
fn longest_lines_print_back_within_the_limit() {
    let limit = proxy_reverse::config::lexer::MAX_LINE;
    // A long rule (regexes have a size limit of their own, far below the line limit).
    let pattern = format!("/{}", "a".repeat(4095 - "Match /".len()));
    let servers: Vec<String> = (1..=400).map(|p| format!("127.0.0.1:{p}")).collect();
    let text = format!(
        "[PROXY_ENTRY]\nMatch {pattern}\nServerList {}\nServerList {}\n",
        servers[..200].join(" "),
        servers[200..].join(" ")
    );
    let c = config_common::ok(&text);
    let printed = config::print(&c);
    assert!(printed.lines().all(|l| l.len() <= limit));
    // Lists are printed readable: many short lines of the same key.
    let server_lines: Vec<&str> = printed
        .lines()
        .filter(|l| l.contains("ServerList"))
        .collect();
    assert!(server_lines.len() > 10, "{}", server_lines.len());
    assert!(
        server_lines.iter().all(|l| l.len() <= 100),
        "{server_lines:?}"
    );
    let again = config_common::ok(&printed);
    assert_eq!(without_lines(again), without_lines(c));
}
