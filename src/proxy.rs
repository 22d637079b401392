//! The proxy at run time: the validated configuration with its compiled routes, the server
//! groups and the statistics, shared by every worker.

use std::net::IpAddr;

use crate::clock;
use crate::config::Config;
use crate::routing::Router;
use crate::stats::{self, ServerLive, Snapshot, Stats};
use crate::upstream::Upstream;

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
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The statistics page (`StatisticsURL`).
    Statistics,
    /// The entry with this index.
    Entry(usize),
    /// No entry matches: answered 404 by the plugin.
    NotFound,
}

/// A response the proxy makes itself, for the host to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPage {
    /// Status code.
    pub status: u16,
    /// The statistics format served, or `None` for a plain-text page.
    pub format: Option<stats::Format>,
    /// The body.
    pub body: Vec<u8>,
}

impl Proxy {
    /// Compiles routes and builds the server groups of a validated configuration.
    pub fn new(config: Config) -> Result<Proxy, String> {
        let router = Router::new(&config.entries).map_err(|e| e.to_string())?;
        let upstreams = config
            .entries
            .iter()
            .map(Upstream::new)
            .collect::<Result<Vec<_>, _>>()?;
        let stats = Stats::new(&config);
        Ok(Proxy {
            config,
            router,
            upstreams,
            stats,
        })
    }

    /// Where a request for `path` (decoded, without query) goes.
    pub fn route(&self, path: &str) -> Route {
        if self.config.statistics_url.as_deref() == Some(path) {
            return Route::Statistics;
        }
        match self.router.route(path) {
            Some(i) => Route::Entry(i),
            None => Route::NotFound,
        }
    }

    /// The statistics page for a client at `client`: 403 unless the address is allowed
    /// (loopback always is), else the format chosen from `query` and `accept`.
    pub fn statistics_page(
        &self,
        client: Option<IpAddr>,
        query: &str,
        accept: Option<&str>,
    ) -> LocalPage {
        if !client.is_some_and(|ip| stats::allowed(ip, &self.config.statistics_allow)) {
            self.stats.record_local(403);
            return LocalPage {
                status: 403,
                format: None,
                body: b"Forbidden\n".to_vec(),
            };
        }
        self.stats.record_local(200);
        let format = stats::choose_format(query, accept);
        let now = clock::now_ms();
        let snapshot =
            Snapshot::collect(&self.config, &self.stats, now, &|e, s| self.live(e, s, now));
        LocalPage {
            status: 200,
            format: Some(format),
            body: stats::render(&snapshot, format, query).into_bytes(),
        }
    }

    /// A server's live state for the statistics page.
    fn live(&self, entry: usize, server: usize, now: clock::Millis) -> ServerLive {
        let s = &self.upstreams[entry].servers()[server];
        let health = s.health.snapshot();
        let offline_for_secs = (health.state != crate::health::HealthState::Up)
            .then(|| health.offline_until.saturating_sub(now).div_ceil(1000));
        ServerLive {
            state: health.state.as_str(),
            offline_for_secs,
            reason: health.last_reason.to_string(),
            consecutive_failures: health.consecutive_failures,
            in_flight: s.in_flight.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}
