//! Every error: one line `FILE:LINE: message`, at the right line, all of them reported.

mod config_common;

use config_common::{errors, ok};

const OK_ENTRY: &str = "[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:1\n";

/// The single error of `text`.
fn one(text: &str) -> String {
    let e = errors(text);
    assert_eq!(e.len(), 1, "{e:#?}");
    e.into_iter().next().unwrap_or_default()
}

#[test]
fn unknown_section_with_suggestion_and_its_keys_ignored() {
    let e = one(&format!("{OK_ENTRY}[PROXY_ENTRI]\nWhatever x\n"));
    assert_eq!(
        e,
        "t.conf:4: unknown section [PROXY_ENTRI]; did you mean [PROXY_ENTRY]?"
    );
    let e = one(&format!("{OK_ENTRY}[SERVER]\n"));
    assert_eq!(
        e,
        "t.conf:4: unknown section [SERVER]; the sections are [PROXY_DEFAULTS] and [PROXY_ENTRY]"
    );
}

#[test]
fn unknown_key_suggests_the_closest() {
    assert_eq!(
        one(&format!("{OK_ENTRY}ServerLst 127.0.0.1:2\n")),
        "t.conf:4: unknown key `ServerLst`; did you mean ServerList?"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}LoadBalanse RoundRobin\n")),
        "t.conf:4: unknown key `LoadBalanse`; did you mean LoadBalancer?"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}Frobnicate yes\n")),
        "t.conf:4: unknown key `Frobnicate`"
    );
}

#[test]
fn key_outside_any_section() {
    assert_eq!(
        one(&format!("Match /\n{OK_ENTRY}")),
        "t.conf:1: `Match` is outside any section; start with [PROXY_DEFAULTS] or [PROXY_ENTRY]"
    );
}

#[test]
fn bad_numbers() {
    let e = errors(&format!(
        "{OK_ENTRY}AttemptsCount two\nOfflineTimeOut -1\nConnectTimeout 0\nReadTimeout 1.5s\nUpstreamKeepAlive 99999999999\nUpstreamKeepAliveRequests 0\nUpstreamKeepAliveTimeout 0\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:4: AttemptsCount: `two` is not a whole number",
            "t.conf:5: OfflineTimeOut: `-1` is not a number of seconds (e.g. 3 or 0.5)",
            "t.conf:6: ConnectTimeout must be greater than 0",
            "t.conf:7: ReadTimeout: `1.5s` is not a number of seconds (e.g. 3 or 0.5)",
            "t.conf:8: UpstreamKeepAlive: `99999999999` is too large (at most 4294967295)",
            "t.conf:9: UpstreamKeepAliveRequests must be at least 1, not 0",
            "t.conf:10: UpstreamKeepAliveTimeout must be greater than 0",
        ]
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}AttemptsCount 0\n")),
        "t.conf:4: AttemptsCount must be at least 1, not 0"
    );
}

#[test]
fn ports_and_hosts() {
    let e = errors(
        "[PROXY_ENTRY]\nMatch /\nServerList Host1\nServerList Host1:70000\nServerList Host1:0\nServerList nowhere.invalid:80\nServerList Host1:http\nServerList ::1:80\n",
    );
    assert_eq!(
        e,
        [
            "t.conf:3: server `Host1` has no port (write HOST:PORT)",
            "t.conf:4: server `Host1:70000`: port 70000 is out of range (1 to 65535)",
            "t.conf:5: server `Host1:0`: port 0 is out of range (1 to 65535)",
            "t.conf:6: cannot resolve server `nowhere.invalid:80`: Name or service not known",
            "t.conf:7: server `Host1:http`: port `http` is not a number",
            "t.conf:8: server `::1:80`: write IPv6 addresses in brackets, e.g. [::1]:8080",
        ]
    );
}

#[test]
fn weights() {
    let e = errors(
        "[PROXY_ENTRY]\nMatch /\nServerList weight=2 127.0.0.1:1\nServerList 127.0.0.1:1 weight=0\nServerList 127.0.0.1:1 weight=2 weight=3\n",
    );
    assert_eq!(
        e,
        [
            "t.conf:3: `weight=2` must follow the server it weighs",
            "t.conf:4: `weight=0`: weight must be at least 1, not 0",
            "t.conf:5: `weight=3`: a server takes only one weight=N",
        ]
    );
}

