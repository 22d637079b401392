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
//! Nothing here waits for a lock (the `LockingRoundRobin` balancer takes one by design; an
//! outlier ejection only tries one and gives up when it is taken).
//!
//! With active checks (`HealthCheck`), outlier detection, backup servers or slow start, the
//! same calls also apply those: a server is offered when its check state lets it
//! ([`crate::health::check`]), it is not ejected, it is a primary or no primary is usable,
//! and weighted balancers draw it in proportion to its slow-start ramp. Without any of them
//! planning takes the plain path of passive health alone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::balancer::{self, Balancer, RequestContext, Servers};
use crate::clock::Millis;
use crate::config::{is_weighted, Entry, ServerSpec};
use crate::health::check::{Change, Event, Thresholds};
use crate::health::{slow_start, FailureKind, HaPolicy, Transition};
use crate::log;

mod active;
mod admin;
mod limits;
mod server;
mod sticky;
mod view;

pub use admin::{changes, note_change, Admin, AdminState};
pub use limits::Limiter;
pub use server::{Server, ServerState, ServerTls};
pub use sticky::Sticky;

/// Servers offline a request tries at most, once its candidates are spent (see
/// [`Upstream::add_last_resorts`]).
pub const LAST_RESORT: usize = 2;

/// Outlier detection of one entry, in the units the request path uses.
#[derive(Debug, Clone, Copy, Default)]
struct OutlierPolicy {
    /// 5xx responses in a row that eject a server (0: off).
    consecutive: u32,
    /// The first ejection's length (ms).
    base: Millis,
    /// `OutlierMaxEjectionPercent`.
    max_percent: u32,
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
    /// Active checks' thresholds (`None`: no `HealthCheck`).
    checks: Option<Thresholds>,
    /// Outlier detection.
    outlier: OutlierPolicy,
    /// `SlowStart` in ms, 0 when off or when the balancer is not weighted.
    slow_start: Millis,
    /// Some server is a backup.
    backups: bool,
    /// None of the above: planning takes the plain path.
    plain: bool,
    /// When the last slow-start ramp of a server ends (0: none ever began).
    ramping_until: AtomicU64,
    /// Taken (never waited for) while an ejection is decided, so that two workers cannot
    /// both eject past `OutlierMaxEjectionPercent`.
    ejecting: Mutex<()>,
    /// `HashKey`, when the balancer hashes and the key is not the client address (the
    /// request path reads nothing for it otherwise).
    hash_key: Option<crate::config::HashKey>,
    /// `StickyCookie`: each server's value and `Set-Cookie` line.
    sticky: Option<Sticky>,
    /// `MaxConnections`, the queue and the retry budget.
    limiter: Limiter,
}

impl Upstream {
    /// Builds the run-time group for `entry` (its balancer name must be in the registry).
    pub fn new(entry: &Entry) -> Result<Upstream, String> {
        Upstream::carried(entry, None)
    }

    /// Like [`Upstream::new`] after a reload: the servers of `previous` (the group of the
    /// entry of the same name in the configuration before) that are listed again, by
    /// `host:port`, keep their state — health, requests in flight, administrative state.
    ///
    /// A server that comes with the reload into an entry that had servers ramps up when
    /// `SlowStart` is set (with checks, from its first passing probe). When checks are turned
    /// on by the reload, servers already in service start `up` (or `down`, if users' failures
    /// had taken them offline) rather than `checking`.
    pub fn carried(entry: &Entry, previous: Option<&Upstream>) -> Result<Upstream, String> {
        Upstream::carried_at(entry, previous, crate::clock::now_ms())
    }

