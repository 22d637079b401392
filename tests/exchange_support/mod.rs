//! Random exchanges for property tests of the relay (`relay_properties.rs` through the
//! stand-in host, `monkey_http.rs` through a real Monkey): a response of random status and
//! framing (length, chunked with random chunk sizes, extensions and trailers, or delimited
//! by the close), with a random body size (around the relay buffer's size among others),
//! sometimes after an interim `103`, that a scripted origin sends in random pieces with
//! pauses between them; asked for by a random client (HTTP/1.1 keeping its connection or
//! asking to close, HTTP/1.0 with and without keep-alive; `GET`, `HEAD` or `POST`; with a
//! second request after the response, pipelined with the first, or sent while the first
//! response is on its way).
//!
//! What must hold for every one: the client gets the status and exactly the body, framed as
//! its HTTP version allows (a strict reader checks every CRLF of a chunked body), the
//! connection closes when it has to and only then, a kept connection answers the next
//! request with its own response, and nothing is left open or held afterwards.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::common::body_of;

/// How the origin delimits the response body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length`.
    Length,
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Neither: the body ends when the origin closes the connection.
    Close,
}

/// Who asks, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// HTTP/1.1 keeping its connection.
    KeepAlive,
    /// HTTP/1.1 with `Connection: close`.
    Close,
    /// HTTP/1.0 (no keep-alive asked).
    Http10,
    /// HTTP/1.0 with `Connection: keep-alive`: kept only where the response has a length.
    Http10KeepAlive,
}

impl ClientKind {
    /// Whether the client asks to keep its connection.
    fn asks_keep(self) -> bool {
        matches!(self, ClientKind::KeepAlive | ClientKind::Http10KeepAlive)
    }

    /// Whether it speaks HTTP/1.0 (no chunked coding).
    fn is_http10(self) -> bool {
        matches!(self, ClientKind::Http10 | ClientKind::Http10KeepAlive)
    }
}

/// When a client that keeps its connection sends its second request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// After reading the whole first response.
    AfterResponse,
    /// In the same write as the first request.
    Pipelined,
    /// This many microseconds after the first request, without waiting for its response
    /// (usually while it is still on its way).
    Late(u64),
}

/// A request body the client sends (with `POST`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upload {
    /// No body (`GET` or `HEAD`).
    None,
    /// `Content-Length` and this many pattern bytes.
    Length(usize),
    /// `Transfer-Encoding: chunked`: this many pattern bytes in chunks of these sizes (in
    /// turn); when `decorated`, with an extension on every other chunk-size line and a
    /// trailer field.
    Chunked {
        /// Body length.
        len: usize,
        /// Chunk sizes, used in turn.
        sizes: Vec<usize>,
        /// Extensions and a trailer.
        decorated: bool,
    },
}

/// What the server in front of the plugin cannot take, so the random requests stay within it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest chunked upload body generated.
    pub chunked_upload: usize,
    /// Whether chunked uploads may carry chunk extensions and trailer fields.
    pub chunk_decorations: bool,
}

impl Limits {
    /// The stand-in host takes any request up to its 1 MiB limit.
    pub const NONE: Limits = Limits {
        chunked_upload: 20_000,
        chunk_decorations: true,
    };
    /// Monkey 1.8.9's request parser (before the plugin sees anything) closes connections
    /// whose chunked body has chunk extensions or trailer fields, or whose request outgrows
    /// its first 4 KiB read buffer (its chunk markers keep pointing into the old buffer).
    /// The whole request must fit: a head of the generated fields takes up to about 720
    /// bytes (five 100-byte values, a 40-byte query, `Connection` and `Transfer-Encoding`)
    /// and the chunk markers about 80, so 3 000 bytes of body keep it under 4 096 (3 800
    /// did not, rarely: Monkey closed such a connection before any answer).
    pub const MONKEY_1_8: Limits = Limits {
        chunked_upload: 3000,
        chunk_decorations: false,
    };
}

/// A place where the origin cuts its response bytes into separate writes.
#[derive(Debug, Clone, Copy)]
pub enum Cut {
    /// At this fraction of the length, in 1/1000.
    Fraction(u16),
    /// This many bytes before the end (the last bytes alone in a read).
    BeforeEnd(usize),
    /// At this offset (near the relay buffer's size, where reads fill it).
    At(usize),
}

