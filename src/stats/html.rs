//! The HTML rendering: one self-contained page (inline CSS, no scripts, no external assets)
//! that a person understands at a glance, on a desktop or a phone.
//!
//! Every piece of text that comes from the configuration or the health table goes through
//! [`escape`]: match patterns and reasons are operator- or backend-controlled strings.

use std::fmt::Write;

use super::counters::GlobalSnapshot;
use super::histogram::HistogramSnapshot;
use super::snapshot::{EntrySnapshot, ServerLive, ServerSnapshot};
use super::Snapshot;

/// Styles: a table on wide screens (the share percentage has a fixed width so the bars line
/// up whatever the number); below 720 px each row becomes a card whose cells show
/// their column name (`data-label`), so nothing needs horizontal scrolling on a phone.
const STYLE: &str = "\
body{font:15px/1.4 system-ui,sans-serif;margin:0;padding:1rem;background:#f6f7f9;color:#1d2330}\
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:0 0 .4rem}\
.meta{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;margin:.2rem 0 1rem;color:#4a5160}\
.meta b{color:#1d2330}a{color:#2457c5}\
section{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:.8rem;margin:0 0 1rem}\
code{background:#eef1f5;padding:0 .3em;border-radius:3px;word-break:break-all}\
.bal{font-size:.85rem;font-weight:normal;background:#e7ecf7;border-radius:4px;padding:.1em .5em}\
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .5rem;text-align:right;\
border-bottom:1px solid #eceff3;white-space:nowrap}th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}\
th{font-size:.8rem;color:#5b6372;font-weight:600}\
.badge{display:inline-block;min-width:4.5em;text-align:center;border-radius:1em;padding:.05em .6em;\
color:#fff;font-size:.85rem;font-weight:600}\
.up{background:#1e8e3e}.offline{background:#c5221f}.probing{background:#e37400}.other{background:#70757a}\
.down{background:#c5221f}.checking{background:#e37400}.ejected{background:#8e24aa}.backup{background:#00796b}\
.drain{background:#1a73e8}.maint{background:#5f6368}\
.why{display:block;font-size:.75rem;color:#5b6372;white-space:normal}\
.bar{display:inline-block;width:6rem;height:.6rem;background:#e6e9ee;border-radius:3px;\
vertical-align:middle;margin-right:.4rem;overflow:hidden}.bar span{display:block;height:100%;background:#2457c5}\
.pct{display:inline-block;min-width:3.2em;text-align:right}\
.err{color:#c5221f;font-weight:600}\
@media (max-width:720px){thead{display:none}table,tbody,tr,td{display:block;width:auto}\
tr{border:1px solid #dde1e8;border-radius:6px;margin:0 0 .6rem;padding:.3rem}\
td{display:flex;justify-content:space-between;gap:1rem;text-align:right;white-space:normal}\
td:first-child{font-weight:600}td::before{content:attr(data-label);color:#5b6372;text-align:left}}";

/// Column headings of the server table (also each cell's `data-label`).
const COLUMNS: [&str; 13] = [
    "Server",
    "State",
    "Share",
    "Requests",
    "2xx",
    "3xx",
    "4xx",
    "5xx",
    "Errors",
    "Client aborts",
    "Retries",
    "In flight",
    "Latency p50 / p90 / p99",
];