    /// [`Upstream::carried`] at `now`.
    pub fn carried_at(
        entry: &Entry,
        previous: Option<&Upstream>,
        now: Millis,
    ) -> Result<Upstream, String> {
        let mut up = Upstream::with_parts(
            &entry.servers,
            &entry.balancer,
            HaPolicy::from_entry(entry),
            entry.affinity.balance_factor,
        )?;
        if up.balancer.name() == "SourceHash"
            && entry.affinity.hash_key != crate::config::HashKey::Source
        {
            up.hash_key = Some(entry.affinity.hash_key.clone());
        }
        up.sticky = entry
            .affinity
            .sticky
            .as_ref()
            .map(|c| Sticky::new(c, &entry.servers));
        up.checks = entry.health_check.as_ref().map(|c| Thresholds {
            rise: c.rise,
            fall: c.fall,
        });
        let o = &entry.outlier;
        up.outlier = OutlierPolicy {
            consecutive: o.consecutive_5xx,
            base: millis(o.ejection_time).max(1),
            max_percent: o.max_ejection_percent,
        };
        if is_weighted(up.balancer.name()) {
            up.slow_start = millis(entry.slow_start);
        }
        up.plain =
            up.checks.is_none() && up.outlier.consecutive == 0 && !up.backups && up.slow_start == 0;
        if let Some(old) = previous {
            let checks_turned_on = up.checks.is_some() && old.checks.is_none();
            for server in &mut up.servers {
                match old.servers.iter().find(|o| o.spec.name == server.spec.name) {
                    Some(o) => {
                        server.state = o.state.clone();
                        if checks_turned_on {
                            Upstream::adopt_checks(server, now);
                        }
                    }
                    None if up.checks.is_none() && up.slow_start > 0 => {
                        server.ramp_since.store(now.max(1), Ordering::Relaxed)
                    }
                    None => {}
                }
            }
        }
        if up.slow_start > 0 {
            let until = up
                .servers
                .iter()
                .map(|s| s.ramp_since.load(Ordering::Relaxed))
                .filter(|&since| since != 0)
                .map(|since| since.saturating_add(up.slow_start))
                .max()
                .unwrap_or(0);
            up.ramping_until.store(until, Ordering::Relaxed);
        }
        up.limiter = Limiter::new(&entry.limits);
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
        Upstream::with_parts(servers, balancer_name, policy, 0)
    }