impl Cut {
    fn offset(self, len: usize) -> usize {
        match self {
            Cut::Fraction(f) => len * usize::from(f) / 1000,
            Cut::BeforeEnd(n) => len.saturating_sub(n),
            Cut::At(at) => at.min(len),
        }
    }
}

/// One random exchange.
#[derive(Debug, Clone)]
pub struct Case {
    /// Final status: 200, 404, 204 or 304.
    pub status: u16,
    /// How the origin frames the body.
    pub framing: Framing,
    /// Body length (ignored for responses that have none).
    pub body_len: usize,
    /// Chunk sizes, used in turn (cycled) to cut a chunked body.
    pub chunk_sizes: Vec<usize>,
    /// Whether chunk-size lines carry extensions.
    pub extensions: bool,
    /// Trailer fields after the last chunk.
    pub trailers: usize,
    /// Whether an interim `103 Early Hints` comes first.
    pub interim: bool,
    /// Where the origin cuts the response bytes.
    pub cuts: Vec<Cut>,
    /// Pause between the origin's pieces, in microseconds.
    pub pause_us: u64,
    /// Who asks.
    pub client: ClientKind,
    /// `HEAD` rather than `GET` (when there is no upload).
    pub head: bool,
    /// The request body, if any (then the method is `POST`).
    pub upload: Upload,
    /// When a client that keeps its connection sends its second request.
    pub next: Next,
    /// A query string after the path (without `?`).
    pub query: Option<String>,
    /// End-to-end header fields the client sends (names may repeat), which the origin must
    /// receive unchanged and in order.
    pub fields: Vec<(String, String)>,
    /// The client names a header of its own in `Connection` (`X-Hop`), which must not reach
    /// the origin.
    pub hop: bool,
    /// Picks the method among those without a body (`GET`, `DELETE`, `OPTIONS`) or with
    /// one (`POST`, `PUT`).
    pub verb: u8,
    /// The client reads slowly through a small receive window, so the proxy meets a full
    /// client socket (backpressure) in the middle of bodies, chunk lines and heads.
    pub slow: bool,
}

impl Case {
    /// The body's size: `body_len`, plus 5 MiB for a slow client, so that the proxy's writes
    /// outrun it (loopback send buffers grow to a few MiB).
    fn body_size(&self) -> usize {
        if self.slow {
            self.body_len + (5 << 20)
        } else {
            self.body_len
        }
    }

    fn has_body(&self) -> bool {
        !self.is_head() && self.status != 204 && self.status != 304
    }

    /// The body the client must receive.
    pub fn expected_body(&self) -> Vec<u8> {
        if self.has_body() {
            body_of(self.body_size())
        } else {
            Vec::new()
        }
    }

