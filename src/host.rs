//! A stand-in host: a tiny HTTP/1.1 front end on `mio::Poll` that drives the same core the
//! Monkey adapter drives, over real loopback sockets.
//!
//! It plays Monkey's part: it parses client requests (keep-alive, pipelining), answers what
//! the plugin answers itself (404, 400), and hands proxied requests to a
//! [`crate::relay::Exchange`] together with a `dup` of the client socket — exactly the shape of
//! the plugin's stage-30 path. Tests and benchmarks use it; it is not a production server.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest as MioInterest, Poll, Registry, Token, Waker};

use crate::http::chunked::ChunkedDecoder;
use crate::http::request::{BodyKind, ProxyRequest};
use crate::http::status::{write_error_page, write_page};
use crate::proxy::{Proxy, Route};
use crate::reactor::{Interest, Reactor, Side};
use crate::relay::{Exchange, Progress, Worker};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
/// Largest request (head and body) the host accepts, like Monkey's `MaxRequestSize`.
const MAX_REQUEST: usize = 1 << 20;

/// A running host on 127.0.0.1; stops when dropped.
pub struct Host {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    open: Arc<AtomicUsize>,
    buffers: Arc<AtomicUsize>,
}

impl Host {
    /// Starts a host for `proxy` on an ephemeral loopback port.
    pub fn start(proxy: Arc<Proxy>) -> io::Result<Host> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        {
            use std::os::fd::AsRawFd;
            let fd = listener.as_raw_fd();
            poll.registry()
                .register(&mut SourceFd(&fd), LISTENER, MioInterest::READABLE)?;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let buffers = Arc::new(AtomicUsize::new(0));
        let mut lp = Loop {
            poll,
            listener,
            proxy,
            worker: Worker::new(),
            conns: HashMap::new(),
            next_id: 0,
            stop: stop.clone(),
            open: open.clone(),
            buffers: buffers.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("proxy-host".into())
            .spawn(move || lp.run())?;
        Ok(Host {
            addr,
            stop,
            waker,
            thread: Some(thread),
            open,
            buffers,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Client connections and exchanges currently open (for leak checks).
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Relay read buffers held by exchanges after the loop's last round (see
    /// [`Worker::buffers_in_use`]).
    pub fn buffers_in_use(&self) -> usize {
        self.buffers.load(Ordering::SeqCst)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One client connection.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    exchange: Option<Exchange>,
    /// Bytes of a local answer not yet written.
    output: Vec<u8>,
    close_after_output: bool,
    registered: [bool; 2],
}

struct Loop {
    poll: Poll,
    listener: TcpListener,
    proxy: Arc<Proxy>,
    worker: Worker,
    conns: HashMap<usize, Conn>,
    next_id: usize,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    buffers: Arc<AtomicUsize>,
}

/// Tokens: `id * 3` the host's client registration, `+ 1` the exchange's client `dup`,
/// `+ 2` the backend.
fn token(id: usize, side: Side) -> Token {
    Token(id * 3 + 1 + side as usize)
}

struct HostReactor<'a> {
    registry: &'a Registry,
    id: usize,
    registered: &'a mut [bool; 2],
}

impl Reactor for HostReactor<'_> {
    fn set_interest(
        &mut self,
        side: Side,
        fd: RawFd,
        interest: Option<Interest>,
    ) -> io::Result<()> {
        let slot = &mut self.registered[side as usize];
        let mut source = SourceFd(&fd);
        match interest {
            None if *slot => {
                *slot = false;
                self.registry.deregister(&mut source)
            }
            None => Ok(()),
            Some(i) => {
                let i = match i {
                    Interest::Read => MioInterest::READABLE,
                    Interest::Write => MioInterest::WRITABLE,
                    Interest::ReadWrite => MioInterest::READABLE | MioInterest::WRITABLE,
                };
                if *slot {
                    self.registry
                        .reregister(&mut source, token(self.id, side), i)
                } else {
                    *slot = true;
                    self.registry.register(&mut source, token(self.id, side), i)
                }
            }
        }
    }
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        let mut last_expiry = Instant::now();
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self.next_timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    Token(t) => {
                        let (id, kind) = (t / 3, t % 3);
                        match kind {
                            0 => self
                                .on_client_readable(id, event.is_read_closed() || event.is_error()),
                            1 => self.on_exchange_ready(id, Side::Client),
                            _ => self.on_exchange_ready(id, Side::Backend),
                        }
                    }
                }
            }
            self.on_timers();
            self.buffers
                .store(self.worker.buffers_in_use(), Ordering::SeqCst);
            let entries = &self.proxy.config.entries;
            self.worker.pool.trim(|e| entries[e].keepalive_idle);
            if last_expiry.elapsed() >= Duration::from_secs(1) {
                last_expiry = Instant::now();
                self.worker
                    .pool
                    .expire(Instant::now(), |e| entries[e].keepalive_timeout);
            }
        }
        let ids: Vec<usize> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
    }

    fn next_timeout(&self) -> Duration {
        let now = Instant::now();
        let first = self
            .conns
            .values()
            .filter_map(|c| c.exchange.as_ref()?.deadline())
            .min();
        let cap = Duration::from_millis(200);
        first.map_or(cap, |d| d.saturating_duration_since(now).min(cap))
    }

    fn accept(&mut self) {
        loop {
            let (std_stream, _) = match self.listener.accept() {
                Ok(s) => s,
                Err(_) => return,
            };
            if std_stream.set_nonblocking(true).is_err() {
                continue;
            }
            let id = self.next_id;
            self.next_id += 1;
            let mut stream = TcpStream::from_std(std_stream);
            if self
                .poll
                .registry()
                .register(&mut stream, Token(id * 3), MioInterest::READABLE)
                .is_err()
            {
                continue;
            }
            self.open.fetch_add(1, Ordering::SeqCst);
            self.conns.insert(
                id,
                Conn {
                    stream,
                    input: Vec::new(),
                    exchange: None,
                    output: Vec::new(),
                    close_after_output: false,
                    registered: [false, false],
                },
            );
        }
    }

    fn close(&mut self, id: usize) {
        if let Some(mut conn) = self.conns.remove(&id) {
            if let Some(ex) = conn.exchange.take() {
                let mut reactor = HostReactor {
                    registry: self.poll.registry(),
                    id,
                    registered: &mut conn.registered,
                };
                ex.abort(&mut self.worker, &mut reactor);
            }
            let _ = self.poll.registry().deregister(&mut conn.stream);
            crate::relay::discard_unread(&mut conn.stream);
            self.open.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// The client socket is readable, or `hung_up` (closed or reset, maybe after bytes).
    fn on_client_readable(&mut self, id: usize, hung_up: bool) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if conn.exchange.is_some() {
            // Like the plugin's read hold in Monkey: keep watching the client while a request
            // is proxied so that leaving (also after pipelined bytes) is noticed at once;
            // pipelined bytes stay in the socket until the exchange ends.
            let mut probe = [0u8; 1];
            match conn.stream.peek(&mut probe) {
                _ if hung_up => self.close(id),
                Ok(0) => self.close(id),
                Err(e) if e.kind() != ErrorKind::WouldBlock => self.close(id),
                _ => {}
            }
            return;
        }
        self.serve(id);
    }

    /// Reads what the client sent and answers complete requests until one is proxied.
    fn serve(&mut self, id: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else {
                return;
            };
            if conn.exchange.is_some() {
                return;
            }
            if !flush_output(conn) {
                self.close(id);
                return;
            }
            if !conn.output.is_empty() {
                // Write side is full; a later readable event continues.
                return;
            }
            if conn.close_after_output {
                self.close(id);
                return;
            }
            match parse_request(&conn.input) {
                Parsed::Incomplete => {
                    let mut chunk = [0u8; 16 * 1024];
                    match conn.stream.read(&mut chunk) {
                        Ok(0) => {
                            self.close(id);
                            return;
                        }
                        Ok(n) => {
                            conn.input.extend_from_slice(&chunk[..n]);
                            if conn.input.len() > MAX_REQUEST {
                                conn.input.clear();
                                write_error_page(&mut conn.output, 413, true, None);
                                conn.close_after_output = true;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.close(id);
                            return;
                        }
                    }
                }
                Parsed::Bad => {
                    conn.input.clear();
                    write_error_page(&mut conn.output, 400, true, None);
                    conn.close_after_output = true;
                }
                Parsed::Complete(mut request, used) => {
                    conn.input.drain(..used);
                    request.client = conn.stream.peer_addr().ok();
                    self.dispatch(id, *request);
                }
            }
        }
    }

    fn dispatch(&mut self, id: usize, request: ProxyRequest) {
        let proxy = self.proxy.clone();
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        if request.validate().is_err() {
            proxy.stats.record_local(400);
            write_error_page(&mut conn.output, 400, true, None);
            conn.close_after_output = true;
            return;
        }
        // Routed by the decoded path, as Monkey hands it to the plugin.
        let entry = match proxy.route(&crate::routing::routing_path(&request.path)) {
            Route::Entry(i) => i,
            Route::NotFound => {
                proxy.stats.record_local(404);
                write_error_page(&mut conn.output, 404, request.client_wants_close, None);
                conn.close_after_output = request.client_wants_close;
                return;
            }
            Route::Statistics => {
                let accept = request
                    .header_values("accept")
                    .next()
                    .map(|v| String::from_utf8_lossy(v).into_owned());
                let page = proxy.statistics_page(
                    request.client.map(|a| a.ip()),
                    request.query.as_deref().unwrap_or(""),
                    accept.as_deref(),
                );
                let content_type = page.format.map_or("text/plain", crate::stats::content_type);
                write_page(
                    &mut conn.output,
                    page.status,
                    content_type,
                    &page.body,
                    request.client_wants_close,
                );
                conn.close_after_output = request.client_wants_close;
                return;
            }
        };
        // The exchange writes to its own `dup` of the client socket, as in the plugin.
        let client = match dup_stream(&conn.stream) {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors, as the plugin answers it: 503, try again soon.
                write_error_page(&mut conn.output, 503, true, Some(1));
                conn.close_after_output = true;
                return;
            }
        };
        let mut reactor = HostReactor {
            registry: self.poll.registry(),
            id,
            registered: &mut conn.registered,
        };
        let exchange = Exchange::start(
            proxy,
            entry,
            request,
            client,
            id as u64,
            &mut self.worker,
            &mut reactor,
        );
        conn.exchange = Some(exchange);
    }

    fn on_exchange_ready(&mut self, id: usize, side: Side) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(ex) = conn.exchange.as_mut() else {
            return;
        };
        let mut reactor = HostReactor {
            registry: self.poll.registry(),
            id,
            registered: &mut conn.registered,
        };
        let progress = ex.on_ready(side, &mut self.worker, &mut reactor);
        self.after(id, progress);
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        let due: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.exchange
                    .as_ref()
                    .and_then(Exchange::deadline)
                    .is_some_and(|d| d <= now)
            })
            .map(|(&id, _)| id)
            .collect();
        for id in due {
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            let Some(ex) = conn.exchange.as_mut() else {
                continue;
            };
            let mut reactor = HostReactor {
                registry: self.poll.registry(),
                id,
                registered: &mut conn.registered,
            };
            let progress = ex.on_timeout(now, &mut self.worker, &mut reactor);
            self.after(id, progress);
        }
    }

    fn after(&mut self, id: usize, progress: Progress) {
        let Progress::Done(finish) = progress else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.exchange = None;
        if finish.keep_alive {
            self.serve(id);
        } else {
            self.close(id);
        }
    }
}