#[test]
fn invalid_regex_shows_the_regex_error() {
    assert_eq!(
        one("[PROXY_ENTRY]\nServerList 127.0.0.1:1\nMatch /ok\nMatch /(unclosed\n"),
        "t.conf:4: invalid regex `/(unclosed`: unclosed group"
    );
}

#[test]
fn entry_without_match_or_servers() {
    let e = errors("[PROXY_DEFAULTS]\nAttemptsCount 3\n\n[PROXY_ENTRY]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch /x\n");
    assert_eq!(
        e,
        [
            "t.conf:4: [PROXY_ENTRY] has no Match (or MatchHost) line",
            "t.conf:6: [PROXY_ENTRY] has no ServerList, and [PROXY_DEFAULTS] gives none",
        ]
    );
}

#[test]
fn keys_in_the_wrong_section() {
    let e = errors(&format!(
        "[PROXY_DEFAULTS]\nMatch /x\n{OK_ENTRY}StatisticsURL /s\nStatisticsAllow 10.0.0.0/8\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:2: Match is only allowed in [PROXY_ENTRY]",
            "t.conf:6: StatisticsURL is only allowed in [PROXY_DEFAULTS]",
            "t.conf:7: StatisticsAllow is only allowed in [PROXY_DEFAULTS]",
        ]
    );
}

#[test]
fn statistics_url_must_be_a_path() {
    assert_eq!(
        one(&format!(
            "[PROXY_DEFAULTS]\nStatisticsURL stats\n{OK_ENTRY}"
        )),
        "t.conf:2: StatisticsURL must be one path starting with `/`, not `stats`"
    );
}

#[test]
fn second_defaults_section() {
    assert_eq!(
        one(&format!(
            "[PROXY_DEFAULTS]\nAttemptsCount 2\n{OK_ENTRY}[PROXY_DEFAULTS]\nOfflineTimeOut 1\n"
        )),
        "t.conf:6: second [PROXY_DEFAULTS] section (the first is at line 1); merge them"
    );
}

#[test]
fn summary_counts_in_words() {
    let one = ok("[PROXY_ENTRY]\n    Match ^/\n    ServerList 10.0.0.1:80\n");
    assert_eq!(one.summary(), "1 entry, 1 server, statistics off");
}

#[test]
fn a_byte_order_mark_is_not_text() {
    let c = ok("\u{feff}[PROXY_ENTRY]\n    Match ^/\n    ServerList 10.0.0.1:80\n");
    assert_eq!(c.entries.len(), 1);
}

#[test]
fn no_entry_at_all() {
    assert_eq!(
        one("# nothing\n[PROXY_DEFAULTS]\nAttemptsCount 2\n"),
        "t.conf: no [PROXY_ENTRY] section; nothing would be proxied"
    );
    assert_eq!(
        one(""),
        "t.conf: no [PROXY_ENTRY] section; nothing would be proxied"
    );
}

#[test]
fn unknown_balancer_lists_the_accepted_names() {
    let e = one(&format!("{OK_ENTRY}LoadBalancer Fastest\n"));
    assert!(e.starts_with("t.conf:4: unknown LoadBalancer `Fastest`; accepted: Naive, FirstAlive (First-Alive), RoundRobin ("), "{e}");
    assert!(e.contains("LeastConnections"));
    let e = one(&format!("{OK_ENTRY}LoadBalancer RoundRobbin\n"));
    assert!(e.contains("did you mean RoundRobin?"), "{e}");
}

#[test]
fn a_key_given_twice_names_both_lines() {
    assert_eq!(
        one(&format!(
            "{OK_ENTRY}LoadBalancer Naive\nAttemptsCount 3\nLoadBalance RoundRobin\n"
        )),
        "t.conf:6: LoadBalancer is given twice in this section (lines 4 and 6); keep one"
    );
}

#[test]
fn bad_values_of_other_keys() {
    let e = errors(&format!(
        "{OK_ENTRY}ForwardedHeader yes\nTrustedProxies 10.0.0.0/40\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:4: ForwardedHeader: `yes` must be on or off",
            "t.conf:5: `10.0.0.0/40`: prefix length must be 0 to 32",
        ]
    );
}