/// Renders `snapshot` as an HTML page; `refresh` adds `<meta http-equiv="refresh">`.
pub fn html(snap: &Snapshot, refresh: Option<u32>) -> String {
    let mut o = String::with_capacity(8 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    if let Some(n) = refresh {
        let _ = write!(o, "<meta http-equiv=\"refresh\" content=\"{n}\">");
    }
    let _ = write!(
        o,
        "<title>proxy_reverse statistics</title><style>{STYLE}</style></head><body>\n\
         <h1>proxy_reverse statistics</h1><div class=\"meta\">\
         <span>uptime <b>{}</b></span><span>requests <b>{}</b></span>\
         <span>bad requests (400) <b>{}</b></span><span>no entry (404) <b>{}</b></span>\
         <span>statistics refused (403) <b>{}</b></span>{}\
         <span>config <code>{}</code></span>\
         <span><a href=\"?format=json\">JSON</a> · <a href=\"?format=prometheus\">Prometheus</a> · \
         <a href=\"?refresh=5\">auto-refresh</a></span></div>\n",
        uptime(snap.uptime_secs),
        snap.totals.requests,
        snap.totals.bad_requests,
        snap.totals.not_found,
        snap.totals.forbidden,
        log_counts(&snap.totals),
        escape(&snap.config_file),
    );
    for e in &snap.entries {
        entry(&mut o, e);
    }
    o.push_str("</body></html>\n");
    o
}

/// The access log's lines and what the logs dropped, when there is something to say.
fn log_counts(t: &GlobalSnapshot) -> String {
    let mut o = String::new();
    if t.access_log_lines + t.access_log_dropped > 0 {
        let _ = write!(
            o,
            "<span>access log lines <b>{}</b> (dropped <b>{}</b>)</span>",
            t.access_log_lines, t.access_log_dropped
        );
    }
    if t.log_lines_dropped > 0 {
        let _ = write!(
            o,
            "<span>log lines dropped <b>{}</b></span>",
            t.log_lines_dropped
        );
    }
    o
}

fn entry(o: &mut String, e: &EntrySnapshot) {
    let _ = write!(
        o,
        "<section><h2>{} <span class=\"bal\">{}</span></h2><div class=\"meta\"><span>Match",
        escape(&e.name),
        escape(&e.balancer)
    );
    for m in &e.matches {
        let _ = write!(o, " <code>{}</code>", escape(m));
    }
    let c = &e.counters;
    let _ = write!(
        o,
        "</span><span>requests <b>{}</b></span><span>no server (503) <b>{}</b></span>\
         <span>left early <b>{}</b></span>\
         <span>in flight <b>{}</b></span><span>retries <b>{}</b></span>\
         <span>failovers <b>{}</b></span><span>latency <b>{}</b></span></div>",
        c.requests,
        e.no_server,
        e.left_early,
        e.in_flight,
        c.retries,
        c.failovers,
        latency(&c.total_latency),
    );
    o.push('\n');
    queue(o, &e.queue);
    o.push_str("<table><thead><tr>");
    for col in COLUMNS {
        let _ = write!(o, "<th>{col}</th>");
    }
    o.push_str("</tr></thead><tbody>\n");
    for s in &e.servers {
        server(o, s);
    }
    o.push_str("</tbody></table></section>\n");
}

/// The entry's queue and retry budget, once either was used.
fn queue(o: &mut String, q: &crate::stats::QueueSnapshot) {
    if q.waits == 0 && q.full == 0 && q.retries_refused == 0 {
        return;
    }
    let _ = write!(
        o,
        "<div class=\"meta\"><span>queue: waiting <b>{}</b></span><span>waited <b>{}</b></span>\
         <span>served <b>{}</b></span><span>timed out <b>{}</b></span>\
         <span>left <b>{}</b></span><span>queue full (503) <b>{}</b></span>\
         <span>longest wait <b>{:.3} s</b></span><span>retries refused by the budget <b>{}</b></span></div>",
        q.waiting,
        q.waits,
        q.served,
        q.timeouts,
        q.left,
        q.full,
        q.wait_max_seconds,
        q.retries_refused,
    );
    o.push('\n');
}

fn server(o: &mut String, s: &ServerSnapshot) {
    let l = &s.live;
    let class = match l.state {
        "up" | "offline" | "probing" | "down" | "checking" | "ejected" | "backup" => l.state,
        _ => "other",
    };
    let mut why = why(l);
    if !s.last_tls_failure.is_empty() && s.counters.failures.tls_handshake > 0 {
        if !why.is_empty() {
            why.push_str(" · ");
        }
        why.push_str(&format!(
            "last TLS failure: {}",
            escape(&s.last_tls_failure)
        ));
    }
    let tls = if s.counters.tls_handshakes > 0 {
        format!(
            " <small>TLS {} handshakes, {} resumed</small>",
            s.counters.tls_handshakes, s.counters.tls_resumed
        )
    } else {
        String::new()
    };
    // An operator's decision shows beside the health it does not replace.
    let admin = match l.admin {
        "drain" | "maint" => format!(" <span class=\"badge {0}\">{0}</span>", l.admin),
        _ => String::new(),
    };
    let c = &s.counters;
    let r = &c.responses;
    // The backend's failures are errors; clients that left are not the server's doing.
    let errors = c.failures.backend();
    let pct = s.share * 100.0;
    let cells = [
        format!(
            "{} <small>weight {}</small>{tls}",
            escape(&s.name),
            s.weight
        ),
        format!(
            "<span class=\"badge {class}\">{}</span>{admin}<span class=\"why\">{why}</span>",
            escape(l.state)
        ),
        format!(
            "<span class=\"bar\"><span style=\"width:{pct:.1}%\"></span></span>\
             <span class=\"pct\">{pct:.1}%</span>"
        ),
        c.requests.to_string(),
        r.c2xx.to_string(),
        r.c3xx.to_string(),
        r.c4xx.to_string(),
        r.c5xx.to_string(),
        if errors > 0 {
            format!("<span class=\"err\">{errors}</span>")
        } else {
            "0".to_string()
        },
        c.failures.client_abort.to_string(),
        c.retries.to_string(),
        l.in_flight.to_string(),
        latency(&c.total_latency),
    ];
    o.push_str("<tr>");
    for (label, cell) in COLUMNS.iter().zip(cells) {
        // One wrapper per cell: on a phone the cell is a flex row of label and content.
        let _ = write!(o, "<td data-label=\"{label}\"><span>{cell}</span></td>");
    }
    o.push_str("</tr>\n");
}

/// The line under a server's state badge, e.g. `retry in 7 s · connect timeout · 2
/// consecutive failures`: when an offline server is tried again (`retry due` once its period
/// is over: the next request that picks it probes it; nothing while a probe is under way, the
/// badge says so), or when an ejected one returns; why it is not up (an up server has no
/// reason, see [`ServerLive::reason`]); the failures since the last success; with checks, the
/// last probe (`check failed 1 s ago: timeout`, `check passed 0 s ago in 0.4 ms`, `no check
/// yet`), how long the state has lasted and the downtime so far; a slow start's share.
fn why(l: &ServerLive) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(3);
    match (l.state, l.offline_for_secs) {
        ("offline", Some(0)) => parts.push("retry due".to_string()),
        ("offline", Some(secs)) => parts.push(format!("retry in {secs} s")),
        _ => {}
    }
    if let Some(secs) = l.ejected_for_secs {
        parts.push(format!("back in {secs} s"));
    }
    if !l.reason.is_empty() {
        parts.push(escape(&l.reason));
    }
    if l.consecutive_failures > 0 {
        parts.push(counted(
            u64::from(l.consecutive_failures),
            "consecutive failure",
            "consecutive failures",
        ));
    }
    if let Some(c) = &l.check {
        match &c.last {
            None => parts.push("no check yet".to_string()),
            Some(last) if last.result == "pass" => parts.push(format!(
                "check passed {} s ago in {}",
                last.secs_ago,
                seconds(last.latency_ms / 1e3)
            )),
            Some(last) => parts.push(format!(
                "check failed {} s ago: {}",
                last.secs_ago,
                escape(&last.reason)
            )),
        }
        if let Some(secs) = c.changed_secs_ago {
            parts.push(format!("{} for {}", escape(l.state), uptime(secs)));
        }
        if c.downtime_secs > 0 {
            parts.push(format!("down {} in all", uptime(c.downtime_secs)));
        }
    }
    if l.effective_weight_percent < 100 {
        parts.push(format!(
            "slow start: {} % of its weight",
            l.effective_weight_percent
        ));
    }
    parts.join(" · ")
}

