//! The admin endpoint (`AdminURL`): read the servers' state, drain or put back a server,
//! change a weight, reload the configuration — all without restarting Monkey.
//!
//! Closed by default: off unless `AdminURL` is set, and then only for loopback clients and
//! those `AdminAllow` lists (the direct peer's address: forwarding headers are not trusted
//! here). Cross-site requests cannot change anything: only `POST` changes state, and only with
//! the `X-Proxy-Admin: 1` header, which a browser will not add to a cross-origin request
//! without a CORS preflight that this endpoint never grants; a request with a foreign
//! `Origin` (or `Sec-Fetch-Site: cross-site`) is refused as well. Every refusal is a 403 that
//! changes nothing.
//!
//! | Request | Does |
//! |---|---|
//! | `GET  {AdminURL}/servers` | JSON: every entry, its servers, their health, state, weight |
//! | `POST {AdminURL}/servers/{entry}/{host:port}` | `state=ready\|drain\|maint` and/or `weight=N` |
//! | `POST {AdminURL}/reload` | re-reads the configuration file (off the workers) |
//!
//! Parameters come from the query string or an `application/x-www-form-urlencoded` body
//! (`curl -d state=drain`). A state change is immediate and logged with the client's
//! address; a weight change and a reload rebuild the configuration on the reload thread, so
//! their answer is [`Admission::Deferred`].

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use super::{Admission, Proxy};
use crate::clock::Millis;
use crate::http::request::ProxyRequest;
use crate::http::status::LocalPage;
use crate::log;
use crate::stats;
use crate::upstream::Admin;

/// What the reload thread is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Read the configuration file again and put it in service if it validates.
    Reload {
        /// Who asked (a client address, `signal`), for the log.
        by: String,
    },
    /// Give server `server` (`host:port`) of entry `entry` the weight `weight` until the next
    /// reload from the file (the balancers are rebuilt for it).
    Weight {
        /// The entry's name.
        entry: String,
        /// The server's `host:port`.
        server: String,
        /// Its new weight (≥ 1).
        weight: u32,
        /// Who asked (a client address), for the log.
        by: String,
    },
}

/// The header every change must carry (a browser cannot add it cross-origin unasked).
pub const CHANGE_HEADER: &str = "x-proxy-admin";

/// The longest body a change may have (its parameters are a few words).
const MAX_BODY: usize = 4096;

/// What a request under `AdminURL` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint<'p> {
    /// `{AdminURL}` or `{AdminURL}/`: what the endpoint offers.
    Index,
    /// `{AdminURL}/servers`.
    Servers,
    /// `{AdminURL}/servers/{entry}/{server}`.
    Server { entry: &'p str, server: &'p str },
    /// `{AdminURL}/reload`.
    Reload,
    /// Anything else.
    Unknown,
}

