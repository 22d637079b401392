//! Per-server limits, the queue and the retry policy of an entry: `MaxConnections`,
//! `QueueSize`, `QueueTimeout`, `RetryOn`, `RetryBudget`. The model ([`Limits`]), each key's
//! value syntax (one-line messages; the caller adds `FILE:LINE:`), the section's settings
//! before defaults apply ([`Given`]) and the printer's lines.

use std::time::Duration;

use super::keys::KeyId;
use super::values::{self, format_seconds};

/// `RetryOn` as a set of failure kinds that are tried again on another server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryOn(u8);

impl RetryOn {
    /// `connect`: the connection could not be made (refused, timed out, TLS handshake).
    pub const CONNECT: RetryOn = RetryOn(1);
    /// `reset-before-response`: the connection broke before any response byte.
    pub const RESET: RetryOn = RetryOn(2);
    /// `502` from the backend (idempotent requests only).
    pub const S502: RetryOn = RetryOn(4);
    /// `503` from the backend (idempotent requests only).
    pub const S503: RetryOn = RetryOn(8);
    /// `504` from the backend (idempotent requests only).
    pub const S504: RetryOn = RetryOn(16);
    /// `none`: nothing is retried.
    pub const NONE: RetryOn = RetryOn(0);

    /// The tokens in printing order.
    const TOKENS: [(&'static str, RetryOn); 5] = [
        ("connect", RetryOn::CONNECT),
        ("reset-before-response", RetryOn::RESET),
        ("502", RetryOn::S502),
        ("503", RetryOn::S503),
        ("504", RetryOn::S504),
    ];

    /// Whether every kind of `other` is in the set.
    pub const fn has(self, other: RetryOn) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Whether a backend response with `status` is retried (502, 503 or 504 in the set).
    #[inline]
    pub const fn has_status(self, status: u16) -> bool {
        let bit = match status {
            502 => RetryOn::S502.0,
            503 => RetryOn::S503.0,
            504 => RetryOn::S504.0,
            _ => 0,
        };
        self.0 & bit != 0
    }

    /// Whether some status is in the set (the response head must then be looked at).
    #[inline]
    pub const fn any_status(self) -> bool {
        self.0 & (RetryOn::S502.0 | RetryOn::S503.0 | RetryOn::S504.0) != 0
    }

    /// The set with `other` added.
    pub const fn with(self, other: RetryOn) -> RetryOn {
        RetryOn(self.0 | other.0)
    }

    /// The set as `RetryOn` reads it back.
    pub fn format(self) -> String {
        let words: Vec<&str> = RetryOn::TOKENS
            .iter()
            .filter(|(_, f)| self.has(*f))
            .map(|(w, _)| *w)
            .collect();
        if words.is_empty() {
            "none".to_string()
        } else {
            words.join(" ")
        }
    }
}

impl Default for RetryOn {
    /// What the relay always retried: `connect reset-before-response`.
    fn default() -> RetryOn {
        RetryOn::CONNECT.with(RetryOn::RESET)
    }
}

/// The default `QueueTimeout`.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// The default `RetryBudget` (Envoy's).
pub const DEFAULT_RETRY_BUDGET: u32 = 20;

/// Retries always allowed in flight for an entry, whatever its `RetryBudget` (Envoy's
/// `min_retry_concurrency`): a client sending one request at a time always gets its retries.
pub const RETRY_FLOOR: u32 = 3;

/// An entry's limits and retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `MaxConnections`: requests in flight per server across workers (0: unlimited).
    pub max_connections: u32,
    /// `QueueSize`: requests that may wait for a slot, for the whole entry (0: none wait).
    pub queue_size: u32,
    /// `QueueTimeout`: how long a request may wait in the queue.
    pub queue_timeout: Duration,
    /// `RetryOn`: which failures are tried again.
    pub retry_on: RetryOn,
    /// `RetryBudget`: retries in flight at most this percentage of the entry's requests in
    /// flight (at least [`RETRY_FLOOR`]); 100 never refuses one.
    pub retry_budget: u32,
}