    /// The origin's bytes for this case (`id` goes into an `X-Case` header), and whether it
    /// closes the connection after them.
    fn response(&self, id: u64) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        if self.interim {
            out.extend_from_slice(
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
            );
        }
        out.extend_from_slice(format!("HTTP/1.1 {} X\r\nX-Case: {id}\r\n", self.status).as_bytes());
        // A 204 carries no framing at all (RFC 9110 §8.6); a 304 may carry the length of
        // the representation it stands for, without a body.
        let framing = match (self.status, self.framing) {
            (204, _) => None,
            (304, Framing::Chunked) => Some(Framing::Length),
            (_, f) => Some(f),
        };
        match framing {
            Some(Framing::Length) => out
                .extend_from_slice(format!("Content-Length: {}\r\n", self.body_size()).as_bytes()),
            Some(Framing::Chunked) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
            _ => {}
        }
        out.extend_from_slice(b"\r\n");
        if !self.has_body() {
            return (out, false);
        }
        let body = body_of(self.body_size());
        match self.framing {
            Framing::Length => out.extend_from_slice(&body),
            Framing::Close => out.extend_from_slice(&body),
            Framing::Chunked => {
                let extension = |i: usize| match (self.extensions, i % 2) {
                    (false, _) => "",
                    (true, 0) => ";n=1",
                    (true, _) => " ; q=\"a; b\"",
                };
                let trailers: String = (0..self.trailers)
                    .map(|t| format!("X-Trailer-{t}: v{t}\r\n"))
                    .collect();
                write_chunked(&mut out, &body, &self.chunk_sizes, extension, &trailers);
            }
        }
        (out, self.framing == Framing::Close)
    }

    /// Whether the client sends `HEAD`.
    fn is_head(&self) -> bool {
        self.head && self.upload == Upload::None
    }

    /// The request target: the case's path and query.
    fn target(&self, id: u64) -> String {
        match &self.query {
            Some(q) => format!("/case/{id}?{q}"),
            None => format!("/case/{id}"),
        }
    }

    fn request(&self, path: &str) -> Vec<u8> {
        let method = match (&self.upload, self.head, self.verb % 6) {
            (Upload::None, true, _) => "HEAD",
            (Upload::None, false, 4) => "DELETE",
            (Upload::None, false, 5) => "OPTIONS",
            (Upload::None, false, _) => "GET",
            (_, _, v) if v % 2 == 1 => "PUT",
            _ => "POST",
        };
        let version = if self.client.is_http10() {
            "HTTP/1.0"
        } else {
            "HTTP/1.1"
        };
        let mut out = format!("{method} {path} {version}\r\nHost: t\r\n").into_bytes();
        let hop = if self.hop { ", X-Hop" } else { "" };
        match self.client {
            ClientKind::Close => {
                out.extend_from_slice(format!("Connection: close{hop}\r\n").as_bytes())
            }
            ClientKind::Http10KeepAlive => {
                out.extend_from_slice(format!("Connection: keep-alive{hop}\r\n").as_bytes())
            }
            _ if self.hop => out.extend_from_slice(b"Connection: X-Hop\r\n"),
            _ => {}
        }
        if self.hop {
            out.extend_from_slice(b"X-Hop: secret\r\n");
        }
        for (name, value) in &self.fields {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        match &self.upload {
            Upload::None => out.extend_from_slice(b"\r\n"),
            Upload::Length(n) => {
                out.extend_from_slice(format!("Content-Length: {n}\r\n\r\n").as_bytes());
                out.extend(body_of(*n));
            }
            Upload::Chunked {
                len,
                sizes,
                decorated,
            } => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let extension = |i: usize| if *decorated && i % 2 == 1 { ";e=1" } else { "" };
                let trailer = if *decorated { "X-Sum: 1\r\n" } else { "" };
                write_chunked(&mut out, &body_of(*len), sizes, extension, trailer);
            }
        }
        out
    }
}

/// Appends `body` in the chunked coding: chunks of `sizes` in turn (the last one cut to fit),
/// chunk `i`'s size line followed by `extension(i)`, then the last-chunk, the `trailers` (whole
/// field lines) and the final CRLF.
fn write_chunked(
    out: &mut Vec<u8>,
    body: &[u8],
    sizes: &[usize],
    extension: impl Fn(usize) -> &'static str,
    trailers: &str,
) {
    let mut at = 0;
    for (i, &size) in sizes.iter().cycle().enumerate() {
        if at == body.len() {
            break;
        }
        let n = size.clamp(1, body.len() - at);
        out.extend_from_slice(format!("{n:x}{}\r\n", extension(i)).as_bytes());
        out.extend_from_slice(&body[at..at + n]);
        out.extend_from_slice(b"\r\n");
        at += n;
    }
    out.extend_from_slice(format!("0\r\n{trailers}\r\n").as_bytes());
}