#[test]
fn lexical_errors() {
    let e = errors(&format!(
        "{OK_ENTRY}Match\n@INCLUDE more.conf\n[PROXY_ENTRY\nMatch /x # the x pages\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:4: key `Match` has no value",
            "t.conf:5: @INCLUDE is not supported; put the whole configuration in this file",
            "t.conf:6: section header `[PROXY_ENTRY` must end with `]`",
            "t.conf:7: `# the x pages` looks like a comment after a value; comments must be on their own line",
        ]
    );
}

#[test]
fn all_errors_are_reported_in_line_order() {
    let e = errors(
        "[PROXY_ENTRY]\nMatch (\nServerList h\nAttemptsCount x\n[BAD]\n[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:99999\n",
    );
    let lines: Vec<&str> = e
        .iter()
        .map(|l| l.split(':').nth(1).unwrap_or(""))
        .collect();
    assert_eq!(lines, ["2", "3", "4", "5", "8"], "{e:#?}");
}

#[test]
fn missing_file() {
    let e = proxy_reverse::config::load(std::path::Path::new("/nonexistent/p.conf")).unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0]
        .to_string()
        .starts_with("/nonexistent/p.conf: cannot read the file:"));
}

#[test]
fn every_bad_server_of_a_line_is_reported() {
    let e = errors(
        "[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:99999 127.0.0.1:0 127.0.0.1 127.0.0.1:80x 127.0.0.1:8080\n",
    );
    assert_eq!(
        e,
        [
            "t.conf:3: server `127.0.0.1:99999`: port 99999 is out of range (1 to 65535)",
            "t.conf:3: server `127.0.0.1:0`: port 0 is out of range (1 to 65535)",
            "t.conf:3: server `127.0.0.1` has no port (write HOST:PORT)",
            "t.conf:3: server `127.0.0.1:80x`: port `80x` is not a number",
        ]
    );
}

#[test]
fn bad_servers_weights_and_names_of_one_line_are_all_reported() {
    // A weight after a bad server adds no second message; a bad weight names itself.
    let e = errors(
        "[PROXY_ENTRY]\nMatch /\nServerList h:0 weight=2 nowhere.invalid:80 weight=x 127.0.0.1:1 weight=0 weight=3\n",
    );
    assert_eq!(
        e,
        [
            "t.conf:3: server `h:0`: port 0 is out of range (1 to 65535)",
            "t.conf:3: cannot resolve server `nowhere.invalid:80`: Name or service not known",
            "t.conf:3: `weight=x`: weight: `x` is not a whole number",
            "t.conf:3: `weight=0`: weight must be at least 1, not 0",
        ]
    );
}

#[test]
fn other_schemes_are_refused_clearly() {
    let e = errors(&format!(
        "{OK_ENTRY}ServerList https://127.0.0.1:8443 ftp://127.0.0.1:21 http://127.0.0.1:80/app\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:4: server `ftp://127.0.0.1:21`: `ftp://` is not a scheme the plugin speaks; write HOST:PORT, http://HOST:PORT or https://HOST:PORT",
            "t.conf:4: server `http://127.0.0.1:80/app`: a server is a host and port; the path `/app` cannot be given here",
        ]
    );
}

#[test]
fn health_keys_say_what_is_wrong_at_their_line() {
    let e = errors(&format!(
        "{OK_ENTRY}HealthCheck POST /x\nHealthCheckExpect 200-600\nHealthCheckInterval 0.05\n\
         HealthCheckTimeout 0\nHealthCheckRise 0\nHealthCheckFall x\nSlowStart -1\n\
         OutlierConsecutive5xx -2\nOutlierEjectionTime 0\nOutlierMaxEjectionPercent 101\n\
         HealthCheckHost a/b\n"
    ));
    let lines: Vec<&str> = e.iter().map(|m| m.split(": ").next().unwrap()).collect();
    assert_eq!(
        lines,
        (4..=14).map(|l| format!("t.conf:{l}")).collect::<Vec<_>>(),
        "{e:#?}"
    );
    assert!(
        e[0].contains("HealthCheck: `POST /x` is not a probe"),
        "{}",
        e[0]
    );
    assert!(e[1].contains("`200-600` is not a status code"), "{}", e[1]);
    assert!(e[2].contains("at least 0.1 seconds"), "{}", e[2]);
    assert!(e[9].contains("a percentage (0 to 100)"), "{}", e[9]);
    assert!(e[10].contains("is not a host"), "{}", e[10]);
}