/// `1 failure`, `2 failures`: a count with its noun in the right number.
fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `p50 / p90 / p99` of a histogram, or a dash without data.
fn latency(h: &HistogramSnapshot) -> String {
    let q = |q| h.quantile_seconds(q).map_or("–".to_string(), seconds);
    format!("{} / {} / {}", q(0.5), q(0.9), q(0.99))
}

/// A duration in the unit that keeps it short, to three significant digits at most (`734 µs`,
/// `4.32 ms`, `34.3 ms`, `262 ms`, `1.25 s`): a quantile is known to about 1 % on smooth
/// data (one fine bucket, ≤ 10 %, at worst), so a fourth digit would be false precision.
fn seconds(s: f64) -> String {
    // Thresholds just below the next unit, so that rounding never shows `1000 ms`.
    let (v, unit) = if s < 999.5e-6 {
        return format!("{:.0} µs", s * 1e6);
    } else if s < 0.9995 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    let decimals = if v < 9.995 {
        2
    } else if v < 99.95 {
        1
    } else {
        0
    };
    format!("{v:.decimals$} {unit}")
}

/// `1d 2h 3m 4s`, leaving out leading zero units.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::seconds;

    #[test]
    fn durations_show_three_significant_digits_at_most() {
        for (s, shown) in [
            (0.0, "0 µs"),
            (0.000_095, "95 µs"),
            (0.000_734_4, "734 µs"),
            (0.000_999_6, "1.00 ms"),
            (0.004_321, "4.32 ms"),
            (0.034_34, "34.3 ms"),
            (0.099_97, "100 ms"),
            (0.262_29, "262 ms"),
            (0.999_7, "1.00 s"),
            (1.254, "1.25 s"),
            (12.34, "12.3 s"),
            (60.0, "60.0 s"),
            (120.0, "120 s"),
        ] {
            assert_eq!(seconds(s), shown, "{s}");
        }
    }
}
