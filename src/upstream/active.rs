//! What active checks, outlier ejection and slow start do to a group: probe results,
//! maintenance, ejections and their end, ramps.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Server, Upstream};
use crate::clock::Millis;
use crate::health::check::{Change, Event, ProbeResult, Reason};
use crate::health::FailureKind;

impl Upstream {
    /// A probe of server `i` ended at `now` with `result` after `latency` (the prober calls
    /// this for every entry that lists the server with the same check).
    pub fn record_probe(&self, i: usize, result: ProbeResult, latency: Duration, now: Millis) {
        let Some(t) = self.checks else { return };
        if let Some(change) = self.servers[i].check.probed(result, latency, t, now) {
            self.log_change(i, change);
            if let Change::Up { .. } = change {
                // Users' failures counted before it went down are history now: the next
                // `AttemptsCount` failures in a row take it down again, not the first one.
                self.servers[i].health.record_success();
                self.start_ramp(i, now);
            }
        }
    }

    /// Server `i` is in maintenance (no probes): when it comes back it is `checking` again.
    pub fn forget_checks(&self, i: usize, now: Millis) {
        if let Some(t) = self.checks {
            self.servers[i].check.apply(Event::Recheck, t, now);
        }
    }

    /// Logs the end of ejections that are over by `now` (once each); the prober calls it
    /// now and then. Ejected servers take requests again at the end of their ejection
    /// whether or not this runs.
    pub fn notice_returns(&self, now: Millis) {
        if self.outlier.consecutive == 0 {
            return;
        }
        for s in &self.servers {
            if s.outlier.notice_return(now).is_some() {
                self.log(false, &format!("server {} back from ejection", s.spec.name));
            }
        }
    }

    /// Ejects server `i` if the entry allows one more ejection now (see
    /// [`crate::health::outlier`]); gives up at once if another thread is deciding one.
    pub(super) fn try_eject(&self, i: usize, now: Millis) {
        let Some(_deciding) = self.ejecting.try_lock() else {
            return;
        };
        let n = self.servers.len();
        let allowed = if self.outlier.max_percent == 0 || n < 2 {
            0
        } else {
            (n * self.outlier.max_percent as usize / 100).max(1)
        };
        let ejected = self
            .servers
            .iter()
            .filter(|s| s.outlier.is_ejected(now))
            .count();
        if ejected >= allowed {
            return;
        }
        // Never the last usable server.
        let view = self.view(now);
        if !(0..n).any(|j| j != i && view.candidate(j)) {
            return;
        }
        let server = &self.servers[i];
        let Some(e) = server.outlier.eject(now, self.outlier.base) else {
            return;
        };
        self.log(
            true,
            &format!(
                "server {} ejected for {} s: {} consecutive 5xx responses (ejection {})",
                server.spec.name,
                e.until.saturating_sub(now).div_ceil(1000),
                self.outlier.consecutive,
                server.outlier.ejections()
            ),
        );
        if self.slow_start > 0 {
            server.ramp_since.store(e.until, Ordering::Relaxed);
            self.ramping_until
                .fetch_max(e.until.saturating_add(self.slow_start), Ordering::Relaxed);
        }
    }

    /// Starts server `i`'s slow-start ramp at `now` (when slow start applies).
    pub(super) fn start_ramp(&self, i: usize, now: Millis) {
        if self.slow_start == 0 {
            return;
        }
        self.servers[i]
            .ramp_since
            .store(now.max(1), Ordering::Relaxed);
        self.ramping_until
            .fetch_max(now.saturating_add(self.slow_start), Ordering::Relaxed);
    }

    /// Checks were turned on by a reload for `server`, which was in service: it starts `up`, or
    /// `down` if users' failures had it offline (then probes must pass to bring it back).
    pub(super) fn adopt_checks(server: &Server, now: Millis) {
        let health = &server.health;
        if health.offline_until() == 0 {
            server.check.adopt(true, Reason::None, now);
        } else {
            let kind = health.last_failure().unwrap_or(FailureKind::ConnectRefused);
            let failures = health.snapshot().consecutive_failures.max(1);
            server
                .check
                .adopt(false, Reason::Requests { failures, kind }, now);
            health.clear_offline();
        }
    }
}
