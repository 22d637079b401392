//! `Proxy::statistics_page`: who gets the page and who gets 403, from a parsed configuration,
//! and what the page says about a server as the real health table moves it through its states.
//!
//! The real-Monkey tests only ever connect from loopback (this workplace allows no other
//! traffic), so the refusal of a non-loopback client is checked here, one layer below the
//! server, with the client address the Monkey glue would pass.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use proxy_reverse::config::parse_str;
use proxy_reverse::health::FailureKind::ConnectRefused;
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

/// The HTML and JSON pages of `p` at `now`, for a loopback client.
fn pages(p: &Proxy, now: u64) -> (String, serde_json::Value) {
    let page = |q| {
        let page = p.statistics_page(ip("127.0.0.1"), q, None, now);
        assert_eq!(page.status, 200);
        String::from_utf8(page.body.into_owned()).unwrap()
    };
    let html = page("format=html");
    let json = serde_json::from_str(&page("format=json")).expect("JSON");
    (html, json)
}

/// The line under the state badge of server `name`'s row.
fn why<'p>(html: &'p str, name: &str) -> &'p str {
    let row = html
        .split("<tr>")
        .find(|r| r.contains(&format!(">{name} <small>")))
        .unwrap_or_else(|| panic!("no row for {name}:\n{html}"));
    let at = row.find("<span class=\"why\">").expect("why line") + "<span class=\"why\">".len();
    &row[at..at + row[at..].find("</span>").unwrap()]
}

#[test]
fn the_page_follows_a_server_offline_due_probing_and_back_up_in_plain_words() {
    // The real health table behind the page: one failure takes the server offline for 10 s.
    let text = "[PROXY_DEFAULTS]\nStatisticsURL /proxy-status\n\
                [PROXY_ENTRY]\nMatch ^/\nServerList 127.0.0.1:9 127.0.0.1:10\n\
                AttemptsCount 2\nOfflineTimeOut 10\n";
    let config = parse_str(text, Path::new("test.conf"), &no_dns).expect("config");
    let p = Proxy::new(config).expect("proxy");
    let up = &p.upstreams[0];
    let (dead, other) = ("127.0.0.1:9", "127.0.0.1:10");

    // One failure: still up, counted in the singular.
    up.record_failure(0, ConnectRefused, 1_000);
    let (html, json) = pages(&p, 1_000);
    assert_eq!(why(&html, dead), "1 consecutive failure");
    assert_eq!(why(&html, other), "");
    assert_eq!(json["entries"][0]["servers"][0]["reason"], "");

    // The second takes it offline until 11 s.
    up.record_failure(0, ConnectRefused, 1_500);
    let (html, json) = pages(&p, 2_000);
    assert_eq!(
        why(&html, dead),
        "retry in 10 s · connection refused · 2 consecutive failures"
    );
    assert_eq!(json["entries"][0]["servers"][0]["offline_for_secs"], 10);

    // Its period is over and nobody has tried it yet: due, never "retry in 0 s".
    let (html, json) = pages(&p, 11_500);
    assert!(html.contains("class=\"badge offline\">offline<"));
    assert_eq!(
        why(&html, dead),
        "retry due · connection refused · 2 consecutive failures"
    );
    assert!(!html.contains("retry in 0 s"));
    assert_eq!(json["entries"][0]["servers"][0]["offline_for_secs"], 0);

    // A request claims the probe.
    assert!(up.acquire(0, 11_500));
    let (html, json) = pages(&p, 11_600);
    assert_eq!(json["entries"][0]["servers"][0]["state"], "probing");
    assert_eq!(
        why(&html, dead),
        "connection refused · 2 consecutive failures"
    );

    // It answers: back up, with no leftover reason ("response received" in the health table).
    up.record_success(0, 11_700);
    up.release(0);
    assert_eq!(
        p.upstreams[0].servers()[0].health.snapshot().last_reason,
        "response received"
    );
    let (html, json) = pages(&p, 12_000);
    assert!(!html.contains("response received"), "{html}");
    assert_eq!(why(&html, dead), "");
    let s = &json["entries"][0]["servers"][0];
    assert_eq!(
        (s["state"].as_str(), s["reason"].as_str()),
        (Some("up"), Some(""))
    );
    assert_eq!(s["offline_for_secs"], serde_json::Value::Null);
    assert_eq!(s["consecutive_failures"], 0);
}
