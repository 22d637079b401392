//! The quick start in a real Monkey v1.8 (`MONKEY_BIN`): `scripts/run-with-monkey.sh` without
//! arguments ends in a working proxy (every printed URL answers 200 through Monkey, the
//! statistics page lists the demo origins up, nothing is left listening after the process
//! group is stopped), and with a file of one's own, Monkey's log and the statistics page
//! name that file. Without `MONKEY_BIN` both are reported ignored.
//! Run: `MONKEY_BIN=/path/to/monkey cargo test --test monkey_quick_start`.

mod script_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use script_support::*;

/// The script's environment: this build's binaries, a scratch run directory, a free port.
fn env(root: &std::path::Path, port: u16) -> Vec<(&'static str, String)> {
    let monkey = std::env::var("MONKEY_BIN").expect("MONKEY_BIN is not set");
    vec![
        ("MONKEY_BIN", monkey),
        ("PREBUILT", prebuilt().display().to_string()),
        ("RUN_DIR", root.join("run").display().to_string()),
        ("PORT", port.to_string()),
    ]
}

fn start(args: &[&str], env: &[(&'static str, String)]) -> Script {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Script::start("run-with-monkey.sh", args, &env)
}

/// Waits until the script printed its URL block and Monkey accepts on `port`.
fn wait_ready(script: &mut Script, port: u16) -> Vec<(String, String)> {
    let printed = script.wait_for(Duration::from_secs(60), |lines| {
        lines
            .iter()
            .any(|l| l.starts_with("  http://") && l.contains(" statistics"))
    });
    assert!(printed, "no URLs printed:\n{}", script.output());
    let deadline = Instant::now() + Duration::from_secs(15);
    while !listening(&format!("127.0.0.1:{port}")) {
        assert!(
            Instant::now() < deadline,
            "Monkey does not accept on {port}:\n{}",
            script.output()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    printed_urls(&script.seen)
}

fn statistics(url: &str) -> Value {
    let (status, body) = get(&format!("{url}?format=json"));
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn quick_start_ends_in_a_working_proxy() {
    // The example's backend ports must be ours to use (a concurrent run may hold them).
    let deadline = Instant::now() + Duration::from_secs(30);
    while DEMO_ADDRS.iter().any(|a| listening(a)) {
        assert!(
            Instant::now() < deadline,
            "something listens on one of {DEMO_ADDRS:?}; the quick start's demo origins need them"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let root = scratch("quick_start");
    let port = free_port();
    let mut script = start(&[], &env(&root, port));
    let urls = wait_ready(&mut script, port);
    assert_eq!(urls.len(), 4, "{}", script.output());
    assert!(
        script
            .seen
            .contains(&format!("  demo origins on {}", DEMO_ADDRS.join(" "))),
        "{}",
        script.output()
    );

    // Every entry's URL answers 200 from a demo origin, twice (round robin moves on).
    let (stats_url, what) = urls.last().unwrap().clone();
    assert!(what.starts_with("statistics"), "{what}");
    for (url, what) in &urls[..urls.len() - 1] {
        for _ in 0..2 {
            let (status, body) = get(url);
            assert_eq!(status, 200, "{url} ({what}): {body}\n{}", script.output());
            assert!(body.starts_with("demo origin 127.0.0.1:"), "{url}: {body}");
        }
    }

    // The page names the example where it is, and lists every demo origin up once its
    // first health check passed (the example checks every 2 s; the first probe comes within
    // half a second, servers are `checking` until then).
    let all_up = |stats: &serde_json::Value| {
        stats["entries"].as_array().unwrap().iter().all(|e| {
            e["servers"]
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["state"] == "up")
        })
    };
    let started = std::time::Instant::now();
    let mut stats = statistics(&stats_url);
    while !all_up(&stats) && started.elapsed() < std::time::Duration::from_secs(3) {
        std::thread::sleep(std::time::Duration::from_millis(100));
        stats = statistics(&stats_url);
    }
    let example = repo().join("conf/proxy_reverse.conf");
    assert_eq!(stats["config_file"], example.display().to_string());
    let entries = stats["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    for e in entries {
        for s in e["servers"].as_array().unwrap() {
            assert_eq!(s["state"], "up", "{s}");
            assert_eq!(s["check"]["last"]["result"], "pass", "{s}");
        }
    }

    // Stopping the group (as Ctrl-C does) stops Monkey and every demo origin.
    assert!(script.stop(), "the script did not exit on SIGTERM");
    assert!(wait_closed(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(5)
    ));
    for addr in DEMO_ADDRS {
        assert!(
            wait_closed(addr, Duration::from_secs(5)),
            "a demo origin is left on {addr}"
        );
    }
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn own_configuration_is_named_in_the_log_and_on_the_page() {
    let root = scratch("quick_start_own");
    // A backend of our own: the demo origin on a free port.
    let backend = format!("127.0.0.1:{}", free_port());
    let mut origin = Command::new(env!("CARGO_BIN_EXE_proxy-reverse-demo-origin"))
        .arg(&backend)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let file = root.join("my-proxy.conf");
    std::fs::write(
        &file,
        format!(
            "[PROXY_DEFAULTS]\n    StatisticsURL /status\n[PROXY_ENTRY]\n    Match ^/\n    ServerList http://{backend}\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut script = start(&[file.to_str().unwrap()], &env(&root, port));
    let urls = wait_ready(&mut script, port);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        assert_eq!(urls.len(), 2, "{}", script.output());
        let (status, body) = get(&urls[0].0);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("demo origin {backend}: GET /\n"));
        let stats = statistics(&urls[1].0);
        assert_eq!(stats["config_file"], file.display().to_string());
        // Monkey's log has the plugin's start-up line about the user's file.
        let logged = format!("[proxy_reverse] {}: 1 entry, 1 server", file.display());
        let found = script.wait_for(Duration::from_secs(10), |lines| {
            lines.iter().any(|l| l.contains(&logged))
        });
        assert!(found, "no `{logged}` in:\n{}", script.output());
        // ... and nothing names the copy of Monkey's configuration the script made.
        let copy = root.join("run/conf/plugins/proxy_reverse");
        assert!(
            !script.output().contains(copy.to_str().unwrap()),
            "{}",
            script.output()
        );
    }));
    script.stop();
    let _ = origin.kill();
    let _ = origin.wait();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