impl<'p> Endpoint<'p> {
    /// The endpoint `rest` (the decoded path after `AdminURL`) names.
    fn parse(rest: &'p str) -> Endpoint<'p> {
        match rest {
            "" | "/" => Endpoint::Index,
            "/servers" | "/servers/" => Endpoint::Servers,
            "/reload" => Endpoint::Reload,
            _ => match rest
                .strip_prefix("/servers/")
                .and_then(|s| s.split_once('/'))
            {
                Some((entry, server)) if !entry.is_empty() && !server.is_empty() => {
                    Endpoint::Server { entry, server }
                }
                _ => Endpoint::Unknown,
            },
        }
    }

    /// Whether the endpoint changes something (POST only, with the change header).
    fn changes(&self) -> bool {
        matches!(self, Endpoint::Server { .. } | Endpoint::Reload)
    }
}

/// The admission of a request whose decoded path `path` is under `AdminURL` `url` (see
/// [`under`]): the answer, or a job for the reload thread. Every answer is counted as a
/// local one in the statistics.
pub fn admit(
    proxy: &Proxy,
    request: &ProxyRequest,
    url: &str,
    path: &str,
    now: Millis,
) -> Admission {
    let admission = decide(proxy, request, url, path, now);
    if let Admission::Answer(page) = &admission {
        proxy.stats.record_local(page.status);
    }
    admission
}

/// Whether `path` (decoded) is `url` or below it.
pub fn under(path: &str, url: &str) -> bool {
    path.strip_prefix(url)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn decide(proxy: &Proxy, request: &ProxyRequest, url: &str, path: &str, now: Millis) -> Admission {
    let close = request.client_wants_close;
    let answer = |mut page: LocalPage| {
        page.close |= close;
        Admission::Answer(page)
    };
    let client = request.client.map(|a| a.ip());
    if !client.is_some_and(|ip| allowed(proxy, ip)) {
        return answer(LocalPage::error(403, false, None));
    }
    let endpoint = Endpoint::parse(&path[url.len()..]);
    let reading = matches!(request.method.as_str(), "GET" | "HEAD");
    if endpoint.changes() {
        if let Err(why) = change_allowed(request) {
            return answer(refusal(403, why));
        }
    } else if !reading && endpoint != Endpoint::Unknown {
        return answer(refusal(403, "this resource is read with GET"));
    }
    let by = client.map_or_else(|| "-".to_string(), |ip| ip.to_string());
    match endpoint {
        Endpoint::Index => answer(LocalPage::json(200, &index(url))),
        Endpoint::Servers => answer(LocalPage::json(200, &servers(proxy, now))),
        Endpoint::Reload => match parameters(request) {
            Ok(p) if p.is_empty() => {
                log::info(&format!("admin: {by} asked for a reload"));
                Admission::Deferred(Job::Reload { by })
            }
            Ok(_) => answer(refusal(400, "reload takes no parameters")),
            Err(why) => answer(refusal(400, &why)),
        },
        Endpoint::Server { entry, server } => {
            set_server(proxy, request, entry, server, &by, now).unwrap_or_else(answer)
        }
        Endpoint::Unknown => answer(refusal(404, "no such admin resource (see the index)")),
    }
}

/// Why a change request must be refused, if it must: not a POST, no `X-Proxy-Admin: 1`, or
/// sent by a page of another origin.
fn change_allowed(request: &ProxyRequest) -> Result<(), &'static str> {
    if request.method != "POST" {
        return Err("changes take POST with the header X-Proxy-Admin: 1");
    }
    let header = |name| request.header_values(name).next();
    if header(CHANGE_HEADER).map(|v| v.trim_ascii()) != Some(&b"1"[..]) {
        return Err("changes need the header X-Proxy-Admin: 1");
    }
    if header("sec-fetch-site").is_some_and(|v| v.eq_ignore_ascii_case(b"cross-site")) {
        return Err("cross-site requests change nothing");
    }
    if let Some(origin) = header("origin") {
        if !same_origin(origin, request.host.as_deref()) {
            return Err("requests from another origin change nothing");
        }
    }
    Ok(())
}

/// Whether `origin` (`scheme://host[:port]`) names the authority the request was sent to.
fn same_origin(origin: &[u8], host: Option<&[u8]>) -> bool {
    let authority = origin
        .strip_prefix(b"http://")
        .or_else(|| origin.strip_prefix(b"https://"));
    matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
}

/// The parameters of a change: the query's, then the form body's (`name=value&…`,
/// percent-decoded, `+` as space).
fn parameters(request: &ProxyRequest) -> Result<Vec<(String, String)>, String> {
    if request.body.len() > MAX_BODY {
        return Err(format!("the body is longer than {MAX_BODY} bytes"));
    }
    let body = std::str::from_utf8(&request.body)
        .map_err(|_| "the body is not UTF-8 form parameters".to_string())?;
    let form = request
        .header_values("content-type")
        .next()
        .map_or(true, |t| {
            t.starts_with(b"application/x-www-form-urlencoded")
        });
    if !body.is_empty() && !form {
        return Err(
            "parameters go in the query or an application/x-www-form-urlencoded body".into(),
        );
    }
    let query = request.query.as_deref().unwrap_or("");
    Ok([query, body]
        .into_iter()
        .flat_map(|s| s.split('&'))
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect())
}

/// `a+b%2Fc` → `a b/c` (malformed escapes stay as they are).
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `POST {AdminURL}/servers/{entry}/{server}`: applies `state=` now, hands `weight=` to the
/// reload thread. `Err` is the answer when nothing is deferred.
fn set_server(
    proxy: &Proxy,
    request: &ProxyRequest,
    entry: &str,
    server: &str,
    by: &str,
    now: Millis,
) -> Result<Admission, LocalPage> {
    let params = parameters(request).map_err(|why| refusal(400, &why))?;
    let (mut state, mut weight) = (None, None);
    for (k, v) in &params {
        match k.as_str() {
            "state" => {
                state = Some(Admin::parse(v).ok_or_else(|| {
                    refusal(400, &format!("state `{v}`: use ready, drain or maint"))
                })?)
            }
            "weight" => {
                weight = Some(
                    crate::config::values::number("weight", v, 1)
                        .map_err(|why| refusal(400, &why))?,
                )
            }
            other => {
                return Err(refusal(
                    400,
                    &format!("unknown parameter `{other}` (state, weight)"),
                ))
            }
        }
    }
    if state.is_none() && weight.is_none() {
        return Err(refusal(400, "give state=ready|drain|maint and/or weight=N"));
    }
    let (e, s) = find(proxy, entry, server).map_err(|why| refusal(404, &why))?;
    if let Some(state) = state {
        let old = proxy.upstreams[e].servers()[s].admin.set(state);
        log::info(&format!(
            "admin: {by} set entry {entry} server {server}: {} -> {}",
            old.as_str(),
            state.as_str()
        ));
    }
    match weight {
        Some(weight) => Ok(Admission::Deferred(Job::Weight {
            entry: entry.to_string(),
            server: server.to_string(),
            weight,
            by: by.to_string(),
        })),
        None => Err(LocalPage::json(200, &server_view(proxy, e, s, now))),
    }
}

/// The indexes of server `server` (`host:port`) of the entry named `entry`.
pub fn find(proxy: &Proxy, entry: &str, server: &str) -> Result<(usize, usize), String> {
    let e = proxy
        .config
        .entries
        .iter()
        .position(|e| e.name == entry)
        .ok_or_else(|| format!("no entry `{entry}`"))?;
    let s = proxy.config.entries[e]
        .servers
        .iter()
        .position(|s| s.name == server)
        .ok_or_else(|| format!("entry `{entry}` has no server `{server}`"))?;
    Ok((e, s))
}

/// One server as the admin endpoint shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    /// The entry's name.
    pub entry: String,
    /// The server's `host:port`.
    pub server: String,
    /// `up`, `offline` or `probing`.
    pub health: &'static str,
    /// `ready`, `drain` or `maint`.
    pub admin: &'static str,
    /// Its weight in service.
    pub weight: u32,
    /// Requests in flight on it, across all workers.
    pub in_flight: u32,
    /// While offline: seconds until it is tried again.
    pub offline_for_secs: Option<u64>,
    /// Why it went offline (empty while up).
    pub reason: String,
    /// Failures since its last success.
    pub consecutive_failures: u32,
}