/// Writes pending local output; false when the client is gone.
fn flush_output(conn: &mut Conn) -> bool {
    while !conn.output.is_empty() {
        match conn.stream.write(&conn.output) {
            Ok(0) => return false,
            Ok(n) => {
                conn.output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

fn dup_stream(stream: &TcpStream) -> io::Result<TcpStream> {
    use std::os::fd::{AsFd, OwnedFd};
    let owned: OwnedFd = stream.as_fd().try_clone_to_owned()?;
    let stream = TcpStream::from_std(std::net::TcpStream::from(owned));
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

enum Parsed {
    Incomplete,
    Bad,
    Complete(Box<ProxyRequest>, usize),
}

/// Parses one request at the start of `input`, as Monkey would before stage 30.
fn parse_request(input: &[u8]) -> Parsed {
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut fields);
    let head_len = match req.parse(input) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Incomplete,
        Err(_) => return Parsed::Bad,
    };
    let target = req.path.unwrap_or("/");
    let encoded = |part: &str| {
        let mut out = String::new();
        crate::http::request::push_target(&mut out, part.as_bytes());
        out
    };
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (encoded(p), Some(encoded(q))),
        None => (encoded(target), None),
    };
    let minor_version = req.version.unwrap_or(1);
    let mut request = ProxyRequest::default();
    request.method = req.method.unwrap_or("GET").to_string();
    request.path = path;
    request.query = query;
    request.minor_version = minor_version;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut close = minor_version == 0;
    for h in req.headers.iter() {
        let value = crate::http::headers::trim(h.value);
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = crate::http::headers::has_token(value, "chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= crate::http::headers::has_token(value, "close");
        } else if h.name.eq_ignore_ascii_case("host") {
            request.host = std::str::from_utf8(value).ok().map(str::to_string);
        }
        request.headers.push(h.name, value);
    }
    request.client_wants_close = close;
    let body = &input[head_len..];
    let used = if chunked {
        let mut decoder = ChunkedDecoder::default();
        match decoder.feed(body, |_| {}) {
            Ok(n) if decoder.is_done() => n,
            Ok(_) => return Parsed::Incomplete,
            Err(_) => return Parsed::Bad,
        }
    } else {
        let n = length.unwrap_or(0);
        if body.len() < n {
            return Parsed::Incomplete;
        }
        n
    };
    request.body = body[..used].to_vec();
    request.body_kind = match (chunked, used) {
        (true, _) => BodyKind::Chunked,
        (false, 0) => BodyKind::None,
        (false, _) => BodyKind::Length,
    };
    Parsed::Complete(Box::new(request), head_len + used)
}
