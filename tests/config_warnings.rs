//! Warnings of a valid configuration (`Config::warnings`): an entry that earlier entries leave
//! no request to, and a `Match` line that never chooses its entry. The file stays valid.

mod config_common;

use config_common::ok;

/// The printed warnings of `text`, which must be valid.
fn warnings(text: &str) -> Vec<String> {
    ok(text).warnings().iter().map(|w| w.to_string()).collect()
}

#[test]
fn an_entry_behind_one_that_matches_every_path() {
    for rule in [".*", "^/", "/", "^/.*", "^.*", "^", "(?:)", "/.*", "^/?"] {
        let text = format!(
            "[PROXY_ENTRY]\nMatch {rule}\nServerList 127.0.0.1:1\n\n[PROXY_ENTRY]\nMatch \\.php$\nServerList 127.0.0.1:2\n"
        );
        assert_eq!(
            warnings(&text),
            [format!(
                "t.conf:5: warning: this entry never serves a request: the entry at line 1 matches every path first (line 2: Match {rule})"
            )],
            "{rule}"
        );
    }
}

#[test]
fn every_entry_after_a_catch_all_is_named() {
    let w = warnings(
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch ^/api/\n[PROXY_ENTRY]\nMatch \\.css$\nMatch .*\n[PROXY_ENTRY]\nMatch ^/api/v2/\n[PROXY_ENTRY]\nMatch \\.php$\n",
    );
    assert_eq!(
        w,
        [
            "t.conf:8: warning: this entry never serves a request: the entry at line 5 matches every path first (line 7: Match .*)",
            "t.conf:10: warning: this entry never serves a request: the entry at line 5 matches every path first (line 7: Match .*)",
        ]
    );
}

#[test]
fn an_entry_whose_rules_earlier_entries_have() {
    let w = warnings(
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch \\.php$\n[PROXY_ENTRY]\nMatch ^/api/\n[PROXY_ENTRY]\nMatch \\.php$\n",
    );
    assert_eq!(
        w,
        ["t.conf:7: warning: this entry never serves a request: the entry at line 3 takes its paths first (line 4: Match \\.php$, the same rule)"]
    );
    let w = warnings(
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch \\.php$\n[PROXY_ENTRY]\nMatch ^/api/\n[PROXY_ENTRY]\nMatch \\.php$\nMatch ^/api/v1/\n",
    );
    assert_eq!(
        w,
        ["t.conf:7: warning: this entry never serves a request: earlier entries take all its paths first (for line 8: the entry at line 3, line 4: Match \\.php$, the same rule; for line 9: the entry at line 5, line 6: Match ^/api/, a prefix of it)"]
    );
}

#[test]
fn a_rule_that_never_chooses_its_entry() {
    // The entry still serves `/img/`, but its `\.php$` line is the first entry's.
    let w = warnings(
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch \\.php$\n[PROXY_ENTRY]\nMatch ^/img/\nMatch \\.php$\n",
    );
    assert_eq!(
        w,
        ["t.conf:7: warning: this Match never chooses its entry: the entry at line 3 takes its paths first (line 4: Match \\.php$, the same rule)"]
    );
}

#[test]
fn no_warning_when_every_entry_can_be_reached() {
    for text in [
        // The catch-all last, as in the shipped example.
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch \\.php$\n[PROXY_ENTRY]\nMatch ^/\n",
        // Narrow first, then wide: `/api/v2/` before `/api/`.
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch ^/api/v2/\n[PROXY_ENTRY]\nMatch ^/api/\n",
        // `^/$` is only the root: what follows it is reachable.
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch ^/$\n[PROXY_ENTRY]\nMatch ^/.+\n",
        // The same rule twice in one entry is not a shadowed entry.
        "[PROXY_DEFAULTS]\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch ^/a\nMatch ^/a\n",
    ] {
        assert_eq!(warnings(text), Vec::<String>::new(), "{text}");
    }
}

#[test]
fn warnings_name_the_file_and_the_example_has_none() {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/proxy_reverse.conf");
    let c = proxy_reverse::config::load(&file).unwrap();
    assert_eq!(c.warnings(), []);
    let c = proxy_reverse::config::parse_str(
        "[PROXY_ENTRY]\nMatch .*\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatch x\nServerList 127.0.0.1:1\n",
        std::path::Path::new("/etc/monkey/my.conf"),
        &config_common::resolver,
    )
    .unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(w[0].file, std::path::Path::new("/etc/monkey/my.conf"));
    assert_eq!(w[0].line, 4);
    assert!(w[0]
        .to_string()
        .starts_with("/etc/monkey/my.conf:4: warning: this entry never serves a request"));
}

