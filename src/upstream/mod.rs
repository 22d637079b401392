//! An entry's group of servers at run time: balancer, health and live counters.
//!
//! One [`Upstream`] per entry is shared by every worker thread. Per request the relay does:
//!
//! ```text
//! upstream.plan(&ctx, now, &mut candidates);          // ordered, health-filtered, no allocation
//! for &i in &candidates {
//!     if !upstream.acquire(i, now) { continue }       // e.g. another request holds the probe
//!     // connect and send …
//!     //   response head arrived: upstream.record_success(i, now)
//!     //   attempt failed:        upstream.record_failure(i, kind, now), then try the next
//!     upstream.release(i);                             // when the attempt is over, always
//! }
//! // every candidate failed: 503 with `Retry-After: upstream.retry_after_secs(now)`
//! ```
//!
//! Nothing here takes a lock (except the `LockingRoundRobin` balancer, by design).

use std::sync::atomic::Ordering;

use crate::balancer::{self, Balancer, RequestContext, Servers};
use crate::clock::Millis;
use crate::config::{Entry, ServerSpec};
use crate::health::{FailureKind, HaPolicy, Transition};
use crate::log;

mod admin;
mod server;

pub use admin::{changes, note_change, Admin, AdminState};
pub use server::{Server, ServerState, ServerTls};

/// Servers offline a request tries at most, once its candidates are spent (see
/// [`Upstream::add_last_resorts`]).
pub const LAST_RESORT: usize = 2;

/// What balancers read of a group's servers at one moment: their count, requests in flight,
/// and whether each may take a request now.
struct View<'a> {
    servers: &'a [Server],
    now: Millis,
    policy: HaPolicy,
}

impl Servers for View<'_> {
    fn count(&self) -> usize {
        self.servers.len()
    }

    #[inline]
    fn in_flight(&self, i: usize) -> u32 {
        self.servers[i].in_flight.load(Ordering::Relaxed)
    }

    #[inline]
    fn usable(&self, i: usize) -> bool {
        let s = &self.servers[i];
        s.admin.get().takes_requests()
            && (!self.policy.enabled() || s.health.is_available(self.now, self.policy))
    }
}

/// The servers of one entry and the method that spreads requests over them.
#[derive(Debug)]
pub struct Upstream {
    servers: Vec<Server>,
    balancer: Box<dyn Balancer>,
    policy: HaPolicy,
    /// Which entry this is, for log lines (a server listed in several entries has a health
    /// state in each): `entry dynamic`, or empty.
    label: String,
}

impl Upstream {
    /// Builds the run-time group for `entry` (its balancer name must be in the registry).
    pub fn new(entry: &Entry) -> Result<Upstream, String> {
        Upstream::carried(entry, None)
    }

    /// Like [`Upstream::new`] after a reload: the servers of `previous` (the group of the
    /// entry of the same name in the configuration before) that are listed again, by
    /// `host:port`, keep their state — health, requests in flight, administrative state.
    pub fn carried(entry: &Entry, previous: Option<&Upstream>) -> Result<Upstream, String> {
        let mut up =
            Upstream::with_policy(&entry.servers, &entry.balancer, HaPolicy::from_entry(entry))?;
        if let Some(old) = previous {
            for server in &mut up.servers {
                if let Some(o) = old.servers.iter().find(|o| o.spec.name == server.spec.name) {
                    server.state = o.state.clone();
                }
            }
        }
        up.label = format!("entry {}", entry.name);
        up.set_tls(entry)?;
        Ok(up)
    }

    /// Builds a group from its parts: servers in list order, a balancer name or alias (any
    /// case) and the high-availability policy.
    pub fn with_policy(
        servers: &[ServerSpec],
        balancer_name: &str,
        policy: HaPolicy,
    ) -> Result<Upstream, String> {
        let balancer = balancer::build(balancer_name, servers)
            .ok_or_else(|| format!("unknown load balancer {balancer_name:?}"))?;
        Ok(Upstream {
            servers: servers.iter().cloned().map(Server::new).collect(),
            balancer,
            policy,
            label: String::new(),
        })
    }

    /// Gives the entry's TLS servers their client configuration (one for the entry, built
    /// here: off the workers) and names.
    fn set_tls(&mut self, entry: &Entry) -> Result<(), String> {
        let mut config = None;
        for server in &mut self.servers {
            if !entry.server_tls(&server.spec) {
                continue;
            }
            let config = match &config {
                Some(c) => std::sync::Arc::clone(c),
                None => config
                    .insert(crate::config::tls::client_config(&entry.tls)?)
                    .clone(),
            };
            let name = crate::config::tls::server_name(entry, &server.spec)?;
            server.tls = Some(ServerTls { config, name });
        }
        Ok(())
    }