#[test]
fn backup_must_follow_a_server() {
    assert_eq!(
        one("[PROXY_ENTRY]\nMatch /\nServerList backup 127.0.0.1:1\n"),
        "t.conf:3: `backup` must follow the server it marks"
    );
    ok("[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:1 127.0.0.1:2 weight=3 backup\n");
}

#[test]
fn affinity_keys() {
    let secret = "0123456789abcdef0123456789abcdef";
    let e = errors(&format!(
        "{OK_ENTRY}HashKey header\nHashBalanceFactor 100\nStickyCookie SRV SameSite=None\n\
         StickySecret short\n[PROXY_ENTRY]\nMatch /b\nServerList 127.0.0.1:2\n\
         HashKey host\nHashBalanceFactor x\nStickyCookie SRV Max-Age=0\nStickySecret {secret}\n\
         [PROXY_ENTRY]\nMatch /c\nServerList 127.0.0.1:3\nStickyCookie SRV Secure\n"
    ));
    assert_eq!(
        e,
        vec![
            "t.conf:4: HashKey header needs the header name (e.g. HashKey header X)".to_string(),
            "t.conf:5: HashBalanceFactor is a percentage of the mean load above 100 (e.g. \
             125), or 0 for off; 100 would leave no server room for a request"
                .to_string(),
            "t.conf:6: StickyCookie: SameSite=None needs Secure (browsers reject such a \
             cookie, so no client would stay)"
                .to_string(),
            "t.conf:7: StickySecret must be at least 32 characters (it keys the cookie \
             values), not 5"
                .to_string(),
            "t.conf:11: HashKey: `host` is not a key; use source, path, uri, header NAME, \
             cookie NAME or query NAME"
                .to_string(),
            "t.conf:12: HashBalanceFactor: `x` is not a whole number".to_string(),
            "t.conf:13: StickyCookie: Max-Age is a whole number of seconds above 0, not `0`"
                .to_string(),
            "t.conf:18: StickyCookie needs a StickySecret (one word of at least 32 \
             characters) to key its values"
                .to_string(),
        ]
    );
    // The defaults' secret serves every entry; an entry's cookie needs no secret of its own.
    let c = ok(&format!(
        "[PROXY_DEFAULTS]\nStickySecret {secret}\n{OK_ENTRY}StickyCookie SRV HttpOnly\n"
    ));
    let sticky = c.entries[0].affinity.sticky.as_ref().unwrap();
    assert_eq!(sticky.secret, secret);
    assert!(sticky.http_only && sticky.path == "/");
}

#[test]
fn limit_and_retry_keys_say_what_is_wrong_at_their_line() {
    let e = errors(&format!(
        "{OK_ENTRY}MaxConnections many\nQueueSize -1\nQueueTimeout 0\nRetryOn 500\nRetryBudget 101\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:4: MaxConnections: `many` is not a whole number",
            "t.conf:5: QueueSize: `-1` is not a whole number",
            "t.conf:6: QueueTimeout must be greater than 0",
            "t.conf:7: RetryOn: `500` is not a failure kind; write none, or some of connect, \
             reset-before-response, 502, 503, 504 (of the statuses only 502, 503 and 504 are \
             retried: others are the backend's answer)",
            "t.conf:8: RetryBudget is a percentage (0 to 100), not 101",
        ]
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}RetryOn connect timeout\n")),
        "t.conf:4: RetryOn: `timeout` is not a failure kind; write none, or some of connect, \
         reset-before-response, 502, 503, 504"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}RetryOn 503 503\n")),
        "t.conf:4: RetryOn: `503` is given twice"
    );
}

#[test]
fn a_queue_needs_a_limit() {
    assert_eq!(
        one(&format!("{OK_ENTRY}QueueSize 8\n")),
        "t.conf:4: QueueSize needs MaxConnections (in the entry or in [PROXY_DEFAULTS]): \
         without a limit no request ever waits"
    );
    // From the defaults: reported at the defaults' line for an entry without a limit; an
    // entry with one is fine.
    let e = errors(
        "[PROXY_DEFAULTS]\nQueueSize 8\n[PROXY_ENTRY]\nMatch /a\nServerList 127.0.0.1:1\n\
         MaxConnections 2\n[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:1\n",
    );
    assert_eq!(
        e,
        [
            "t.conf:2: QueueSize needs MaxConnections (in the entry or in [PROXY_DEFAULTS]): \
          without a limit no request ever waits"
        ]
    );
    let c = ok(&format!("{OK_ENTRY}MaxConnections 4\nQueueSize 0\n"));
    assert_eq!(c.entries[0].limits.max_connections, 4);
    let c = ok(&format!(
        "{OK_ENTRY}MaxConnections 4\nQueueSize 8\nQueueTimeout 0.5\n"
    ));
    assert_eq!(c.entries[0].limits.queue_size, 8);
    assert_eq!(c.entries[0].limits.retry_after_secs(), 1);
}

