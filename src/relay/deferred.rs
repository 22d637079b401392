//! An answer that is not ready when the request arrives (an admin request waiting for the
//! reload thread): the request waits without blocking its worker, as an exchange waits for
//! a backend, and the page is written to the client when it comes.

use std::io::{ErrorKind, Write};
use std::os::fd::AsRawFd;
use std::time::Duration;

use super::client::ClientConn;
use super::exchange::{Finish, Progress};
use crate::clock::Moment;
use crate::http::status::{write_page, LocalPage};
use crate::reactor::{Interest, Reactor, Source, Token};
use crate::reload::Waiting;

/// How long a request waits for its answer before it gets a 504.
const PATIENCE: Duration = Duration::from_secs(60);

/// A request waiting for its answer, then the answer on its way to the client.
#[derive(Debug)]
pub(super) struct Deferred {
    token: Token,
    client: Option<ClientConn>,
    client_id: u64,
    client_watched: bool,
    waiting: Waiting,
    waiting_id: u64,
    /// The answer's bytes, once it came, and how many went out.
    out: Vec<u8>,
    sent: usize,
    page: Option<(u16, bool)>,
    head_request: bool,
    /// The client asked to close after this request.
    close: bool,
    deadline: Option<Moment>,
    finish: Option<Finish>,
}

impl Deferred {
    /// Waits for `waiting`'s answer for the client connection `client` (known to the host as
    /// socket `client_id`), as the owner of `token`. `close`: the connection closes after the
    /// answer whatever the answer says.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        token: Token,
        client: ClientConn,
        client_id: u64,
        waiting: Waiting,
        waiting_id: u64,
        head_request: bool,
        close: bool,
        now: Moment,
        reactor: &mut dyn Reactor,
    ) -> Deferred {
        let source = Source {
            fd: waiting.wake_fd(),
            id: waiting_id,
        };
        let _ = reactor.watch(source, token, Some(Interest::Read));
        Deferred {
            token,
            client: Some(client),
            client_id,
            client_watched: false,
            waiting,
            waiting_id,
            out: Vec::new(),
            sent: 0,
            page: None,
            head_request,
            close,
            deadline: Some(now.after(PATIENCE)),
            finish: None,
        }
    }

    /// The wake-up socket or the client may have progressed.
    pub(super) fn on_ready(&mut self, now: Moment, reactor: &mut dyn Reactor) -> Progress {
        if self.page.is_none() {
            // The answer is in the slot once the wake-up byte was written.
            self.waiting.drain();
            match self.waiting.take() {
                Some(page) => self.queue(&page, now),
                None => return Progress::Pending,
            }
        }
        self.flush(reactor)
    }

    /// When [`Deferred::on_timeout`] is due.
    pub(super) fn deadline(&self) -> Option<Moment> {
        self.deadline
    }

    /// No answer in time (504), or a client that takes no bytes (the connection closes).
    pub(super) fn on_timeout(&mut self, now: Moment, reactor: &mut dyn Reactor) -> Progress {
        if !self.deadline.is_some_and(|d| d <= now) {
            return self.progress();
        }
        if self.page.is_some() {
            return self.end(false, reactor);
        }
        self.queue(&LocalPage::error(504, true, None), now);
        self.flush(reactor)
    }

    /// The client left: the answer, if it comes, goes nowhere.
    pub(super) fn abort(&mut self, reactor: &mut dyn Reactor) {
        let _ = self.end(false, reactor);
    }

    /// Hands the client connection back once over.
    pub(super) fn take_client(&mut self) -> Option<ClientConn> {
        self.finish.and(self.client.take())
    }

    fn progress(&self) -> Progress {
        match self.finish {
            Some(f) => Progress::Done(f),
            None => Progress::Pending,
        }
    }

    /// The page to send.
    fn queue(&mut self, page: &LocalPage, now: Moment) {
        self.out.clear();
        write_page(&mut self.out, page, self.head_request);
        self.sent = 0;
        self.page = Some((page.status, page.close || self.close));
        self.deadline = Some(now.after(PATIENCE));
    }

    fn flush(&mut self, reactor: &mut dyn Reactor) -> Progress {
        let Some(client) = self.client.as_mut() else {
            return self.end(false, reactor);
        };
        while self.sent < self.out.len() {
            match client.write(&self.out[self.sent..]) {
                Ok(0) => return self.end(false, reactor),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    let source = Source {
                        fd: client.as_raw_fd(),
                        id: self.client_id,
                    };
                    let _ = reactor.watch(source, self.token, Some(Interest::Write));
                    self.client_watched = true;
                    return Progress::Pending;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return self.end(false, reactor),
            }
        }
        let keep = self.page.is_some_and(|(_, close)| !close);
        self.end(keep, reactor)
    }

    fn end(&mut self, keep_alive: bool, reactor: &mut dyn Reactor) -> Progress {
        if let Some(f) = self.finish {
            return Progress::Done(f);
        }
        if self.client_watched {
            if let Some(c) = &self.client {
                reactor.release(Source {
                    fd: c.as_raw_fd(),
                    id: self.client_id,
                });
            }
        }
        reactor.release(Source {
            fd: self.waiting.wake_fd(),
            id: self.waiting_id,
        });
        self.deadline = None;
        let finish = Finish {
            keep_alive,
            status: self.page.map_or(0, |(status, _)| status),
        };
        self.finish = Some(finish);
        Progress::Done(finish)
    }
}
