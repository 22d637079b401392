//! The proxy at run time: the validated configuration with its compiled routes, the server
//! groups and the statistics, shared by every worker — and the one admission decision every
//! host asks it for.

use std::borrow::Cow;
use std::net::IpAddr;
use std::time::Duration;

use crate::access::AccessLog;
use crate::clock::{Millis, Moment};
use crate::config::Config;
use crate::http::intake::{read_request, RawRequest, Unread};
use crate::http::request::ProxyRequest;
use crate::http::status::LocalPage;
use crate::log::failed::{Failed, FailureLog};
use crate::routing::{routing_path, Router};
use crate::stats::{self, CheckLive, LastCheck, ServerLive, Snapshot, Stats};
use crate::upstream::Upstream;

pub mod admin;
mod current;

pub use admin::Job;
pub use current::{Cached, Current};

/// Everything the workers share, built once at start-up.
#[derive(Debug)]
pub struct Proxy {
    /// The configuration it was built from.
    pub config: Config,
    /// Compiled `Match` rules.
    pub router: Router,
    /// One server group per entry, in entry order.
    pub upstreams: Vec<Upstream>,
    /// Counters for the statistics page.
    pub stats: Stats,
    /// `AccessLog`: off, or its writer thread (the same across reloads).
    pub access_log: AccessLog,
    /// The per-entry budgets of failed-request lines (kept across reloads by entry name).
    pub failure_log: FailureLog,
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The statistics page (`StatisticsURL`).
    Statistics,
    /// The admin endpoint (`AdminURL` and below).
    Admin,
    /// The entry with this index.
    Entry(usize),
    /// No entry matches: answered 404 by the plugin.
    NotFound,
}

/// What to do with a request (see [`Proxy::admit`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Proxy it to the entry with this index.
    Proxy(usize),
    /// Answer it with this page (the statistics, or an error that needs no backend).
    Answer(LocalPage),
    /// Hand this job to the reload thread; its answer is the response (the admin endpoint's
    /// reloads and weight changes, which rebuild the configuration off the workers).
    Deferred(Job),
}

/// A request read and judged by [`Proxy::admit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// What to do with it.
    pub admission: Admission,
    /// Bytes of the raw request's `rest` it took (what follows belongs to requests pipelined
    /// behind it).
    pub consumed: usize,
}

impl Proxy {
    /// Compiles routes and builds the server groups of a validated configuration.
    pub fn new(config: Config) -> Result<Proxy, String> {
        let router = Router::new(&config.entries)?;
        let upstreams = config
            .entries
            .iter()
            .map(Upstream::new)
            .collect::<Result<Vec<_>, _>>()?;
        let stats = Stats::new(&config);
        let access_log =
            AccessLog::start(access_log_path(&config)).map_err(|e| access_error(&config, &e))?;
        let failure_log = FailureLog::new(config.entries.len());
        Ok(Proxy {
            config,
            router,
            upstreams,
            stats,
            access_log,
            failure_log,
        })
    }

    /// The proxy for `config` taking over from `previous` (a reload): entries keep their
    /// statistics by name, and their servers, by `host:port`, keep their health,
    /// administrative state and statistics. Servers `previous` had and `config` drops are
    /// marked removed (their idle connections close; requests in flight finish).
    pub fn reloaded(config: Config, previous: &Proxy) -> Result<Proxy, String> {
        let router = Router::new(&config.entries)?;
        let old_entry = |name: &str| {
            let i = previous
                .config
                .entries
                .iter()
                .position(|e| e.name == name)?;
            Some(&previous.upstreams[i])
        };
        let upstreams = config
            .entries
            .iter()
            .map(|e| Upstream::carried(e, old_entry(&e.name)))
            .collect::<Result<Vec<_>, _>>()?;
        let stats = Stats::carried(&config, &previous.stats, &previous.config);
        // Every reload reopens the access log (a rotated file is let go of).
        let access_log = previous
            .access_log
            .reopened(access_log_path(&config))
            .map_err(|e| access_error(&config, &e))?;
        let previous_names: Vec<&str> = previous
            .config
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let failure_log = FailureLog::carried(
            config.entries.iter().map(|e| e.name.as_str()),
            &previous.failure_log,
            &previous_names,
        );
        let kept = |id: u64| {
            upstreams
                .iter()
                .any(|u| u.servers().iter().any(|s| s.id == id))
        };
        for old in previous.upstreams.iter().flat_map(|u| u.servers()) {
            if !kept(old.id) {
                old.state.set_removed();
            }
        }
        crate::upstream::note_change();
        Ok(Proxy {
            config,
            router,
            upstreams,
            stats,
            access_log,
            failure_log,
        })
    }

