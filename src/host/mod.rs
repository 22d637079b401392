//! A stand-in host: a tiny HTTP/1.1 front end on `mio::Poll` that drives the same core the
//! Monkey adapter drives, over real loopback sockets. Tests and benchmarks use it; it is not
//! a production server and is not compiled into the plugin (feature `stand-in-host`).
//!
//! It plays Monkey's part and nothing more: it frames bytes (finds the request line and
//! splits it, as Monkey's parser does before stage 30), hands the rest to the core's one
//! intake ([`Proxy::admit`]), sends the pages the core answers itself, and gives proxied
//! requests to its [`Worker`] together with a `dup` of the client socket — exactly the shape
//! of the plugin's stage-30 path. Its clock is the system's or, for tests of timeouts, one
//! the test moves by hand ([`TestClock`]).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::net::TcpStream;
use mio::unix::SourceFd;
use mio::{Events, Interest as MioInterest, Poll, Registry, Token as MioToken, Waker};

use crate::clock::Moment;
use crate::http::intake::RawRequest;
use crate::http::status::{write_page, LocalPage};
use crate::prober::Prober;
use crate::proxy::{Admission, Cached, Current, Proxy};
use crate::reactor::{Interest, Reactor, Source, Token};
use crate::relay::{ClientConn, ClientTransport, Ended, Worker};

mod tls;
use crate::reload::Reloader;

const LISTENER: u64 = Token::HOST_BIT | (1 << 40);
const WAKER: u64 = Token::HOST_BIT | (1 << 40) | 1;
/// Largest request (head and body) the host accepts, like Monkey's `MaxRequestSize`.
const MAX_REQUEST: usize = 1 << 20;
/// Longest the loop sleeps without looking at its stop flag.
const MAX_SLEEP: Duration = Duration::from_millis(200);

/// A clock a test moves by hand, for timeouts without sleeping. Starts at one second.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<AtomicU64>);

impl Default for TestClock {
    fn default() -> TestClock {
        TestClock(Arc::new(AtomicU64::new(1_000_000_000)))
    }
}

impl TestClock {
    /// A clock at one second.
    pub fn new() -> TestClock {
        TestClock::default()
    }

    /// What the clock says.
    pub fn now(&self) -> Moment {
        Moment::from_nanos(self.0.load(Ordering::SeqCst))
    }

    /// Moves the clock on by `d`.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(d.as_nanos() as u64, Ordering::SeqCst);
    }
}

/// The host's time: the system's monotonic clock, or a test's.
#[derive(Debug, Clone)]
enum Clock {
    System,
    Test(TestClock),
}

impl Clock {
    fn now(&self) -> Moment {
        match self {
            Clock::System => Moment::now(),
            Clock::Test(c) => c.now(),
        }
    }
}

/// A running host on 127.0.0.1; stops when dropped.
pub struct Host {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: Option<JoinHandle<()>>,
    open: Arc<AtomicUsize>,
    buffers: Arc<AtomicUsize>,
    /// Pipes held by exchanges and body bytes spliced, after the loop's last round.
    pipes: Arc<(AtomicUsize, AtomicU64)>,
    clock: Clock,
    current: Arc<Current>,
    /// The active health checks' thread (on the host's clock).
    prober: Option<Prober>,
}

impl Host {
    /// Starts a host for `proxy` on an ephemeral loopback port, on the system clock. Its
    /// admin endpoint can change states and weights; a reload is answered 503 (there is no
    /// file: see [`Host::start_from_file`]).
    pub fn start(proxy: Arc<Proxy>) -> io::Result<Host> {
        Host::start_on(proxy, Clock::System, None, None)
    }

    /// Starts a host for `proxy` whose listener speaks TLS with `tls` (as a Monkey `Listen
    /// PORT tls` does): requests, local pages and everything the relay writes go through
    /// each connection's TLS state.
    pub fn start_tls(proxy: Arc<Proxy>, tls: Arc<rustls::ServerConfig>) -> io::Result<Host> {
        Host::start_on(proxy, Clock::System, None, Some(tls))
    }

    /// Starts a host whose time is `clock`: timeouts fire when the test moves it on
    /// ([`Host::advance`]).
    pub fn start_with_clock(proxy: Arc<Proxy>, clock: TestClock) -> io::Result<Host> {
        Host::start_on(proxy, Clock::Test(clock), None, None)
    }

