//! One probe: a non-blocking connection to one server, the check's request, and the verdict
//! on its answer. Probe connections are the prober's own: they never enter the upstream pool
//! and close when the verdict is in. They are [`BackendStream`]s, so an `https://` server is
//! probed over TLS with its entry's settings (name, roots, client certificate), as requests
//! reach it.

use std::hash::{Hash, Hasher};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Moment;
use crate::config::{Expect, ProbeKind};
use crate::health::check::{ProbeFailure, ProbeResult};
use crate::http::framing::{BodyReader, Framing};
use crate::http::response::{parse_head, ClientSide, HeadEdits, ResponseError};
use crate::relay::{BackendStream, Connect};
use crate::upstream::ServerTls;

/// Most response bytes a probe reads (head and body); a body that has not shown the expected
/// text by then does not match.
pub const MAX_READ: usize = 64 * 1024;

/// What a probe sends and expects: everything of an entry's check but its thresholds, and
/// the server's address. Probes of servers listed in several entries with the same check
/// are one probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeSpec {
    /// The server's address.
    pub addr: SocketAddr,
    /// `tcp`, or the HTTP request.
    pub kind: ProbeKind,
    /// The `Host` header (`HealthCheckHost`, else the server's `host:port`).
    pub host: String,
    /// What passes.
    pub expect: Expect,
    /// `HealthCheckInterval`.
    pub interval: Duration,
    /// `HealthCheckTimeout`.
    pub timeout: Duration,
    /// For an `https://` server: how it is spoken to.
    pub tls: Option<ProbeTls>,
}

/// An `https://` server's TLS settings as a probe uses them. Two probes are the same when
/// they use the same client configuration (an entry's, built once per configuration) and
/// name.
#[derive(Debug, Clone)]
pub struct ProbeTls(pub ServerTls);

impl PartialEq for ProbeTls {
    fn eq(&self, other: &ProbeTls) -> bool {
        Arc::ptr_eq(&self.0.config, &other.0.config) && self.0.name == other.0.name
    }
}

impl Eq for ProbeTls {}

impl Hash for ProbeTls {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0.config), state);
        self.0.name.hash(state);
    }
}

impl ProbeSpec {
    /// The request an HTTP probe sends (empty for `tcp`).
    pub fn request(&self) -> Vec<u8> {
        match &self.kind {
            ProbeKind::Tcp => Vec::new(),
            ProbeKind::Http { head, path } => format!(
                "{} {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: proxy_reverse-check\r\n\
                 Accept: */*\r\nConnection: close\r\n\r\n",
                if *head { "HEAD" } else { "GET" },
                self.host
            )
            .into_bytes(),
        }
    }
}

/// Where a probe stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending,
    Reading,
}

/// One probe in progress.
#[derive(Debug)]
pub struct Probe {
    stream: BackendStream,
    phase: Phase,
    request: Vec<u8>,
    sent: usize,
    input: Vec<u8>,
    started: Moment,
    deadline: Moment,
}

impl Probe {
    /// Starts probing as `spec` says at `now`; a connect that fails at once is the probe's
    /// failure.
    pub fn start(spec: &ProbeSpec, now: Moment) -> Result<Probe, ProbeResult> {
        let stream = BackendStream::connect(spec.addr, spec.tls.as_ref().map(|t| &t.0))
            .map_err(|_| ProbeResult::Fail(ProbeFailure::Refused))?;
        Ok(Probe {
            stream,
            phase: Phase::Connecting,
            request: spec.request(),
            sent: 0,
            input: Vec::new(),
            started: now,
            deadline: now.after(spec.timeout),
        })
    }

    /// The socket's descriptor, for the prober's poll.
    pub fn fd(&self) -> std::os::fd::RawFd {
        self.stream.fd()
    }

    /// When the probe started.
    pub fn started(&self) -> Moment {
        self.started
    }

    /// When it fails if it has no verdict.
    pub fn deadline(&self) -> Moment {
        self.deadline
    }

    /// The verdict of a probe whose deadline passed.
    pub fn timed_out(&self) -> ProbeResult {
        ProbeResult::Fail(if self.phase == Phase::Connecting {
            ProbeFailure::ConnectTimeout
        } else {
            ProbeFailure::Timeout
        })
    }

