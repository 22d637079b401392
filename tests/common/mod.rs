//! Shared test helpers: a loopback origin server, a raw HTTP client, and proxy setup.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use proxy_reverse::config::{Config, Entry, MatchRule, ServerSpec};
use proxy_reverse::host::{Host, TestClock};
use proxy_reverse::proxy::Proxy;

/// Deterministic body byte `i` of every generated body.
pub fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

/// `n` bytes of the pattern.
pub fn body_of(n: usize) -> Vec<u8> {
    (0..n).map(pattern).collect()
}

/// A loopback origin: thread per connection, HTTP/1.1 keep-alive.
///
/// Routes: `/size/N` (N pattern bytes, Content-Length), `/chunked/N` (N bytes in 1000-byte
/// chunks), `/close/N` (close-delimited), `/echo` (request body back), `/headers` (request head
/// back), `/stream/N` (N pattern bytes, Content-Length, generated while sending so huge bodies
/// cost no memory), `/id` (its name), `/conns` (connections accepted), `/never` (reads, never answers),
/// `/slow` (5 chunks 100 ms apart), anything else 404.
///
/// A path `/m/<segment>/rest` is served as `/rest`, so one origin can sit behind several
/// `Match ^/m/<name>/` entries of one configuration (only the `/m/` namespace is stripped:
/// `/api/id` stays an unknown route).
pub struct Origin {
    pub addr: SocketAddr,
    pub name: String,
    pub conns: Arc<AtomicUsize>,
    /// Body bytes written so far on all connections.
    pub written: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// A clone of every connection being served (removed when its thread ends, so the
    /// clone never keeps a finished connection open), for `kill`.
    open: Arc<Mutex<HashMap<u64, TcpStream>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Origin {
    pub fn start(name: &str) -> Origin {
        Origin::start_on("127.0.0.1:0".parse().unwrap(), name)
    }

    /// An origin listening on `addr` (e.g. the address of one that was killed, to restart
    /// it in place). std sets SO_REUSEADDR on Linux listeners, so connections of the old
    /// one in TIME_WAIT do not block the bind; a bounded retry covers the moment the old
    /// listener takes to close.
    pub fn start_on(addr: SocketAddr, name: &str) -> Origin {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(addr) {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    thread::sleep(Duration::from_millis(20));
                }
                Err(e) => panic!("bind {addr}: {e}"),
            }
        };
        let addr = listener.local_addr().unwrap();
        let conns = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(HashMap::new()));
        let (c, w, s, n, o) = (
            conns.clone(),
            written.clone(),
            stop.clone(),
            name.to_string(),
            open.clone(),
        );
        let acceptor = thread::spawn(move || {
            for (id, stream) in (0u64..).zip(listener.incoming()) {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                if let Ok(clone) = stream.try_clone() {
                    o.lock().unwrap().insert(id, clone);
                }
                let (c, w, n, o) = (c.clone(), w.clone(), n.clone(), o.clone());
                thread::spawn(move || {
                    serve(stream, &n, &c, &w);
                    o.lock().unwrap().remove(&id);
                });
            }
        });
        Origin {
            addr,
            name: name.to_string(),
            conns,
            written,
            stop,
            open,
            acceptor: Some(acceptor),
        }
    }

    /// What a crashed origin process looks like from outside: the listener is closed (new
    /// connections are refused once this returns) and every accepted connection, idle or
    /// busy, is shut down.
    pub fn kill(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for (_, s) in self.open.lock().unwrap().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        if self.acceptor.is_some() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(self.addr);
        }
    }
}

