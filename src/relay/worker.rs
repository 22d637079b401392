//! One event-loop thread's share of the core: every exchange in progress, the idle upstream
//! connections, the memory they reuse, and the one timer that drives their timeouts.
//!
//! The host knows none of these by anything but their [`Token`]: it hands every event back
//! with the token ([`Worker::on_ready`]), calls [`Worker::on_timer`] when the time it was asked
//! for has come, and hears of an exchange's end through [`Ended`]. Exchanges live in a slab
//! (no allocation per request once it has grown); a token names a slot and the serial number
//! of its occupant, so an event for an exchange that is over, or for a slot taken by a newer
//! one, is recognised and ignored.

use std::sync::Arc;
use std::time::Duration;

use mio::net::TcpStream;

use super::exchange::{Exchange, Finish, Progress};
use super::local::Local;
use super::tokens::{exchange_token, owner, Owner, SERIAL_LIMIT};
use crate::clock::Moment;
use crate::http::request::ProxyRequest;
use crate::proxy::Proxy;
use crate::reactor::{Reactor, Token};

/// An exchange that is over, for its host to end the request.
#[derive(Debug)]
pub struct Ended {
    /// The exchange's token, as [`Worker::start`] returned it.
    pub token: Token,
    /// How it ended.
    pub finish: Finish,
    /// The client connection the exchange was given, handed back (a host may keep it for the
    /// connection's next request).
    pub client: Option<TcpStream>,
}

/// One slab slot.
#[derive(Debug, Default)]
struct Slot {
    /// The occupant's serial number (0 while free).
    serial: u32,
    exchange: Option<Exchange>,
}

/// The exchange in `slot` if its serial number is `serial`.
fn exchange_in(slots: &mut [Slot], slot: usize, serial: u32) -> Option<&mut Exchange> {
    let s = slots.get_mut(slot)?;
    if s.serial != serial {
        return None;
    }
    s.exchange.as_mut()
}

/// How late a timeout may fire, and how often at most a worker is woken for timers.
const RESOLUTION: Duration = Duration::from_millis(50);

/// The per-thread core. See the [module docs](self).
#[derive(Debug)]
pub struct Worker {
    slots: Vec<Slot>,
    free: Vec<usize>,
    /// The last serial number given (wraps within 30 bits, skipping 0).
    serial: u32,
    live: usize,
    local: Local,
    /// The wake-up the host was last asked for, until it comes.
    wake: Option<Moment>,
}

impl Default for Worker {
    fn default() -> Worker {
        Worker::new()
    }
}

impl Worker {
    /// A worker with nothing in progress.
    pub fn new() -> Worker {
        Worker {
            slots: Vec::new(),
            free: Vec::new(),
            serial: 0,
            live: 0,
            local: Local::default(),
            wake: None,
        }
    }

