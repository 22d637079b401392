//! The prober: one thread of the plugin that runs every active health check, with its own
//! small `mio` loop.
//!
//! Why a thread of its own rather than a task of every worker: a check is "one probe per
//! server per interval for the whole plugin", which from the workers would need a claim
//! shared by all of them and a timer armed in each (an idle worker must still probe), so
//! every worker would wake every interval to find the probe taken by another. One thread
//! owns the whole schedule instead: no claim, no worker woken, nothing a worker does changes
//! because checks are on, and the probes' sockets never meet a worker's loop. The thread
//! never blocks on a socket either (non-blocking connects to resolved addresses, no DNS) and
//! sleeps in `epoll_wait` until the next probe is due or an answer arrives.
//!
//! Each turn it reads the proxy in service (one atomic load; a reload's new configuration is
//! taken within [`MAX_SLEEP`]) and rebuilds its [`targets`](fn@targets::targets) from it
//! when it changed: targets that stay (same address and check) keep their schedule and
//! their probe in progress, so a reload neither skips nor doubles a probe; changed checks
//! take effect at once. Results go to every (entry, server) that lists the target
//! ([`crate::upstream::Upstream::record_probe`]), which keeps the servers' state and logs
//! its changes. Servers in maintenance are not probed.

mod probe;
mod targets;

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

pub use probe::{judge, judge_whole, Probe, ProbeSpec, ProbeTls, Verdict, MAX_READ};
pub use targets::{targets, Link, Target};

use crate::clock::Moment;
use crate::health::check::{first_delay, next_delay, ProbeResult};
use crate::proxy::{Current, Proxy};
use crate::upstream::Admin;

/// Longest the thread sleeps: how soon it notices a reload (and a stop).
pub const MAX_SLEEP: Duration = Duration::from_millis(500);

/// How much earlier than due a probe may start, to share a wake-up with another.
const SLACK: Duration = Duration::from_millis(20);

/// How often ejections that ended are looked for (for their log lines).
const HOUSEKEEPING: Duration = Duration::from_millis(500);

/// The token of the waker; probes use their target's index.
const WAKE: Token = Token(usize::MAX);

/// Where the prober's time comes from: the monotonic clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Moment + Send + Sync>;

/// One target and where its checking stands.
#[derive(Debug)]
struct Slot {
    target: Target,
    /// When its next probe starts (if none is in progress then).
    due: Moment,
    probe: Option<Probe>,
}

/// The prober's state without its thread: the targets of the proxy in service, their
/// schedule and probes in progress, and the poll that watches those. The thread drives it
/// with [`Checks::turn`] and [`Checks::on_ready`]; tests can too, with their own clock.
#[derive(Debug)]
pub struct Checks {
    poll: Poll,
    current: Arc<Current>,
    generation: u64,
    proxy: Arc<Proxy>,
    slots: Vec<Slot>,
    next_housekeeping: Moment,
    started: u64,
}

impl Checks {
    /// Checks for the proxy in service in `current`, watching probes with `poll`; the first
    /// probes are due soon after `now`.
    pub fn new(poll: Poll, current: Arc<Current>, now: Moment) -> Checks {
        let proxy = current.load();
        let generation = current.generation();
        let mut checks = Checks {
            poll,
            current,
            generation,
            proxy: proxy.clone(),
            slots: Vec::new(),
            next_housekeeping: now,
            started: 0,
        };
        checks.adopt(proxy, now);
        checks
    }

    /// Probes started so far, in all.
    pub fn probes_started(&self) -> u64 {
        self.started
    }