#[test]
fn slow_start_with_a_hash_method_and_an_entry_of_backups_only() {
    let w = warnings(
        "[PROXY_ENTRY]\nMatch ^/a/\nServerList 127.0.0.1:1 127.0.0.1:2\nLoadBalancer SourceHash\n\
         SlowStart 30\n[PROXY_ENTRY]\nMatch ^/b/\nServerList 127.0.0.1:3 backup\n\
         [PROXY_ENTRY]\nMatch ^/c/\nServerList 127.0.0.1:4\nLoadBalancer RoundRobin\nSlowStart 30\n",
    );
    assert_eq!(w.len(), 2, "{w:#?}");
    assert!(
        w[0].starts_with("t.conf:1: warning: SlowStart has no effect with SourceHash"),
        "{}",
        w[0]
    );
    assert!(
        w[1].starts_with("t.conf:6: warning: every server of this entry is a backup"),
        "{}",
        w[1]
    );
}

#[test]
fn hash_settings_with_a_method_that_does_not_hash() {
    let w = warnings(
        "[PROXY_ENTRY]\nMatch ^/a/\nServerList 127.0.0.1:1\nLoadBalancer RoundRobin\n\
         HashKey header X-User\nHashBalanceFactor 125\n\
         [PROXY_ENTRY]\nMatch ^/b/\nServerList 127.0.0.1:2\nLoadBalancer SourceHash\n\
         HashKey cookie sid\nHashBalanceFactor 150\n\
         [PROXY_ENTRY]\nMatch ^/c/\nServerList 127.0.0.1:3\nHashKey source\n",
    );
    assert_eq!(
        w,
        vec![
            "t.conf:1: warning: HashKey has no effect with RoundRobin: only LoadBalancer \
             SourceHash hashes",
            "t.conf:1: warning: HashBalanceFactor has no effect with RoundRobin: only \
             LoadBalancer SourceHash hashes",
        ]
    );
}

#[test]
fn entries_sharing_a_sticky_cookie_over_other_servers() {
    let secret = "0123456789abcdef0123456789abcdef";
    let w = warnings(&format!(
        "[PROXY_DEFAULTS]\nStickySecret {secret}\nStickyCookie SRV\n\
         [PROXY_ENTRY]\nMatch ^/a/\nServerList 127.0.0.1:1\n\
         [PROXY_ENTRY]\nMatch ^/b/\nServerList 127.0.0.1:1\n\
         [PROXY_ENTRY]\nMatch ^/c/\nServerList 127.0.0.1:2\n\
         [PROXY_ENTRY]\nMatch ^/d/\nServerList 127.0.0.1:3\nStickyCookie SRV Path=/d/\n"
    ));
    assert_eq!(w.len(), 1, "{w:#?}");
    assert!(
        w[0].starts_with(
            "t.conf:10: warning: this entry's StickyCookie SRV has the name, Path and Domain \
             of the entry at line 4 over other servers"
        ),
        "{}",
        w[0]
    );
}

#[test]
fn an_entry_with_host_or_method_rules_shadows_nothing() {
    // A catch-all limited to one host or one method leaves the other requests to later
    // entries; without those rules it would take them all.
    for limit in ["MatchHost a.test", "MatchMethod POST"] {
        let text = format!(
            "[PROXY_ENTRY]\nMatch ^/\n{limit}\nServerList 127.0.0.1:1\n\n[PROXY_ENTRY]\nMatch \\.php$\nServerList 127.0.0.1:2\n"
        );
        assert_eq!(warnings(&text), Vec::<String>::new(), "{limit}");
    }
    // A later entry with a host is still shadowed by an earlier catch-all for every host.
    let w = warnings(
        "[PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:1\n[PROXY_ENTRY]\nMatchHost a.test\nMatch ^/x\nServerList 127.0.0.1:2\n",
    );
    assert_eq!(
        w,
        ["t.conf:4: warning: this entry never serves a request: the entry at line 1 matches every path first (line 2: Match ^/)"]
    );
}
