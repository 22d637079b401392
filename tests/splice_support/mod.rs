//! What the splice tests of both hosts share: large bodies on one connection, a slow reader
//! of a huge body, a client that leaves mid-body, and a backend that cuts one.
#![allow(dead_code)]

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;

/// Body sizes spliced (past the head's read, at least `relay::splice`'s threshold is left) or
/// at the edge of it.
pub const LARGE: [usize; 3] = [64 * 1024, 1024 * 1024, 10 * 1024 * 1024];

/// Through the proxy at `proxy` (origin: [`Origin`]): bodies of 64 KiB, 1 MiB and 10 MiB,
/// small ones between them, several requests on one keep-alive connection, then pipelined
/// requests behind a spliced body (in one write): every body exact, every response in order.
pub fn assert_large_bodies_exact_on_one_connection(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    for n in [LARGE[0], LARGE[1], 10, LARGE[2], LARGE[0], 1024, LARGE[1]] {
        let r = c.get(&format!("/size/{n}"));
        assert_eq!(r.status, 200, "size {n}");
        assert_eq!(r.header("content-length"), Some(n.to_string().as_str()));
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    // Streamed by the origin as it goes (its writes and the proxy's reads interleave).
    let n = 3 * 1024 * 1024 + 17;
    let r = c.get(&format!("/stream/{n}"));
    assert!(r.body == body_of(n), "streamed body of {n} bytes differs");
    // Pipelined behind a spliced body: the next requests wait in the client's input and are
    // answered after it, on the same connection.
    c.send(
        format!(
            "GET /size/{} HTTP/1.1\r\nHost: t\r\n\r\nGET /size/10 HTTP/1.1\r\nHost: t\r\n\r\n\
             GET /size/{} HTTP/1.1\r\nHost: t\r\n\r\n",
            LARGE[1], LARGE[0]
        )
        .as_bytes(),
    );
    for n in [LARGE[1], 10, LARGE[0]] {
        let r = c.read_response(false).expect("pipelined response");
        assert_eq!(r.status, 200, "pipelined size {n}");
        assert!(r.body == body_of(n), "pipelined body of {n} bytes differs");
    }
    assert_eq!(c.get("/id").body, b"a", "the connection is still usable");
}

/// Sends `GET /stream/n` on a new connection and reads the head; the body is next.
pub fn start_stream(proxy: SocketAddr, n: u64) -> std::io::BufReader<TcpStream> {
    let s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = std::io::BufReader::with_capacity(16 * 1024, s);
    reader
        .get_mut()
        .write_all(format!("GET /stream/{n} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line:?}");
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h == "\r\n" {
            break;
        }
        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
            assert_eq!(v.trim(), n.to_string());
        }
    }
    reader
}

/// Reads the bytes `from..n` of a `/stream/` body from `reader`, checking each against the
/// pattern, in reads of at most 64 KiB with a pause of `pause` after every MiB (a client
/// slower than the proxy: its socket fills and the relay waits for it again and again);
/// `each_mib` runs at every pause.
pub fn read_stream_slowly(
    reader: &mut impl Read,
    from: u64,
    n: u64,
    pause: Duration,
    mut each_mib: impl FnMut(u64),
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = from;
    let mut next_pause = from + (1 << 20);
    let deadline = Instant::now() + Duration::from_secs(120);
    while at < n {
        let want = buf.len().min((n - at) as usize);
        let k = reader.read(&mut buf[..want]).unwrap();
        assert!(k > 0, "the body ended after {at} of {n} bytes");
        for (i, b) in buf[..k].iter().enumerate() {
            let i = at as usize + i;
            if *b != pattern(i) {
                panic!("byte {i} of the body differs");
            }
        }
        at += k as u64;
        if at >= next_pause {
            next_pause += 1 << 20;
            each_mib(at);
            thread::sleep(pause);
        }
        assert!(Instant::now() < deadline, "too slow: {at} of {n} bytes");
    }
}

/// A backend that answers every request with a head promising `total` bytes, sends `sent`
/// of them and closes (after reading the request, so the close is an orderly end).
pub fn cutting_origin(total: usize, sent: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for s in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
                let mut out = s;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\n\r\n");
                let _ = out.write_all(head.as_bytes());
                for part in body_of(sent).chunks(64 * 1024) {
                    if out.write_all(part).is_err() {
                        return;
                    }
                }
                thread::sleep(Duration::from_millis(50));
            });
        }
    });
    addr
}

/// Through the proxy at `proxy` (origin: [`cutting_origin`]`(total, sent)`): the client gets
/// the head and the bytes that came, then its connection closes at once, so a cut body never
/// looks complete.
pub fn assert_cut_spliced_body_closes_the_client(proxy: SocketAddr, total: usize, sent: usize) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let began = Instant::now();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("the connection closes");
    assert!(began.elapsed() < Duration::from_secs(5), "closed late");
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    assert!(all.starts_with(b"HTTP/1.1 200"));
    let body = &all[at..];
    assert_eq!(body.len(), sent, "every byte that came, and no more");
    assert!(body == &body_of(sent)[..]);
    assert!(sent < total);
}

/// Three requests on one client connection to `proxy`, which fronts
/// `keep_alive_raw_origin(sized_response_then_forged(total))`: every body is spliced exactly
/// to its length (never a byte of the forged response behind it), and no backend connection
/// with bytes left behind a response is reused (`origin_conns` ends at 3).
pub fn assert_bytes_behind_a_spliced_body_never_reach_the_client(
    proxy: SocketAddr,
    origin_conns: &std::sync::atomic::AtomicUsize,
) {
    let mut c = Client::connect(proxy);
    for i in 0..3 {
        let r = c.get("/x");
        assert_eq!(r.status, 200, "request {i}");
        assert!(
            r.body.len() > LARGE[1] - 100,
            "request {i}: {} bytes",
            r.body.len()
        );
        assert!(r.body == body_of(r.body.len()), "request {i}: body differs");
    }
    assert_eq!(c.get("/x").status, 200, "not the forged bytes either");
    assert_eq!(
        origin_conns.load(std::sync::atomic::Ordering::SeqCst),
        4,
        "a connection out of step was reused"
    );
}
