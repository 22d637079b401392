//! The exported plugin object and Monkey's entry points.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr;
use std::sync::{Arc, OnceLock};

use super::answer;
use super::api;
use super::guard;
use super::hold;
use super::reactor::{self, MonkeyReactor};
use super::request;
use super::session::Session;
use super::sys;
use super::tls::MonkeyTls;
use super::worker::{self, Served, WorkerState};
use crate::clock::Moment;
use crate::config;
use crate::http::status::LocalPage;
use crate::log;
use crate::prober::Prober;
use crate::proxy::{Admission, Current, Proxy};
use crate::reactor::Token;
use crate::relay::ClientConn;
use crate::reload::{Job, Reloader};

/// The proxy in service, set by `init_plugin` (which refuses to let Monkey start without
/// one); a reload swaps what it holds.
static CURRENT: OnceLock<Arc<Current>> = OnceLock::new();

/// The reload thread (admin reloads and weight changes, `SIGUSR1`).
static RELOADER: OnceLock<Reloader> = OnceLock::new();

/// The active health checks' thread (`HealthCheck`; it idles without checks).
static PROBER: OnceLock<Prober> = OnceLock::new();

/// Wrapper that lets the plugin object be a `static` in writable memory: Monkey writes into
/// it at load time (`api`, `handler`, `path`, list heads, …, §0-4).
#[repr(transparent)]
pub struct PluginObject(UnsafeCell<sys::mk_plugin>);

// SAFETY: Monkey writes the object on its main thread during start-up, before any worker
// exists; afterwards it is only read. Rust code never creates references into it.
unsafe impl Sync for PluginObject {}

/// Read-only stage table (Monkey copies the function pointers but keeps the pointer, §1.2).
#[repr(transparent)]
struct StageTable(sys::mk_plugin_stage);

// SAFETY: never written by anyone after compilation; the raw pointers in it are NULL.
unsafe impl Sync for StageTable {}

static STAGE: StageTable = StageTable(sys::mk_plugin_stage {
    stage10: None,
    stage20: None,
    stage30: Some(stage30),
    stage30_thread: None,
    stage30_hangup: Some(stage30_hangup),
    stage40: Some(guard::stage40),
    stage50: Some(stage50),
    plugin: ptr::null_mut(),
    _head: sys::mk_list {
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
    },
    _parent_head: sys::mk_list {
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
    },
});

/// The symbol Monkey looks up: `mk_plugin_` + the text after the last `-` of the file name
/// without `.so` — hence the file must be installed as `monkey-proxy_reverse.so`.
#[no_mangle]
pub static mk_plugin_proxy_reverse: PluginObject = PluginObject(UnsafeCell::new(sys::mk_plugin {
    flags: 0,
    shortname: c"proxy_reverse".as_ptr(),
    name: c"Reverse proxy and load balancer".as_ptr(),
    version: c"0.1.0".as_ptr(),
    hooks: sys::MK_PLUGIN_STAGE,
    capabilities: 0,
    api: ptr::null_mut(),
    init_plugin: Some(init_plugin),
    exit_plugin: Some(exit_plugin),
    master_init: None,
    worker_init: Some(worker_init),
    network: ptr::null_mut(),
    stage: ptr::addr_of!(STAGE)
        .cast_mut()
        .cast::<sys::mk_plugin_stage>(),
    handler: ptr::null_mut(),
    path: ptr::null_mut(),
    thread_key: ptr::null_mut(),
    _head: sys::mk_list {
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
    },
    stage_list: sys::mk_list {
        prev: ptr::null_mut(),
        next: ptr::null_mut(),
    },
    load_type: 0,
    server_ctx: ptr::null_mut(),
}));

/// Where the configuration file is: `$PROXY_REVERSE_CONF` if set, else
/// `<confdir>proxy_reverse.conf` (Monkey passes `<conf>/plugins//proxy_reverse/`).
fn config_path(confdir: &str) -> PathBuf {
    match std::env::var_os("PROXY_REVERSE_CONF") {
        Some(p) => PathBuf::from(p),
        // Monkey passes `<root>/plugins//proxy_reverse/`: tidy the doubled slash for messages.
        None => PathBuf::from(format!("{confdir}proxy_reverse.conf").replace("//", "/")),
    }
}

