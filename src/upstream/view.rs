//! What balancers read of a group's servers at one moment ([`View`]), and what one plan
//! decides once for all of them ([`Gate`]): checking servers, backups, slow-start draws.

use std::sync::atomic::Ordering;

use super::Upstream;
use crate::balancer::{self, Servers};
use crate::clock::Millis;
use crate::health::check::Status;
use crate::health::slow_start;

/// What balancers read of a group's servers at one moment: their count, requests in flight,
/// and whether each may take a request now.
pub(super) struct View<'a> {
    up: &'a Upstream,
    now: Millis,
    gate: Gate,
}

/// What one plan decides once for all servers (only off the plain path).
#[derive(Debug, Clone, Copy, Default)]
struct Gate {
    /// Checks are on and no server is up: servers still `checking` take requests.
    checking_serves: bool,
    /// A primary server is usable: backups are not.
    primary_usable: bool,
    /// The largest slow-start share (thousandths) among the servers, while any ramps; 0
    /// when none does.
    ramp_max: u32,
}

impl View<'_> {
    /// Whether server `i` may take a request now, backup or not.
    #[inline]
    pub(super) fn candidate(&self, i: usize) -> bool {
        let up = self.up;
        let s = &up.servers[i];
        if !s.admin.get().takes_requests() {
            return false;
        }
        let healthy = if up.checks.is_some() {
            match s.check.status() {
                Status::Up => true,
                Status::Checking => self.gate.checking_serves,
                Status::Down => false,
            }
        } else {
            !up.policy.enabled() || s.health.is_available(self.now, up.policy)
        };
        healthy && !(up.outlier.consecutive > 0 && s.outlier.is_ejected(self.now))
    }

    /// Whether server `i` is `checking` while another server is up: never a first choice,
    /// but tried after every candidate failed (a request that can still be answered is not
    /// failed for want of a first probe).
    #[inline]
    pub(super) fn late(&self, i: usize) -> bool {
        let up = self.up;
        let s = &up.servers[i];
        up.checks.is_some()
            && !self.gate.checking_serves
            && s.check.status() == Status::Checking
            && s.admin.get().takes_requests()
            && !(up.outlier.consecutive > 0 && s.outlier.is_ejected(self.now))
    }

    /// Whether a primary server is usable (then backups are not).
    pub(super) fn primary_usable(&self) -> bool {
        self.gate.primary_usable
    }

    /// Server `i`'s slow-start share now, in thousandths.
    #[inline]
    fn permille(&self, i: usize) -> u32 {
        let since = self.up.servers[i].ramp_since.load(Ordering::Relaxed);
        slow_start::permille(since, self.up.slow_start, self.now)
    }
}

impl Servers for View<'_> {
    fn count(&self) -> usize {
        self.up.servers.len()
    }

    #[inline]
    fn in_flight(&self, i: usize) -> u32 {
        self.up.servers[i].in_flight.load(Ordering::Relaxed)
    }

    #[inline]
    fn usable(&self, i: usize) -> bool {
        let up = self.up;
        if up.plain {
            return up.plainly_usable(i, self.now);
        }
        self.candidate(i) && !(up.servers[i].spec.backup && self.gate.primary_usable)
    }

    #[inline]
    fn admits(&self, i: usize) -> bool {
        if !self.usable(i) {
            return false;
        }
        let max = self.gate.ramp_max;
        if max == 0 {
            return true;
        }
        let share = self.permille(i);
        // Drawn in proportion to its share of the largest one (a lone ramping server, or
        // servers all ramping together, are not held back).
        share >= max || u64::from(balancer::random()) * u64::from(max) < u64::from(share) << 32
    }

    #[inline]
    fn ramping(&self) -> bool {
        self.gate.ramp_max != 0
    }

    #[inline]
    fn ramp(&self, i: usize) -> u32 {
        if self.gate.ramp_max == 0 {
            slow_start::FULL
        } else {
            self.permille(i)
        }
    }
}

impl Upstream {
    /// Whether server `i` takes a request at `now` on the plain path (see `Upstream::plain`):
    /// ready, and available to passive health.
    #[inline]
    pub(super) fn plainly_usable(&self, i: usize, now: Millis) -> bool {
        let s = &self.servers[i];
        s.admin.get().takes_requests()
            && (!self.policy.enabled() || s.health.is_available(now, self.policy))
    }

    /// The view balancers read at `now`, with what it decides once per plan.
    #[inline]
    pub(super) fn view(&self, now: Millis) -> View<'_> {
        let mut view = View {
            up: self,
            now,
            gate: Gate::default(),
        };
        if self.plain {
            return view;
        }
        let n = self.servers.len();
        if self.checks.is_some() {
            view.gate.checking_serves = !self.servers.iter().any(|s| {
                s.check.status() == Status::Up
                    && s.admin.get().takes_requests()
                    && !(self.outlier.consecutive > 0 && s.outlier.is_ejected(now))
            });
        }
        if self.backups {
            view.gate.primary_usable =
                (0..n).any(|i| !self.servers[i].spec.backup && view.candidate(i));
        }
        if self.slow_start > 0 && now < self.ramping_until.load(Ordering::Relaxed) {
            let (mut min, mut max) = (slow_start::FULL, 0);
            for i in 0..n {
                if view.candidate(i) && !(self.servers[i].spec.backup && view.gate.primary_usable) {
                    let share = view.permille(i);
                    min = min.min(share);
                    max = max.max(share);
                }
            }
            // Nobody ramping among the usable servers: no draws.
            view.gate.ramp_max = if min >= slow_start::FULL { 0 } else { max };
        }
        view
    }
}