    /// The targets now.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.slots.iter().map(|s| &s.target)
    }

    /// Does what is due at `now`: follows a reload, fails probes past their deadline, starts
    /// the probes that are due. Returns when it needs a turn next.
    pub fn turn(&mut self, now: Moment) -> Moment {
        let generation = self.current.generation();
        if generation != self.generation {
            self.generation = generation;
            let proxy = self.current.load();
            self.adopt(proxy, now);
        }
        for i in 0..self.slots.len() {
            let late = self.slots[i]
                .probe
                .as_ref()
                .is_some_and(|p| p.deadline() <= now);
            if late {
                if let Some(p) = self.slots[i].probe.take() {
                    let result = p.timed_out();
                    self.finish(i, p, result, now);
                }
            }
            // Probes due within a few milliseconds start in this turn: one wake-up for
            // several (at most a twentieth of the interval early).
            let slack = (self.slots[i].target.spec.interval / 20).min(SLACK);
            if self.slots[i].probe.is_none() && self.slots[i].due <= now.after(slack) {
                self.start(i, now);
            }
        }
        if self.next_housekeeping <= now {
            self.next_housekeeping = now.after(HOUSEKEEPING);
            for up in &self.proxy.upstreams {
                up.notice_returns(now.millis());
            }
        }
        self.slots
            .iter()
            .map(|s| s.probe.as_ref().map_or(s.due, |p| p.deadline()))
            .chain(std::iter::once(self.next_housekeeping))
            .min()
            .unwrap_or(self.next_housekeeping)
    }

    /// The socket of `token`'s probe may have progressed.
    pub fn on_ready(&mut self, token: Token, now: Moment) {
        let i = token.0;
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        let Some(probe) = slot.probe.as_mut() else {
            return;
        };
        if let Some(result) = probe.advance(&slot.target.spec) {
            if let Some(p) = slot.probe.take() {
                self.finish(i, p, result, now);
            }
        }
    }

    /// Waits for socket events at most `timeout` and handles them at the time `clock` gives.
    pub fn wait(&mut self, events: &mut Events, timeout: Duration, clock: &dyn Fn() -> Moment) {
        if let Err(e) = self.poll.poll(events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                // A poll that fails would fail again at once: do not spin on it.
                std::thread::sleep(timeout);
            }
            return;
        }
        let now = clock();
        for event in events.iter() {
            if event.token() != WAKE {
                self.on_ready(event.token(), now);
            }
        }
    }

    /// Takes `proxy` in service: new targets, keeping the schedule and probe of those that
    /// stay.
    fn adopt(&mut self, proxy: Arc<Proxy>, now: Moment) {
        let mut old = std::mem::take(&mut self.slots);
        for target in targets(&proxy) {
            let kept = old
                .iter()
                .position(|s| s.target.spec == target.spec)
                .map(|k| old.swap_remove(k));
            let slot = match kept {
                Some(s) => Slot {
                    target,
                    due: s.due,
                    probe: s.probe,
                },
                None => Slot {
                    due: now.after(first_delay(target.spec.interval, crate::balancer::random())),
                    target,
                    probe: None,
                },
            };
            self.slots.push(slot);
        }
        for mut gone in old {
            if let Some(p) = gone.probe.as_mut() {
                let _ = self.poll.registry().deregister(&mut SourceFd(&p.fd()));
            }
        }
        // Probes carried over are watched under their new index.
        for (i, slot) in self.slots.iter_mut().enumerate() {
            if let Some(p) = slot.probe.as_mut() {
                let _ = self.poll.registry().reregister(
                    &mut SourceFd(&p.fd()),
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                );
            }
        }
        self.proxy = proxy;
    }

    /// Starts slot `i`'s probe at `now` (not for servers in maintenance in every entry).
    fn start(&mut self, i: usize, now: Moment) {
        let slot = &mut self.slots[i];
        slot.due = now.after(next_delay(
            slot.target.spec.interval,
            crate::balancer::random(),
        ));
        let mut wanted = false;
        for link in &slot.target.links {
            let up = &self.proxy.upstreams[link.entry];
            if up.servers()[link.server].admin.get() == Admin::Maint {
                up.forget_checks(link.server, now.millis());
            } else {
                wanted = true;
            }
        }
        if !wanted {
            return;
        }
        self.started += 1;
        let mut p = match Probe::start(&self.slots[i].target.spec, now) {
            Ok(p) => p,
            Err(result) => return self.report(i, result, Duration::ZERO, now),
        };
        let registered = self.poll.registry().register(
            &mut SourceFd(&p.fd()),
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            // Out of resources here: no verdict on the server.
            return;
        }
        // The connect may already have completed: look now (edge-triggered).
        match p.advance(&self.slots[i].target.spec) {
            Some(result) => self.finish(i, p, result, now),
            None => self.slots[i].probe = Some(p),
        }
    }

    /// Probe `p` of slot `i` ended with `result`.
    fn finish(&mut self, i: usize, p: Probe, result: ProbeResult, now: Moment) {
        let _ = self.poll.registry().deregister(&mut SourceFd(&p.fd()));
        let latency = now.since(p.started());
        drop(p);
        self.report(i, result, latency, now);
    }

    /// Hands a probe's outcome to every entry that lists the target (but servers in
    /// maintenance).
    fn report(&self, i: usize, result: ProbeResult, latency: Duration, now: Moment) {
        for link in &self.slots[i].target.links {
            let up = &self.proxy.upstreams[link.entry];
            if up.servers()[link.server].admin.get() != Admin::Maint {
                up.record_probe(link.server, result, latency, now.millis());
            }
        }
    }
}