unsafe extern "C" fn init_plugin(plugin: *mut sys::mk_plugin, confdir: *mut c_char) -> c_int {
    let dir = if confdir.is_null() {
        String::new()
    } else {
        // SAFETY: Monkey passes a NUL-terminated directory string valid for this call.
        unsafe { CStr::from_ptr(confdir) }
            .to_string_lossy()
            .into_owned()
    };
    // SAFETY: Monkey passes our own object, now carrying its API pointer.
    let api_ptr = unsafe { (*plugin).api };
    api::install(plugin, api_ptr);
    // Before any thread of ours starts (the log thread, an access log's writer, the reload
    // thread), so that none of them can take the signal.
    let signal = super::signal::block_sigusr1();
    log::set_sink(api::log);
    let path = config_path(&dir);
    match catch_unwind(|| load(&path)) {
        Ok(Ok(proxy)) => {
            let current = Arc::new(Current::new(proxy));
            let _ = CURRENT.set(current.clone());
            start_reloader(current.clone(), &path, signal);
            start_prober(current);
        }
        Ok(Err(problems)) => refuse_to_start(&path, &problems),
        Err(_) => refuse_to_start(
            &path,
            &["internal error while loading the configuration".into()],
        ),
    }
    0
}

/// Reads and validates the configuration and builds the proxy; the problems, one line each
/// (`FILE:LINE: problem`), if it does not validate.
fn load(path: &std::path::Path) -> Result<Arc<Proxy>, Vec<String>> {
    let config = config::load(path)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    // Served as written, but most likely not meant (or, like `UpstreamTlsVerify off`, worth
    // knowing): logged as the reload thread logs them.
    for w in config.warnings() {
        log::warn(&format!("{}:{}: {}", w.file.display(), w.line, w.message));
    }
    let proxy = Proxy::new(config).map_err(|e| vec![format!("{}: {e}", path.display())])?;
    log::info(&format!("{}: {}", path.display(), proxy.config.summary()));
    Ok(Arc::new(proxy))
}

/// Starts the reload thread for `path` and, when `signal` (SIGUSR1 is blocked in every thread
/// of the process), lets `SIGUSR1` ask it for a reload. Without the thread (none could be
/// made) the proxy serves on; admin reloads then get a 503.
fn start_reloader(current: Arc<Current>, path: &std::path::Path, signal: bool) {
    // Monkey's working directory may change after start-up (it runs as a daemon from `/`).
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !signal {
        log::warn("SIGUSR1 cannot be used to reload; use the admin endpoint");
    }
    match Reloader::spawn(current, Some(path)) {
        Ok(reloader) => {
            let fd = reloader.control_fd();
            if RELOADER.set(reloader).is_ok() && signal {
                super::signal::reload_on_sigusr1(fd);
            }
        }
        Err(e) => log::error(&format!("no reload thread ({e}); reloads are unavailable")),
    }
}

/// Starts the thread that runs the active health checks (`SIGUSR1` is blocked in it, as in
/// every thread started after `init_plugin` began). Without it, servers with checks stay
/// `checking` and serve as long as none is up.
fn start_prober(current: Arc<Current>) {
    match Prober::spawn(current, Arc::new(Moment::now)) {
        Ok(prober) => {
            let _ = PROBER.set(prober);
        }
        Err(e) => log::error(&format!(
            "no health check thread ({e}); servers are not probed"
        )),
    }
}