fn serve(stream: TcpStream, name: &str, conns: &AtomicUsize, written: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    // Head and body go out in separate writes: without this, Nagle holds the body back until
    // the proxy acknowledges the head (a 40 ms delayed-ACK stall per response).
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        if parts.len() != 3 {
            return;
        }
        let (method, target) = (parts[0].to_string(), parts[1].to_string());
        let mut head = line.clone();
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            head.push_str(&h);
            if h == "\r\n" {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if chunked {
            body.clear();
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
                let mut chunk = vec![0u8; n + 2];
                reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        let mut path = target.split('?').next().unwrap().to_string();
        if let Some(rest) = path.strip_prefix("/m/") {
            if let Some(i) = rest.find('/') {
                path = rest[i..].to_string();
            }
        }
        let head_only = method == "HEAD";
        let send = |out: &mut TcpStream, status: &str, body: &[u8]| -> bool {
            let h = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nX-Backend: {name}\r\n\r\n",
                body.len()
            );
            // A small response goes out in one write: an origin killed mid-way (`kill`)
            // then cuts between responses, not inside one.
            if !head_only && body.len() <= 4096 {
                let mut all = h.into_bytes();
                all.extend_from_slice(body);
                if out.write_all(&all).is_err() {
                    return false;
                }
                written.fetch_add(body.len() as u64, Ordering::SeqCst);
                return true;
            }
            if out.write_all(h.as_bytes()).is_err() {
                return false;
            }
            if !head_only {
                for part in body.chunks(64 * 1024) {
                    if out.write_all(part).is_err() {
                        return false;
                    }
                    written.fetch_add(part.len() as u64, Ordering::SeqCst);
                }
            }
            true
        };
        let ok = if let Some(n) = path.strip_prefix("/size/") {
            send(&mut out, "200 OK", &body_of(n.parse().unwrap()))
        } else if let Some(n) = path.strip_prefix("/stream/") {
            stream_body(&mut out, n.parse().unwrap(), head_only, name, written)
        } else if let Some(n) = path.strip_prefix("/chunked/") {
            let n: usize = n.parse().unwrap();
            let data = body_of(n);
            let mut o = Vec::from(&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"[..]);
            for c in data.chunks(1000) {
                o.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                o.extend_from_slice(c);
                o.extend_from_slice(b"\r\n");
            }
            o.extend_from_slice(b"0\r\n\r\n");
            out.write_all(&o).is_ok()
        } else if let Some(n) = path.strip_prefix("/close/") {
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
            let _ = out.write_all(&body_of(n.parse().unwrap()));
            return;
        } else if path == "/echo" {
            send(&mut out, "200 OK", &body)
        } else if path == "/headers" {
            send(&mut out, "200 OK", head.as_bytes())
        } else if path == "/id" {
            send(&mut out, "200 OK", name.as_bytes())
        } else if path == "/conns" {
            send(
                &mut out,
                "200 OK",
                conns.load(Ordering::SeqCst).to_string().as_bytes(),
            )
        } else if path == "/never" {
            thread::sleep(Duration::from_secs(30));
            return;
        } else if path == "/slow" {
            let _ = out.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for i in 0..5 {
                let part = format!("part {i}\n");
                let _ = out.write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes());
                thread::sleep(Duration::from_millis(100));
            }
            out.write_all(b"0\r\n\r\n").is_ok()
        } else {
            send(&mut out, "404 Not Found", b"not found\n")
        };
        if !ok {
            return;
        }
    }
}

/// Writes a 200 with `n` pattern bytes without materialising them: a block whose length is a
/// multiple of the pattern period (251) repeats seamlessly.
fn stream_body(
    out: &mut TcpStream,
    n: u64,
    head_only: bool,
    name: &str,
    written: &AtomicU64,
) -> bool {
    let h = format!("HTTP/1.1 200 OK\r\nContent-Length: {n}\r\nX-Backend: {name}\r\n\r\n");
    if out.write_all(h.as_bytes()).is_err() {
        return false;
    }
    if head_only {
        return true;
    }
    let block = body_of(251 * 256);
    let mut left = n;
    while left > 0 {
        let len = left.min(block.len() as u64) as usize;
        if out.write_all(&block[..len]).is_err() {
            return false;
        }
        written.fetch_add(len as u64, Ordering::SeqCst);
        left -= len as u64;
    }
    true
}

/// A server that answers every connection with fixed bytes, then closes.
pub fn raw_origin(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        }
    });
    addr
}