impl Default for Limits {
    /// No limit, no queue (5 s if one is set), today's retries, a 20 % budget.
    fn default() -> Limits {
        Limits {
            max_connections: 0,
            queue_size: 0,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            retry_on: RetryOn::default(),
            retry_budget: DEFAULT_RETRY_BUDGET,
        }
    }
}

impl Limits {
    /// The `Retry-After` seconds of a 503 for a full queue or a wait that ran out: the
    /// queue's timeout rounded up (a client retrying sooner would most likely find it full
    /// again), at least 1.
    pub fn retry_after_secs(&self) -> u64 {
        let d = self.queue_timeout;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

impl Limits {
    /// What these settings do, for the checker's `--explain` (`attempts`: the entry's
    /// `AttemptsCount`); `None` when they are all the defaults.
    pub fn describe(&self, attempts: u32) -> Option<String> {
        if *self == Limits::default() {
            return None;
        }
        let mut out = String::new();
        if self.max_connections == 0 {
            out.push_str("no limit per server");
        } else {
            out.push_str(&format!(
                "at most {} requests in flight per server (all workers); ",
                self.max_connections
            ));
            if self.queue_size == 0 {
                out.push_str("beyond, 503 at once");
            } else {
                out.push_str(&format!(
                    "beyond, up to {} wait at most {} s",
                    self.queue_size,
                    format_seconds(self.queue_timeout)
                ));
            }
            out.push_str(&format!(
                ", then 503 with Retry-After: {}",
                self.retry_after_secs()
            ));
        }
        out.push_str(&format!("; retries on {}", self.retry_on.format()));
        if self.retry_on.any_status() {
            out.push_str(&format!(
                " (statuses: idempotent requests, at most {} tries, ",
                attempts.max(1)
            ));
            if self.retry_budget >= 100 {
                out.push_str("no budget)");
            } else {
                out.push_str(&format!(
                    "within {} % of the requests in flight, at least {RETRY_FLOOR})",
                    self.retry_budget
                ));
            }
        }
        Some(out)
    }
}

/// What one section gave of these keys (`None`: not given there), with the line of each.
#[derive(Debug, Default, Clone)]
pub struct Given {
    max_connections: Option<u32>,
    queue_size: Option<(u32, usize)>,
    queue_timeout: Option<Duration>,
    retry_on: Option<RetryOn>,
    retry_budget: Option<u32>,
}

/// Reads the value of key `id` (one of this module's) given at `line` into `given`.
pub fn value(
    id: KeyId,
    name: &str,
    text: &str,
    line: usize,
    given: &mut Given,
) -> Result<(), String> {
    match id {
        KeyId::MaxConnections => given.max_connections = Some(values::number(name, text, 0)?),
        KeyId::QueueSize => given.queue_size = Some((values::number(name, text, 0)?, line)),
        KeyId::QueueTimeout => given.queue_timeout = Some(values::seconds(name, text, true)?),
        KeyId::RetryOn => given.retry_on = Some(retry_on(text)?),
        KeyId::RetryBudget => {
            let n = values::number(name, text, 0)?;
            if n > 100 {
                return Err(format!("{name} is a percentage (0 to 100), not {n}"));
            }
            given.retry_budget = Some(n);
        }
        _ => {}
    }
    Ok(())
}

/// `RetryOn`: `none`, or some of `connect`, `reset-before-response`, `502`, `503`, `504` (any
/// case, each at most once).
pub fn retry_on(text: &str) -> Result<RetryOn, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() == 1 && words[0].eq_ignore_ascii_case("none") {
        return Ok(RetryOn::NONE);
    }
    let mut set = RetryOn::NONE;
    for w in words {
        let Some((_, flag)) = RetryOn::TOKENS
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(w))
        else {
            let hint =
                if w.len() == 3 && w.starts_with('5') && w.bytes().all(|b| b.is_ascii_digit()) {
                    " (of the statuses only 502, 503 and 504 are retried: others are the \
                 backend's answer)"
                } else if w.eq_ignore_ascii_case("none") {
                    " (`none` stands alone)"
                } else {
                    ""
                };
            return Err(format!(
                "RetryOn: `{w}` is not a failure kind; write none, or some of connect, \
                 reset-before-response, 502, 503, 504{hint}"
            ));
        };
        if set.has(*flag) {
            return Err(format!("RetryOn: `{w}` is given twice"));
        }
        set = set.with(*flag);
    }
    Ok(set)
}