/// A configuration that does not validate stops Monkey before it listens, as nginx and
/// haproxy refuse to start and as Monkey exits on its own configuration errors: every problem
/// goes to stderr and to Monkey's log, then the process exits with status 1. (Serving 503s
/// instead would let a broken instance take its share of a port shared with `SO_REUSEPORT`,
/// and `init_plugin` must not fail: Monkey would then keep the hooks of an unloaded library,
/// §0-6.) Plugins are loaded before Monkey's workers open their listeners, so nothing has
/// listened yet.
fn refuse_to_start(path: &std::path::Path, problems: &[String]) -> ! {
    let summary = format!(
        "{}: configuration rejected ({} problem{}); Monkey does not start",
        path.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    let both = !stdout_is_stderr();
    for line in problems.iter().chain(std::iter::once(&summary)) {
        // Monkey's log is its stdout; stderr too unless it is the same file (a terminal).
        if both {
            eprintln!("[proxy_reverse] {line}");
        }
        log::error(line);
    }
    // Lines reach Monkey's log from the log thread: let them out before the process goes.
    log::flush(std::time::Duration::from_secs(2));
    std::process::exit(1)
}

/// Whether descriptors 1 and 2 are the same open file (then a line written to both would
/// show twice).
fn stdout_is_stderr() -> bool {
    let id = |fd: c_int| {
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: `fstat` writes a whole `stat` into the buffer it is given when it returns 0.
        if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
            return None;
        }
        // SAFETY: initialised by the successful `fstat` above.
        let st = unsafe { st.assume_init() };
        Some((st.st_dev, st.st_ino))
    };
    let (out, err) = (id(1), id(2));
    out.is_some() && out == err
}

unsafe extern "C" fn exit_plugin(_plugin: *mut sys::mk_plugin) -> c_int {
    // What the log threads hold goes out before Monkey exits (bounded waits).
    let _ = catch_unwind(|| {
        if let Some(current) = CURRENT.get() {
            current
                .load()
                .access_log
                .flush(std::time::Duration::from_secs(2));
        }
        log::flush(std::time::Duration::from_secs(2));
    });
    0
}

unsafe extern "C" fn worker_init(_server: *mut sys::mk_server) {
    if catch_unwind(reactor::init_timer).is_err() {
        log::error("internal error in worker start-up");
    }
}

unsafe extern "C" fn stage30(
    _plugin: *mut sys::mk_plugin,
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
    _n_params: c_int,
    _params: *mut sys::mk_list,
) -> c_int {
    // SAFETY: Monkey passes the live session and request of this stage-30 call; the session
    // is dropped before the request ends (`finish`, `hangup`).
    let Some(mut session) = (unsafe { Session::new(cs, sr) }) else {
        log::error("stage 30 without a session or request");
        return sys::MK_PLUGIN_RET_END;
    };
    match catch_unwind(AssertUnwindSafe(|| serve(session))) {
        Ok(ret) => ret,
        Err(_) => {
            log::error("internal error in stage 30; answered 500");
            // `serve` detaches the stream only in its last, non-panicking steps, so Monkey's
            // response path is intact here.
            answer::send(&mut session, &LocalPage::error(500, true, None))
        }
    }
}

/// The client's address, read from Monkey's socket.
fn peer_of(socket: c_int) -> Option<SocketAddr> {
    // SAFETY: Monkey's live client socket, borrowed for this call only.
    let fd = unsafe { BorrowedFd::borrow_raw(socket) };
    let any = rustix::net::getpeername(fd).ok()??;
    SocketAddr::try_from(any).ok()
}

/// A duplicate of Monkey's client socket for the exchange to write to (§1.3-5): a separate
/// epoll registration, leaving Monkey's descriptor alone. `None` when out of descriptors.
fn duplicate(socket: c_int) -> Option<mio::net::TcpStream> {
    // SAFETY: Monkey's live client socket, borrowed for this call only.
    let fd = unsafe { BorrowedFd::borrow_raw(socket) };
    let owned = fd.try_clone_to_owned().ok()?;
    let client = mio::net::TcpStream::from_std(std::net::TcpStream::from(owned));
    // Responses go out in few large writes; Nagle would only delay their tails.
    let _ = client.set_nodelay(true);
    Some(client)
}

/// What stage 30 does once it has let go of the worker's state (Monkey is called only then,
/// since a call into Monkey may re-enter the plugin).
enum Intake {
    /// An exchange of this worker serves the request (its session is held already).
    Started(Token),
    /// Answered through Monkey's response path with this page.
    Answer(LocalPage),
    /// An admin job for the reload thread (see [`defer`]).
    Deferred {
        job: Job,
        client: Option<mio::net::TcpStream>,
        peer: Option<SocketAddr>,
        head_request: bool,
        close: bool,
    },
    /// The client is gone already: nothing is answered (see [`guard::client_left`]).
    Nothing,
}

