//! The `proxy-reverse-check` binary: exit codes, summary, errors, `--explain`, `--handlers`,
//! and the shipped `conf/proxy_reverse.conf` staying valid.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SEED_HOSTS: [&str; 10] = [
    "--resolve",
    "Host1=10.0.0.1",
    "--resolve",
    "Host2=10.0.0.2",
    "--resolve",
    "Host3=10.0.0.3",
    "--resolve",
    "Host4=10.0.0.4",
    "--resolve",
    "Host5=10.0.0.5",
];

fn check(args: &[&str]) -> (i32, String, String) {
    let out: Output = Command::new(env!("CARGO_BIN_EXE_proxy-reverse-check"))
        .args(args)
        .output()
        .expect("run proxy-reverse-check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    path(&format!("tests/config_fixtures/{name}"))
}

fn path(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

fn seed(extra: &[&str]) -> (i32, String, String) {
    let file = fixture("seed_two_entries.conf");
    let mut args: Vec<&str> = SEED_HOSTS.to_vec();
    args.push(&file);
    args.extend_from_slice(extra);
    check(&args)
}

#[test]
fn valid_file_exits_0_with_a_summary() {
    let (code, out, err) = seed(&[]);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(out, "ok: 2 entries, 5 servers, statistics off\n");
}

#[test]
fn shipped_example_passes_and_uses_every_key() {
    let file = path("conf/proxy_reverse.conf");
    let (code, out, err) = check(&[&file]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "ok: 3 entries, 6 servers, statistics at /proxy-status\n"
    );
    assert_eq!(err, "", "the example has no warnings");
    let text = std::fs::read_to_string(&file).unwrap();
    // These need an HTTPS backend and the operator's own files: shown in a commented example.
    // So do the hash keys (they need SourceHash) and the sticky cookie (its secret must be
    // the operator's own, never one shipped).
    let example_only = [
        "UpstreamTlsName",
        "UpstreamCaFile",
        "UpstreamCertFile",
        "UpstreamKeyFile",
        "HashKey",
        "HashBalanceFactor",
        "StickyCookie",
        "StickySecret",
        // Host and method routing and rewrites would change what the quick start's URLs
        // reach: shown in a commented example of the first entry.
        "MatchHost",
        "MatchMethod",
        "PathStripPrefix",
        "PathRewrite",
    ];
    for key in proxy_reverse::config::keys::KEYS {
        let used = text.lines().any(|l| {
            let mut l = l.trim_start();
            if example_only.contains(&key.name) {
                l = l.trim_start_matches('#').trim_start();
            }
            !l.starts_with('#')
                && l.split_whitespace().next().is_some_and(|k| {
                    k.eq_ignore_ascii_case(key.name)
                        || key.aliases.iter().any(|a| k.eq_ignore_ascii_case(a))
                })
        });
        assert!(used, "conf/proxy_reverse.conf does not use {}", key.name);
    }
}

#[test]
fn broken_file_exits_1_with_line_errors_on_stderr() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("check_cli_broken.conf");
    std::fs::write(
        &file,
        "[PROXY_ENTRY]\nMatch (\nServerList 127.0.0.1:99999\nLoadBalancer Fastest\n",
    )
    .unwrap();
    let name = file.display().to_string();
    let (code, out, err) = check(&[&name]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with(&format!("{name}:2: invalid regex `(`")));
    assert!(lines[1].starts_with(&format!("{name}:3: server `127.0.0.1:99999`")));
    assert!(lines[2].starts_with(&format!("{name}:4: unknown LoadBalancer `Fastest`")));
}

#[test]
fn unresolvable_host_without_resolve_is_an_error() {
    let (code, _, err) = check(&[&fixture("original_sample.conf")]);
    assert_eq!(code, 1);
    assert!(
        err.contains(":6: cannot resolve server `remote:80`"),
        "{err}"
    );
}

#[test]
fn explain_names_the_php_entry_and_its_servers() {
    let (code, out, _) = seed(&["--explain", "/index.php"]);
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "entry 1: FirstAlive Host4:80 Host5:8080");
    assert!(lines[1].contains("line 12: Match /*.php"), "{out}");

    let (code, out, _) = seed(&["--explain", "/logo.png?v=2"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("entry 2: RoundRobin Host1:80 Host2:80 Host3:80\n"));
    assert!(out.contains("line 18: Match /*.png"), "{out}");
    assert!(out.contains("entry 1 did not match"));
}

#[test]
fn explain_routes_by_the_decoded_path_as_monkey_does() {
    // `%2e` is `.`: Monkey decodes before matching, so this is `/logo.png`.
    let (code, out, _) = seed(&["--explain", "/logo%2epng?v=%20"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("routing by the decoded path /logo.png\n"),
        "{out}"
    );
    assert!(out.contains("entry 2: RoundRobin"), "{out}");
}

#[test]
fn explain_shows_weights() {
    let (code, out, _) = check(&[&fixture("seed_weighted.conf"), "--explain", "/"]);
    assert_eq!(code, 0);
    assert!(out.starts_with(
        "entry 1: RoundRobin 127.0.0.1:80 weight=3 127.0.0.1:81 weight=2 127.0.0.1:82\n"
    ));
}

#[test]
fn explain_shows_the_hash_key_and_the_sticky_cookie() {
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("check_cli_affinity.conf");
    std::fs::write(
        &file,
        "[PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:80 127.0.0.1:81\nLoadBalancer SourceHash\n\
         HashKey cookie sid\nHashBalanceFactor 125\nStickyCookie SRV Secure Max-Age=60\n\
         StickySecret 0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let (code, out, err) = check(&[file.to_str().unwrap(), "--explain", "/"]);
    assert_eq!((code, err.as_str()), (0, ""), "{out}");
    assert!(
        out.contains(
            "  hash key: cookie sid (a request without it hashes on the client address); \
             bounded loads: at most 125% of the mean in flight per server\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("  sticky cookie: SRV Path=/ Max-Age=60 Secure (set when"),
        "{out}"
    );
    assert!(
        !out.contains("0123456789abcdef"),
        "the secret is not shown: {out}"
    );
}

#[test]
fn explain_shows_the_header_rules_and_help_their_limits() {
    let (code, out, err) = check(&[&path("conf/proxy_reverse.conf"), "--explain", "/api/x"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "  RequestHeader set X-Request-Id $request_id\n  \
             ResponseHeader set X-Request-Id $request_id\n  ResponseHeader remove Server\n"
        ),
        "{out}"
    );
    let (_, help, _) = check(&["--help"]);
    assert!(
        help.contains("$client_addr $entry $server $request_id"),
        "{help}"
    );
    assert!(help.contains("X-Forwarded-For X-Forwarded-Proto X-Forwarded-Host Forwarded"));
}

#[test]
fn a_rule_removing_x_forwarded_for_is_refused_by_the_checker() {
    let dir = std::env::temp_dir().join(format!("check-headers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.conf");
    std::fs::write(
        &file,
        "[PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:1\nRequestHeader remove X-Forwarded-For\n",
    )
    .unwrap();
    let (code, out, err) = check(&[&file.display().to_string()]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!(
            "{}:4: X-Forwarded-For is set by the proxy (a client's is replaced, a trusted \
             proxy's kept); a rule cannot remove it\n",
            file.display()
        )
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_without_a_match_exits_3() {
    let (code, out, _) = seed(&["--explain", "/readme.txt"]);
    assert_eq!(code, 3);
    assert_eq!(out, "no entry matches /readme.txt\n");
}

#[test]
fn explain_the_statistics_url() {
    let (code, out, _) = check(&[
        &path("conf/proxy_reverse.conf"),
        "--explain",
        "/proxy-status",
    ]);
    assert_eq!(code, 0);
    assert!(out.starts_with("statistics: /proxy-status"));
}

#[test]
fn handlers_lists_simple_regexes_or_a_catch_all() {
    let (code, out, _) = seed(&["--handlers"]);
    assert_eq!(code, 0);
    let rules: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        rules,
        [
            "    Match /*.php proxy_reverse",
            "    Match /*.jpg proxy_reverse",
            "    Match /*.png proxy_reverse",
            "    Match /*.css proxy_reverse",
            "    Match /*.js proxy_reverse",
            "    Match /*.html proxy_reverse",
        ]
    );
    let (code, out, _) = check(&[&path("conf/proxy_reverse.conf"), "--handlers"]);
    assert_eq!(code, 0);
    let rules: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules, ["    Match /.* proxy_reverse"]);
    assert!(out.contains("404"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--explain"][..],
        &["--bogus", "f.conf"][..],
        &["a.conf", "b.conf"][..],
        &["--handlers", "--explain", "/", "f.conf"][..],
        &["--urls", "--handlers", "f.conf"][..],
        &["--resolve", "nohost", "f.conf"][..],
    ] {
        let (code, out, err) = check(args);
        assert_eq!(code, 2, "{args:?}");
        assert_eq!(out, "");
        assert!(err.contains("usage:"), "{err}");
    }
}

#[test]
fn help_lists_every_key_and_balancer() {
    let (code, out, _) = check(&["--help"]);
    assert_eq!(code, 0);
    for key in proxy_reverse::config::keys::KEYS {
        assert!(out.contains(&format!("  {} ", key.name)), "{}", key.name);
    }
    for b in proxy_reverse::config::BALANCERS {
        assert!(out.contains(b.name));
    }
}

#[test]
fn shipped_example_keeps_the_statistics_page_loopback_only() {
    let file = path("conf/proxy_reverse.conf");
    let c = proxy_reverse::config::load(Path::new(&file)).unwrap();
    assert!(c.statistics_url.is_some());
    for block in &c.statistics_allow {
        let loopback_only = match block.addr {
            std::net::IpAddr::V4(a) => a.is_loopback() && block.prefix >= 8,
            std::net::IpAddr::V6(a) => a.is_loopback() && block.prefix == 128,
        };
        assert!(loopback_only, "StatisticsAllow opens the page to {block:?}");
    }
    // And it shows how to open it, in a comment.
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.lines().any(|l| l.trim_start().starts_with("#")
            && l.contains("StatisticsAllow ")
            && l.contains("10.0.0.0/8")),
        "no commented StatisticsAllow example"
    );
}

#[test]
fn shipped_example_names_the_checker_by_commands_that_work() {
    // Every command in the example's comments is `cargo run --bin proxy-reverse-check -- ...`
    // (scripts/install.sh rewrites it to the installed checker in the copy it makes); run
    // from the source tree, each one succeeds.
    const CARGO: &str = "cargo run --bin proxy-reverse-check --";
    let text = std::fs::read_to_string(path("conf/proxy_reverse.conf")).unwrap();
    let mut commands = 0;
    for line in text.lines() {
        let line = line.trim_start().trim_start_matches('#').trim();
        if !line.contains("proxy-reverse-check") || !line.contains(" -- ") {
            continue;
        }
        let args = line
            .strip_prefix(CARGO)
            .unwrap_or_else(|| panic!("not a working command: {line}"));
        let out = Command::new(env!("CARGO_BIN_EXE_proxy-reverse-check"))
            .args(args.split_whitespace())
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
        assert!(!out.stdout.is_empty(), "{line}");
        commands += 1;
    }
    assert_eq!(commands, 5);
}

#[test]
fn urls_gives_a_path_per_entry_and_the_statistics_page() {
    let (code, out, err) = check(&[&path("conf/proxy_reverse.conf"), "--urls"]);
    assert_eq!((code, err.as_str()), (0, ""));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("/index.php     entry 1 (line "),
        "{out}"
    );
    assert!(
        lines[0].ends_with("): FirstAlive 127.0.0.1:8080 127.0.0.1:8081"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("/index.jpg     entry 2 (line "),
        "{out}"
    );
    assert!(
        lines[1].ends_with("): RoundRobin 127.0.0.1:9001 weight=3 127.0.0.1:9002"),
        "{out}"
    );
    assert!(
        lines[2].starts_with("/              entry 3 (line "),
        "{out}"
    );
    assert_eq!(
        lines[3],
        "/proxy-status  statistics (also ?format=json, ?format=prometheus)"
    );
    // Each path is routed to its entry, as --explain says.
    for (n, line) in lines[..3].iter().enumerate() {
        let p = line.split_whitespace().next().unwrap();
        let (code, out, _) = check(&[&path("conf/proxy_reverse.conf"), "--explain", p]);
        assert_eq!(code, 0);
        assert!(out.starts_with(&format!("entry {}: ", n + 1)), "{p}: {out}");
    }

    let (code, out, _) = seed(&["--urls"]);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        "/index.php  entry 1 (line 10): FirstAlive Host4:80 Host5:8080\n\
         /index.jpg  entry 2 (line 14): RoundRobin Host1:80 Host2:80 Host3:80\n"
    );
}

#[test]
fn a_shadowed_entry_is_a_warning_and_urls_says_it_has_no_path() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("check_cli_shadowed.conf");
    std::fs::write(
        &file,
        "[PROXY_DEFAULTS]\nServerList http://127.0.0.1:18081\n[PROXY_ENTRY]\nMatch .*\n[PROXY_ENTRY]\nMatch \\.php$\n",
    )
    .unwrap();
    let name = file.display().to_string();
    let warning = format!(
        "{name}:5: warning: this entry never serves a request: the entry at line 3 matches every path first (line 4: Match .*)\n"
    );
    let (code, out, err) = check(&[&name]);
    assert_eq!(code, 0);
    assert_eq!(out, "ok: 2 entries, 2 servers, statistics off\n");
    assert_eq!(err, warning);

    let (code, out, err) = check(&[&name, "--urls"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("/  entry 1 (line 3): FirstAlive 127.0.0.1:18081\n"),
        "{out}"
    );
    assert_eq!(
        err,
        format!("{warning}{name}:5: no path found that reaches this entry (see the warnings above, or try --explain PATH)\n")
    );
}

#[test]
fn explain_takes_a_host_and_a_method_and_shows_the_rewritten_target() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let file = dir.join("check_cli_routing.conf");
    std::fs::write(
        &file,
        "[PROXY_ENTRY]\nMatchHost api.example.com\nMatch ^/api/\nMatchMethod GET HEAD\n\
         PathRewrite ^/api/v1/(.*) /v2/$1\nServerList 127.0.0.1:1\n\
         [PROXY_ENTRY]\nMatchHost *.example.org\nPathStripPrefix /app\nServerList 127.0.0.1:2\n\
         [PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:3\n",
    )
    .unwrap();
    let file = file.to_string_lossy().to_string();
    let explain = |args: &[&str]| {
        let mut all = vec![file.as_str(), "--explain"];
        all.extend_from_slice(args);
        check(&all)
    };
    let (code, out, err) = explain(&["/api/v1/x?q=1", "--host", "API.Example.com:8080"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("entry 1: FirstAlive 127.0.0.1:1\n"),
        "{out}"
    );
    assert!(
        out.contains("  host accepted by line 2: MatchHost api.example.com\n"),
        "{out}"
    );
    assert!(
        out.contains("  method GET accepted by MatchMethod GET HEAD\n"),
        "{out}"
    );
    assert!(
        out.contains("  the backend receives /v2/x?q=1 (PathRewrite ^/api/v1/(.*) /v2/$1)\n"),
        "{out}"
    );
    // The same path with another method, or another host, goes on to the later entries.
    let (_, out, _) = explain(&["/api/v1/x", "--host", "api.example.com", "--method", "POST"]);
    assert!(out.starts_with("entry 3: "), "{out}");
    let (_, out, _) = explain(&["/app?x", "--host", "www.example.org"]);
    assert!(out.starts_with("entry 2: "), "{out}");
    assert!(
        out.contains("  every path: the entry has no Match (entry at line 7)\n"),
        "{out}"
    );
    assert!(
        out.contains("  the backend receives /?x (PathStripPrefix /app)\n"),
        "{out}"
    );
    let (_, out, _) = explain(&["/x", "--host", "example.org"]);
    assert!(out.starts_with("entry 3: "), "{out}");
    assert!(
        out.contains("  the backend receives /x (as sent)\n"),
        "{out}"
    );
    let (code, _, err) = check(&[&file, "--host", "a"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, _) = check(&[&file, "--help"]);
    assert_eq!(code, 0);
    for key in [
        "MatchHost",
        "MatchMethod",
        "PathRewrite",
        "PathStripPrefix",
        "--host HOST",
    ] {
        assert!(out.contains(key), "{key}");
    }
}