    /// Starts a host for the configuration file `path`, which its admin endpoint can reload
    /// (as the plugin does). A file that does not validate is an error naming its problems.
    pub fn start_from_file(path: &std::path::Path) -> io::Result<Host> {
        let config = crate::config::load(path).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            io::Error::new(ErrorKind::InvalidInput, lines.join("\n"))
        })?;
        let proxy = Proxy::new(config).map_err(|e| io::Error::new(ErrorKind::InvalidInput, e))?;
        Host::start_on(
            Arc::new(proxy),
            Clock::System,
            Some(path.to_path_buf()),
            None,
        )
    }

    fn start_on(
        proxy: Arc<Proxy>,
        clock: Clock,
        path: Option<std::path::PathBuf>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Host> {
        let current = Arc::new(Current::new(proxy));
        let reloader = Reloader::spawn(current.clone(), path)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), MioToken(WAKER as usize))?);
        let fd = listener.as_raw_fd();
        poll.registry().register(
            &mut SourceFd(&fd),
            MioToken(LISTENER as usize),
            MioInterest::READABLE,
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let buffers = Arc::new(AtomicUsize::new(0));
        let pipes = Arc::new((AtomicUsize::new(0), AtomicU64::new(0)));
        let mut lp = Loop {
            poll,
            listener,
            proxy: Cached::new(&current),
            current: current.clone(),
            reloader,
            tls,
            worker: Worker::new(),
            sources: Sources::default(),
            conns: HashMap::new(),
            by_exchange: HashMap::new(),
            next_id: 0,
            stop: stop.clone(),
            open: open.clone(),
            buffers: buffers.clone(),
            pipes: pipes.clone(),
            clock: clock.clone(),
            ended: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("proxy-host".into())
            .spawn(move || lp.run())?;
        let time = clock.clone();
        let prober = Prober::spawn(current.clone(), Arc::new(move || time.now()))?;
        Ok(Host {
            addr,
            stop,
            waker,
            thread: Some(thread),
            open,
            buffers,
            pipes,
            clock,
            current,
            prober: Some(prober),
        })
    }

    /// The proxy in service now (a reload replaces it; requests in flight keep theirs).
    pub fn proxy(&self) -> Arc<Proxy> {
        self.current.load()
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

    /// Pipes held by exchanges (spliced bytes on their way to a client) after the loop's last
    /// round (see [`Worker::pipes_in_use`]).
    pub fn pipes_in_use(&self) -> usize {
        self.pipes.0.load(Ordering::SeqCst)
    }

    /// Response body bytes spliced so far (see [`Worker::bytes_spliced`]).
    pub fn bytes_spliced(&self) -> u64 {
        self.pipes.1.load(Ordering::SeqCst)
    }

    /// Moves a test clock on by `d` and wakes the loop, so that what is due by then acts.
    /// Panics on a host that runs on the system clock.
    pub fn advance(&self, d: Duration) {
        match &self.clock {
            Clock::Test(c) => c.advance(d),
            Clock::System => panic!("Host::advance needs a host started with a TestClock"),
        }
        let _ = self.waker.wake();
        if let Some(p) = &self.prober {
            p.wake();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Checks first: they report to the proxy the loop serves.
        drop(self.prober.take());
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
    /// The exchange serving its current request.
    exchange: Option<Token>,
    /// Bytes of a local answer not yet written.
    output: Vec<u8>,
    close_after_output: bool,
    /// On a TLS listener: the connection's TLS state (its bytes go through it).
    tls: Option<tls::Tls>,
}

impl Conn {
    /// Reads what the client sent (through TLS on a TLS listener).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.stream.read(buf),
            Some(t) => t.read(buf),
        }
    }

    /// Writes to the client (through TLS on a TLS listener).
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.tls {
            None => self.stream.write(buf),
            Some(t) => t.write(buf),
        }
    }

    /// The relay's view of the connection: a duplicate of its socket, and its TLS state.
    fn for_relay(&self) -> io::Result<ClientConn> {
        let dup = dup_stream(&self.stream)?;
        Ok(match &self.tls {
            None => ClientConn::plain(dup),
            Some(t) => ClientConn::through(dup, t.transport()),
        })
    }
}

/// What the host knows of a socket the core asked it to watch.
#[derive(Debug, Clone, Copy)]
struct Watched {
    id: u64,
    token: Token,
    interest: Option<MioInterest>,
}

/// The core's registrations, by descriptor.
#[derive(Default)]
struct Sources(HashMap<RawFd, Watched>);