/// Stage 30 proper: the core's intake decides; a local answer goes through Monkey's response
/// path, a proxied request to an exchange of this worker, an admin job to the reload thread
/// (its answer is written when it comes, as an exchange writes a response).
fn serve(mut session: Session) -> c_int {
    let Some(current) = CURRENT.get() else {
        // Unreachable: `init_plugin` exits when there is no proxy. Answered all the same.
        return answer::send(&mut session, &LocalPage::error(503, false, None));
    };
    if let Some(ret) = guard::screen(&mut session) {
        return ret;
    }
    let now = Moment::now();
    // One borrow of the worker's state for the whole intake (each is a thread-local
    // lookup, `__tls_get_addr` in a shared library).
    let intake = worker::with(|w| intake(w, &mut session, current, now));
    match intake {
        Some(Intake::Started(token)) => hand_over(session, token),
        Some(Intake::Answer(page)) => answer::send(&mut session, &page),
        Some(Intake::Deferred {
            job,
            client,
            peer,
            head_request,
            close,
        }) => defer(session, job, client, peer, head_request, close, now),
        Some(Intake::Nothing) => guard::client_left(&mut session),
        // Re-entered while the worker state was busy (never expected): no exchange.
        None => answer::send(&mut session, &LocalPage::error(503, true, Some(1))),
    }
}

/// The intake with the worker's state `w` at hand: the request is copied out of Monkey into
/// the worker's next request and judged, and a proxied one started (its session held for
/// [`hand_over`]). Makes no call into Monkey.
fn intake(w: &mut WorkerState, session: &mut Session, current: &Current, now: Moment) -> Intake {
    let proxy = w.proxy(current);
    let (socket, conn) = (session.socket(), session.conn() as usize);
    // The duplicate kept from the connection's previous request, if any, knows the peer.
    let cached = w.take_client(socket, conn);
    let peer = match &cached {
        Some((_, peer)) => *peer,
        None => peer_of(socket),
    };
    let request = w.core.next_request();
    let admitted = match request::raw_request(session, peer) {
        Some((raw, line_end)) => {
            let admitted = proxy.admit_whole(&raw, request, now.millis());
            // Monkey finds a pipelined request at `parser.i + 1` when this one ends
            // (`mk_http_request_end`), but its parser leaves `i` past every byte received
            // when the request has a Content-Length body (the pipelined request is swallowed
            // as body, and the client waits for an answer that never comes), and at the end
            // of the head for a chunked body (the chunks are then parsed as the next request,
            // which fails and closes the connection). Point it at the last byte of this
            // request, as it is for requests without a body.
            if let Ok(last) = c_int::try_from(line_end + admitted.consumed) {
                session.set_request_end(last - 1);
            }
            admitted.admission
        }
        None => Admission::Answer(proxy.bad_request()),
    };
    let entry = match admitted {
        Admission::Answer(page) => {
            if let Some((stream, peer)) = cached {
                w.keep_client(socket, conn, stream, peer);
            }
            return Intake::Answer(page);
        }
        Admission::Deferred(job) => {
            return Intake::Deferred {
                job,
                client: cached.map(|(stream, _)| stream),
                peer,
                head_request: request.is_head(),
                close: request.client_wants_close,
            };
        }
        Admission::Proxy(entry) => entry,
    };
    if session.client_left_already() {
        proxy.client_left_early(entry, request);
        if let Some((stream, peer)) = cached {
            w.keep_client(socket, conn, stream, peer);
        }
        return Intake::Nothing;
    }
    let client = match cached {
        Some((stream, _)) => Some(stream),
        None => duplicate(socket),
    };
    let Some(client) = client else {
        return Intake::Answer(proxy.out_of_resources_for(entry, request, now));
    };
    let client = client_conn(session, client);
    let (core, sessions, regs) = w.parts();
    let token = core.start_next(
        proxy,
        entry,
        client,
        now,
        &mut MonkeyReactor { sessions, regs },
    );
    w.hold(Served {
        token,
        session: *session,
        peer,
    });
    Intake::Started(token)
}

