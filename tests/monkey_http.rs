//! The HTTP attack catalogue through a real Monkey v1.8 with the plugin loaded
//! (`MONKEY_BIN`): every case of `attack_support::cases`, one test each, named for the case,
//! as `relay_attacks.rs` runs them through the stand-in host; then the cases only a real
//! Monkey can run.
//!
//! Without `MONKEY_BIN` the tests are reported ignored. Run them with:
//! `MONKEY_BIN=/path/to/monkey cargo test --test monkey_http -- --test-threads=2`.
//! Every test ends by checking that each Monkey it started is still alive.

#[macro_use]
mod attack_support;
mod common;
mod e2e;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use attack_support::cases::through;
use attack_support::{parse_head, Harness, CL_AND_TE, NO_HOST};
use common::*;
use e2e::*;

/// A real Monkey as a catalogue [`Harness`]: each proxy a case starts is a Monkey with the
/// plugin and the configuration text as its `proxy_reverse.conf`.
#[derive(Default)]
struct RealMonkey {
    monkeys: RefCell<Vec<Monkey>>,
}

impl Harness for RealMonkey {
    fn host(&self) -> &'static str {
        "real Monkey"
    }

    fn start(&self, conf: &str) -> SocketAddr {
        let monkey = Monkey::start(conf);
        let addr = monkey.addr();
        self.monkeys.borrow_mut().push(monkey);
        addr
    }

    fn finish(&self) {
        for mut monkey in self.monkeys.borrow_mut().drain(..) {
            monkey.assert_alive();
            monkey.stop();
        }
    }

    fn report(&self) {
        for monkey in self.monkeys.borrow().iter() {
            eprintln!("Monkey on {}; log:\n{}", monkey.addr(), monkey.log());
        }
    }
}

attack_catalogue!(RealMonkey, {
    #[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
});

/// Ends a test: Monkey is still alive, then stopped.
fn finish(mut monkey: Monkey) {
    monkey.assert_alive();
    monkey.stop();
}

// ---- only through a real Monkey ---------------------------------------------------------
//
// Requests Monkey 1.8.9 answers itself, before the plugin sees them (`relay_attacks.rs` says
// what the stand-in host, which leaves them to the core, answers), and the read timeout on
// the real clock.