    /// [`Upstream::with_policy`] with the hash method's `HashBalanceFactor`.
    fn with_parts(
        servers: &[ServerSpec],
        balancer_name: &str,
        policy: HaPolicy,
        balance_factor: u32,
    ) -> Result<Upstream, String> {
        let balancer = balancer::build_with(balancer_name, servers, balance_factor)
            .ok_or_else(|| format!("unknown load balancer {balancer_name:?}"))?;
        Ok(Upstream {
            servers: servers.iter().cloned().map(Server::new).collect(),
            balancer,
            policy,
            label: String::new(),
            checks: None,
            outlier: OutlierPolicy::default(),
            slow_start: 0,
            backups: servers.iter().any(|s| s.backup),
            plain: !servers.iter().any(|s| s.backup),
            ramping_until: AtomicU64::new(0),
            ejecting: Mutex::new(()),
            hash_key: None,
            sticky: None,
            limiter: Limiter::default(),
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

    /// `OutlierConsecutive5xx` (0: no outlier detection).
    pub fn outlier_consecutive(&self) -> u32 {
        self.outlier.consecutive
    }

    /// The active checks' thresholds, if the entry has `HealthCheck`.
    pub fn checks(&self) -> Option<Thresholds> {
        self.checks
    }

    /// Which entry this is in log lines (`entry NAME`; empty for a group built from parts).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether server `i` is a backup sitting idle now (usable, but a primary is too).
    pub fn is_idle_backup(&self, i: usize, now: Millis) -> bool {
        let s = &self.servers[i];
        if !s.spec.backup {
            return false;
        }
        let view = self.view(now);
        view.candidate(i) && view.primary_usable()
    }

    /// Server `i`'s slow-start share now, in thousandths of its weight (1000: all of it).
    pub fn ramp_permille(&self, i: usize, now: Millis) -> u32 {
        let since = self.servers[i].ramp_since.load(Ordering::Relaxed);
        slow_start::permille(since, self.slow_start, now)
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

    /// What the request's key is, when the balancer hashes on something else than the
    /// client address (`None`: nothing to extract for it).
    #[inline]
    pub fn hash_key(&self) -> Option<&crate::config::HashKey> {
        self.hash_key.as_ref()
    }

    /// The entry's sticky cookie, if it has one.
    #[inline]
    pub fn sticky(&self) -> Option<&Sticky> {
        self.sticky.as_ref()
    }

    /// Fills `out` (cleared first) with the servers to try for this request, most preferred
    /// first: the balancer's order, keeping servers that are up or due for a probe (it may be
    /// empty: see [`Upstream::add_last_resorts`]). `out` is reused: once it has grown to the
    /// number of servers, planning does not allocate.
    pub fn plan(&self, ctx: &RequestContext<'_>, now: Millis, out: &mut Vec<usize>) {
        self.plan_with(|| *ctx, now, out);
    }

    /// [`Upstream::plan`] with the request's context made by `ctx`, only if the plan reads
    /// it (one server on the plain path: never).
    #[inline]
    pub fn plan_with<'r>(
        &self,
        ctx: impl FnOnce() -> RequestContext<'r>,
        now: Millis,
        out: &mut Vec<usize>,
    ) {
        out.clear();
        if self.plain && self.servers.len() == 1 {
            // One server on the plain path: every balancer orders it alone (a balancer lists
            // every server once), and the sticky server can only be that one, first already.
            // What a balancer would have counted or drawn decides nothing with one server.
            // Held to the balancers' own path by `one_server_plans_as_its_balancer_does`.
            if self.plainly_usable(0, now) {
                out.push(0);
            }
            return;
        }
        self.plan_by_balancer(&ctx(), now, out);
    }

    /// [`Upstream::plan`]'s general path: the balancer's order, filtered (`out` is empty).
    fn plan_by_balancer(&self, ctx: &RequestContext<'_>, now: Millis, out: &mut Vec<usize>) {
        let view = self.view(now);
        self.balancer.order(ctx, &view, out);
        if self.plain {
            out.retain(|&i| view.usable(i));
            Upstream::stick(ctx, &view, out);
            return;
        }
        // Backups stay candidates (after every primary), so that a request whose primaries
        // all fail under it moves on to a backup instead of failing; servers still
        // `checking` while another is up come last of all, for the same reason.
        out.retain(|&i| view.candidate(i) || view.late(i));
        if self.backups {
            let mut primaries = 0;
            for k in 0..out.len() {
                if !self.servers[out[k]].spec.backup {
                    out[primaries..=k].rotate_right(1);
                    primaries += 1;
                }
            }
        }
        if self.checks.is_some() {
            let mut first = 0;
            for k in 0..out.len() {
                if !view.late(out[k]) {
                    out[first..=k].rotate_right(1);
                    first += 1;
                }
            }
        }
        Upstream::stick(ctx, &view, out);
    }

    /// The server the request's sticky cookie names goes first while it is usable (up, ready,
    /// not ejected, not a backup idle behind a usable primary); the balancer's order follows
    /// as its failover.
    #[inline]
    fn stick(ctx: &RequestContext<'_>, view: &view::View<'_>, out: &mut Vec<usize>) {
        let Some(i) = ctx.sticky else { return };
        if i >= view.count() || !view.usable(i) {
            return;
        }
        match out.iter().position(|&s| s == i) {
            Some(k) => out[..=k].rotate_right(1),
            None => out.insert(0, i),
        }
    }

    /// Appends to `out` (the request's candidates so far, all tried) the [`LAST_RESORT`]
    /// servers not in it that have been offline longest, oldest first, and returns how many
    /// it added. For a request whose every candidate failed or was taken (a server that was
    /// killed, the others marked offline, the probes of those due held by other requests):
    /// a pool that came back while marked offline is used at once rather than refused for a
    /// whole timeout, and a pool that is really down costs each request at most that many
    /// more connects. Try them with [`Upstream::acquire_last_resort`].
    pub fn add_last_resorts(&self, out: &mut Vec<usize>) -> usize {
        // With checks, probes decide: no user request is spent on a server that is down.
        if !self.policy.enabled() || self.checks.is_some() {
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
    /// outcome counts (an answer brings the server back). False when the server is at its
    /// `MaxConnections`. Match every `true` with one [`Upstream::release`].
    pub fn acquire_last_resort(&self, i: usize, now: Millis) -> bool {
        let server = &self.servers[i];
        if !self.count_in(server) {
            return false;
        }
        server.health.take_probe(now);
        true
    }

    /// Counts one more attempt in flight on `server`; false when it is at its limit.
    #[inline]
    fn count_in(&self, server: &Server) -> bool {
        if self.limiter.max() == 0 {
            server.in_flight.fetch_add(1, Ordering::Relaxed);
            true
        } else {
            self.limiter.take_slot(server)
        }
    }

    /// The entry's limit, queue and retry budget.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }

    /// Whether server `i` is at the entry's `MaxConnections` now.
    pub fn at_limit(&self, i: usize) -> bool {
        self.limiter.at_limit(&self.servers[i])
    }

    /// Starts an attempt on server `i` if it may be used now, counting it in flight; false when
    /// it is offline and another request already holds its single probe slot, or when it is
    /// at the entry's `MaxConnections` ([`Upstream::at_limit`] tells). Every `true` must be
    /// matched by one [`Upstream::release`].
    #[inline]
    pub fn acquire(&self, i: usize, now: Millis) -> bool {
        let server = &self.servers[i];
        // Counted before the probe claim, so `release` never sees 0 in flight while a fresh
        // claim is being taken (see `Health::release_idle`).
        if !self.count_in(server) {
            return false;
        }
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
    pub fn record_success(&self, i: usize, now: Millis) {
        if let Some(t) = self.servers[i].health.record_success() {
            self.log_transition(i, t);
            self.start_ramp(i, now);
        }
    }

    /// Server `i`'s response with `status` is complete: healthy as far as connections go
    /// ([`Upstream::record_success`]), and counted by outlier detection, which may eject it.
    #[inline]
    pub fn record_response(&self, i: usize, status: u16, now: Millis) {
        self.record_success(i, now);
        if self.outlier.consecutive > 0
            && self.servers[i].outlier.record(status) >= self.outlier.consecutive
        {
            self.try_eject(i, now);
        }
    }

    /// An attempt on server `i` failed before any response byte; may take it offline (with
    /// checks: down, until probes pass).
    pub fn record_failure(&self, i: usize, kind: FailureKind, now: Millis) {
        let server = &self.servers[i];
        if let Some(t) = self.checks {
            let failures = server.health.count_failure();
            if self.policy.enabled() && failures >= self.policy.attempts_count.max(1) {
                let event = Event::Requests { failures, kind };
                if let Some(change) = server.check.apply(event, t, now) {
                    self.log_change(i, change);
                }
            }
            return;
        }
        if let Some(t) = server.health.record_failure(kind, now, self.policy) {
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
        self.log(t.is_warning(), &t.message(&self.servers[i].spec.name));
    }

    fn log_change(&self, i: usize, c: Change) {
        self.log(c.is_warning(), &c.message(&self.servers[i].spec.name));
    }

    /// Logs `message` about one of the servers, naming the entry.
    fn log(&self, warning: bool, message: &str) {
        let line = if self.label.is_empty() {
            message.to_string()
        } else {
            format!("{}: {message}", self.label)
        };
        if warning {
            log::warn(&line);
        } else {
            log::info(&line);
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(d: Duration) -> Millis {
    d.as_millis().min(u128::from(u64::MAX / 4)) as Millis
}

#[cfg(test)]
mod tests;