/// The prober thread; stops (and is joined) when dropped.
#[derive(Debug)]
pub struct Prober {
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    /// Starts the thread that checks the servers of the proxy in service in `current`, on
    /// `clock`'s time.
    pub fn spawn(current: Arc<Current>, clock: Clock) -> io::Result<Prober> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let thread = std::thread::Builder::new()
            .name("proxy-health".into())
            .spawn(move || {
                let mut checks = Checks::new(poll, current, clock());
                let mut events = Events::with_capacity(256);
                while !halt.load(Ordering::Relaxed) {
                    let next = checks.turn(clock());
                    let timeout = next
                        .since(clock())
                        .clamp(Duration::from_millis(1), MAX_SLEEP);
                    checks.wait(&mut events, timeout, &*clock);
                }
            })?;
        Ok(Prober {
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// Makes the thread take a turn now (a test moved its clock).
    pub fn wake(&self) {
        let _ = self.waker.wake();
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::check::Status;
    use std::net::TcpListener;

    fn current(text: &str) -> Arc<Current> {
        let config = crate::config::parse_str(
            text,
            std::path::Path::new("t.conf"),
            &crate::config::SystemResolver,
        )
        .unwrap();
        Arc::new(Current::new(Arc::new(Proxy::new(config).unwrap())))
    }

    /// Drives `checks` over `secs` simulated seconds in 10 ms steps (real sockets, simulated
    /// time: a probe's answer is waited for at most 2 ms of real time per step).
    fn run(checks: &mut Checks, from: Moment, secs: u64) -> Moment {
        let mut events = Events::with_capacity(64);
        let mut now = from;
        for _ in 0..secs * 100 {
            now = now.after(Duration::from_millis(10));
            checks.turn(now);
            let t = now;
            checks.wait(&mut events, Duration::from_millis(2), &move || t);
        }
        now
    }

    #[test]
    fn one_probe_per_target_per_interval_whatever_the_entries() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let current = current(&format!(
            "[PROXY_DEFAULTS]\n HealthCheck tcp\n HealthCheckInterval 1\n\
             [PROXY_ENTRY]\n Match ^/x\n ServerList {a} {b}\n\
             [PROXY_ENTRY]\n Match ^/y\n ServerList {a}\n"
        ));
        let t0 = Moment::from_nanos(1_000_000_000);
        let mut checks = Checks::new(Poll::new().unwrap(), current.clone(), t0);
        assert_eq!(checks.targets().count(), 2);
        run(&mut checks, t0, 10);
        // Two targets, 0.9-1 s apart after a first probe within 0.5 s: 10 or 11 each.
        let n = checks.probes_started();
        assert!((20..=22).contains(&n), "{n} probes of 2 targets in 10 s");
        let proxy = current.load();
        for (e, s) in [(0, 0), (0, 1), (1, 0)] {
            let state = &proxy.upstreams[e].servers()[s].check;
            assert_eq!(state.status(), Status::Up);
            assert!(state.snapshot(0).probes >= 10);
        }
    }

    #[test]
    fn a_probe_past_its_timeout_fails_and_the_next_is_on_schedule() {
        // A listener that is never accepted from answers nothing: HTTP probes time out.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let current = current(&format!(
            "[PROXY_ENTRY]\n Match ^/\n ServerList {addr}\n HealthCheck GET /h\n \
             HealthCheckInterval 1\n HealthCheckTimeout 0.3\n HealthCheckFall 2\n"
        ));
        let t0 = Moment::from_nanos(1_000_000_000);
        let mut checks = Checks::new(Poll::new().unwrap(), current.clone(), t0);
        run(&mut checks, t0, 3);
        let proxy = current.load();
        let state = &proxy.upstreams[0].servers()[0].check;
        assert_eq!(state.status(), Status::Down);
        let snap = state.snapshot(0);
        let last = snap.last.unwrap();
        assert_eq!(
            last.result,
            ProbeResult::Fail(crate::health::check::ProbeFailure::Timeout)
        );
        assert!(last.latency >= Duration::from_millis(300), "{last:?}");
        assert!((3..=4).contains(&snap.probes), "{}", snap.probes);
    }
}