/// Runs `case` on a real Monkey, named `name` in a failure.
fn real_monkey(name: &str, case: fn(&dyn Harness)) {
    attack_support::run_case::<RealMonkey>(name, case);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn smuggling_cl_and_te_together_never_reaches_the_origin() {
    real_monkey(
        "smuggling_cl_and_te_together_never_reaches_the_origin",
        |h| {
            let origin = Origin::start("a");
            let proxy = h.start(&conf_for(&[origin.addr], ""));
            let mut c = Client::connect(proxy);
            c.reader
                .get_mut()
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            c.send(CL_AND_TE);
            // Monkey 1.8.9 itself holds a request with CL > 0 and chunked (until its own
            // timeout, then closes without an answer); whatever it answers, nothing may reach
            // the origin. The stand-in host answers 400 and closes.
            if let Some(r) = c.read_response(false) {
                assert_eq!(r.status, 400);
            }
            assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
        },
    );
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn http11_request_without_host_is_answered_by_monkey_itself() {
    // Monkey refuses it before stage 30 and keeps the connection (the stand-in host's core
    // closes it): the next request on it is served, and only that one reaches the origin.
    real_monkey(
        "http11_request_without_host_is_answered_by_monkey_itself",
        |h| {
            let origin = Origin::start("a");
            let proxy = h.start(&conf_for(&[origin.addr], ""));
            let (r, mut c) = through(proxy, NO_HOST);
            assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
            let r = c.get("/headers");
            assert_eq!(r.status, 200);
            let (line, _) = parse_head(&r.body);
            assert_eq!(line, "GET /headers HTTP/1.1");
            assert_eq!(origin.conns.load(Ordering::SeqCst), 1);
        },
    );
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_chunk_extension_never_reaches_the_origin() {
    // Monkey 1.8.9's chunked parser takes a bare hex size only: it closes the connection
    // without an answer, before the plugin sees the request (the stand-in host relays the
    // extension: `chunked_upload_with_extensions_reaches_the_origin_intact` there).
    real_monkey("a_chunk_extension_never_reaches_the_origin", |h| {
        let origin = Origin::start("a");
        let proxy = h.start(&conf_for(&[origin.addr], ""));
        let mut c = Client::connect(proxy);
        c.reader
            .get_mut()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        c.send(
            b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
        );
        let began = Instant::now();
        assert!(c.read_response(false).is_none(), "answered");
        assert!(began.elapsed() < Duration::from_secs(4), "held, not closed");
        assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
    });
}

// The stand-in host's read timeout is tested on its test clock (`relay.rs`); Monkey runs on
// the real one.
#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn slow_origin_gets_504_within_read_timeout() {
    let origin = Origin::start("a");
    let monkey = Monkey::start(&conf_for(&[origin.addr], "    ReadTimeout 0.5\n"));
    let t = Instant::now();
    let r = Client::connect(monkey.addr()).get("/never");
    let took = t.elapsed();
    assert_eq!(r.status, 504);
    assert!(
        took >= Duration::from_millis(450),
        "504 after only {took:?}"
    );
    assert!(
        took < Duration::from_millis(1500),
        "504 only after {took:?}"
    );
    finish(monkey);
}

// ---- requests behind a head Monkey refused (issue #21, item 4) -----------------------------
//
// Monkey answers a head it cannot frame with its own 411 or 400 and then parses the bytes
// behind it as a pipelined request, which it dispatches to stage 30 before it closes the
// connection (`src/monkey/guard.rs`). Such a request must reach no origin and get no answer.

/// A keep-alive origin that records the request line of every request it reads (skipping
/// `Content-Length` bodies) and answers each with `200 ok`. Stops accepting when dropped.
struct RecordingOrigin {
    addr: SocketAddr,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl RecordingOrigin {
    fn start() -> RecordingOrigin {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (lines.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(s) = s else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut out = s.try_clone().unwrap();
                    let mut reader = BufReader::new(s);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        seen.lock().unwrap().push(line.trim_end().to_string());
                        let mut length = 0;
                        loop {
                            let mut h = String::new();
                            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                                return;
                            }
                            if h == "\r\n" {
                                break;
                            }
                            let h = h.to_ascii_lowercase();
                            if let Some(v) = h.strip_prefix("content-length:") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                        }
                        let mut body = vec![0u8; length];
                        if reader.read_exact(&mut body).is_err()
                            || out
                                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                                .is_err()
                        {
                            return;
                        }
                    }
                });
            }
        });
        RecordingOrigin { addr, lines, stop }
    }

    /// The request lines received so far.
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for RecordingOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Paths starting with `/n` match no entry: the plugin answers them 404 itself.
fn conf_with_a_local_404(origin: SocketAddr) -> String {
    format!("[PROXY_ENTRY]\n    Match ^/[a-m]\n    Match ^/[o-z]\n    ServerList {origin}\n")
}

/// A client connection with a 5 s read timeout.
fn client(monkey: &Monkey) -> Client {
    let mut c = Client::connect(monkey.addr());
    c.reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c
}

/// Sends `raw` on `c` and returns everything received until the server closes; panics if it
/// does not close within the read timeout.
fn rest_until_closed(c: &mut Client, raw: &[u8]) -> String {
    use std::io::Read;
    c.send(raw);
    let mut rest = Vec::new();
    let closed = c.reader.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest).into_owned();
    assert!(closed.is_ok(), "not closed ({closed:?}); received {text:?}");
    text
}

/// Every status line in `text`, in order.
fn statuses(text: &str) -> Vec<&str> {
    text.match_indices("HTTP/1.1 ")
        .map(|(i, _)| &text[i + 9..(i + 12).min(text.len())])
        .collect()
}

