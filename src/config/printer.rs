//! The printer: [`Config`] back to configuration text that parses to the same model (line
//! numbers aside, which become those of the printed text).

use std::fmt::Write;

use super::values::{format_cidr, format_seconds};
use super::{Cidr, Config, Entry};

/// Servers per printed `ServerList` line (repeated lines append, so long lists stay readable).
const SERVERS_PER_LINE: usize = 8;

/// Prints `config` in canonical form: the defaults section (only the statistics keys), then
/// every entry with every key spelled out.
///
/// Faithful for any model the parser produced; a hand-built model whose strings contain line
/// breaks or leading/trailing blanks cannot be printed faithfully.
pub fn print(config: &Config) -> String {
    let mut out = String::new();
    out.push_str("# proxy_reverse configuration\n");
    if config.statistics_url.is_some() || !config.statistics_allow.is_empty() {
        out.push_str("\n[PROXY_DEFAULTS]\n");
        if let Some(url) = &config.statistics_url {
            let _ = writeln!(out, "    StatisticsURL {url}");
        }
        cidr_line(&mut out, "StatisticsAllow", &config.statistics_allow);
    }
    for entry in &config.entries {
        print_entry(&mut out, entry);
    }
    out
}

fn print_entry(out: &mut String, e: &Entry) {
    out.push_str("\n[PROXY_ENTRY]\n");
    for m in &e.matches {
        let _ = writeln!(out, "    Match {}", m.pattern);
    }
    for chunk in e.servers.chunks(SERVERS_PER_LINE) {
        let list: Vec<String> = chunk
            .iter()
            .map(|s| {
                if s.weight > 1 {
                    format!("{} weight={}", s.name, s.weight)
                } else {
                    s.name.clone()
                }
            })
            .collect();
        let _ = writeln!(out, "    ServerList {}", list.join(" "));
    }
    let _ = writeln!(out, "    LoadBalancer {}", e.balancer);
    let _ = writeln!(out, "    AttemptsCount {}", e.attempts_count);
    let _ = writeln!(
        out,
        "    OfflineTimeOut {}",
        format_seconds(e.offline_timeout)
    );
    let _ = writeln!(
        out,
        "    ConnectTimeout {}",
        format_seconds(e.connect_timeout)
    );
    let _ = writeln!(out, "    ReadTimeout {}", format_seconds(e.read_timeout));
    let _ = writeln!(out, "    UpstreamKeepAlive {}", e.keepalive_idle);
    let _ = writeln!(
        out,
        "    UpstreamKeepAliveTimeout {}",
        format_seconds(e.keepalive_timeout)
    );
    let _ = writeln!(
        out,
        "    UpstreamKeepAliveRequests {}",
        e.keepalive_requests
    );
    cidr_line(out, "TrustedProxies", &e.trusted_proxies);
    let on = if e.forwarded_header { "on" } else { "off" };
    let _ = writeln!(out, "    ForwardedHeader {on}");
}

fn cidr_line(out: &mut String, key: &str, list: &[Cidr]) {
    for chunk in list.chunks(SERVERS_PER_LINE) {
        let list: Vec<String> = chunk.iter().map(format_cidr).collect();
        let _ = writeln!(out, "    {key} {}", list.join(" "));
    }
}
