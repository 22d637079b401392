//! What valid files mean: defaults, inheritance, weights, keys, sections and spellings.

mod config_common;

use std::time::Duration;

use config_common::ok;
use proxy_reverse::config::{Cidr, Entry};

#[test]
fn built_in_defaults_match_entry_with_defaults() {
    let c = ok("[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:80\n");
    let e = &c.entries[0];
    let mut expected = Entry::with_defaults(1, e.matches.clone(), e.servers.clone());
    expected.name = "entry-1".to_string();
    assert_eq!(*e, expected);
    assert_eq!(c.statistics_url, None);
    assert!(c.statistics_allow.is_empty());
}

#[test]
fn every_key_in_an_entry() {
    let c = ok("[PROXY_ENTRY]
    Match ^/a
    Match ^/b
    ServerList 127.0.0.1:1 127.0.0.1:2
    ServerList [::1]:3
    LoadBalancer least-connections
    AttemptsCount 5
    OfflineTimeOut 0
    ConnectTimeout 0.5
    ReadTimeout 120
    UpstreamKeepAlive 0
    UpstreamKeepAliveTimeout 2.25
    UpstreamKeepAliveRequests 7
    TrustedProxies 10.0.0.0/8 192.168.1.1
    TrustedProxies ::1
    ForwardedHeader ON
");
    let e = &c.entries[0];
    assert_eq!(e.matches.len(), 2);
    let names: Vec<&str> = e.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["127.0.0.1:1", "127.0.0.1:2", "[::1]:3"]);
    assert_eq!(e.balancer, "LeastConnections");
    assert_eq!(e.attempts_count, 5);
    assert_eq!(e.offline_timeout, Duration::ZERO);
    assert_eq!(e.connect_timeout, Duration::from_millis(500));
    assert_eq!(e.read_timeout, Duration::from_secs(120));
    assert_eq!(e.keepalive_idle, 0);
    assert_eq!(e.keepalive_timeout, Duration::from_millis(2250));
    assert_eq!(e.keepalive_requests, 7);
    assert_eq!(
        e.trusted_proxies,
        [
            Cidr {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: 8
            },
            Cidr {
                addr: "192.168.1.1".parse().unwrap(),
                prefix: 32
            },
            Cidr {
                addr: "::1".parse().unwrap(),
                prefix: 128
            },
        ]
    );
    assert!(e.forwarded_header);
}

#[test]
fn defaults_fill_only_what_an_entry_lacks() {
    let c = ok("[PROXY_ENTRY]
Match /one
[PROXY_DEFAULTS]
ServerList 127.0.0.1:9
LoadBalancer SourceHash
AttemptsCount 4
ConnectTimeout 1
TrustedProxies 10.0.0.0/8
ForwardedHeader on
StatisticsURL /stats
StatisticsAllow 192.168.0.0/16
[PROXY_ENTRY]
Match /two
ServerList 127.0.0.1:10
AttemptsCount 9
TrustedProxies 172.16.0.0/12
ForwardedHeader off
");
    assert_eq!(c.statistics_url.as_deref(), Some("/stats"));
    assert_eq!(c.statistics_allow.len(), 1);
    // The defaults may come after an entry: they still apply to it.
    let one = &c.entries[0];
    assert_eq!(one.servers[0].name, "127.0.0.1:9");
    assert_eq!(one.balancer, "SourceHash");
    assert_eq!(one.attempts_count, 4);
    assert_eq!(one.connect_timeout, Duration::from_secs(1));
    assert_eq!(one.trusted_proxies[0].prefix, 8);
    assert!(one.forwarded_header);
    let two = &c.entries[1];
    assert_eq!(two.servers.len(), 1);
    assert_eq!(two.servers[0].name, "127.0.0.1:10");
    assert_eq!(two.balancer, "SourceHash");
    assert_eq!(two.attempts_count, 9);
    assert_eq!(two.connect_timeout, Duration::from_secs(1));
    assert_eq!(two.trusted_proxies[0].prefix, 12);
    assert!(!two.forwarded_header);
}

#[test]
fn weight_syntax_and_repetition_add_up() {
    let c = ok("[PROXY_ENTRY]
Match /
ServerList 127.0.0.1:1 weight=3 127.0.0.1:2 127.0.0.1:1
ServerList 127.0.0.1:2 weight=4 127.0.0.1:3 WEIGHT=2
");
    let w: Vec<(&str, u32)> = c.entries[0]
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.weight))
        .collect();
    assert_eq!(
        w,
        [("127.0.0.1:1", 4), ("127.0.0.1:2", 5), ("127.0.0.1:3", 2)]
    );
}

#[test]
fn http_urls_are_plain_servers() {
    // The scheme is stripped, `http://HOST` is port 80, a trailing `/` is allowed, and the
    // same server written both ways is one server (weight 2).
    let c = ok("[PROXY_ENTRY]
Match /
ServerList http://127.0.0.1:18081 127.0.0.1:18081 HTTP://Host1/ http://[::1]
");
    let s: Vec<(&str, String, u32)> = c.entries[0]
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.addr.to_string(), s.weight))
        .collect();
    assert_eq!(
        s,
        [
            ("127.0.0.1:18081", "127.0.0.1:18081".to_string(), 2),
            ("Host1:80", "10.0.0.1:80".to_string(), 1),
            ("[::1]:80", "[::1]:80".to_string(), 1),
        ]
    );
}