/// Random cases; body sizes cluster at 0, small, around `buffer` (the relay's read buffer)
/// and a few times it; uploads stay within `limits`.
pub fn cases(buffer: usize, limits: Limits) -> impl Strategy<Value = Case> {
    let status =
        prop_oneof![6 => Just(200u16), 2 => Just(404u16), 1 => Just(204u16), 1 => Just(304u16)];
    let framing = prop_oneof![
        Just(Framing::Length),
        Just(Framing::Chunked),
        Just(Framing::Close)
    ];
    let body_len = prop_oneof![
        3 => 0usize..=2,
        3 => 3usize..3000,
        3 => (buffer - 300)..(buffer + 300),
        3 => (2 * buffer)..(4 * buffer + 1000),
        1 => (4 * buffer)..(10 * buffer),
    ];
    let chunk_sizes = prop::collection::vec(
        prop_oneof![1usize..16, 16usize..2000, (buffer - 50)..(buffer + 50)],
        1..5,
    );
    let client = prop_oneof![
        3 => Just(ClientKind::KeepAlive),
        1 => Just(ClientKind::Close),
        1 => Just(ClientKind::Http10),
        1 => Just(ClientKind::Http10KeepAlive),
    ];
    (
        (status, framing, body_len, chunk_sizes, any::<bool>(), 0usize..3),
        (
            prop::bool::weighted(0.2),
            prop::collection::vec(
                prop_oneof![
                    (0u16..1000).prop_map(Cut::Fraction),
                    (1usize..8).prop_map(Cut::BeforeEnd),
                    ((buffer - 16)..(buffer + 16)).prop_map(Cut::At),
                ],
                0..5,
            ),
            prop_oneof![Just(0u64), 50u64..2000],
            client,
            prop::bool::weighted(0.2),
            prop_oneof![
                2 => Just(Next::AfterResponse),
                1 => Just(Next::Pipelined),
                1 => (0u64..3000).prop_map(Next::Late),
            ],
            prop_oneof![
                6 => Just(Upload::None),
                2 => (0usize..20_000).prop_map(Upload::Length),
                2 => (
                    0..=limits.chunked_upload,
                    prop::collection::vec(1usize..5000, 1..4),
                    any::<bool>(),
                )
                    .prop_map(move |(len, sizes, decorated)| Upload::Chunked {
                        len,
                        // Few chunks for small limits: their size lines count too.
                        sizes: sizes.into_iter().map(|n| n.max(limits.chunked_upload / 8)).collect(),
                        decorated: decorated && limits.chunk_decorations,
                    }),
            ],
        ),
    )
        .prop_flat_map(|(a, b)| (Just(a), Just(b), request_extras()))
        .prop_map(
            |(
                (status, framing, body_len, chunk_sizes, extensions, trailers),
                (interim, cuts, pause_us, client, head, next, upload),
                (query, fields, hop, verb, slow),
            )| Case {
                status,
                framing,
                body_len,
                chunk_sizes,
                extensions,
                trailers,
                interim,
                cuts,
                pause_us,
                client,
                head,
                next,
                upload,
                query,
                fields,
                hop,
                verb,
                slow,
            },
        )
}

/// A query, end-to-end header fields, a hop-by-hop field named in `Connection`, a verb, a
/// slow client.
type Extras = (Option<String>, Vec<(String, String)>, bool, u8, bool);

fn request_extras() -> impl Strategy<Value = Extras> {
    let query = prop::option::weighted(0.3, "[a-z0-9=&%/+.~-]{0,40}");
    let name = prop_oneof![
        Just("X-A"),
        Just("X-Dup"),
        Just("Accept"),
        Just("User-Agent"),
        Just("Cookie"),
        Just("Cache-Control"),
    ];
    // Field values: visible ASCII with inner spaces, nothing to trim at either end.
    let value = "([!-~]([ -~]{0,98}[!-~])?)?";
    let fields = prop::collection::vec((name.prop_map(String::from), value), 0..6);
    (
        query,
        fields,
        prop::bool::weighted(0.3),
        any::<u8>(),
        prop::bool::weighted(0.05),
    )
}

/// What the origin must find in the request for `case`: the target, the client's fields in
/// order, the forwarding headers; and nothing named in `Connection`. `None` when it does.
fn request_mismatch(case: &Case, id: u64, head: &str) -> Option<String> {
    let mut lines = head.split("\r\n");
    let target = lines.next()?.split(' ').nth(1).unwrap_or("");
    if target != case.target(id) {
        return Some(format!("target {target:?}, sent {:?}", case.target(id)));
    }
    let received: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let values = |name: &str| -> Vec<&str> {
        received
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for name in [
        "x-a",
        "x-dup",
        "accept",
        "user-agent",
        "cookie",
        "cache-control",
    ] {
        let sent: Vec<&str> = case
            .fields
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        if values(name) != sent {
            return Some(format!("{name}: {:?}, sent {sent:?}", values(name)));
        }
    }
    if !values("x-hop").is_empty() {
        return Some("X-Hop, named in Connection, reached the origin".into());
    }
    if values("x-forwarded-for") != ["127.0.0.1"] || values("host") != ["t"] {
        return Some(format!("forwarding headers: {received:?}"));
    }
    None
}

/// A keep-alive origin that answers `/case/<id>` with that case's scripted response, cut
/// into its pieces, and `/next/<id>` with a short `next <id>` body.
pub struct ScriptedOrigin {
    /// Where it listens.
    pub addr: SocketAddr,
    scripts: Arc<Mutex<HashMap<u64, Case>>>,
    next_id: AtomicU64,
}

impl ScriptedOrigin {
    /// Starts the origin on a free loopback port (a thread per connection, each bounded by
    /// a 10 s read timeout; they end with the test process).
    pub fn start() -> ScriptedOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let scripts: Arc<Mutex<HashMap<u64, Case>>> = Arc::default();
        let shared = scripts.clone();
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let scripts = shared.clone();
                thread::spawn(move || serve_scripts(stream, &scripts));
            }
        });
        ScriptedOrigin {
            addr,
            scripts,
            next_id: AtomicU64::new(1),
        }
    }

    fn add(&self, case: &Case) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.scripts.lock().unwrap().insert(id, case.clone());
        id
    }
}