    /// The socket may have progressed: moves on as far as it can without waiting. The
    /// verdict, once there is one.
    pub fn advance(&mut self, spec: &ProbeSpec) -> Option<ProbeResult> {
        if self.phase == Phase::Connecting {
            // For an `https://` server the connect includes the TLS handshake (also for a
            // `tcp` check: a server that cannot complete it serves no request).
            match self.stream.poll_connect() {
                Connect::Done => {}
                Connect::InProgress => return None,
                Connect::Failed => return Some(ProbeResult::Fail(ProbeFailure::Refused)),
                Connect::TlsFailed => return Some(ProbeResult::Fail(ProbeFailure::Tls)),
            }
            if spec.kind == ProbeKind::Tcp {
                return Some(ProbeResult::Pass);
            }
            self.phase = Phase::Sending;
        }
        if self.phase == Phase::Sending {
            while self.sent < self.request.len() {
                match self.stream.write(&self.request[self.sent..]) {
                    Ok(0) => return Some(ProbeResult::Fail(ProbeFailure::Reset)),
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Some(ProbeResult::Fail(ProbeFailure::Reset)),
                }
            }
            self.phase = Phase::Reading;
        }
        let mut chunk = [0u8; 4096];
        let head_request = matches!(spec.kind, ProbeKind::Http { head: true, .. });
        loop {
            let room = MAX_READ - self.input.len();
            let want = chunk.len().min(room);
            // Read until the socket has nothing more (edge-triggered), judging as bytes
            // come: a status is often enough for a verdict before the body ends.
            let (closed, blocked) = match self.stream.read(&mut chunk[..want]) {
                Ok(0) => (true, false),
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    (self.input.len() >= MAX_READ, false)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => (false, true),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => (true, false),
            };
            if blocked && self.input.is_empty() {
                return None;
            }
            match judge(&self.input, &spec.expect, head_request, closed) {
                Verdict::More if closed => {
                    return Some(ProbeResult::Fail(ProbeFailure::Reset));
                }
                Verdict::More if blocked => return None,
                Verdict::More => {}
                Verdict::Done(result) => return Some(result),
            }
        }
    }
}

/// What the bytes received so far say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing yet: more bytes are needed.
    More,
    /// The probe's outcome.
    Done(ProbeResult),
}