/// Server `server` of entry `entry` as the admin endpoint shows it.
pub fn server_view(proxy: &Proxy, entry: usize, server: usize, now: Millis) -> ServerView {
    let live = proxy.live(entry, server, now);
    let e = &proxy.config.entries[entry];
    let spec = &e.servers[server];
    ServerView {
        entry: e.name.clone(),
        server: spec.name.clone(),
        health: live.state,
        admin: live.admin,
        weight: spec.weight,
        in_flight: live.in_flight,
        offline_for_secs: live.offline_for_secs,
        reason: live.reason,
        consecutive_failures: live.consecutive_failures,
    }
}

/// One entry in `GET {AdminURL}/servers`.
#[derive(Debug, Serialize)]
struct EntryView {
    name: String,
    balancer: String,
    servers: Vec<ServerView>,
}

/// `GET {AdminURL}/servers`.
#[derive(Debug, Serialize)]
struct ServersView {
    entries: Vec<EntryView>,
}

/// `GET {AdminURL}/servers`.
fn servers(proxy: &Proxy, now: Millis) -> ServersView {
    let entries = proxy
        .config
        .entries
        .iter()
        .enumerate()
        .map(|(e, entry)| EntryView {
            name: entry.name.clone(),
            balancer: entry.balancer.clone(),
            servers: (0..entry.servers.len())
                .map(|s| server_view(proxy, e, s, now))
                .collect(),
        })
        .collect();
    ServersView { entries }
}

/// `GET {AdminURL}`: what can be asked.
fn index(url: &str) -> serde_json::Value {
    json!({
        "endpoints": [
            format!("GET {url}/servers"),
            format!("POST {url}/servers/ENTRY/HOST:PORT  state=ready|drain|maint  weight=N"),
            format!("POST {url}/reload"),
        ],
        "changes_need": "POST with the header X-Proxy-Admin: 1",
    })
}

/// An error answer with its reason as JSON.
fn refusal(status: u16, why: &str) -> LocalPage {
    LocalPage::json(status, &json!({ "error": why }))
}

/// The answer when the host runs no reload thread (nothing can be deferred).
pub fn unavailable() -> LocalPage {
    refusal(503, "this host runs no reload thread")
}

/// Whether `ip` may use the admin endpoint of `proxy`.
pub fn allowed(proxy: &Proxy, ip: IpAddr) -> bool {
    stats::allowed(ip, &proxy.config.admin_allow)
}
