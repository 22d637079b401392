//! The printer: [`Config`] back to configuration text that parses to the same model (line
//! numbers aside, which become those of the printed text).

use super::headers::format_rule;
use super::health::{format_expect, format_probe};
use super::lexer::MAX_LINE;
use super::values::{format_cidr, format_seconds};
use super::{Config, Entry};

const INDENT: &str = "    ";

/// Prints `config` in canonical form: the defaults section (only the keys it alone takes), then
/// every entry with every key spelled out.
///
/// Faithful for any model the parser produced: list keys are split over several lines (they
/// append) to stay within the line limit, and a line is left unindented when indenting would
/// push it over. A hand-built model whose strings contain line breaks, blanks at either end
/// or ` #` cannot be printed faithfully.
pub fn print(config: &Config) -> String {
    let mut out = String::new();
    out.push_str("# proxy_reverse configuration\n");
    let stats = config.statistics_url.is_some() || !config.statistics_allow.is_empty();
    let admin = config.admin_url.is_some() || !config.admin_allow.is_empty();
    if stats || admin || config.access_log.is_some() {
        out.push_str("\n[PROXY_DEFAULTS]\n");
        if let Some(url) = &config.statistics_url {
            line(&mut out, "StatisticsURL", url);
        }
        let allow: Vec<String> = config.statistics_allow.iter().map(format_cidr).collect();
        list(&mut out, "StatisticsAllow", &allow);
        if let Some(url) = &config.admin_url {
            line(&mut out, "AdminURL", url);
        }
        let allow: Vec<String> = config.admin_allow.iter().map(format_cidr).collect();
        list(&mut out, "AdminAllow", &allow);
        if let Some(log) = &config.access_log {
            line(&mut out, "AccessLog", &log.path.to_string_lossy());
        }
    }
    for (i, entry) in config.entries.iter().enumerate() {
        print_entry(&mut out, entry, i);
    }
    out
}

/// Entry `e`, the `i`-th (0-based): its `Name` is printed unless it is the default one.
fn print_entry(out: &mut String, e: &Entry, i: usize) {
    out.push_str("\n[PROXY_ENTRY]\n");
    if !e.name.is_empty() && e.name != format!("entry-{}", i + 1) {
        line(out, "Name", &e.name);
    }
    for m in &e.matches {
        line(out, "Match", &m.pattern);
    }
    let hosts: Vec<String> = e.route.hosts.iter().map(|h| h.pattern.written()).collect();
    list(out, "MatchHost", &hosts);
    list(out, "MatchMethod", &e.route.methods);
    if let Some(r) = &e.route.rewrite {
        let (key, value) = r.rewrite.written();
        line(out, key, &value);
    }
    let servers: Vec<String> = e
        .servers
        .iter()
        .map(crate::config::ServerSpec::list_item)
        .collect();
    list(out, "ServerList", &servers);
    line(out, "LoadBalancer", &e.balancer);
    line(out, "AttemptsCount", &e.attempts_count.to_string());
    line(out, "OfflineTimeOut", &format_seconds(e.offline_timeout));
    line(out, "ConnectTimeout", &format_seconds(e.connect_timeout));
    line(out, "ReadTimeout", &format_seconds(e.read_timeout));
    line(out, "UpstreamKeepAlive", &e.keepalive_idle.to_string());
    let timeout = format_seconds(e.keepalive_timeout);
    line(out, "UpstreamKeepAliveTimeout", &timeout);
    let requests = e.keepalive_requests.to_string();
    line(out, "UpstreamKeepAliveRequests", &requests);
    let trusted: Vec<String> = e.trusted_proxies.iter().map(format_cidr).collect();
    list(out, "TrustedProxies", &trusted);
    line(
        out,
        "ForwardedHeader",
        if e.forwarded_header { "on" } else { "off" },
    );
    match &e.health_check {
        None => line(out, "HealthCheck", "off"),
        Some(c) => {
            line(out, "HealthCheck", &format_probe(&c.probe));
            if let Some(host) = &c.host {
                line(out, "HealthCheckHost", host);
            }
            line(out, "HealthCheckExpect", &format_expect(&c.expect));
            line(out, "HealthCheckInterval", &format_seconds(c.interval));
            line(out, "HealthCheckTimeout", &format_seconds(c.timeout));
            line(out, "HealthCheckRise", &c.rise.to_string());
            line(out, "HealthCheckFall", &c.fall.to_string());
        }
    }
    line(out, "SlowStart", &format_seconds(e.slow_start));
    let o = &e.outlier;
    line(out, "OutlierConsecutive5xx", &o.consecutive_5xx.to_string());
    line(out, "OutlierEjectionTime", &format_seconds(o.ejection_time));
    let percent = o.max_ejection_percent.to_string();
    line(out, "OutlierMaxEjectionPercent", &percent);
    let t = &e.tls;
    line(out, "UpstreamTls", on_off(t.all_servers));
    if let Some(name) = &t.name {
        line(out, "UpstreamTlsName", name);
    }
    line(out, "UpstreamTlsVerify", on_off(t.verify));
    for (key, file) in [
        ("UpstreamCaFile", &t.ca_file),
        ("UpstreamCertFile", &t.cert_file),
        ("UpstreamKeyFile", &t.key_file),
    ] {
        if let Some(f) = file {
            line(out, key, &f.path.display().to_string());
        }
    }
    for (key, value) in super::limits::lines(&e.limits) {
        line(out, key, &value);
    }
    for (key, rules) in [
        ("RequestHeader", &e.request_headers),
        ("ResponseHeader", &e.response_headers),
    ] {
        for rule in rules.rules() {
            line(out, key, &format_rule(rule));
        }
    }
    print_affinity(out, &e.affinity);
}

/// `HashKey`, `HashBalanceFactor`, and the sticky cookie with its secret when there is one.
fn print_affinity(out: &mut String, a: &super::Affinity) {
    line(
        out,
        "HashKey",
        &super::affinity::format_hash_key(&a.hash_key),
    );
    line(out, "HashBalanceFactor", &a.balance_factor.to_string());
    if let Some(c) = &a.sticky {
        line(
            out,
            "StickyCookie",
            &super::affinity::format_sticky_cookie(c),
        );
        line(out, "StickySecret", &c.secret);
    }
}

fn on_off(on: bool) -> &'static str {
    if on {
        "on"
    } else {
        "off"
    }
}

/// `Key Value`, indented when the line stays within the limit.
fn line(out: &mut String, key: &str, value: &str) {
    let bare = key.len() + 1 + value.len();
    if bare + INDENT.len() <= MAX_LINE {
        out.push_str(INDENT);
    }
    out.push_str(key);
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// How wide the printer makes the lines of a list (a long list continues on more lines of
/// the same key, which is how the language reads them).
const LIST_WIDTH: usize = 100;

/// A repeatable list key: lines of at most [`LIST_WIDTH`] columns, items never split (an item
/// longer than that takes a line of its own).
fn list(out: &mut String, key: &str, items: &[String]) {
    let budget = LIST_WIDTH.saturating_sub(INDENT.len() + key.len() + 1);
    let mut current = String::new();
    for item in items {
        if !current.is_empty() && current.len() + 1 + item.len() > budget {
            line(out, key, &current);
            current.clear();
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(item);
    }
    if !current.is_empty() {
        line(out, key, &current);
    }
}