    /// Starts proxying `request` (validated and routed to `entry` by `proxy`) for the client
    /// connection `client`, a socket the exchange owns (it writes the response to it and
    /// hands it back in [`Ended`]). Returns the exchange's token.
    pub fn start(
        &mut self,
        proxy: Arc<Proxy>,
        entry: usize,
        request: ProxyRequest,
        client: TcpStream,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Token {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(Slot::default());
                self.slots.len() - 1
            }
        };
        self.serial = if self.serial >= SERIAL_LIMIT - 1 {
            1
        } else {
            self.serial + 1
        };
        let serial = self.serial;
        let token = exchange_token(slot, serial);
        let client_id = self.local.new_id();
        let exchange = Exchange::start(
            proxy,
            entry,
            request,
            client,
            client_id,
            token,
            now,
            &mut self.local,
            reactor,
        );
        let deadline = exchange.deadline();
        self.slots[slot] = Slot {
            serial,
            exchange: Some(exchange),
        };
        self.live += 1;
        self.arm(reactor, deadline);
        token
    }

    /// A socket watched for `token` may have progressed. Returns the exchange that ended, if
    /// this event ended one.
    pub fn on_ready(
        &mut self,
        token: Token,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Option<Ended> {
        match owner(token) {
            Owner::Idle(fd) => {
                self.local.pool.check(fd);
                None
            }
            Owner::Exchange { slot, serial } => {
                let exchange = exchange_in(&mut self.slots, slot, serial)?;
                let progress = exchange.on_ready(now, &mut self.local, reactor);
                self.after(slot, progress, reactor)
            }
        }
    }

    /// The client of `token`'s exchange is gone (the host noticed it): the exchange ends at
    /// once without answering, counted as a client abort. False if it was over already.
    pub fn abort(&mut self, token: Token, now: Moment, reactor: &mut dyn Reactor) -> bool {
        let Owner::Exchange { slot, serial } = owner(token) else {
            return false;
        };
        let Some(exchange) = exchange_in(&mut self.slots, slot, serial) else {
            return false;
        };
        exchange.abort(now, &mut self.local, reactor);
        let _ = self.remove(
            slot,
            Finish {
                keep_alive: false,
                status: 0,
            },
        );
        self.arm(reactor, None);
        true
    }

    /// The time the host was asked to wake the worker at has come (or passed): expired
    /// timeouts act, idle connections past their limits close. Exchanges that ended are
    /// appended to `ended`.
    pub fn on_timer(&mut self, now: Moment, reactor: &mut dyn Reactor, ended: &mut Vec<Ended>) {
        self.wake = None;
        for slot in 0..self.slots.len() {
            let Some(exchange) = self.slots[slot].exchange.as_mut() else {
                continue;
            };
            if !exchange.deadline().is_some_and(|d| d <= now) {
                continue;
            }
            if let Progress::Done(finish) = exchange.on_timeout(now, &mut self.local, reactor) {
                ended.push(self.remove(slot, finish));
            }
        }
        if self.local.pool.due().is_some_and(|d| d <= now) {
            self.local.pool.housekeep(now);
        }
        let next = self
            .slots
            .iter()
            .filter_map(|s| s.exchange.as_ref()?.deadline())
            .chain(self.local.pool.due())
            .min();
        // Never sooner than the resolution: deadlines that move on with every byte would
        // otherwise wake the worker again and again for nothing.
        self.arm(reactor, next.map(|n| n.max(now.after(RESOLUTION))));
    }

    /// When the worker wants [`Worker::on_timer`] next, as last told to the host.
    pub fn next_wake(&self) -> Option<Moment> {
        self.wake
    }

    /// Exchanges in progress.
    pub fn live_exchanges(&self) -> usize {
        self.live
    }

    /// Relay read buffers held by exchanges now (see [`super::spares::Spares::buffers_in_use`]).
    pub fn buffers_in_use(&self) -> usize {
        self.local.spares.buffers_in_use()
    }

    /// Idle upstream connections held.
    pub fn idle_connections(&self) -> usize {
        self.local.pool.len()
    }

    /// An empty request to fill, with the buffers of an earlier one when there is one (hosts
    /// copy each client request into it rather than into fresh allocations).
    pub fn take_request(&mut self) -> ProxyRequest {
        self.local.spares.take_request()
    }

    /// Gives back a request the host filled but did not proxy (answered locally).
    pub fn recycle_request(&mut self, request: ProxyRequest) {
        self.local.spares.put_request(request);
    }

    fn after(
        &mut self,
        slot: usize,
        progress: Progress,
        reactor: &mut dyn Reactor,
    ) -> Option<Ended> {
        match progress {
            Progress::Pending => {
                let deadline = self.slots[slot]
                    .exchange
                    .as_ref()
                    .and_then(Exchange::deadline);
                self.arm(reactor, deadline);
                None
            }
            Progress::Done(finish) => {
                let ended = self.remove(slot, finish);
                // The pool may have taken the exchange's backend connection.
                self.arm(reactor, None);
                Some(ended)
            }
        }
    }

    fn remove(&mut self, slot: usize, finish: Finish) -> Ended {
        let s = &mut self.slots[slot];
        let token = exchange_token(slot, s.serial);
        s.serial = 0;
        let mut exchange = s.exchange.take().expect("a live exchange");
        let client = exchange.take_client();
        self.local.spares.put_request(exchange.take_request());
        drop(exchange);
        self.free.push(slot);
        self.live -= 1;
        Ended {
            token,
            finish,
            client,
        }
    }

    /// Asks the host for a wake-up at `at` if that is sooner than the one it was asked for
    /// (and for the pool's housekeeping, if that is sooner still).
    fn arm(&mut self, reactor: &mut dyn Reactor, at: Option<Moment>) {
        let at = at.into_iter().chain(self.local.pool.due()).min();
        let Some(at) = at else { return };
        if self.wake.is_some_and(|w| w <= at) {
            return;
        }
        reactor.wake_at(at);
        self.wake = Some(at);
    }
}