/// A server that answers every connection with fixed bytes and then resets it: it never
/// reads the request, and closing a socket with unread bytes makes the kernel send a reset.
/// The pause before the close lets the proxy read and pass on the reply first.
pub fn raw_origin_reset_after(reply: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            // Wait until the request is there, unread, so that the close resets.
            thread::sleep(Duration::from_millis(50));
            let _ = s.write_all(reply);
            thread::sleep(Duration::from_millis(100));
        }
    });
    addr
}

/// A keep-alive server that answers every request (a head up to its blank line; bodies are
/// not expected) with fixed bytes and keeps the connection open; with `late`, it also sends
/// those bytes that long after each reply, unasked. Returns its address and the number of
/// connections it accepted.
pub fn keep_alive_raw_origin(
    reply: Vec<u8>,
    late: Option<(Duration, &'static [u8])>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let accepted = conns.clone();
    let reply = Arc::new(reply);
    thread::spawn(move || {
        for mut s in listener.incoming().flatten() {
            accepted.fetch_add(1, Ordering::SeqCst);
            let reply = reply.clone();
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut pending = Vec::new();
                let mut buf = [0u8; 4096];
                // Bounded: ends at end of file, an error, or 5 s without a byte.
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    pending.extend_from_slice(&buf[..n]);
                    while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                        pending.drain(..end + 4);
                        if s.write_all(&reply).is_err() {
                            return;
                        }
                        if let Some((delay, bytes)) = late {
                            thread::sleep(delay);
                            if s.write_all(bytes).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, conns)
}

/// An origin whose every response fills the relay's read buffer exactly and is followed, in
/// the same write, by a forged response (see [`sized_response_then_forged`]). Returns its
/// address and the number of connections it accepted.
pub fn origin_out_of_step_behind_a_full_buffer() -> (SocketAddr, Arc<AtomicUsize>) {
    keep_alive_raw_origin(
        sized_response_then_forged(proxy_reverse::relay::BUFFER_SIZE),
        None,
    )
}

/// Three requests on one client connection to `proxy`, which fronts
/// [`origin_out_of_step_behind_a_full_buffer`]: each must get the real response, never the
/// forged bytes queued behind the previous one, so each needs a fresh backend connection.
pub fn assert_queued_bytes_never_answer(proxy: SocketAddr, origin_conns: &AtomicUsize) {
    let mut c = Client::connect(proxy);
    for i in 0..3 {
        let r = c.get("/x");
        assert_eq!(r.status, 200, "request {i}");
        assert_ne!(r.body, b"forged", "request {i} got the queued bytes");
        assert!(r.body.len() > 32_000, "request {i}: {} bytes", r.body.len());
    }
    assert_eq!(
        origin_conns.load(Ordering::SeqCst),
        3,
        "a connection out of step was reused"
    );
}

/// A 200 response of exactly `total` bytes (head and pattern body), then, in the same bytes,
/// a second, forged response `forged` that nobody asked for: a backend out of step.
pub fn sized_response_then_forged(total: usize) -> Vec<u8> {
    let mut body_len = total;
    let head = loop {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {body_len}\r\n\r\n");
        if head.len() + body_len == total {
            break head;
        }
        body_len = total - head.len();
    };
    let mut reply = head.into_bytes();
    reply.extend(body_of(body_len));
    reply.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged");
    reply
}

/// A loopback address nothing listens on.
pub fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// An entry matching every path, for these servers.
pub fn entry_for(servers: &[SocketAddr]) -> Entry {
    let specs = servers
        .iter()
        .map(|a| ServerSpec {
            name: a.to_string(),
            addr: *a,
            weight: 1,
            tls: false,
            backup: false,
        })
        .collect();
    Entry::with_defaults(
        1,
        vec![MatchRule {
            pattern: "^/".into(),
            line: 1,
        }],
        specs,
    )
}

/// An entry whose one rule is `pattern`.
pub fn entry_matching(pattern: &str, servers: &[SocketAddr]) -> Entry {
    let mut entry = entry_for(servers);
    entry.matches[0].pattern = pattern.into();
    entry
}

/// Against a proxy with `^/m/a/` routed to the origin named `a` and everything else to `b`:
/// a percent-encoded path is routed by what it decodes to, so encoding cannot route around a
/// rule; the target still reaches the origin as sent.
pub fn assert_encoded_paths_route_by_their_decoded_form(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    assert_eq!(c.get("/m/a/id").body, b"a");
    assert_eq!(
        c.get("/m/%61/id").body,
        b"a",
        "encoded path routed around ^/m/a/"
    );
    assert_eq!(c.get("/m/%62/id").body, b"b");
}

/// The text of a plugin configuration (`proxy_reverse.conf`) with one entry matching every
/// path, for these servers, followed by the entry lines `extra` (each indented, ending in a
/// newline). Both hosts read it: Monkey from the file, the stand-in host through
/// `config::parse_str`.
pub fn conf_for(servers: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "[PROXY_ENTRY]\n    Match ^/\n    ServerList {}\n{extra}",
        list.join(" ")
    )
}

/// A proxy host in front of the given entries.
pub fn host_for(entries: Vec<Entry>) -> Host {
    let config = Config {
        file: "test.conf".into(),
        statistics_url: None,
        statistics_allow: vec![],
        admin_url: None,
        admin_allow: Vec::new(),
        access_log: None,
        entries,
    };
    Host::start(Arc::new(Proxy::new(config).unwrap())).unwrap()
}

/// The proxy the plugin configuration text `conf` describes, parsed as the plugin parses its
/// file (servers must be IP addresses: tests resolve no names). Panics with the errors.
pub fn proxy_from_conf(conf: &str) -> Proxy {
    let no_dns = |host: &str, _port: u16| Err(format!("no DNS in tests ({host})"));
    let config =
        proxy_reverse::config::parse_str(conf, std::path::Path::new("proxy_reverse.conf"), &no_dns)
            .unwrap_or_else(|e| panic!("{e:?}\n{conf}"));
    Proxy::new(config).expect("a proxy for the configuration")
}

/// A stand-in host for the plugin configuration text `conf` (see [`proxy_from_conf`]).
pub fn host_from_conf(conf: &str) -> Host {
    Host::start(Arc::new(proxy_from_conf(conf))).unwrap()
}

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection that reads responses one by one.
pub struct Client {
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Client {
            reader: BufReader::with_capacity(64 * 1024, s),
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.reader.get_mut().write_all(raw).unwrap();
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("response")
    }

    /// Reads one response; `head` = the request was HEAD.
    pub fn read_response(&mut self, head: bool) -> Option<Response> {
        read_response(&mut self.reader, head)
    }
}

/// Reads one response from `reader` (any byte stream: a TCP or a TLS connection); `head` =
/// the request was HEAD.
pub fn read_response(reader: &mut impl BufRead, head: bool) -> Option<Response> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_string(), v.trim().to_string()));
    }
    let mut r = Response {
        status,
        headers,
        body: Vec::new(),
    };
    if head || status == 204 || status == 304 {
        return Some(r);
    }
    if let Some(n) = r.header("content-length") {
        let mut body = vec![0u8; n.parse().ok()?];
        reader.read_exact(&mut body).ok()?;
        r.body = body;
    } else if r
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            // Strict: every chunk (and the last-chunk, no trailers) ends with CRLF.
            if chunk[n..] != *b"\r\n" {
                return None;
            }
            if n == 0 {
                break;
            }
            r.body.extend_from_slice(&chunk[..n]);
        }
    } else {
        reader.read_to_end(&mut r.body).ok()?;
    }
    Some(r)
}