/// A request the origin received: its head (up to the blank line), its body (chunked framing
/// removed), and how many bytes of the input it took.
type Received = (String, Vec<u8>, usize);

/// The first request in `input`; `None` while incomplete.
fn next_request(input: &[u8]) -> Option<Result<Received, String>> {
    let end = input.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&input[..end]).into_owned();
    let mut at = end + 4;
    let field = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    if let Some(te) = field("transfer-encoding") {
        if !te.eq_ignore_ascii_case("chunked") || field("content-length").is_some() {
            return Some(Err(format!("request framing: {head:?}")));
        }
        let mut body = Vec::new();
        loop {
            let line_end = at + input[at..].windows(2).position(|w| w == b"\r\n")?;
            let line = String::from_utf8_lossy(&input[at..line_end]).into_owned();
            let digits = line.split(';').next().unwrap_or("");
            let Ok(n) = usize::from_str_radix(digits, 16) else {
                return Some(Err(format!("chunk size line {line:?}")));
            };
            at = line_end + 2;
            if n == 0 {
                // Trailer fields up to the empty line.
                loop {
                    let l = at + input[at..].windows(2).position(|w| w == b"\r\n")?;
                    let empty = l == at;
                    at = l + 2;
                    if empty {
                        return Some(Ok((head, body, at)));
                    }
                }
            }
            if input.len() < at + n + 2 {
                return None;
            }
            if input[at + n..at + n + 2] != *b"\r\n" {
                return Some(Err("chunk without CRLF".into()));
            }
            body.extend_from_slice(&input[at..at + n]);
            at += n + 2;
        }
    }
    let n: usize = match field("content-length").map(|v| v.parse()) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return Some(Err(format!("request length: {head:?}"))),
    };
    if input.len() < at + n {
        return None;
    }
    Some(Ok((head, input[at..at + n].to_vec(), at + n)))
}