#[test]
fn names_are_case_insensitive_and_aliases_work() {
    let c = ok("[proxy_defaults]
loadbalance round-robin
[Proxy_Entry]
MATCH /
serverlist Host1:80
");
    assert_eq!(c.entries[0].balancer, "RoundRobin");
    assert_eq!(c.entries[0].servers[0].addr.to_string(), "10.0.0.1:80");
}

#[test]
fn every_balancer_spelling_of_the_seed_and_sample() {
    for (written, canonical) in [
        ("Naive", "Naive"),
        ("FirstAlive", "FirstAlive"),
        ("First-Alive", "FirstAlive"),
        ("RoundRobin", "RoundRobin"),
        ("Round-Robin", "RoundRobin"),
        ("LocklessRoundRobin", "RoundRobin"),
        ("WeightedRoundRobin", "RoundRobin"),
        ("LockingRoundRobin", "LockingRoundRobin"),
        ("LeastConnections", "LeastConnections"),
        ("sourcehash", "SourceHash"),
    ] {
        let c = ok(&format!(
            "[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:1\nLoadBalancer {written}\n"
        ));
        assert_eq!(c.entries[0].balancer, canonical, "{written}");
    }
}

#[test]
fn lexical_leniency() {
    // CRLF, comments anywhere, blank and dash lines, keys at any indentation, tab separators,
    // a `#` inside a regex token.
    let c = ok("# top\r\n---\r\n  [PROXY_ENTRY]\r\n\t# comment\r\nMatch\t/a#b\r\n\t\t  ServerList   127.0.0.1:1   \r\n\r\n");
    assert_eq!(c.entries[0].matches[0].pattern, "/a#b");
    assert_eq!(c.entries[0].matches[0].line, 5);
    assert_eq!(c.entries[0].line, 3);
}

#[test]
fn a_match_value_keeps_inner_spaces() {
    let c = ok("[PROXY_ENTRY]\nMatch ^/a b$\nServerList 127.0.0.1:1\n");
    assert_eq!(c.entries[0].matches[0].pattern, "^/a b$");
}

#[test]
fn several_entries_keep_file_order() {
    let c = ok("[PROXY_ENTRY]\nMatch /a\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch /b\nServerList 127.0.0.1:2\n[PROXY_ENTRY]\nMatch /c\nServerList 127.0.0.1:3\n");
    let lines: Vec<usize> = c.entries.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 4, 7]);
}

#[test]
fn key_table_defaults_are_the_model_defaults() {
    let base = ok("[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:80\n");
    for key in proxy_reverse::config::keys::KEYS {
        if key.default.starts_with('(') {
            continue;
        }
        let c = ok(&format!(
            "[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:80\n{} {}\n",
            key.name, key.default
        ));
        assert_eq!(c.entries[0], base.entries[0], "{}", key.name);
    }
}

#[test]
fn a_server_list_of_a_thousand_servers_fits_one_line() {
    // 999 servers on one line (about 18 KiB): once refused by a 4 KiB line limit.
    let servers: Vec<String> = (0..999)
        .map(|i| format!("127.0.{}.{}:{}", i / 250, i % 250 + 1, 8000 + i))
        .collect();
    let line = servers.join(" ");
    assert!(line.len() > 16 * 1024);
    let c = ok(&format!("[PROXY_ENTRY]\nMatch /\nServerList {line}\n"));
    assert_eq!(c.entries[0].servers.len(), 999);
    assert_eq!(c.entries[0].servers[998].addr.port(), 8998);
}

#[test]
fn header_rules_keep_file_order_and_an_entrys_own_replace_the_defaults() {
    let c = ok(
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\nResponseHeader remove Server\n\
                RequestHeader set X-Env prod\n\
                [PROXY_ENTRY]\nMatch /a\n\
                [PROXY_ENTRY]\nMatch /b\nRequestHeader add X-A 1\nrequestheader SET x-b $entry\n",
    );
    let text = |rules: &proxy_reverse::config::headers::HeaderRules| -> Vec<String> {
        rules
            .rules()
            .iter()
            .map(proxy_reverse::config::headers::format_rule)
            .collect()
    };
    // The first entry inherits both directions.
    assert_eq!(text(&c.entries[0].request_headers), ["set X-Env prod"]);
    assert_eq!(text(&c.entries[0].response_headers), ["remove Server"]);
    // The second has request rules of its own: they replace the defaults' (the response
    // rules, which it does not give, are still inherited).
    assert_eq!(
        text(&c.entries[1].request_headers),
        ["add X-A 1", "set x-b $entry"]
    );
    assert_eq!(text(&c.entries[1].response_headers), ["remove Server"]);
    assert!(c.entries[1].request_headers.drops(b"X-B"));
    assert!(!c.entries[1].request_headers.drops(b"X-Env"));
}