/// Through the proxy at `proxy` (origin: [`Origin`]): close-delimited bodies of several sizes
/// (within the head's read, empty, many reads) reach an HTTP/1.1 client chunked and exact, on
/// one connection that stays usable.
pub fn assert_close_delimited_bodies_go_chunked(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    for n in [3000, 0, 1_000_000] {
        let r = c.get(&format!("/close/{n}"));
        assert_eq!(r.status, 200);
        assert_eq!(r.header("transfer-encoding"), Some("chunked"), "size {n}");
        assert_eq!(r.header("connection"), None, "size {n}");
        assert!(r.body == body_of(n), "size {n}: body differs");
    }
    assert_eq!(c.get("/size/10").body, body_of(10));
}

/// Through the proxy at `proxy` (origin: [`raw_origin_reset_after`] with a close-delimited
/// reply): the client must see the cut as a closed connection, at once, not a complete body.
pub fn assert_cut_body_closes_the_client(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    c.send(b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    let began = Instant::now();
    assert!(
        c.read_response(false).is_none(),
        "a cut body was completed for the client"
    );
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the client connection was left open after the cut"
    );
}

/// Through the proxy at `proxy` (origin: [`Origin`]): a request the client sends while the
/// response to its previous one is still streaming (`/slow`, five parts 100 ms apart) waits
/// for that response to finish whole, then is answered on the same connection.
pub fn assert_request_sent_during_a_stream_is_answered_after_it(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    thread::sleep(Duration::from_millis(150));
    c.send(b"GET /size/7 HTTP/1.1\r\nHost: t\r\n\r\n");
    let first = c
        .read_response(false)
        .expect("the streamed response, whole");
    assert_eq!(first.body, b"part 0\npart 1\npart 2\npart 3\npart 4\n");
    let second = c
        .read_response(false)
        .expect("the request sent during the stream");
    assert_eq!(second.body, body_of(7));
    assert_eq!(
        c.get("/size/3").body,
        body_of(3),
        "the connection is still usable"
    );
}

