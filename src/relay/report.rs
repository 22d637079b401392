//! What an ended exchange tells the logs: a failed-request line when the proxy made an
//! error of it ([`crate::log::failed`], rate-limited per entry), and an access log line
//! when `AccessLog` is on ([`crate::access`], batched per worker). Called once per
//! exchange, from `Exchange::end`, and only when one of the two has something to write.

use std::time::Duration;

use crate::access::{Batch, Line};
use crate::clock::Moment;
use crate::http::request::ProxyRequest;
use crate::log::failed::Failed;
use crate::proxy::Proxy;

/// An exchange as it ended.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ending<'a> {
    pub proxy: &'a Proxy,
    pub entry: usize,
    pub request: &'a ProxyRequest,
    /// The status the client got (0: none).
    pub status: u16,
    /// What went wrong, in the statistics' words, when the proxy made an error of the
    /// request (none for a request that went well, or whose backend's own error status went
    /// out whole).
    pub trouble: Option<&'static str>,
    /// The server of the last try.
    pub server: Option<usize>,
    /// The status of the last try's response head.
    pub upstream_status: Option<u16>,
    pub connect: Option<Duration>,
    pub first_byte: Option<Duration>,
    pub total: Duration,
    pub attempts: u32,
    /// Bytes sent to and received from the servers, all tries.
    pub upstream_bytes: (u64, u64),
    /// Bytes of the response body the client was sent.
    pub body_bytes: u64,
}

/// Writes what `ending` deserves into the logs.
pub(super) fn report(ending: &Ending<'_>, now: Moment, batch: &mut Batch) {
    let proxy = ending.proxy;
    let entry = &proxy.config.entries[ending.entry];
    let server = ending
        .server
        .and_then(|i| entry.servers.get(i))
        .map(|s| s.name.as_str());
    let request = ending.request;
    if let Some(what) = ending.trouble {
        proxy.failure_log.report(
            ending.entry,
            now,
            &Failed {
                entry: &entry.name,
                server,
                method: &request.method,
                path: &request.path,
                query: request.query.as_deref(),
                status: ending.status,
                what,
                connect: ending.connect,
                first_byte: ending.first_byte,
                total: ending.total,
                attempts: ending.attempts,
            },
        );
    }
    if proxy.access_log.is_on() {
        let (referer, user_agent) = crate::access::line::referer_and_agent(&request.headers);
        batch.push(
            &proxy.access_log,
            now,
            &Line {
                client: request.client.map(|a| a.ip()),
                method: &request.method,
                path: &request.path,
                query: request.query.as_deref(),
                minor_version: request.minor_version,
                status: ending.status,
                body_bytes: ending.body_bytes,
                referer,
                user_agent,
                upstream: server,
                upstream_status: ending.upstream_status,
                connect: ending.connect,
                first_byte: ending.first_byte,
                total: ending.total,
                attempts: ending.attempts,
                upstream_sent: ending.upstream_bytes.0,
                upstream_received: ending.upstream_bytes.1,
                entry: &entry.name,
            },
        );
    }
}