fn serve_scripts(mut s: TcpStream, scripts: &Mutex<HashMap<u64, Case>>) {
    let _ = s.set_nodelay(true);
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let mut pending = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Bounded: ends at end of file, an error, a close-delimited reply, or 10 s of silence.
    while let Ok(n @ 1..) = s.read(&mut buf) {
        pending.extend_from_slice(&buf[..n]);
        while let Some(request) = next_request(&pending) {
            let Ok((head, body, used)) = request else {
                let _ = s.write_all(b"HTTP/1.1 599 Bad Request Seen\r\nContent-Length: 0\r\n\r\n");
                return;
            };
            pending.drain(..used);
            let target = head.split(' ').nth(1).unwrap_or("");
            let number = |prefix: &str| target.strip_prefix(prefix)?.parse::<u64>().ok();
            if let Some(id) = number("/next/") {
                let text = format!("next {id}");
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nX-Case: next {id}\r\nContent-Length: {}\r\n\r\n{text}",
                    text.len()
                );
                if s.write_all(reply.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
            let found = target
                .split('?')
                .next()
                .and_then(|path| path.strip_prefix("/case/")?.parse::<u64>().ok())
                .and_then(|id| Some((id, scripts.lock().unwrap().get(&id)?.clone())));
            let Some((id, case)) = found else {
                let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                continue;
            };
            if let Some(what) = request_mismatch(&case, id, &head) {
                // The test reads the status and this body.
                let reply = format!(
                    "HTTP/1.1 597 Request Differs\r\nContent-Length: {}\r\n\r\n{what}",
                    what.len()
                );
                let _ = s.write_all(reply.as_bytes());
                return;
            }
            let sent = match &case.upload {
                Upload::None => 0,
                Upload::Length(n) | Upload::Chunked { len: n, .. } => *n,
            };
            if body != body_of(sent) {
                // The test reads the status: the upload did not arrive intact.
                let _ = s.write_all(b"HTTP/1.1 598 Body Differs\r\nContent-Length: 0\r\n\r\n");
                return;
            }
            let (bytes, close) = case.response(id);
            let mut cuts: Vec<usize> = case.cuts.iter().map(|c| c.offset(bytes.len())).collect();
            cuts.sort_unstable();
            let mut at = 0;
            for cut in cuts.into_iter().chain([bytes.len()]) {
                if cut <= at {
                    continue;
                }
                if s.write_all(&bytes[at..cut]).is_err() {
                    return;
                }
                at = cut;
                if case.pause_us > 0 && at < bytes.len() {
                    thread::sleep(Duration::from_micros(case.pause_us));
                }
            }
            if close {
                let _ = s.shutdown(Shutdown::Both);
                return;
            }
        }
    }
}

/// A response as a strict HTTP/1.x reader saw it.
#[derive(Debug)]
pub struct Seen {
    /// Status code.
    pub status: u16,
    /// Header fields, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
    /// The body was delimited by the connection's close.
    pub until_close: bool,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn line(r: &mut impl BufRead) -> Result<String, String> {
    let mut l = String::new();
    match r.read_line(&mut l) {
        Ok(0) => Err("connection closed".into()),
        Ok(_) => l
            .strip_suffix("\r\n")
            .map(str::to_string)
            .ok_or_else(|| format!("line without CRLF: {l:?}")),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// Reads one response strictly (RFC 9112 §6.3 for its length, every chunk's CRLF checked,
/// extensions and trailers allowed).
pub fn read_strict(r: &mut impl BufRead, head_request: bool) -> Result<Seen, String> {
    let status_line = line(r)?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    loop {
        let l = line(r)?;
        if l.is_empty() {
            break;
        }
        let (n, v) = l
            .split_once(':')
            .ok_or_else(|| format!("bad field {l:?}"))?;
        headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut seen = Seen {
        status,
        headers,
        body: Vec::new(),
        until_close: false,
    };
    if head_request || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(seen);
    }
    let lengths = seen
        .headers
        .iter()
        .filter(|(n, _)| n == "content-length")
        .count();
    if let Some(te) = seen.header("transfer-encoding") {
        if lengths > 0 || !te.eq_ignore_ascii_case("chunked") {
            return Err(format!("framing: {:?}", seen.headers));
        }
        loop {
            let size_line = line(r)?;
            let digits = size_line.split([';', ' ', '\t']).next().unwrap_or("");
            let n = usize::from_str_radix(digits, 16)
                .map_err(|_| format!("bad chunk size line {size_line:?}"))?;
            if n == 0 {
                while !line(r)?.is_empty() {}
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)
                .map_err(|e| format!("chunk: {e}"))?;
            if chunk[n..] != *b"\r\n" {
                return Err("chunk data not followed by CRLF".into());
            }
            seen.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = seen.header("content-length") {
        if lengths > 1 {
            return Err("two Content-Length fields".into());
        }
        let n: usize = len.parse().map_err(|_| format!("bad length {len:?}"))?;
        seen.body = vec![0u8; n];
        r.read_exact(&mut seen.body)
            .map_err(|e| format!("body: {e}"))?;
    } else {
        r.read_to_end(&mut seen.body)
            .map_err(|e| format!("body until close: {e}"))?;
        seen.until_close = true;
    }
    Ok(seen)
}

/// Runs `cases_to_run` random exchanges (or `$PROPTEST_CASES`, to search longer) through
/// the proxy at `proxy`, which must send every path to `origin`; `settled` is called after
/// each case with the client closed and must return `Err` while the proxy still holds
/// something for it (it may wait, bounded).
pub fn check_random_exchanges(
    proxy: SocketAddr,
    origin: &ScriptedOrigin,
    buffer: usize,
    limits: Limits,
    cases_to_run: u32,
    settled: &dyn Fn() -> Result<(), String>,
) {
    let cases_to_run = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases_to_run);
    let config = Config {
        cases: cases_to_run,
        failure_persistence: None,
        // Each failing run can wait out a read timeout: keep shrinking short.
        max_shrink_iters: 24,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&cases(buffer, limits), |case| {
        one_exchange(proxy, origin, &case).map_err(TestCaseError::fail)?;
        settled().map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A client socket whose receive buffer is a few KiB (set before connecting, so the window
/// the proxy sees is small from the start).
fn connect_with_small_window(addr: SocketAddr) -> std::io::Result<TcpStream> {
    use rustix::net::{connect, socket, sockopt, AddressFamily, SocketType};
    let fd = socket(AddressFamily::INET, SocketType::STREAM, None)?;
    sockopt::set_socket_recv_buffer_size(&fd, 4096)?;
    connect(&fd, &addr)?;
    Ok(TcpStream::from(fd))
}

/// The client's socket; when `slow`, every read takes at most 2 KiB after a short pause.
struct Paced {
    stream: TcpStream,
    slow: bool,
}

impl Read for Paced {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !self.slow {
            return self.stream.read(buf);
        }
        thread::sleep(Duration::from_micros(300));
        let n = buf.len().min(2048);
        self.stream.read(&mut buf[..n])
    }
}

impl Write for Paced {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.stream.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.stream.flush()
    }
}

fn one_exchange(proxy: SocketAddr, origin: &ScriptedOrigin, case: &Case) -> Result<(), String> {
    let id = origin.add(case);
    let stream = if case.slow {
        connect_with_small_window(proxy)
    } else {
        TcpStream::connect(proxy)
    }
    .map_err(|e| format!("connect: {e}"))?;
    // Generous: on a loaded machine (a load average of 9 on 2 cores was seen) a whole
    // exchange of a large body can take seconds; a wedged one still fails the case.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let stream = Paced {
        stream,
        slow: case.slow,
    };
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    // A second request before the response only where the connection stays open: when the
    // proxy closes one with unread bytes (no lingering close), a request arriving after the
    // close makes the kernel reset the connection, which can cut the response the client
    // is still reading. HTTP/1.0 connections are closed after every response (Monkey 1.8
    // keeps none).
    let asks_keep = case.client.asks_keep() && !case.client.is_http10();
    let next = format!("GET /next/{id} HTTP/1.1\r\nHost: t\r\n\r\n");
    let mut out = case.request(&case.target(id));
    if asks_keep && case.next == Next::Pipelined {
        out.extend_from_slice(next.as_bytes());
    }
    reader
        .get_mut()
        .write_all(&out)
        .map_err(|e| format!("send: {e}"))?;
    if let (true, Next::Late(us)) = (asks_keep, case.next) {
        thread::sleep(Duration::from_micros(us));
        reader
            .get_mut()
            .write_all(next.as_bytes())
            .map_err(|e| format!("send next: {e}"))?;
    }

    let seen = read_strict(&mut reader, case.is_head())?;
    if seen.status != case.status {
        return Err(format!(
            "status {} for {}: {}",
            seen.status,
            case.status,
            String::from_utf8_lossy(&seen.body)
        ));
    }
    if seen.header("x-case") != Some(&id.to_string()) {
        return Err(format!("another response: {:?}", seen.headers));
    }
    if seen.body != case.expected_body() {
        return Err(format!(
            "body of {} bytes, expected {}",
            seen.body.len(),
            case.expected_body().len()
        ));
    }
    if case.client.is_http10() && seen.header("transfer-encoding").is_some() {
        return Err("chunked to an HTTP/1.0 client".into());
    }
    let says = |token: &str| {
        seen.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    // An HTTP/1.1 client keeps its connection unless it asked otherwise; an HTTP/1.0 one
    // only where the response says so (a body without a length cannot be kept).
    let keep = match case.client {
        ClientKind::KeepAlive => true,
        ClientKind::Http10KeepAlive => says("keep-alive"),
        _ => false,
    };
    if keep {
        if seen.until_close {
            return Err("a keep-alive client's body was delimited by the close".into());
        }
        if says("close") {
            return Err("a keep-alive client's connection was closed".into());
        }
        if case.next == Next::AfterResponse {
            reader
                .get_mut()
                .write_all(next.as_bytes())
                .map_err(|e| format!("send next: {e}"))?;
        }
        let then = read_strict(&mut reader, false).map_err(|e| format!("next request: {e}"))?;
        let expected = format!("next {id}");
        if then.header("x-case") != Some(expected.as_str()) || then.body != expected.as_bytes() {
            return Err(format!("next request got {:?}", then.headers));
        }
    } else if !seen.until_close {
        // The proxy must close a connection the client did not keep.
        let mut rest = Vec::new();
        match reader.read_to_end(&mut rest) {
            Ok(_) if rest.is_empty() => {}
            Ok(_) => return Err(format!("{} bytes after the response", rest.len())),
            Err(e) => return Err(format!("connection not closed after the response: {e}")),
        }
    }
    Ok(())
}