#[test]
fn routing_keys_bad_values() {
    let e = errors(&format!(
        "{OK_ENTRY}MatchHost api.example.com ~(open\nMatchHost a:8080\nMatchHost *\nMatchMethod GET G(T\nMatchMethod get\nPathRewrite ^/api/(.*) /$2\n"
    ));
    assert_eq!(
        e,
        [
            "t.conf:4: invalid MatchHost regex `(open`: unclosed group",
            "t.conf:5: MatchHost `a:8080`: write the host without a port (the port is not compared)",
            "t.conf:6: MatchHost `*` is not a host name; a wildcard is `*.` followed by a domain (`*.example.org`)",
            "t.conf:7: MatchMethod `G(T` is not a method token (letters, digits, `-`, ...)",
            "t.conf:8: MatchMethod `get`: methods are case-sensitive; write `GET`",
            "t.conf:9: PathRewrite replacement uses `$2`, but `^/api/(.*)` has 1 capture group",
        ]
    );
}

#[test]
fn rewrites_name_existing_groups_and_come_one_per_entry() {
    assert_eq!(
        one(&format!("{OK_ENTRY}PathRewrite ^/(?P<rest>.*) /${{rst}}\n")),
        "t.conf:4: PathRewrite replacement uses `${rst}`, but `^/(?P<rest>.*)` has no group of \
         that name (named groups: rest)"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}PathRewrite ^/(.* /$1\n")),
        "t.conf:4: invalid PathRewrite regex `^/(.*`: unclosed group"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}PathRewrite ^/a\n")),
        "t.conf:4: PathRewrite takes a regex and a replacement (`PathRewrite ^/api/(.*) /$1`), \
         not `^/a`"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}PathRewrite ^/a /b?x=1\n")),
        "t.conf:4: PathRewrite replacement `/b?x=1` must be visible characters without `?` or \
         `#` (the query is kept as the client sent it)"
    );
    assert_eq!(
        one(&format!(
            "{OK_ENTRY}PathStripPrefix /api\nPathRewrite ^/a /b\n"
        )),
        "t.conf:5: PathRewrite and PathStripPrefix (line 4) both rewrite the path; keep one"
    );
    assert_eq!(
        one(&format!("{OK_ENTRY}PathStripPrefix /\n")),
        "t.conf:4: PathStripPrefix must be one path of visible characters starting with `/` \
         (not `/` alone), not `/`"
    );
    assert_eq!(
        one(&format!(
            "{OK_ENTRY}PathStripPrefix /a\nPathStripPrefix /b\n"
        )),
        "t.conf:5: PathStripPrefix is given twice in this section (lines 4 and 5); keep one"
    );
    assert_eq!(
        one("[PROXY_DEFAULTS]\nMatchHost a.test\n[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:1\n"),
        "t.conf:2: MatchHost is only allowed in [PROXY_ENTRY]"
    );
}

#[test]
fn an_entry_needs_match_or_match_host() {
    assert_eq!(
        one("[PROXY_ENTRY]\nMatchMethod GET\nServerList 127.0.0.1:1\n"),
        "t.conf:1: [PROXY_ENTRY] has no Match (or MatchHost) line"
    );
    let c = ok("[PROXY_ENTRY]\nMatchHost API.test.\nServerList 127.0.0.1:1\n");
    assert!(c.entries[0].matches.is_empty());
    assert_eq!(
        c.entries[0].route.hosts[0].pattern,
        proxy_reverse::config::HostPattern::Exact("api.test".into())
    );
}

