//! Who may read the statistics, and which format a request gets.

use std::net::IpAddr;

use proxy_reverse::config::Cidr;
use proxy_reverse::stats::{
    allowed, choose_format, content_type, query_param, refresh_secs, Format,
};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn cidr(s: &str) -> Cidr {
    let (a, p) = s.split_once('/').unwrap();
    Cidr {
        addr: ip(a),
        prefix: p.parse().unwrap(),
    }
}

#[test]
fn loopback_is_always_allowed() {
    for c in ["127.0.0.1", "127.255.0.9", "::1", "::ffff:127.0.0.1"] {
        assert!(allowed(ip(c), &[]), "{c}");
    }
}

#[test]
fn others_are_refused_by_default() {
    for c in [
        "10.0.0.1",
        "192.168.1.2",
        "::2",
        "fe80::1",
        "::ffff:10.0.0.1",
        "0.0.0.0",
    ] {
        assert!(!allowed(ip(c), &[]), "{c}");
    }
}

#[test]
fn listed_blocks_are_allowed() {
    let allow = [
        cidr("10.0.0.0/8"),
        cidr("2001:db8::/32"),
        cidr("192.0.2.7/32"),
    ];
    for c in ["10.1.2.3", "::ffff:10.9.9.9", "2001:db8::5", "192.0.2.7"] {
        assert!(allowed(ip(c), &allow), "{c}");
    }
    for c in ["11.0.0.1", "2001:db9::1", "192.0.2.8"] {
        assert!(!allowed(ip(c), &allow), "{c}");
    }
    // A catch-all block opens the page to everyone.
    assert!(allowed(ip("203.0.113.1"), &[cidr("0.0.0.0/0")]));
}

#[test]
fn query_format_wins() {
    assert_eq!(choose_format("format=json", None), Format::Json);
    assert_eq!(
        choose_format("a=1&format=prometheus", Some("text/html")),
        Format::Prometheus
    );
    assert_eq!(
        choose_format("format=HTML", Some("application/json")),
        Format::Html
    );
    assert_eq!(choose_format("format=json&refresh=3", None), Format::Json);
    // An unknown value falls back to content negotiation.
    assert_eq!(
        choose_format("format=xml", Some("application/json")),
        Format::Json
    );
}

#[test]
fn accept_header_negotiates() {
    assert_eq!(choose_format("", None), Format::Html);
    assert_eq!(choose_format("", Some("application/json")), Format::Json);
    assert_eq!(choose_format("", Some("*/*")), Format::Html);
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    assert_eq!(choose_format("", Some(browser)), Format::Html);
    assert_eq!(
        choose_format("", Some("text/html;q=0.2, application/json")),
        Format::Json
    );
    assert_eq!(
        choose_format("", Some("application/json;q=0")),
        Format::Html
    );
    let scraper = "application/openmetrics-text;version=1.0.0;q=0.5,\
                   application/openmetrics-text;version=0.0.1;q=0.4,\
                   text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
    assert_eq!(choose_format("", Some(scraper)), Format::Prometheus);
    // Plain text without the exposition version is not a request for metrics.
    assert_eq!(choose_format("", Some("text/plain")), Format::Html);
}

#[test]
fn content_types() {
    assert_eq!(
        content_type(Format::Html).value(),
        "text/html; charset=utf-8"
    );
    assert_eq!(content_type(Format::Json).value(), "application/json");
    assert!(content_type(Format::Prometheus)
        .value()
        .starts_with("text/plain; version=0.0.4"));
}

#[test]
fn query_parameters_and_refresh() {
    assert_eq!(query_param("a=1&b=2", "b"), Some("2"));
    assert_eq!(query_param("a&b=2", "a"), Some(""));
    assert_eq!(query_param("ab=1", "a"), None);
    assert_eq!(refresh_secs("refresh=5"), Some(5));
    assert_eq!(refresh_secs("refresh=0"), None);
    assert_eq!(refresh_secs("refresh=-1"), None);
    assert_eq!(refresh_secs("refresh=999999"), Some(3600));
    assert_eq!(refresh_secs(""), None);
}
