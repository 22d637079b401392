//! The exported plugin object and Monkey's entry points.

use std::cell::UnsafeCell;
use std::ffi::{c_char, c_int, CStr};
use std::os::fd::FromRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr::{self, addr_of_mut};
use std::sync::{Arc, OnceLock};

use super::answer::{self, Answer, TEXT_PLAIN};
use super::api::{self, ev_add};
use super::context;
use super::hold;
use super::request;
use super::sys;
use super::worker;
use crate::config;
use crate::log;
use crate::proxy::{Proxy, Route};
use crate::relay::Exchange;
use crate::stats;

/// The configuration state after `init_plugin`.
enum Loaded {
    /// Serving with this proxy.
    Ready(Arc<Proxy>),
    /// The configuration was rejected: every request gets 503 (Monkey keeps running).
    Broken,
}

static LOADED: OnceLock<Loaded> = OnceLock::new();

/// The running proxy, if the configuration was valid.
pub fn proxy() -> Option<&'static Arc<Proxy>> {
    match LOADED.get() {
        Some(Loaded::Ready(p)) => Some(p),
        _ => None,
    }
}

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
    stage40: None,
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
    // SAFETY: Monkey passes our own object (now carrying its API pointer) and a NUL-terminated
    // directory string valid for this call.
    let (api_ptr, dir) = unsafe {
        let dir = if confdir.is_null() {
            String::new()
        } else {
            CStr::from_ptr(confdir).to_string_lossy().into_owned()
        };
        ((*plugin).api, dir)
    };
    api::install(plugin, api_ptr);
    log::set_sink(api::log);
    let result = catch_unwind(|| load(&config_path(&dir)));
    let loaded = result.unwrap_or_else(|_| {
        log::error("internal error while loading the configuration");
        Loaded::Broken
    });
    let _ = LOADED.set(loaded);
    // Never < 0: Monkey would unload the library but keep our stage hooks (§0-6). A broken
    // configuration instead answers 503 to every request it would have proxied.
    0
}

fn load(path: &std::path::Path) -> Loaded {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                log::error(&e.to_string());
            }
            log::error(&format!(
                "{}: configuration rejected ({} problem(s)); proxied requests will get 503 until it is fixed and Monkey restarted",
                path.display(),
                errors.len()
            ));
            return Loaded::Broken;
        }
    };
    match Proxy::new(config) {
        Ok(proxy) => {
            log::info(&format!("{}: {}", path.display(), proxy.config.summary()));
            Loaded::Ready(Arc::new(proxy))
        }
        Err(e) => {
            log::error(&format!(
                "{}: {e}; proxied requests will get 503",
                path.display()
            ));
            Loaded::Broken
        }
    }
}

unsafe extern "C" fn exit_plugin(_plugin: *mut sys::mk_plugin) -> c_int {
    0
}