/// Heads Monkey 1.8.9 refuses itself (411 when it sees no length it recognises on a POST,
/// 400 for a length it cannot read), each followed by the request a client would smuggle.
const BEHIND_REFUSED_HEADS: [&[u8]; 8] = [
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length : 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length\t: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent_Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\n Content-Length: 40\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 44\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
];

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_request_behind_a_head_monkey_refused_is_neither_forwarded_nor_answered() {
    let origin = RecordingOrigin::start();
    let monkey = Monkey::start(&conf_with_a_local_404(origin.addr));
    let only_monkeys_refusal = |text: &str, case: &[u8]| {
        let case = String::from_utf8_lossy(case);
        assert_eq!(statuses(text).len(), 1, "{case:?}: {text:?}");
        assert!(
            text.starts_with("HTTP/1.1 411") || text.starts_with("HTTP/1.1 400"),
            "{case:?}: {text:?}"
        );
    };
    for raw in BEHIND_REFUSED_HEADS {
        // On a kept-alive connection: a GET answered first, so this worker keeps an idle
        // origin connection a new request would be written to at once.
        let mut c = client(&monkey);
        assert_eq!(c.get("/warm-up").status, 200);
        only_monkeys_refusal(&rest_until_closed(&mut c, raw), raw);
        // As the first request of a connection.
        only_monkeys_refusal(&rest_until_closed(&mut client(&monkey), raw), raw);
    }
    // Pipelined behind a proxied request and behind one the plugin answers itself (404):
    // their answers, Monkey's refusal, the close.
    for (first, status) in [
        (&b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n"[..], "200"),
        (b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", "404"),
    ] {
        for refused in [BEHIND_REFUSED_HEADS[0], BEHIND_REFUSED_HEADS[5]] {
            let mut c = client(&monkey);
            assert_eq!(c.get("/warm-up").status, 200);
            let text = rest_until_closed(&mut c, &[first, refused].concat());
            let got = statuses(&text);
            assert_eq!(got.len(), 2, "{text:?}");
            assert_eq!(got[0], status, "{text:?}");
            assert!(matches!(got[1], "411" | "400"), "{text:?}");
        }
    }
    // Behind a proxied request, the refused head arriving in two parts: Monkey holds the
    // first part as an incomplete pipelined request and refuses it when the rest comes.
    let mut c = client(&monkey);
    assert_eq!(c.get("/warm-up").status, 200);
    let (part1, part2) = BEHIND_REFUSED_HEADS[0].split_at(30);
    c.send(&[&b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n"[..], part1].concat());
    assert_eq!(c.read_response(false).expect("first answer").status, 200);
    let text = rest_until_closed(&mut c, part2);
    only_monkeys_refusal(&text, part2);
    std::thread::sleep(Duration::from_millis(300));
    let seen = origin.lines();
    assert!(
        !seen.iter().any(|l| l.contains("/smuggled")),
        "reached the origin: {seen:?}"
    );
    assert!(seen.iter().any(|l| l.contains("/first")), "{seen:?}");
    finish(monkey);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn pipelined_and_kept_alive_requests_are_served_as_before() {
    // What the stage-30 guard must leave alone: requests pipelined behind proxied ones,
    // behind the plugin's own answers and behind Monkey's, bodies, keep-alive, closes.
    let origin = Origin::start("a");
    let monkey = Monkey::start(&conf_with_a_local_404(origin.addr));
    let get = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes();
    let post = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello".to_vec();
    let chunked =
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            .to_vec();
    let close = b"GET /id HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
    let no_host = b"GET /id HTTP/1.1\r\n\r\n".to_vec();
    // (what the client sends at once, the statuses, whether the server then closes)
    let cases: Vec<(Vec<u8>, Vec<u16>, bool)> = vec![
        (
            [get("/id"), get("/id"), get("/id")].concat(),
            vec![200; 3],
            false,
        ),
        ([post.clone(), get("/id")].concat(), vec![200, 200], false),
        ([chunked, get("/id")].concat(), vec![200, 200], false),
        (
            [get("/id"), get("/nope"), get("/id")].concat(),
            vec![200, 404, 200],
            false,
        ),
        (
            [get("/nope"), get("/id"), get("/nope"), get("/id")].concat(),
            vec![404, 200, 404, 200],
            false,
        ),
        ([get("/id"), close].concat(), vec![200, 200], true),
        ([no_host, get("/id")].concat(), vec![400, 200], false),
        (b"GET /id HTTP/1.0\r\n\r\n".to_vec(), vec![200], true),
        // Behind Monkey's own refusal of a request that completed parsing (a 403 for `..`)
        // inside a pipeline behind a proxied request: not forwarded, the connection closes.
        (
            [get("/id"), get("/a/../../etc"), get("/id")].concat(),
            vec![200, 403],
            true,
        ),
    ];
    for (raw, expected, closes) in &cases {
        let what = String::from_utf8_lossy(raw).into_owned();
        let mut c = client(&monkey);
        // Kept alive first: these run on a connection that already served a request.
        assert_eq!(c.get("/id").status, 200, "{what:?}");
        c.send(raw);
        for (i, status) in expected.iter().enumerate() {
            let r = c
                .read_response(false)
                .unwrap_or_else(|| panic!("{what:?}: answer {i} missing"));
            assert_eq!(r.status, *status, "{what:?}: answer {i}");
        }
        if *closes {
            assert!(c.read_response(false).is_none(), "{what:?}: not closed");
        } else {
            let r = c.get("/echo");
            assert_eq!(r.status, 200, "{what:?}: the connection is still usable");
        }
    }
    // Kept alive, one request at a time, across the plugin's and the origin's answers.
    let mut c = client(&monkey);
    for path in ["/id", "/nope", "/id", "/id", "/nope", "/nope", "/id"] {
        let r = c.get(path);
        let expected = if path == "/nope" { 404 } else { 200 };
        assert_eq!(r.status, expected, "{path}");
    }
    finish(monkey);
}