/// Through the proxy at `proxy` (origin: [`Origin`]): requests pipelined right behind
/// request bodies (Content-Length and chunked) are answered in order on one connection.
pub fn assert_requests_pipelined_behind_bodies_are_answered(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello\
          GET /size/4 HTTP/1.1\r\nHost: t\r\n\r\n\
          POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          3\r\nabc\r\n0\r\n\r\n\
          GET /size/6 HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!(c.read_response(false).expect("1st").body, b"hello");
    assert_eq!(c.read_response(false).expect("2nd").body, body_of(4));
    let third = c.read_response(false).expect("3rd");
    assert_eq!(third.body, b"abc");
    assert_eq!(
        third.header("connection"),
        None,
        "the chunked upload closed the connection"
    );
    assert_eq!(c.read_response(false).expect("4th").body, body_of(6));
}

/// Through the proxy at `proxy` (origin: [`Origin`]): after a response that closes the
/// connection (the request asked for it), a request pipelined behind it gets no answer —
/// the connection ends right after the response.
pub fn assert_nothing_is_answered_after_a_closing_response(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    c.send(
        b"GET /size/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n\
          GET /id HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let r = c.read_response(false).expect("response");
    assert_eq!(r.body, body_of(3));
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    c.reader
        .read_to_end(&mut rest)
        .expect("end of file after the closing response");
    assert!(
        rest.is_empty(),
        "answered after Connection: close: {:?}",
        String::from_utf8_lossy(&rest)
    );
}

/// Through the proxy at `proxy` (origin: [`Origin`]): on one connection, each request's
/// target reaches the origin as sent — a query never carries over to the next request, and
/// an empty query (`?` alone) is kept.
pub fn assert_each_target_reaches_the_origin_as_sent(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    for target in [
        "/headers?x=1",
        "/headers",
        "/headers?",
        "/headers?a=%20b&c",
        "/headers",
    ] {
        let r = c.get(target);
        let echoed = String::from_utf8_lossy(&r.body).into_owned();
        let line = echoed.lines().next().unwrap_or("");
        assert_eq!(line, format!("GET {target} HTTP/1.1"), "sent {target}");
    }
}

/// Through the proxy at `proxy` (origin: [`Origin`]): `close` is honoured as one token of a
/// `Connection` list, not only as its whole value.
pub fn assert_close_in_a_connection_list_closes(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    c.send(b"GET /size/3 HTTP/1.1\r\nHost: t\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n\r\n");
    let r = c.read_response(false).expect("response");
    assert_eq!(r.body, body_of(3));
    assert_eq!(r.header("connection"), Some("close"));
    let mut rest = Vec::new();
    let n = c
        .reader
        .read_to_end(&mut rest)
        .expect("end of file after the response");
    assert_eq!(n, 0, "bytes after a closing response");
}

/// A backend for [`assert_client_leaving_releases_the_backend`] and the timeout tests: a
/// listener whose connections the test serves by hand ([`accept_within`],
/// [`read_request_head`]).
pub fn silent_backend() -> (SocketAddr, TcpListener) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    (listener.local_addr().unwrap(), listener)
}