struct Loop {
    poll: Poll,
    listener: TcpListener,
    /// The proxy in service, refreshed from `current` after a reload.
    proxy: Cached,
    current: Arc<Current>,
    reloader: Reloader,
    /// The listener's TLS configuration, if it is a TLS listener.
    tls: Option<Arc<rustls::ServerConfig>>,
    worker: Worker,
    sources: Sources,
    conns: HashMap<usize, Conn>,
    /// Which connection each exchange serves.
    by_exchange: HashMap<Token, usize>,
    next_id: usize,
    stop: Arc<AtomicBool>,
    open: Arc<AtomicUsize>,
    buffers: Arc<AtomicUsize>,
    /// Pipes held by exchanges and body bytes spliced, after the loop's last round.
    pipes: Arc<(AtomicUsize, AtomicU64)>,
    clock: Clock,
    ended: Vec<Ended>,
}

/// The core's view of the host's loop. Wake-ups need no bookkeeping here: the loop reads
/// [`Worker::next_wake`] before it sleeps.
struct HostReactor<'a> {
    registry: &'a Registry,
    sources: &'a mut Sources,
}

impl Reactor for HostReactor<'_> {
    fn watch(
        &mut self,
        source: Source,
        token: Token,
        interest: Option<Interest>,
    ) -> io::Result<()> {
        let known = self
            .sources
            .0
            .get(&source.fd)
            .copied()
            // Another socket had the descriptor: its registration went with it.
            .filter(|w| w.id == source.id);
        let Some(interest) = interest else {
            // Edge-triggered: leaving the registration costs at most a spurious wake-up.
            return Ok(());
        };
        let wanted = match interest {
            Interest::Read => MioInterest::READABLE,
            Interest::Write => MioInterest::WRITABLE,
            Interest::ReadWrite => MioInterest::READABLE | MioInterest::WRITABLE,
        };
        let mut fd = SourceFd(&source.fd);
        let mio_token = MioToken(token.raw() as usize);
        match known {
            Some(w) if w.interest == Some(wanted) && w.token == token => return Ok(()),
            Some(w) if w.interest.is_some() => {
                self.registry.reregister(&mut fd, mio_token, wanted)?
            }
            _ => self.registry.register(&mut fd, mio_token, wanted)?,
        }
        self.sources.0.insert(
            source.fd,
            Watched {
                id: source.id,
                token,
                interest: Some(wanted),
            },
        );
        Ok(())
    }

    fn release(&mut self, source: Source) {
        if let Some(w) = self.sources.0.get(&source.fd) {
            if w.id == source.id {
                if w.interest.is_some() {
                    let _ = self.registry.deregister(&mut SourceFd(&source.fd));
                }
                self.sources.0.remove(&source.fd);
            }
        }
    }

    fn wake_at(&mut self, _at: Moment) {}
}