/// Judges a probe's response from the bytes received so far (`input`); `ended` when no more
/// will come (the server closed, or [`MAX_READ`] bytes arrived). The status decides first;
/// with a `body` text, the body (de-chunked) must contain it before its end.
pub fn judge(input: &[u8], expect: &Expect, head_request: bool, ended: bool) -> Verdict {
    let client = ClientSide {
        head_request,
        minor_version: 1,
        wants_close: true,
        upgrade: false,
    };
    let mut scratch = Vec::new();
    let head = match parse_head(input, client, &HeadEdits::default(), &mut scratch) {
        Ok(Some(head)) => head,
        Ok(None) if ended && input.is_empty() => {
            return Verdict::Done(ProbeResult::Fail(ProbeFailure::Reset))
        }
        Ok(None) if ended => return Verdict::Done(ProbeResult::Fail(ProbeFailure::BadResponse)),
        Ok(None) => return Verdict::More,
        Err(ResponseError::Malformed) | Err(_) => {
            return Verdict::Done(ProbeResult::Fail(ProbeFailure::BadResponse))
        }
    };
    if !expect.passes(head.status) {
        return Verdict::Done(ProbeResult::Fail(ProbeFailure::Status(head.status)));
    }
    let Some(text) = expect.body.as_deref().filter(|_| !head_request) else {
        return Verdict::Done(ProbeResult::Pass);
    };
    let mut body = Vec::new();
    let mut reader = BodyReader::new(head.framing);
    let fed = reader.feed(&input[head.head_len..], |data| body.extend_from_slice(data));
    let done = match fed {
        Ok(fed) => fed.done,
        Err(_) => return Verdict::Done(ProbeResult::Fail(ProbeFailure::BadResponse)),
    };
    if contains(&body, text.as_bytes()) {
        return Verdict::Done(ProbeResult::Pass);
    }
    let complete = done || head.framing == Framing::None || (ended && reader.until_close());
    if complete || ended {
        return Verdict::Done(ProbeResult::Fail(ProbeFailure::BodyMismatch));
    }
    Verdict::More
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// For tests: a probe's verdict on a whole answer, without a socket.
pub fn judge_whole(answer: &[u8], expect: &Expect, head_request: bool) -> ProbeResult {
    match judge(answer, expect, head_request, true) {
        Verdict::Done(result) => result,
        Verdict::More => ProbeResult::Fail(ProbeFailure::Reset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn expect(text: &str) -> Expect {
        crate::config::health::expect(text).unwrap()
    }

    #[test]
    fn statuses_decide_first() {
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(
            judge_whole(ok, &Expect::default(), false),
            ProbeResult::Pass
        );
        let busy = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            judge_whole(busy, &Expect::default(), false),
            ProbeResult::Fail(ProbeFailure::Status(503))
        );
        assert_eq!(
            judge_whole(busy, &expect("500-503"), false),
            ProbeResult::Pass
        );
        // The status is known before the body arrives.
        let head_only = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert_eq!(
            judge(head_only, &Expect::default(), false, false),
            Verdict::Done(ProbeResult::Pass)
        );
    }

    #[test]
    fn bodies_must_contain_the_text_before_their_end() {
        let e = expect("200 body all good");
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        4\r\nall \r\n4\r\ngood\r\n0\r\n\r\n";
        assert_eq!(
            judge_whole(chunked, &e, false),
            ProbeResult::Pass,
            "de-chunked"
        );
        let wrong = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nall bad!";
        assert_eq!(
            judge_whole(wrong, &e, false),
            ProbeResult::Fail(ProbeFailure::BodyMismatch)
        );
        let partial = b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\nall go";
        assert_eq!(judge(partial, &e, false, false), Verdict::More);
        let until_close = b"HTTP/1.1 200 OK\r\n\r\nstatus: all good\n";
        assert_eq!(judge_whole(until_close, &e, false), ProbeResult::Pass);
        // HEAD has no body to look at: the status decides.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n";
        assert_eq!(judge_whole(head, &e, true), ProbeResult::Pass);
    }

    #[test]
    fn what_is_no_answer() {
        let e = Expect::default();
        assert_eq!(
            judge_whole(b"", &e, false),
            ProbeResult::Fail(ProbeFailure::Reset)
        );
        assert_eq!(
            judge_whole(b"HTTP/1.1 200 OK\r\nContent-Le", &e, false),
            ProbeResult::Fail(ProbeFailure::BadResponse)
        );
        assert_eq!(
            judge_whole(b"SSH-2.0-OpenSSH\r\n\r\n", &e, false),
            ProbeResult::Fail(ProbeFailure::BadResponse)
        );
        assert_eq!(judge(b"HTTP/1.1 2", &e, false, false), Verdict::More);
    }

    #[test]
    fn the_request_names_the_host_and_closes() {
        let spec = ProbeSpec {
            addr: "127.0.0.1:1".parse().unwrap(),
            kind: ProbeKind::Http {
                head: true,
                path: "/healthz?full=1".into(),
            },
            host: "api.internal".into(),
            expect: Expect::default(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            tls: None,
        };
        let r = String::from_utf8(spec.request()).unwrap();
        assert!(
            r.starts_with("HEAD /healthz?full=1 HTTP/1.1\r\nHost: api.internal\r\n"),
            "{r}"
        );
        assert!(r.contains("\r\nConnection: close\r\n") && r.ends_with("\r\n\r\n"));
        let tcp = ProbeSpec {
            kind: ProbeKind::Tcp,
            ..spec
        };
        assert!(tcp.request().is_empty());
    }

    #[test]
    fn a_refused_connect_fails_and_a_listener_passes_tcp() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let spec = ProbeSpec {
            addr: listener.local_addr().unwrap(),
            kind: ProbeKind::Tcp,
            host: String::new(),
            expect: Expect::default(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            tls: None,
        };
        let outcome = |spec: &ProbeSpec| -> io::Result<ProbeResult> {
            let mut p = match Probe::start(spec, Moment::now()) {
                Ok(p) => p,
                Err(r) => return Ok(r),
            };
            let until = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                if let Some(r) = p.advance(spec) {
                    return Ok(r);
                }
                if std::time::Instant::now() > until {
                    return Err(io::Error::other("no verdict in 5 s"));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        };
        assert_eq!(outcome(&spec).unwrap(), ProbeResult::Pass);
        drop(listener);
        assert_eq!(
            outcome(&spec).unwrap(),
            ProbeResult::Fail(ProbeFailure::Refused)
        );
    }
}