// ---- timeouts on a test clock -----------------------------------------------------------

/// How long, in real time, a test gives the host to act once it has moved a test clock past
/// a deadline: generous, so that a busy machine passes.
pub const PROMPTLY: Duration = Duration::from_secs(5);

/// How long, in real time, a test watches for something that must not happen yet.
pub const QUIET_WINDOW: Duration = Duration::from_millis(300);

/// A stand-in host in front of `entries` whose time is a test clock: its timeouts act only
/// when the test moves the clock on ([`Host::advance`]), never by themselves. Returns the
/// proxy too, for its statistics.
pub fn host_on_test_clock(entries: Vec<Entry>) -> (Host, Arc<Proxy>) {
    let config = Config {
        file: "test.conf".into(),
        statistics_url: None,
        statistics_allow: vec![],
        admin_url: None,
        admin_allow: Vec::new(),
        access_log: None,
        entries,
    };
    let proxy = Arc::new(Proxy::new(config).unwrap());
    let host = Host::start_with_clock(proxy.clone(), TestClock::new()).unwrap();
    (host, proxy)
}

/// A loopback address where connecting never completes: a listener with a backlog of 0
/// whose accept queue the returned connections fill, so that the kernel drops every further
/// SYN (and the connect retransmits until it gives up, minutes later). Keep both alive for
/// the test.
pub fn unanswering_backend() -> (SocketAddr, TcpListener, Vec<TcpStream>) {
    use rustix::net::{bind, listen, socket, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None).unwrap();
    bind(&fd, &SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
    listen(&fd, 0).unwrap();
    let listener = TcpListener::from(fd);
    let addr = listener.local_addr().unwrap();
    let mut queued = Vec::new();
    // Bounded: Linux queues one connection beyond a backlog of 0.
    for _ in 0..8 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => queued.push(s),
            Err(_) => return (addr, listener, queued),
        }
    }
    panic!("the accept queue of a listener with backlog 0 never filled");
}

/// Polls `done` every 5 ms until it holds; panics, naming `what`, after [`PROMPTLY`].
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + PROMPTLY;
    while !done() {
        assert!(Instant::now() < until, "not within {PROMPTLY:?}: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The next connection the proxy opens to `listener`, within [`PROMPTLY`] (blocking).
pub fn accept_within(listener: &TcpListener) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let until = Instant::now() + PROMPTLY;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                return s;
            }
            Err(_) if Instant::now() < until => thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("the proxy never connected to the backend: {e}"),
        }
    }
}

/// Reads one request head (up to its blank line) from a backend connection the test serves
/// by hand, within [`PROMPTLY`]; returns it.
pub fn read_request_head(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(PROMPTLY)).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            s.read(&mut byte).expect("the request head"),
            1,
            "request cut: {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    head
}

/// Nothing arrives on `s` for [`QUIET_WINDOW`]: no byte, no end of file, no reset.
pub fn assert_quiet(s: &mut TcpStream, when: &str) {
    s.set_read_timeout(Some(QUIET_WINDOW)).unwrap();
    let mut buf = [0u8; 256];
    match s.read(&mut buf) {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        Ok(0) => panic!("closed {when}"),
        Ok(n) => panic!("{n} bytes {when}: {:?}", String::from_utf8_lossy(&buf[..n])),
        Err(e) => panic!("{e} {when}"),
    }
}