    /// The one intake: reads the request a host found into `request` (whose buffers are
    /// reused) and decides what becomes of it, in this order, for every host alike:
    ///
    /// 1. fields and body that cannot be read: 400, and the connection closes;
    /// 2. a request that fails [`ProxyRequest::validate`] (framing ambiguities, bad bytes,
    ///    target or `Host`): 400, and the connection closes — also for paths no entry
    ///    serves and for the statistics page, as a malformed request is malformed wherever
    ///    it goes;
    /// 3. the statistics page (`StatisticsURL`) and the admin endpoint (`AdminURL`),
    ///    answered here (or, for the admin's reloads and weight changes, deferred to the
    ///    reload thread);
    /// 4. a path no entry matches: 404;
    /// 5. otherwise: proxied to the first entry that matches.
    ///
    /// Answers made here are counted in the statistics. `Err(Unread::Incomplete)` means more
    /// bytes are needed (a host that buffers whole requests treats it as malformed).
    pub fn admit(
        &self,
        raw: &RawRequest<'_>,
        request: &mut ProxyRequest,
        now: Millis,
    ) -> Result<Admitted, Unread> {
        // The intake validates as it reads (the verdict of `ProxyRequest::validate`).
        let consumed = match read_request(raw, request) {
            Ok(read) if read.verdict.is_ok() => read.consumed,
            Ok(read) => return Ok(self.refuse(read.consumed)),
            Err(Unread::Incomplete) => return Err(Unread::Incomplete),
            Err(Unread::Malformed) => return Ok(self.refuse(0)),
        };
        let close = request.client_wants_close;
        let path = routing_path(&request.path);
        let admission = match self.route_request(&path, request.host.as_deref(), &request.method) {
            Route::Entry(i) => Admission::Proxy(i),
            Route::NotFound => {
                self.stats.record_local(404);
                Admission::Answer(LocalPage::error(404, close, None))
            }
            Route::Statistics => {
                let accept = request
                    .header_values("accept")
                    .next()
                    .map(String::from_utf8_lossy);
                let mut page = self.statistics_page(
                    request.client.map(|a| a.ip()),
                    request.query.as_deref().unwrap_or(""),
                    accept.as_deref(),
                    now,
                );
                page.close = close;
                Admission::Answer(page)
            }
            Route::Admin => {
                let url = self.config.admin_url.as_deref().unwrap_or_default();
                admin::admit(self, request, url, &path, now)
            }
        };
        Ok(Admitted {
            admission,
            consumed,
        })
    }

    /// [`Proxy::admit`] for a host that buffers whole requests before it hands them over
    /// (Monkey): a request that is still incomplete then is malformed.
    pub fn admit_whole(
        &self,
        raw: &RawRequest<'_>,
        request: &mut ProxyRequest,
        now: Millis,
    ) -> Admitted {
        self.admit(raw, request, now)
            .unwrap_or_else(|_| self.refuse(0))
    }

    /// The 400 for a request that cannot be read or is ambiguous (counted); the connection
    /// closes after it. Hosts use it for a request line they cannot hand over.
    pub fn bad_request(&self) -> LocalPage {
        self.stats.record_local(400);
        LocalPage::error(400, true, None)
    }

    fn refuse(&self, consumed: usize) -> Admitted {
        Admitted {
            admission: Admission::Answer(self.bad_request()),
            consumed,
        }
    }