/// An admin request whose answer the reload thread makes: the job is queued and a task of
/// this worker waits for the answer and writes it on `client` (the connection's kept
/// duplicate, or a new one), so the worker never waits.
fn defer(
    mut session: Session,
    job: Job,
    client: Option<mio::net::TcpStream>,
    peer: Option<SocketAddr>,
    head: bool,
    close: bool,
    now: Moment,
) -> c_int {
    let Some(reloader) = RELOADER.get() else {
        return answer::send(&mut session, &crate::proxy::admin::unavailable());
    };
    let Some(client) = client.or_else(|| duplicate(session.socket())) else {
        return answer::send(&mut session, &LocalPage::error(503, true, Some(1)));
    };
    let waiting = match reloader.submit(job) {
        Ok(waiting) => waiting,
        Err(e) => {
            log::error(&format!("admin request not queued: {e}"));
            return answer::send(&mut session, &crate::proxy::admin::unavailable());
        }
    };
    let client = client_conn(&session, client);
    let token = worker::with(|w| {
        let (core, sessions, regs) = w.parts();
        let token = core.start_deferred(
            client,
            waiting,
            head,
            close,
            now,
            &mut MonkeyReactor { sessions, regs },
        );
        w.hold(Served {
            token,
            session,
            peer,
        });
        token
    });
    match token {
        Some(token) => hand_over(session, token),
        None => answer::send(&mut session, &LocalPage::error(503, true, Some(1))),
    }
}

/// The relay's view of the client connection: its duplicate socket, and on a TLS listener
/// Monkey's TLS layer for its bytes.
fn client_conn(session: &Session, stream: mio::net::TcpStream) -> ClientConn {
    match session.tls_transport() {
        Some(net) => ClientConn::through(stream, Box::new(MonkeyTls::new(session.socket(), net))),
        None => ClientConn::plain(stream),
    }
}

/// Hands the request over to the worker's task `token`, which answers it on its duplicate
/// of the client connection (the worker holds its session already: [`WorkerState::hold`]).
fn hand_over(mut session: Session, token: Token) -> c_int {
    // From here on only plain field writes and Monkey calls, in the order of monkey-abi.md
    // §1.3 steps 6–10: Monkey's response path is taken away for this request, Monkey watches
    // the connection for reading (it hears of a client that leaves), the request is marked as
    // ours with its task's token, and bytes the client sends while the task runs wait in the
    // socket until it ends.
    session.detach_stream();
    session.watch_connection_for_reading();
    session.set_mark(token.raw() as usize as *mut c_void);
    hold::start(&session);
    session.set_status(200);
    sys::MK_PLUGIN_RET_CONTINUE
}

/// Monkey is about to close a client connection: drop our cached duplicate of it, so the
/// connection really closes.
unsafe extern "C" fn stage50(socket: c_int) -> c_int {
    let _ = catch_unwind(|| {
        guard::forget(socket);
        worker::with(|w| w.forget_client(socket))
    });
    0
}

unsafe extern "C" fn stage30_hangup(
    _plugin: *mut sys::mk_plugin,
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
) -> c_int {
    // SAFETY: Monkey passes the live session and request being removed; the wrapper is
    // dropped before this call returns.
    let Some(session) = (unsafe { Session::new(cs, sr) }) else {
        return 0;
    };
    if catch_unwind(AssertUnwindSafe(|| hangup(session))).is_err() {
        log::error("internal error in hang-up");
    }
    0
}

/// Monkey's hang-up for a request still in progress: the exchange ends at once, answering
/// nothing (the client is gone), and Monkey's read handler goes back on the connection.
fn hangup(mut session: Session) {
    let mark = session.mark();
    if mark.is_null() {
        return;
    }
    let token = Token::from_raw(mark as u64);
    let now = Moment::now();
    let aborted = worker::with(|w| {
        let (core, sessions, regs) = w.parts();
        core.abort(token, now, &mut MonkeyReactor { sessions, regs });
        w.take(token)
    });
    if aborted.is_none() {
        log::warn("hang-up while the worker state was busy; exchange dropped");
    }
    session.set_mark(ptr::null_mut());
    // Monkey is removing the session and closes the connection; its own read handler is put
    // back all the same, so the connection is never left with ours.
    hold::forget(&session);
}