/// The entry's limits: its own values, else the defaults' ones, else the built-in ones.
/// An error (its line and message) when the result queues without a limit: a queue that no
/// request ever waits in is a mistake.
pub fn merge(s: &Given, d: &Given) -> Result<Limits, (usize, String)> {
    let base = Limits::default();
    let queue = s.queue_size.or(d.queue_size);
    let l = Limits {
        max_connections: s
            .max_connections
            .or(d.max_connections)
            .unwrap_or(base.max_connections),
        queue_size: queue.map_or(base.queue_size, |(n, _)| n),
        queue_timeout: s
            .queue_timeout
            .or(d.queue_timeout)
            .unwrap_or(base.queue_timeout),
        retry_on: s.retry_on.or(d.retry_on).unwrap_or(base.retry_on),
        retry_budget: s
            .retry_budget
            .or(d.retry_budget)
            .unwrap_or(base.retry_budget),
    };
    if let Some((n, line)) = queue {
        if n > 0 && l.max_connections == 0 {
            return Err((
                line,
                "QueueSize needs MaxConnections (in the entry or in [PROXY_DEFAULTS]): \
                 without a limit no request ever waits"
                    .to_string(),
            ));
        }
    }
    Ok(l)
}

/// The keys as the printer writes them (every one, so that a round trip is exact).
pub fn lines(l: &Limits) -> [(&'static str, String); 5] {
    [
        ("MaxConnections", l.max_connections.to_string()),
        ("QueueSize", l.queue_size.to_string()),
        ("QueueTimeout", format_seconds(l.queue_timeout)),
        ("RetryOn", l.retry_on.format()),
        ("RetryBudget", l.retry_budget.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_on_reads_back_what_it_prints() {
        for text in [
            "none",
            "connect",
            "connect reset-before-response 502 503 504",
            "503",
        ] {
            let set = retry_on(text).unwrap();
            assert_eq!(set.format(), text);
        }
        assert_eq!(
            retry_on("CONNECT Reset-Before-Response").unwrap(),
            RetryOn::default()
        );
        assert!(retry_on("500")
            .unwrap_err()
            .contains("only 502, 503 and 504"));
        assert!(retry_on("timeout")
            .unwrap_err()
            .contains("not a failure kind"));
        assert!(retry_on("503 503").unwrap_err().contains("twice"));
        assert!(retry_on("none 503").unwrap_err().contains("stands alone"));
    }

    #[test]
    fn statuses() {
        let set = retry_on("502 504").unwrap();
        assert!(set.has_status(502) && !set.has_status(503) && set.has_status(504));
        assert!(set.any_status());
        assert!(!RetryOn::default().any_status());
    }

    #[test]
    fn retry_after_rounds_the_timeout_up() {
        let mut l = Limits {
            queue_timeout: Duration::from_millis(1500),
            ..Limits::default()
        };
        assert_eq!(l.retry_after_secs(), 2);
        l.queue_timeout = Duration::from_millis(100);
        assert_eq!(l.retry_after_secs(), 1);
        l.queue_timeout = Duration::from_secs(2);
        assert_eq!(l.retry_after_secs(), 2);
    }
}
