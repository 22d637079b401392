//! `Proxy::statistics_page`: who gets the page and who gets 403, from a parsed configuration.
//!
//! The real-Monkey tests only ever connect from loopback (this workplace allows no other
//! traffic), so the refusal of a non-loopback client is checked here, one layer below the
//! server, with the client address the Monkey glue would pass.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use proxy_reverse::config::parse_str;
use proxy_reverse::http::status::ContentType;
use proxy_reverse::proxy::{Proxy, Route};
use proxy_reverse::stats::{content_type, Format};

/// The time the pages are made at (any: these pages show no live state that depends on it).
const NOW: u64 = 1_000;

fn no_dns(host: &str, _port: u16) -> Result<SocketAddr, String> {
    Err(format!("no DNS in tests ({host})"))
}

fn proxy(allow: &str) -> Proxy {
    let text = format!(
        "[PROXY_DEFAULTS]\nStatisticsURL /proxy-status\n{allow}\n\
         [PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:9\n"
    );
    let config = parse_str(&text, Path::new("test.conf"), &no_dns)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    Proxy::new(config).expect("proxy")
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn non_loopback_clients_get_403_by_default() {
    let p = proxy("");
    assert_eq!(p.route("/proxy-status"), Route::Statistics);
    for client in [ip("192.0.2.10"), ip("10.0.0.1"), ip("2001:db8::1"), None] {
        let page = p.statistics_page(client, "format=json", Some("application/json"), NOW);
        assert_eq!(page.status, 403, "{client:?}");
        assert_eq!(page.content_type, ContentType::Text, "{client:?}");
        let body = String::from_utf8_lossy(&page.body);
        assert!(
            !body.contains("127.0.0.1:9"),
            "403 body reveals a server: {body}"
        );
    }
    for client in [ip("127.0.0.1"), ip("::1"), ip("::ffff:127.0.0.1")] {
        let page = p.statistics_page(client, "format=json", None, NOW);
        assert_eq!(page.status, 200, "{client:?}");
        assert_eq!(page.content_type, content_type(Format::Json));
    }
    let g = p.stats.global().snapshot();
    assert_eq!(g.statistics, 7);
    assert_eq!(g.forbidden, 4);
}

#[test]
fn statistics_allow_opens_the_page_to_listed_clients_only() {
    let p = proxy("StatisticsAllow 10.0.0.0/8 2001:db8::/32\n");
    for client in [ip("10.1.2.3"), ip("2001:db8::7"), ip("127.0.0.1")] {
        let page = p.statistics_page(client, "format=prometheus", None, NOW);
        assert_eq!(page.status, 200, "{client:?}");
        assert_eq!(page.content_type, content_type(Format::Prometheus));
    }
    for client in [ip("192.0.2.10"), ip("11.0.0.1"), ip("2001:db9::1")] {
        assert_eq!(
            p.statistics_page(client, "", None, NOW).status,
            403,
            "{client:?}"
        );
    }
    // An allowed page shows the servers; the default format is HTML.
    let page = p.statistics_page(ip("10.9.9.9"), "", None, NOW);
    assert_eq!(page.content_type, content_type(Format::Html));
    assert!(String::from_utf8_lossy(&page.body).contains("127.0.0.1:9"));
}