/// Reads `s` until the peer closes it (end of file or reset), within [`PROMPTLY`]; returns
/// the bytes that came before.
pub fn read_until_closed(s: &mut TcpStream, when: &str) -> Vec<u8> {
    s.set_read_timeout(Some(PROMPTLY)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("not closed {when}: {e}"),
        }
    }
}

/// A client that goes away while its response is pending makes the proxy let go of the
/// backend connection at once — before the backend has answered, after the client sent part
/// of a pipelined request, and while a body is half sent — not when the backend finishes or
/// `ReadTimeout` (configure it long) runs out: the backend sees its connection closed within
/// two seconds each time.
pub fn assert_client_leaving_releases_the_backend(proxy: SocketAddr, backend: TcpListener) {
    let released_soon = |s: &mut TcpStream, when: &str| {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut rest = [0u8; 64];
        match s.read(&mut rest) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => {
                panic!("backend connection still held after the client left {when}: {other:?}")
            }
        }
    };

    // Before the response head; then again after sending a byte of a pipelined request,
    // which waits in the socket for the response to end (the client's leaving must not).
    for (pipelined, when) in [
        (&b""[..], "before the response"),
        (&b"G"[..], "after a pipelined byte"),
    ] {
        let mut client = TcpStream::connect(proxy).unwrap();
        client
            .write_all(b"GET /wait HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let mut upstream = accept_within(&backend);
        read_request_head(&mut upstream);
        if !pipelined.is_empty() {
            client.write_all(pipelined).unwrap();
            thread::sleep(Duration::from_millis(100));
        }
        drop(client);
        released_soon(&mut upstream, when);
    }

    // Halfway through a chunked body.
    let mut client = Client::connect(proxy);
    client.send(b"GET /half HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut upstream = accept_within(&backend);
    read_request_head(&mut upstream);
    upstream
        .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        .unwrap();
    let mut line = String::new();
    client.reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
    drop(client);
    released_soon(&mut upstream, "during the body");
}

/// Against a `SourceHash` entry over several origins (answering `/id` with their names)
/// whose `TrustedProxies` holds 127.0.0.1: requests a trusted proxy forwards for different
/// clients (`X-Forwarded-For`) spread over the servers, and each client stays on one
/// server, on any connection. Hashing the proxy's own address would send all to one.
pub fn assert_source_hash_follows_the_forwarded_client(proxy: SocketAddr) {
    let mut seen: HashMap<String, String> = HashMap::new();
    for round in 0..2 {
        let mut c = Client::connect(proxy);
        for i in 1..=24 {
            let client = format!("198.51.100.{i}");
            c.send(
                format!("GET /id HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: {client}\r\n\r\n")
                    .as_bytes(),
            );
            let r = c.read_response(false).expect("a response");
            assert_eq!(r.status, 200);
            let server = String::from_utf8(r.body).unwrap();
            if round == 0 {
                seen.insert(client, server);
            } else {
                assert_eq!(seen[&client], server, "{client} moved to another server");
            }
        }
    }
    let servers: std::collections::HashSet<&String> = seen.values().collect();
    assert!(servers.len() > 1, "every client on one server: {seen:?}");
}

/// `promtool check metrics` on `text`: whether it passed, and what it printed (lint findings
/// come even with a zero exit); `None` when promtool is not installed (Debian package
/// `prometheus`).
pub fn promtool_check(text: &str) -> Option<(bool, String)> {
    use std::process::{Command, Stdio};
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), report))
}

/// promtool accepts `text` and has nothing to say about it (skipped, saying so, without
/// promtool).
pub fn assert_promtool_accepts(text: &str) {
    match promtool_check(text) {
        Some((ok, report)) => assert!(
            ok && report.trim().is_empty(),
            "promtool check metrics:\n{report}\n{text}"
        ),
        None => eprintln!("SKIPPED: promtool not installed (Debian package `prometheus`)"),
    }
}