    /// The answer to a request admitted to `entry` that this process has no resources to
    /// start (no descriptor for the client's duplicate, no memory): 503 with
    /// `Retry-After: 1`, counted in the entry as a request with no server, as the relay counts
    /// one whose backend socket cannot be created. No server is blamed.
    pub fn out_of_resources(&self, entry: usize, close: bool) -> LocalPage {
        self.stats.record_request(entry);
        self.stats.record_no_server(entry);
        LocalPage::error(503, close, Some(1))
    }

    /// [`Proxy::out_of_resources`] for `request`, written into the logs like any request
    /// the proxy failed (a `no_server` line, and its access log line) as of `now`.
    pub fn out_of_resources_for(
        &self,
        entry: usize,
        request: &ProxyRequest,
        now: Moment,
    ) -> LocalPage {
        let page = self.out_of_resources(entry, request.client_wants_close);
        let e = &self.config.entries[entry];
        let failed = Failed {
            entry: &e.name,
            server: None,
            method: &request.method,
            path: &request.path,
            query: request.query.as_deref(),
            status: 503,
            what: "no_server",
            connect: None,
            first_byte: None,
            total: Duration::ZERO,
            attempts: 0,
            reason: None,
        };
        self.failure_log.report(entry, now, &failed);
        self.access_without_upstream(entry, request, 503, page.body.len() as u64);
        page
    }

    /// A request admitted to `entry` whose client had already left when its exchange was to
    /// start (it closed right behind the request): nothing is sent anywhere; counted as a
    /// request of the entry and a client abort before any attempt, and written to the access
    /// log as `499` (nginx's "client closed the request").
    pub fn client_left_early(&self, entry: usize, request: &ProxyRequest) {
        self.stats.record_request(entry);
        self.stats.record_left_early(entry);
        self.access_without_upstream(entry, request, 499, 0);
    }

    /// The access log line of a request of `entry` that no server was asked for, answered
    /// `status` with `body_bytes` (if the access log is on).
    fn access_without_upstream(
        &self,
        entry: usize,
        request: &ProxyRequest,
        status: u16,
        body_bytes: u64,
    ) {
        if !self.access_log.is_on() {
            return;
        }
        let (referer, user_agent) = crate::access::line::referer_and_agent(&request.headers);
        self.access_log.write_one(&crate::access::Line {
            client: request.client.map(|a| a.ip()),
            method: &request.method,
            path: &request.path,
            query: request.query.as_deref(),
            minor_version: request.minor_version,
            status,
            body_bytes,
            referer,
            user_agent,
            upstream: None,
            upstream_status: None,
            connect: None,
            first_byte: None,
            total: Duration::ZERO,
            attempts: 0,
            upstream_sent: 0,
            upstream_received: 0,
            entry: &self.config.entries[entry].name,
        });
    }

    /// Where a request for `path` (decoded, without query) goes, for any host and method.
    pub fn route(&self, path: &str) -> Route {
        self.route_request(path, None, "GET")
    }

    /// Where a request for `path` (decoded, without query) with the `Host` authority `host`
    /// (as received) and `method` goes: the statistics page and the admin endpoint first,
    /// whatever the host, then the first entry whose rules accept it.
    // Inlined into `admit` (every request): the call's prologue cost about as much as the
    // two URL tests and the simple router's walk.
    #[inline]
    pub fn route_request(&self, path: &str, host: Option<&[u8]>, method: &str) -> Route {
        if self.config.statistics_url.as_deref() == Some(path) {
            return Route::Statistics;
        }
        if let Some(url) = &self.config.admin_url {
            if admin::under(path, url) {
                return Route::Admin;
            }
        }
        // The host is read as text only by `MatchHost` rules (an authority is ASCII: a
        // request whose `Host` is not one never gets here).
        let host = match host {
            Some(h) if self.router.reads_host() => std::str::from_utf8(h).ok(),
            _ => None,
        };
        match self.router.route_request(path, host, method) {
            Some(i) => Route::Entry(i),
            None => Route::NotFound,
        }
    }

