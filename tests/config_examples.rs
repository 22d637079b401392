//! The seed's two examples and the original plugin's sample parse to what the seed describes.

mod config_common;

use std::net::SocketAddr;
use std::time::Duration;

use config_common::load_fixture;
use proxy_reverse::config::{Entry, ServerSpec};
use proxy_reverse::routing::Router;

fn server(name: &str, addr: &str, weight: u32) -> ServerSpec {
    ServerSpec {
        name: name.to_string(),
        addr: addr.parse::<SocketAddr>().unwrap(),
        weight,
        tls: false,
        backup: false,
    }
}

fn patterns(e: &Entry) -> Vec<(&str, usize)> {
    e.matches
        .iter()
        .map(|m| (m.pattern.as_str(), m.line))
        .collect()
}

#[test]
fn seed_two_entries() {
    let c = load_fixture("seed_two_entries.conf");
    assert_eq!(c.statistics_url, None);
    assert_eq!(c.entries.len(), 2);

    let php = &c.entries[0];
    assert_eq!(php.line, 10);
    assert_eq!(patterns(php), [("/*.php", 12)]);
    assert_eq!(
        php.servers,
        [
            server("Host4:80", "10.0.0.4:80", 1),
            server("Host5:8080", "10.0.0.5:8080", 1)
        ]
    );
    // `LoadBalance First-Alive` in the defaults, canonical name.
    assert_eq!(php.balancer, "FirstAlive");

    let stat = &c.entries[1];
    assert_eq!(stat.line, 14);
    assert_eq!(stat.balancer, "RoundRobin");
    assert_eq!(stat.servers.len(), 3);
    assert!(stat.servers.iter().all(|s| s.weight == 1));
    assert_eq!(
        patterns(stat),
        [
            ("/*.jpg", 17),
            ("/*.png", 18),
            ("/*.css", 19),
            ("/*.js", 20),
            ("/*.html", 21)
        ]
    );

    let router = Router::new(&c.entries).unwrap();
    assert_eq!(router.route("/index.php"), Some(0));
    assert_eq!(router.route("/img/logo.png"), Some(1));
    assert_eq!(router.route("/readme.txt"), None);
}

#[test]
fn seed_weighted_round_robin() {
    let c = load_fixture("seed_weighted.conf");
    let e = &c.entries[0];
    assert_eq!(e.balancer, "RoundRobin");
    assert_eq!(
        e.servers,
        [
            server("127.0.0.1:80", "127.0.0.1:80", 3),
            server("127.0.0.1:81", "127.0.0.1:81", 2),
            server("127.0.0.1:82", "127.0.0.1:82", 1),
        ]
    );
}

#[test]
fn original_sample() {
    let c = load_fixture("original_sample.conf");
    assert_eq!(c.statistics_url.as_deref(), Some("/proxy-status"));
    assert_eq!(c.entries.len(), 1);
    let e = &c.entries[0];
    // The entry's own ServerList replaces the defaults' one.
    assert_eq!(
        e.servers,
        [
            server("RemoteStatic:80", "10.0.1.2:80", 1),
            server("10.10.10.4:80", "10.10.10.4:80", 1),
        ]
    );
    assert_eq!(e.balancer, "RoundRobin");
    assert_eq!(e.attempts_count, 2);
    assert_eq!(e.offline_timeout, Duration::from_secs(60));
    assert_eq!(e.matches.len(), 5);
    assert_eq!(e.matches[0].line, 15);
}

/// Every configuration shown in README.md (a fenced block that has a `[PROXY_` section)
/// is accepted as printed: a newcomer pastes them.
#[test]
fn readme_examples_parse() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```")
        .skip(1)
        .step_by(2)
        .filter(|b| b.contains("[PROXY_ENTRY]"))
        .collect();
    assert!(
        !blocks.is_empty(),
        "no configuration block found in README.md"
    );
    for block in blocks {
        let text = block.split_once('\n').map_or(block, |(_, rest)| rest);
        if let Err(e) = config_common::parse(text) {
            panic!("README example rejected:\n{text}\n{e:#?}");
        }
    }
}