unsafe extern "C" fn worker_init(_server: *mut sys::mk_server) {
    if catch_unwind(worker::init).is_err() {
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
    // SAFETY: Monkey passes the live session and request of this stage-30 call.
    match catch_unwind(AssertUnwindSafe(|| unsafe { serve(cs, sr) })) {
        Ok(ret) => ret,
        Err(_) => {
            log::error("internal error in stage 30; answered 500");
            let page = Answer {
                status: 500,
                content_type: TEXT_PLAIN,
                extra_headers: &[],
                body: b"Internal Server Error\n",
                close: true,
            };
            // SAFETY: `serve` detaches the stream only as its last, non-panicking steps, so
            // Monkey's response path is intact here.
            unsafe { answer::send(cs, sr, &page) }
        }
    }
}

/// A plain-text local answer.
///
/// # Safety
/// As [`answer::send`].
unsafe fn local(
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
    status: u16,
    body: &[u8],
    close: bool,
) -> c_int {
    let page = Answer {
        status,
        content_type: TEXT_PLAIN,
        extra_headers: &[],
        body,
        close,
    };
    // SAFETY: forwarded from the caller.
    unsafe { answer::send(cs, sr, &page) }
}

/// This process is out of descriptors or memory: 503 with `Retry-After: 1`, as the relay
/// answers it when a backend socket cannot be created.
///
/// # Safety
/// As [`answer::send`].
unsafe fn out_of_resources(cs: *mut sys::mk_http_session, sr: *mut sys::mk_http_request) -> c_int {
    let page = Answer {
        status: 503,
        content_type: TEXT_PLAIN,
        extra_headers: &[c"Retry-After: 1"],
        body: b"Service Unavailable\n",
        close: false,
    };
    // SAFETY: forwarded from the caller.
    unsafe { answer::send(cs, sr, &page) }
}

/// Counts a request routed to `entry` that this process had no resources to start: a
/// request of the entry answered 503 with no server to blame, as the relay counts one whose
/// backend socket cannot be created.
fn refused_for_resources(proxy: &Proxy, entry: usize) {
    proxy.stats.record_request(entry);
    proxy.stats.record_no_server(entry);
}

/// Stage 30 proper.
///
/// # Safety
/// `cs` and `sr` are the live session and request of this stage-30 call.
unsafe fn serve(cs: *mut sys::mk_http_session, sr: *mut sys::mk_http_request) -> c_int {
    let proxy = match LOADED.get() {
        Some(Loaded::Ready(p)) => p.clone(),
        // SAFETY (all `local` calls below): the caller's pointers, stream not detached.
        _ => {
            return unsafe {
                local(
                    cs,
                    sr,
                    503,
                    b"proxy_reverse: configuration rejected, see the server log\n",
                    false,
                )
            }
        }
    };
    let spare = worker::with(|w| w.worker.take_request()).unwrap_or_default();
    // SAFETY: as above.
    let Some(copied) = (unsafe { request::copy(cs, sr, spare) }) else {
        return unsafe { local(cs, sr, 400, b"Bad Request\n", true) };
    };
    // Monkey finds a pipelined request at `parser.i + 1` when this one ends
    // (`mk_http_request_end`), but its parser leaves `i` past every byte received when the
    // request has a Content-Length body (the pipelined request is swallowed as body, and the
    // client waits for an answer that never comes), and at the end of the head for a chunked
    // body (the chunks are then parsed as the next request, which fails and closes the
    // connection). Point it at the last byte of this request, as it is for requests without
    // a body.
    if let Ok(last) = c_int::try_from(copied.request_end.saturating_sub(1)) {
        // SAFETY: `cs` is the live session of this stage-30 call; `parser.i` is a plain int
        // that Monkey reads next when the request ends (while an exchange serves it, `hold`
        // keeps Monkey's read handler, and so its parser, away from the connection).
        unsafe { (*cs).parser.i = last };
    }
    let entry = match proxy.route(&copied.routing_path) {
        Route::Entry(i) => i,
        Route::NotFound => {
            proxy.stats.record_local(404);
            // SAFETY: the caller's live session and request; the stream is not detached yet.
            return unsafe { local(cs, sr, 404, b"Not Found\n", false) };
        }
        // SAFETY: forwarded from the caller.
        Route::Statistics => return unsafe { statistics(cs, sr, &proxy, &copied.request) },
    };
    let mut req = copied.request;
    if req.validate().is_err() {
        proxy.stats.record_local(400);
        // SAFETY: the caller's live session and request; the stream is not detached yet.
        return unsafe { local(cs, sr, 400, b"Bad Request\n", true) };
    }
    // SAFETY: `cs` is live; `socket` is Monkey's client fd.
    let socket = unsafe { (*cs).socket };
    // SAFETY: `cs` is live; `conn` identifies the connection for the duplicate cache.
    let conn = unsafe { (*cs).conn } as usize;
    // The exchange writes to its own duplicate of the client socket (§1.3-5): a separate
    // epoll registration, leaving Monkey's descriptor alone. It is kept for the
    // connection's next request (see `worker::WorkerState::take_client`).
    let cached = worker::with(|w| w.take_client(socket, conn)).flatten();
    let (client, peer) = match cached {
        Some(c) => c,
        None => {
            // SAFETY: plain syscall on a valid fd.
            let dup_fd = unsafe { libc::fcntl(socket, libc::F_DUPFD_CLOEXEC, 0) };
            if dup_fd < 0 {
                refused_for_resources(&proxy, entry);
                // SAFETY: the caller's live session and request; the stream is not detached yet.
                return unsafe { out_of_resources(cs, sr) };
            }
            // SAFETY: `dup_fd` is a fresh descriptor that nothing else owns.
            let client =
                mio::net::TcpStream::from_std(unsafe { std::net::TcpStream::from_raw_fd(dup_fd) });
            // Responses go out in few large writes; Nagle would only delay their tails.
            let _ = client.set_nodelay(true);
            let peer = client.peer_addr().ok();
            (client, peer)
        }
    };
    req.client = peer;
    let ctx = context::new_ctx(cs, sr);
    if ctx.is_null() {
        refused_for_resources(&proxy, entry);
        // SAFETY: the caller's live session and request; the stream is not detached yet.
        return unsafe { out_of_resources(cs, sr) };
    }
    // SAFETY: `ctx` is fresh and unshared.
    let started = unsafe {
        context::start(ctx, |w, reactor| {
            Exchange::start(
                proxy,
                entry,
                req,
                client,
                socket as u64,
                &mut w.worker,
                reactor,
            )
        })
    };
    if !started {
        // SAFETY: the caller's live session and request; the stream is not detached yet.
        return unsafe { local(cs, sr, 503, b"Service Unavailable\n", false) };
    }
    // From here on only plain field writes and Monkey calls (nothing that can panic), in the
    // order of monkey-abi.md §1.3 steps 6–10.
    // SAFETY: `cs`/`sr` are live; the list manipulation unlinks the request's stream from the
    // channel's stream list and leaves it self-linked, which Monkey's later unlink tolerates.
    unsafe {
        let node: *mut sys::mk_list = addr_of_mut!((*sr).stream._head);
        let (prev, next) = ((*node).prev, (*node).next);
        if !prev.is_null() && !next.is_null() {
            (*prev).next = next;
            (*next).prev = prev;
        }
        (*node).prev = node;
        (*node).next = node;
        // Only needed when stage 30 ran from Monkey's write path (§1.3-7); skip the syscall
        // when the connection already waits for reading.
        let conn_event = addr_of_mut!((*(*cs).conn).event);
        if (*conn_event).mask != sys::MK_EVENT_READ {
            ev_add(
                socket,
                sys::MK_EVENT_CONNECTION,
                sys::MK_EVENT_READ,
                conn_event,
            );
        }
        (*sr).handler_data = ctx.cast();
        // Bytes the client sends while the exchange runs wait in the socket until it ends.
        hold::start((*cs).conn);
        if let Some(f) = api::api().header_set_http_status {
            f(sr, 200);
        }
    }
    sys::MK_PLUGIN_RET_CONTINUE
}

/// Answers the statistics page (never proxied).
///
/// # Safety
/// As [`answer::send`].
unsafe fn statistics(
    cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
    proxy: &Proxy,
    request: &crate::http::request::ProxyRequest,
) -> c_int {
    // SAFETY: `cs` is live; the duplicate is owned by the TcpStream and closed with it.
    let client = unsafe {
        let fd = libc::fcntl((*cs).socket, libc::F_DUPFD_CLOEXEC, 0);
        (fd >= 0).then(|| std::net::TcpStream::from_raw_fd(fd))
    }
    .and_then(|peer| peer.peer_addr().ok())
    .map(|a| a.ip());
    let accept = request
        .header_values("accept")
        .next()
        .map(|v| String::from_utf8_lossy(v).into_owned());
    let page = proxy.statistics_page(
        client,
        request.query.as_deref().unwrap_or(""),
        accept.as_deref(),
    );
    let content_type: &'static CStr = match page.format {
        Some(stats::Format::Html) => c"Content-Type: text/html; charset=utf-8\r\n",
        Some(stats::Format::Json) => c"Content-Type: application/json\r\n",
        Some(stats::Format::Prometheus) => {
            c"Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
        }
        None => TEXT_PLAIN,
    };
    let answer = Answer {
        status: page.status,
        content_type,
        extra_headers: &[c"Cache-Control: no-store"],
        body: &page.body,
        close: false,
    };
    // SAFETY: forwarded from the caller.
    unsafe { answer::send(cs, sr, &answer) }
}

/// Monkey is about to close a client connection: drop our cached duplicate of it, so the
/// connection really closes.
unsafe extern "C" fn stage50(socket: c_int) -> c_int {
    let _ = catch_unwind(|| worker::with(|w| w.forget_client(socket)));
    0
}

unsafe extern "C" fn stage30_hangup(
    _plugin: *mut sys::mk_plugin,
    _cs: *mut sys::mk_http_session,
    sr: *mut sys::mk_http_request,
) -> c_int {
    // SAFETY: Monkey passes the live request being removed.
    if catch_unwind(AssertUnwindSafe(|| unsafe { context::hangup(sr) })).is_err() {
        log::error("internal error in hang-up");
    }
    0
}
