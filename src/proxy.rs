//! The proxy at run time: the validated configuration with its compiled routes and the
//! server groups, shared by every worker.

use crate::config::Config;
use crate::routing::Router;
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

impl Proxy {
    /// Compiles routes and builds the server groups of a validated configuration.
    pub fn new(config: Config) -> Result<Proxy, String> {
        let router = Router::new(&config.entries).map_err(|e| e.to_string())?;
        let upstreams = config
            .entries
            .iter()
            .map(Upstream::new)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Proxy {
            config,
            router,
            upstreams,
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
}