    /// The servers, in configuration order.
    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The balancer's canonical name.
    pub fn balancer_name(&self) -> &'static str {
        self.balancer.name()
    }

    /// The high-availability policy.
    pub fn policy(&self) -> HaPolicy {
        self.policy
    }

    /// Fills `out` (cleared first) with the servers to try for this request, most preferred
    /// first: the balancer's order, keeping servers that are up or due for a probe (it may be
    /// empty: see [`Upstream::add_last_resorts`]). `out` is reused: once it has grown to the
    /// number of servers, planning does not allocate.
    pub fn plan(&self, ctx: &RequestContext<'_>, now: Millis, out: &mut Vec<usize>) {
        out.clear();
        let view = View {
            servers: &self.servers,
            now,
            policy: self.policy,
        };
        self.balancer.order(ctx, &view, out);
        out.retain(|&i| view.usable(i));
    }

    /// Appends to `out` (the request's candidates so far, all tried) the [`LAST_RESORT`]
    /// servers not in it that have been offline longest, oldest first, and returns how many
    /// it added. For a request whose every candidate failed or was taken (a server that was
    /// killed, the others marked offline, the probes of those due held by other requests):
    /// a pool that came back while marked offline is used at once rather than refused for a
    /// whole timeout, and a pool that is really down costs each request at most that many
    /// more connects. Try them with [`Upstream::acquire_last_resort`].
    pub fn add_last_resorts(&self, out: &mut Vec<usize>) -> usize {
        if !self.policy.enabled() {
            return 0;
        }
        let tried = out.len();
        // Offline ones only, oldest period first (0, up, would sort last).
        let until = |i: usize| self.servers[i].health.offline_until().wrapping_sub(1);
        for (i, s) in self.servers.iter().enumerate() {
            let offline = s.health.offline_until() != 0;
            if offline && s.admin.get().takes_requests() && !out[..tried].contains(&i) {
                out.push(i);
            }
        }
        let extra = &mut out[tried..];
        let keep = LAST_RESORT.min(extra.len());
        if keep > 0 && keep < extra.len() {
            extra.select_nth_unstable_by_key(keep - 1, |&i| until(i));
        }
        extra[..keep].sort_unstable_by_key(|&i| until(i));
        out.truncate(tried + keep);
        keep
    }

    /// Starts a last-resort attempt on server `i` (see [`Upstream::add_last_resorts`]):
    /// counted in flight, and taking the server's probe over whoever holds it, so that its
    /// outcome counts (an answer brings the server back). Match it with one
    /// [`Upstream::release`].
    pub fn acquire_last_resort(&self, i: usize, now: Millis) {
        let server = &self.servers[i];
        server.in_flight.fetch_add(1, Ordering::Relaxed);
        server.health.take_probe(now);
    }

    /// Starts an attempt on server `i` if it may be used now, counting it in flight; false when
    /// it is offline and another request already holds its single probe slot. Every `true` must
    /// be matched by one [`Upstream::release`].
    #[inline]
    pub fn acquire(&self, i: usize, now: Millis) -> bool {
        let server = &self.servers[i];
        // Counted before the probe claim, so `release` never sees 0 in flight while a fresh
        // claim is being taken (see `Health::release_idle`).
        server.in_flight.fetch_add(1, Ordering::Relaxed);
        if self.too_early(i, now) {
            self.release(i);
            return false;
        }
        if server.health.try_acquire(now, self.policy) {
            true
        } else {
            self.release(i);
            false
        }
    }

    /// Whether server `i` is offline with its timeout still running while another server is
    /// available: then it is no probe candidate. (A request planned before the server went
    /// offline must not probe it at once; only the all-offline fallback may.)
    fn too_early(&self, i: usize, now: Millis) -> bool {
        let until = self.servers[i].health.offline_until();
        until != 0
            && now < until
            && self.policy.enabled()
            && self
                .servers
                .iter()
                .any(|s| s.health.is_available(now, self.policy))
    }

    /// The attempt on server `i` is over (after its success or failure was recorded, if any).
    #[inline]
    pub fn release(&self, i: usize) {
        let server = &self.servers[i];
        if server.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            // Nobody left on it: a probe still claimed was abandoned without an outcome.
            server.health.release_idle();
        }
    }

    /// Server `i` answered (a response head arrived): it is healthy.
    #[inline]
    pub fn record_success(&self, i: usize, _now: Millis) {
        if let Some(t) = self.servers[i].health.record_success() {
            self.log_transition(i, t);
        }
    }

    /// An attempt on server `i` failed before any response byte; may take it offline.
    pub fn record_failure(&self, i: usize, kind: FailureKind, now: Millis) {
        if let Some(t) = self.servers[i]
            .health
            .record_failure(kind, now, self.policy)
        {
            self.log_transition(i, t);
        }
    }

    /// Seconds a client should wait before retrying when every candidate failed: until the
    /// first offline period ends, at least 1.
    pub fn retry_after_secs(&self, now: Millis) -> u64 {
        let soonest = self
            .servers
            .iter()
            .map(|s| s.health.offline_until())
            .map(|until| if until == 0 { now } else { until })
            .min()
            .unwrap_or(now);
        soonest.saturating_sub(now).div_ceil(1000).max(1)
    }

    fn log_transition(&self, i: usize, t: Transition) {
        let mut message = t.message(&self.servers[i].spec.name);
        if !self.label.is_empty() {
            message = format!("{}: {message}", self.label);
        }
        if t.is_warning() {
            log::warn(&message);
        } else {
            log::info(&message);
        }
    }
}