    /// The statistics page for a client at `client`: 403 unless the address is allowed
    /// (loopback always is), else the format chosen from `query` and `accept`, as of `now`.
    pub fn statistics_page(
        &self,
        client: Option<IpAddr>,
        query: &str,
        accept: Option<&str>,
        now: Millis,
    ) -> LocalPage {
        if !client.is_some_and(|ip| stats::allowed(ip, &self.config.statistics_allow)) {
            self.stats.record_local(403);
            return LocalPage::error(403, false, None);
        }
        self.stats.record_local(200);
        let format = stats::choose_format(query, accept);
        let mut snapshot =
            Snapshot::collect(&self.config, &self.stats, now, &|e, s| self.live(e, s, now));
        snapshot.totals.access_log_lines = self.access_log.written();
        snapshot.totals.access_log_dropped = self.access_log.dropped();
        snapshot.totals.log_lines_dropped = crate::log::dropped();
        LocalPage {
            status: 200,
            content_type: stats::content_type(format),
            body: Cow::Owned(stats::render(&snapshot, format, query).into_bytes()),
            close: false,
            retry_after: None,
            no_store: true,
        }
    }

    /// A server's live state for the statistics page and the admin endpoint.
    pub(crate) fn live(&self, entry: usize, server: usize, now: Millis) -> ServerLive {
        use crate::health::check::{ProbeResult, Status};
        let up = &self.upstreams[entry];
        let s = &up.servers()[server];
        let health = s.health.snapshot();
        let mut live = ServerLive {
            state: health.state.as_str(),
            offline_for_secs: None,
            reason: health.last_reason.to_string(),
            consecutive_failures: health.consecutive_failures,
            in_flight: s.in_flight.load(std::sync::atomic::Ordering::Relaxed),
            admin: s.admin.get().as_str(),
            backup: s.spec.backup,
            check: None,
            ejected_for_secs: None,
            ejections: s.outlier.ejections(),
            effective_weight_percent: up.ramp_permille(server, now).div_ceil(10),
        };
        if up.checks().is_some() {
            let c = s.check.snapshot(now);
            live.state = c.word.status.as_str();
            live.reason = match c.word.status {
                Status::Down => c.word.reason.describe(),
                _ => String::new(),
            };
            live.check = Some(CheckLive {
                last: c.last.map(|last| {
                    let (result, reason) = match last.result {
                        ProbeResult::Pass => ("pass", String::new()),
                        ProbeResult::Fail(f) => ("fail", f.describe()),
                    };
                    LastCheck {
                        result,
                        reason,
                        latency_ms: last.latency.as_secs_f64() * 1e3,
                        secs_ago: now.saturating_sub(last.at) / 1000,
                    }
                }),
                consecutive_passes: c.word.passes,
                consecutive_fails: c.word.fails,
                probes: c.probes,
                changed_secs_ago: (c.changed_at != 0)
                    .then(|| now.saturating_sub(c.changed_at) / 1000),
                downtime_secs: c.downtime.as_secs(),
            });
        } else if health.state != crate::health::HealthState::Up {
            live.offline_for_secs = Some(health.offline_until.saturating_sub(now).div_ceil(1000));
        }
        let healthy = matches!(live.state, "up" | "checking");
        if healthy && s.outlier.is_ejected(now) {
            live.state = "ejected";
            live.reason = format!("{} consecutive 5xx responses", up.outlier_consecutive());
            live.ejected_for_secs = Some(s.outlier.until().saturating_sub(now).div_ceil(1000));
        } else if live.state == "up" && up.is_idle_backup(server, now) {
            live.state = "backup";
        }
        live
    }
}

/// `AccessLog`'s file, if set.
fn access_log_path(config: &Config) -> Option<&std::path::Path> {
    config.access_log.as_ref().map(|a| a.path.as_path())
}

/// An access log that cannot start, as a problem with the line of its key.
fn access_error(config: &Config, problem: &str) -> String {
    let line = config.access_log.as_ref().map_or(0, |a| a.line);
    format!("line {line}: AccessLog: {problem}")
}