impl Loop {
    fn run(&mut self) {
        let mut events = Events::with_capacity(256);
        while !self.stop.load(Ordering::SeqCst) {
            let timeout = self
                .worker
                .next_wake()
                .map_or(MAX_SLEEP, |at| at.since(self.clock.now()).min(MAX_SLEEP));
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for event in events.iter() {
                let raw = event.token().0 as u64;
                match raw {
                    LISTENER => self.accept(),
                    WAKER => {}
                    _ if raw & Token::HOST_BIT != 0 => {
                        let id = (raw & !Token::HOST_BIT) as usize;
                        self.on_client_readable(id, event.is_read_closed() || event.is_error())
                    }
                    _ => {
                        let now = self.clock.now();
                        let mut reactor = HostReactor {
                            registry: self.poll.registry(),
                            sources: &mut self.sources,
                        };
                        if let Some(ended) =
                            self.worker
                                .on_ready(Token::from_raw(raw), now, &mut reactor)
                        {
                            self.after(ended);
                        }
                    }
                }
            }
            let now = self.clock.now();
            if self.worker.next_wake().is_some_and(|at| at <= now) {
                let mut reactor = HostReactor {
                    registry: self.poll.registry(),
                    sources: &mut self.sources,
                };
                let mut ended = std::mem::take(&mut self.ended);
                self.worker.on_timer(now, &mut reactor, &mut ended);
                for e in ended.drain(..) {
                    self.after(e);
                }
                self.ended = ended;
            }
            self.buffers
                .store(self.worker.buffers_in_use(), Ordering::SeqCst);
            self.pipes
                .0
                .store(self.worker.pipes_in_use(), Ordering::SeqCst);
            self.pipes
                .1
                .store(self.worker.bytes_spliced(), Ordering::SeqCst);
        }
        let ids: Vec<usize> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id);
        }
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
            let token = MioToken((Token::HOST_BIT | id as u64) as usize);
            if self
                .poll
                .registry()
                .register(&mut stream, token, MioInterest::READABLE)
                .is_err()
            {
                continue;
            }
            let tls = match &self.tls {
                None => None,
                Some(config) => match tls::Tls::new(config.clone(), &stream) {
                    Ok(t) => Some(t),
                    Err(_) => continue,
                },
            };
            self.open.fetch_add(1, Ordering::SeqCst);
            self.conns.insert(
                id,
                Conn {
                    stream,
                    input: Vec::new(),
                    exchange: None,
                    output: Vec::new(),
                    close_after_output: false,
                    tls,
                },
            );
        }
    }

    fn close(&mut self, id: usize) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        if let Some(token) = conn.exchange.take() {
            self.by_exchange.remove(&token);
            let now = self.clock.now();
            let mut reactor = HostReactor {
                registry: self.poll.registry(),
                sources: &mut self.sources,
            };
            self.worker.abort(token, now, &mut reactor);
        }
        let _ = self.poll.registry().deregister(&mut conn.stream);
        crate::relay::discard_unread(&mut conn.stream);
        self.open.fetch_sub(1, Ordering::SeqCst);
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
        self.serve(id, hung_up);
    }

    /// Reads what the client sent and answers complete requests until one is proxied.
    /// `hung_up`: the event that woke the host said the client closed or reset.
    fn serve(&mut self, id: usize, hung_up: bool) {
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
            match self.take_request(id, hung_up) {
                Next::Read => {
                    let Some(conn) = self.conns.get_mut(&id) else {
                        return;
                    };
                    let mut chunk = [0u8; 16 * 1024];
                    match conn.read(&mut chunk) {
                        Ok(0) => {
                            self.close(id);
                            return;
                        }
                        Ok(n) => {
                            conn.input.extend_from_slice(&chunk[..n]);
                            if conn.input.len() > MAX_REQUEST {
                                conn.input.clear();
                                let page = LocalPage::error(413, true, None);
                                write_page(&mut conn.output, &page, false);
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
                Next::Served => {}
            }
        }
    }

    /// Frames the request at the start of the connection's input and hands it to the intake:
    /// answers it, or starts its exchange (unless the client is gone: `hung_up`).
    fn take_request(&mut self, id: usize, hung_up: bool) -> Next {
        let Some(conn) = self.conns.get_mut(&id) else {
            return Next::Served;
        };
        let line = match request_line(&conn.input) {
            Line::Incomplete => return Next::Read,
            Line::Bad => {
                // Monkey's own parser refuses such a line before stage 30.
                conn.input.clear();
                write_page(&mut conn.output, &LocalPage::error(400, true, None), false);
                conn.close_after_output = true;
                return Next::Served;
            }
            Line::Complete(line) => line,
        };
        let peer = conn.stream.peer_addr().ok();
        let input = &conn.input;
        let raw = RawRequest {
            method: &input[line.method.clone()],
            path: &input[line.path.clone()],
            query: line.query.clone().map(|q| &input[q]),
            minor_version: line.minor_version,
            rest: &input[line.len..],
            peer,
            // Monkey 1.8 keeps no HTTP/1.0 connection.
            host_closes: line.minor_version == 0,
        };
        let mut request = self.worker.take_request();
        let now = self.clock.now();
        let proxy = self.proxy.get(&self.current).clone();
        let admitted = match proxy.admit(&raw, &mut request, now.millis()) {
            Ok(a) => a,
            Err(_) => {
                self.worker.recycle_request(request);
                return Next::Read;
            }
        };
        let head_request = request.is_head();
        conn.input
            .drain(..(line.len + admitted.consumed).min(conn.input.len()));
        let answer = |conn: &mut Conn, page: &LocalPage| {
            if page.close {
                conn.input.clear();
            }
            write_page(&mut conn.output, page, head_request);
            conn.close_after_output = page.close;
        };
        let entry = match admitted.admission {
            Admission::Answer(page) => {
                answer(conn, &page);
                self.worker.recycle_request(request);
                return Next::Served;
            }
            Admission::Deferred(job) => {
                // As the plugin does: a task of the worker waits for the reload thread's
                // answer and writes it on its own `dup` of the client socket.
                let close = request.client_wants_close;
                self.worker.recycle_request(request);
                let waiting = match conn.for_relay() {
                    Ok(client) => self.reloader.submit(job).map(|w| (client, w)),
                    Err(e) => Err(e),
                };
                let Ok((client, waiting)) = waiting else {
                    answer(conn, &crate::proxy::admin::unavailable());
                    return Next::Served;
                };
                let mut reactor = HostReactor {
                    registry: self.poll.registry(),
                    sources: &mut self.sources,
                };
                let token = self.worker.start_deferred(
                    client,
                    waiting,
                    head_request,
                    close,
                    now,
                    &mut reactor,
                );
                conn.exchange = Some(token);
                self.by_exchange.insert(token, id);
                return Next::Served;
            }
            Admission::Proxy(entry) => entry,
        };
        if hung_up {
            // As the plugin does: the client closed (or half-closed) right behind its request,
            // so no backend connection is opened for an answer nobody reads.
            proxy.client_left_early(entry, &request);
            self.worker.recycle_request(request);
            conn.input.clear();
            conn.close_after_output = true;
            return Next::Served;
        }
        // The exchange writes to its own `dup` of the client socket, as in the plugin.
        let client = match conn.for_relay() {
            Ok(s) => s,
            Err(_) => {
                // Out of descriptors, as the plugin answers it: 503, try again soon.
                let page = proxy.out_of_resources_for(entry, &request, now);
                write_page(&mut conn.output, &page, head_request);
                conn.close_after_output = page.close;
                self.worker.recycle_request(request);
                return Next::Served;
            }
        };
        let mut reactor = HostReactor {
            registry: self.poll.registry(),
            sources: &mut self.sources,
        };
        let token = self
            .worker
            .start(proxy, entry, request, client, now, &mut reactor);
        conn.exchange = Some(token);
        self.by_exchange.insert(token, id);
        Next::Served
    }

    fn after(&mut self, ended: Ended) {
        let Some(id) = self.by_exchange.remove(&ended.token) else {
            return;
        };
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.exchange = None;
        if ended.finish.keep_alive {
            self.serve(id, false);
        } else {
            self.close(id);
        }
    }
}

/// What [`Loop::take_request`] needs next.
enum Next {
    /// More bytes from the client.
    Read,
    /// Nothing: the request was answered or handed to an exchange.
    Served,
}

/// A request line found at the start of a connection's input, as positions in it.
struct RequestLine {
    method: std::ops::Range<usize>,
    path: std::ops::Range<usize>,
    query: Option<std::ops::Range<usize>>,
    minor_version: u8,
    /// Bytes of the line with its CRLF.
    len: usize,
}

enum Line {
    Incomplete,
    Bad,
    Complete(RequestLine),
}

/// Splits `METHOD SP target SP HTTP/1.x CRLF` at the start of `input`, as Monkey's parser does
/// before stage 30 (it refuses other versions and lines it cannot split).
fn request_line(input: &[u8]) -> Line {
    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
        return if input.len() > 8 * 1024 {
            Line::Bad
        } else {
            Line::Incomplete
        };
    };
    let line = &input[..lf];
    let Some(line) = line.strip_suffix(b"\r") else {
        return Line::Bad;
    };
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Line::Bad;
    };
    let minor_version = match version {
        b"HTTP/1.1" => 1,
        b"HTTP/1.0" => 0,
        _ => return Line::Bad,
    };
    if method.is_empty() || target.is_empty() {
        return Line::Bad;
    }
    let target_start = method.len() + 1;
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (
            target_start..target_start + q,
            Some(target_start + q + 1..target_start + target.len()),
        ),
        None => (target_start..target_start + target.len(), None),
    };
    Line::Complete(RequestLine {
        method: 0..method.len(),
        path,
        query,
        minor_version,
        len: lf + 1,
    })
}

/// Writes pending local output; false when the client is gone.
fn flush_output(conn: &mut Conn) -> bool {
    let mut output = std::mem::take(&mut conn.output);
    let mut ok = true;
    while !output.is_empty() {
        match conn.write(&output) {
            Ok(0) => {
                ok = false;
                break;
            }
            Ok(n) => {
                output.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    conn.output = output;
    ok
}

fn dup_stream(stream: &TcpStream) -> io::Result<TcpStream> {
    use std::os::fd::{AsFd, OwnedFd};
    let owned: OwnedFd = stream.as_fd().try_clone_to_owned()?;
    let stream = TcpStream::from_std(std::net::TcpStream::from(owned));
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