#[test]
fn header_rules_on_protected_headers_are_refused_with_the_reason() {
    assert_eq!(
        one(&format!("{OK_ENTRY}RequestHeader remove X-Forwarded-For\n")),
        "t.conf:4: X-Forwarded-For is set by the proxy (a client's is replaced, a trusted \
         proxy's kept); a rule cannot remove it"
    );
    for (line, name) in [
        (
            "RequestHeader set x-forwarded-proto https",
            "X-Forwarded-Proto",
        ),
        ("RequestHeader add Forwarded for=1.2.3.4", "Forwarded"),
        (
            "RequestHeader set X-Forwarded-Host evil",
            "X-Forwarded-Host",
        ),
    ] {
        let e = one(&format!("{OK_ENTRY}{line}\n"));
        assert!(
            e.starts_with(&format!("t.conf:4: {name} is set by the proxy")),
            "{e}"
        );
    }
    for side in ["RequestHeader", "ResponseHeader"] {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "Connection",
            "Keep-Alive",
            "Upgrade",
            "TE",
            "Trailer",
            "Proxy-Connection",
        ] {
            let e = one(&format!("{OK_ENTRY}{side} remove {name}\n"));
            assert!(e.starts_with("t.conf:4: "), "{e}");
            assert!(
                e.contains("is a hop-by-hop or framing header") && e.ends_with("cannot remove it"),
                "{e}"
            );
        }
    }
    let e = one(&format!(
        "{OK_ENTRY}RequestHeader set Expect 100-continue\n"
    ));
    assert!(e.contains("Expect is dropped by the proxy"), "{e}");
    let e = one(&format!("{OK_ENTRY}RequestHeader remove Host\n"));
    assert_eq!(
        e,
        "t.conf:4: a request has exactly one Host; a rule can only set it, not remove it"
    );
    let e = one(&format!("{OK_ENTRY}RequestHeader set Host a b\n"));
    assert_eq!(
        e,
        "t.conf:4: Host must be set to one host[:port], not `a b`"
    );
    // In the defaults too, at their line.
    let e = one(&format!(
        "[PROXY_DEFAULTS]\nResponseHeader set Content-Length 1\n{OK_ENTRY}"
    ));
    assert!(
        e.starts_with("t.conf:2: Content-Length is a hop-by-hop"),
        "{e}"
    );
}

#[test]
fn malformed_header_rules_are_refused() {
    let cases = [
        (
            "RequestHeader set X-Env",
            "t.conf:4: `RequestHeader set X-Env` needs a value",
        ),
        (
            "ResponseHeader add X-Env",
            "t.conf:4: `ResponseHeader add X-Env` needs a value",
        ),
        (
            "ResponseHeader remove Server now",
            "t.conf:4: `ResponseHeader remove Server` takes no value, not `now`",
        ),
        (
            "RequestHeader replace X-Env prod",
            "t.conf:4: RequestHeader takes `set NAME VALUE`, `add NAME VALUE` or `remove NAME`, \
             not `replace X-Env prod`",
        ),
        (
            "RequestHeader set",
            "t.conf:4: RequestHeader takes `set NAME VALUE`, `add NAME VALUE` or `remove NAME`: \
             the field name is missing",
        ),
        (
            "RequestHeader set X:Env prod",
            "t.conf:4: `X:Env` is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)",
        ),
        (
            "RequestHeader set X-Env pr\u{1}od",
            "t.conf:4: the value of X-Env has the control byte 0x01, which no header value may \
             contain",
        ),
        (
            "RequestHeader set X-Env a\0b",
            "t.conf:4: the value of X-Env has the control byte 0x00, which no header value may \
             contain",
        ),
        (
            "RequestHeader set X-User $user",
            "t.conf:4: unknown variable `$user` in the value of X-User; the variables are \
             $client_addr, $entry, $server, $request_id (write $$ for a $)",
        ),
        (
            "ResponseHeader set X-Price 5$",
            "t.conf:4: a lone `$` in the value of X-Price; the variables are $client_addr, \
             $entry, $server, $request_id (write $$ for a $)",
        ),
    ];
    for (line, expected) in cases {
        assert_eq!(one(&format!("{OK_ENTRY}{line}\n")), expected, "{line}");
    }
    // Every bad rule of a file is reported, each at its line.
    let e = errors(&format!(
        "{OK_ENTRY}RequestHeader set X-A $nope\nRequestHeader set X-B ok\nResponseHeader remove Connection\n"
    ));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(
        e[0].starts_with("t.conf:4: ") && e[1].starts_with("t.conf:6: "),
        "{e:?}"
    );
}