/// `POST /echo` carrying `body` with a `Content-Length`, as raw bytes (the origins under test
/// send the body back).
pub fn post_echo(body: &[u8]) -> Vec<u8> {
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    req
}

/// Reads a `101` response's head from `reader` (panics on another status), leaving the
/// tunnel's first bytes unread.
pub fn read_switching_head(reader: &mut impl BufRead) {
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "{status:?}");
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
}

/// A backend that sends heads that repeat, as a backend serving one kind of resource does
/// (the worker's memo of a server's previous head recognises them): the same head again, a
/// new `Date`, a new value of another field, a field more, a hop-by-hop field before the
/// `Date`, and last a `Date` with a byte no value may hold. Each is the answer to the next
/// request, on one connection while the heads are good.
pub struct RepeatingHeads {
    pub addr: SocketAddr,
    steps: Vec<String>,
    origin: JoinHandle<()>,
}

impl RepeatingHeads {
    pub fn start() -> RepeatingHeads {
        const DATE_A: &str = "Thu, 03 Dec 2026 14:30:00 GMT";
        const DATE_B: &str = "Thu, 03 Dec 2026 14:30:01 GMT";
        let reply = |date: &str, serial: &str, more: &str, body: &str| {
            format!(
                "HTTP/1.1 200 OK\r\n{more}Server: t\r\nDate: {date}\r\nX-Serial: {serial}\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let steps = vec![
            reply(DATE_A, "1", "", "a"),
            reply(DATE_A, "1", "", "a"),
            reply(DATE_B, "1", "", "b"),
            reply(DATE_B, "1", "", "c"),
            reply(DATE_B, "2", "", "d"),
            reply(DATE_A, "2", "X-New: 1\r\n", "e"),
            reply(DATE_B, "2", "Keep-Alive: timeout=5\r\n", "f"),
            reply(DATE_A, "2", "Keep-Alive: timeout=5\r\n", "g"),
            reply(DATE_A, "2", "", "h"),
            reply("Thu, 03 Dec 2026 14:30:0\x7f GMT", "2", "", "i"),
        ];
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut replies = steps.clone().into_iter();
        let origin = thread::spawn(move || {
            // The refused head costs the connection; bounded: the replies run out.
            while let Some(first) = replies.next() {
                let mut s = accept_within(&listener);
                let mut next = Some(first);
                while let Some(r) = next.take() {
                    read_request_head(&mut s);
                    s.write_all(r.as_bytes()).unwrap();
                    if !r.contains('\x7f') {
                        next = replies.next();
                    }
                }
            }
        });
        RepeatingHeads {
            addr,
            steps,
            origin,
        }
    }

    /// Through the proxy at `proxy`, one client connection: each head reaches the client as
    /// it was sent (its `Date`, `X-Serial`, `X-New` and `Server` as sent, no hop-by-hop
    /// field, its own body), and the last one gets a 502.
    pub fn check(self, proxy: SocketAddr) {
        let mut c = Client::connect(proxy);
        for (i, step) in self.steps.iter().enumerate() {
            let r = c.get("/");
            if step.contains('\x7f') {
                assert_eq!(r.status, 502, "step {i}");
                continue;
            }
            let field = |name: &str| {
                let line = step.lines().find(|l| {
                    l.split_once(':')
                        .is_some_and(|(n, _)| n.eq_ignore_ascii_case(name))
                });
                line.map(|l| l.split_once(':').unwrap().1.trim().to_string())
            };
            assert_eq!(r.status, 200, "step {i}");
            for name in ["date", "x-serial", "x-new", "server"] {
                assert_eq!(
                    r.header(name).map(str::to_string),
                    field(name),
                    "step {i}: {name}"
                );
            }
            assert_eq!(r.header("keep-alive"), None, "step {i}: a hop-by-hop field");
            assert_eq!(
                r.body,
                step.rsplit("\r\n").next().unwrap().as_bytes(),
                "step {i}"
            );
        }
        drop(c);
        self.origin.join().unwrap();
    }
}
