//! One line per request that ended in an error the proxy made: a 502, 503 or 504 it
//! answered, a response body cut short, a client that left while a backend worked on its
//! request. Rate-limited per entry ([`FailureLog`]): at most
//! [`LINES_PER_SECOND`](super::limit::LINES_PER_SECOND) lines a second, then one `N similar
//! lines suppressed` line with the next line written.
//!
//! ```text
//! entry api: failed request status=502 what=connect_refused server=127.0.0.1:8081 method=GET path="/api/x?q=1" connect_ms=- first_byte_ms=- total_ms=0.412 attempts=2
//! entry api: 1234 similar lines suppressed
//! ```

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use super::escape::push_escaped;
use super::limit::{Admit, RateLimit};
use crate::clock::Moment;

/// Most bytes of a request's path and query a line shows (the rest is cut, `...` follows).
pub const PATH_MAX: usize = 256;

/// What a failed request's line says.
#[derive(Debug, Clone, Copy)]
pub struct Failed<'a> {
    /// The entry's name.
    pub entry: &'a str,
    /// The server of the last try (`host:port` as configured), if any was tried.
    pub server: Option<&'a str>,
    /// The request's method.
    pub method: &'a str,
    /// The request's path, as received.
    pub path: &'a str,
    /// The request's query, without `?`.
    pub query: Option<&'a str>,
    /// The status the client got (0: none).
    pub status: u16,
    /// What happened, in the words of the statistics (`connect_refused`, `read_timeout`,
    /// `response_cut`, `client_abort`, `no_server`, ...).
    pub what: &'a str,
    /// How long the last try took to connect (zero on a reused connection), if it did.
    pub connect: Option<Duration>,
    /// From the request's start to the backend's response head, if one came.
    pub first_byte: Option<Duration>,
    /// From the request's start to its end.
    pub total: Duration,
    /// Tries made (each on one connection).
    pub attempts: u32,
}

impl Failed<'_> {
    /// The line, without the level (the sink adds its own prefix).
    pub fn line(&self) -> String {
        let mut path = Vec::with_capacity(self.path.len() + 8);
        match self.query {
            Some(q) => {
                let mut target = Vec::with_capacity(self.path.len() + 1 + q.len());
                target.extend_from_slice(self.path.as_bytes());
                target.push(b'?');
                target.extend_from_slice(q.as_bytes());
                push_escaped(&mut path, &target, PATH_MAX);
            }
            None => push_escaped(&mut path, self.path.as_bytes(), PATH_MAX),
        }
        let mut method = Vec::with_capacity(self.method.len());
        push_escaped(&mut method, self.method.as_bytes(), 32);
        let mut line = format!("entry {}: failed request status=", self.entry);
        match self.status {
            0 => line.push('-'),
            s => {
                let _ = write!(line, "{s}");
            }
        }
        let _ = write!(
            line,
            " what={} server={} method={} path=\"{}\" connect_ms={} first_byte_ms={} \
             total_ms={} attempts={}",
            self.what,
            self.server.unwrap_or("-"),
            String::from_utf8_lossy(&method),
            String::from_utf8_lossy(&path),
            Ms(self.connect),
            Ms(self.first_byte),
            Ms(Some(self.total)),
            self.attempts
        );
        line
    }
}

/// A duration in milliseconds with three decimals, or `-`.
struct Ms(Option<Duration>);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(d) => {
                let us = d.as_micros();
                write!(f, "{}.{:03}", us / 1000, us % 1000)
            }
            None => f.write_str("-"),
        }
    }
}

/// The failed-request lines of a proxy's entries: one [`RateLimit`] per entry, kept across
/// reloads for an entry of the same name.
#[derive(Debug, Default)]
pub struct FailureLog {
    limits: Box<[Arc<RateLimit>]>,
}

impl FailureLog {
    /// Fresh budgets for `entries` entries.
    pub fn new(entries: usize) -> FailureLog {
        FailureLog {
            limits: (0..entries).map(|_| Arc::default()).collect(),
        }
    }

    /// The budgets for entries named `names` after a reload: an entry whose name is in
    /// `previous_names` keeps its budget from `previous` (what it suppressed is still
    /// reported).
    pub fn carried<'a>(
        names: impl IntoIterator<Item = &'a str>,
        previous: &FailureLog,
        previous_names: &[&str],
    ) -> FailureLog {
        FailureLog {
            limits: names
                .into_iter()
                .map(|name| {
                    previous_names
                        .iter()
                        .position(|p| *p == name)
                        .and_then(|i| previous.limits.get(i).cloned())
                        .unwrap_or_default()
                })
                .collect(),
        }
    }

    /// Writes `failed`'s line for entry `entry` at `now`, unless the entry's budget for the
    /// second is spent (then it is counted, and reported with the next line written).
    pub fn report(&self, entry: usize, now: Moment, failed: &Failed<'_>) {
        let Some(limit) = self.limits.get(entry) else {
            return;
        };
        match limit.admit(now) {
            Admit::Suppress => {}
            Admit::Write { suppressed } => {
                if suppressed > 0 {
                    super::warn(&format!(
                        "entry {}: {suppressed} similar line{} suppressed",
                        failed.entry,
                        if suppressed == 1 { "" } else { "s" }
                    ));
                }
                super::warn(&failed.line());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_names_everything_and_escapes_the_path() {
        let f = Failed {
            entry: "api",
            server: Some("127.0.0.1:8081"),
            method: "GET",
            path: "/a\"b\r\n",
            query: Some("q=1"),
            status: 502,
            what: "connect_refused",
            connect: None,
            first_byte: None,
            total: Duration::from_micros(412),
            attempts: 2,
        };
        assert_eq!(
            f.line(),
            "entry api: failed request status=502 what=connect_refused server=127.0.0.1:8081 \
             method=GET path=\"/a\\x22b\\x0D\\x0A?q=1\" connect_ms=- first_byte_ms=- \
             total_ms=0.412 attempts=2"
        );
        let long = "/x".repeat(500);
        let g = Failed {
            path: &long,
            query: None,
            server: None,
            status: 0,
            connect: Some(Duration::from_millis(3)),
            ..f
        };
        let line = g.line();
        assert!(line.contains("status=- "), "{line}");
        assert!(line.contains("server=- "), "{line}");
        assert!(line.contains("connect_ms=3.000 "), "{line}");
        assert!(
            line.contains(&format!("path=\"{}...\"", &long[..PATH_MAX])),
            "{line}"
        );
    }
}
