//! Choosing the representation of the statistics page from the request.

use super::{html, json, prometheus, Snapshot};
use crate::http::status::ContentType;

/// A representation of the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The page for people (default).
    Html,
    /// The JSON document.
    Json,
    /// Prometheus text exposition format 0.0.4.
    Prometheus,
}

/// The `Content-Type` to answer with.
pub fn content_type(format: Format) -> ContentType {
    match format {
        Format::Html => ContentType::Html,
        Format::Json => ContentType::Json,
        Format::Prometheus => ContentType::Prometheus,
    }
}

/// The value of `name` in a query string (`a=1&b=2`, without the `?`), if present. Values
/// are taken literally: every value this module reads is plain ASCII.
pub fn query_param<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query
        .split(['&', ';'])
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The format a request asks for. `format=json|prometheus|html` in the query wins (an
/// unknown value falls through); otherwise the `Accept` media type with the highest `q` among
/// `text/html`, `application/json` and the Prometheus types (`text/plain;version=0.0.4`,
/// `application/openmetrics-text`) — so a Prometheus scraper pointed at the bare URL gets
/// metrics and a browser gets the page; otherwise HTML.
pub fn choose_format(query: &str, accept: Option<&str>) -> Format {
    let from_query =
        query_param(query, "format").and_then(|v| match v.to_ascii_lowercase().as_str() {
            "json" => Some(Format::Json),
            "prometheus" | "prom" | "metrics" => Some(Format::Prometheus),
            "html" => Some(Format::Html),
            _ => None,
        });
    from_query
        .or_else(|| accept.and_then(from_accept))
        .unwrap_or(Format::Html)
}

/// The best of our formats in an `Accept` header (ties go to the first listed).
fn from_accept(accept: &str) -> Option<Format> {
    let mut best: Option<(Format, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut q = 1.0f32;
        let mut version = None;
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "q" => q = v.trim().parse().unwrap_or(0.0),
                "version" => version = Some(v.trim().trim_matches('"').to_string()),
                _ => {}
            }
        }
        let format = match media.as_str() {
            "text/html" | "application/xhtml+xml" => Format::Html,
            "application/json" => Format::Json,
            "application/openmetrics-text" => Format::Prometheus,
            // Plain text only means metrics when the exposition version says so.
            "text/plain" if version.as_deref() == Some("0.0.4") => Format::Prometheus,
            _ => continue,
        };
        if q > 0.0 && best.map_or(true, |(_, bq)| q > bq) {
            best = Some((format, q));
        }
    }
    best.map(|(f, _)| f)
}

/// The `refresh=N` query parameter for the HTML page, clamped to 1–3600 seconds.
pub fn refresh_secs(query: &str) -> Option<u32> {
    query_param(query, "refresh")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|&n| n > 0)
        .map(|n| n.min(3600))
}

/// Renders `snapshot` in `format`; `query` supplies the HTML page's `refresh`.
pub fn render(snapshot: &Snapshot, format: Format, query: &str) -> String {
    match format {
        Format::Html => html(snapshot, refresh_secs(query)),
        Format::Json => json(snapshot),
        Format::Prometheus => prometheus(snapshot),
    }
}
