//! The quick start's demo origin (`proxy-reverse-demo-origin`): 200 for every request naming
//! itself and the target, keep-alive, HEAD without a body, request bodies read, `/healthz`,
//! busy addresses left alone, and no origin outliving its parent.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_proxy-reverse-demo-origin");

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

/// A running origin, killed when dropped.
struct Origin {
    child: Child,
    /// Everything it printed up to and including its `ready:` line.
    said: Vec<String>,
    _stdout: BufReader<ChildStdout>,
}

impl Origin {
    fn start(addrs: &[SocketAddr]) -> Origin {
        let mut child = Command::new(BIN)
            .args(addrs.iter().map(|a| a.to_string()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut said = Vec::new();
        for _ in 0..addrs.len() + 1 {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let ready = line.starts_with("ready:");
            said.push(line.trim_end().to_string());
            if ready {
                break;
            }
        }
        assert!(
            said.last().is_some_and(|l| l.starts_with("ready:")),
            "{said:?}"
        );
        Origin {
            child,
            said,
            _stdout: stdout,
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One response: status line, head fields (lower-case names), body.
#[derive(Debug)]
struct Response {
    status: String,
    fields: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_response(r: &mut BufReader<TcpStream>, head_only: bool) -> Response {
    let mut status = String::new();
    r.read_line(&mut status).unwrap();
    let mut fields = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (n, v) = line.split_once(':').unwrap();
        fields.push((n.to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut resp = Response {
        status: status.trim_end().to_string(),
        fields,
        body: String::new(),
    };
    if !head_only {
        let n: u64 = resp.field("content-length").unwrap().parse().unwrap();
        r.by_ref().take(n).read_to_string(&mut resp.body).unwrap();
    }
    resp
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

#[test]
fn answers_200_naming_itself_on_one_kept_alive_connection() {
    let addr = free_addr();
    let _origin = Origin::start(&[addr]);
    let (mut s, mut r) = connect(addr);
    let host = format!("Host: {addr}\r\n");

    s.write_all(format!("GET /index.php?x=1 HTTP/1.1\r\n{host}\r\n").as_bytes())
        .unwrap();
    let resp = read_response(&mut r, false);
    assert_eq!(resp.status, "HTTP/1.1 200 OK");
    assert_eq!(
        resp.body,
        format!("demo origin {addr}: GET /index.php?x=1\n")
    );
    assert_eq!(resp.field("x-demo-origin"), Some(addr.to_string().as_str()));
    assert_eq!(resp.field("connection"), Some("keep-alive"));

    // HEAD: the same head, no body; the next response follows at once.
    s.write_all(format!("HEAD /a.jpg HTTP/1.1\r\n{host}\r\n").as_bytes())
        .unwrap();
    let head = read_response(&mut r, true);
    assert_eq!(head.status, "HTTP/1.1 200 OK");
    let expected = format!("demo origin {addr}: HEAD /a.jpg\n");
    assert_eq!(
        head.field("content-length"),
        Some(expected.len().to_string().as_str())
    );

    // Bodies are read and dropped, by length and chunked, with or without 100-continue;
    // two requests sent at once are both answered, in order.
    s.write_all(
        format!(
            "POST /form HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nhello\
             PUT /up HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    assert_eq!(
        read_response(&mut r, false).body,
        format!("demo origin {addr}: POST /form\n")
    );
    assert_eq!(
        read_response(&mut r, false).body,
        format!("demo origin {addr}: PUT /up\n")
    );
    s.write_all(
        format!("POST /e HTTP/1.1\r\n{host}Expect: 100-continue\r\nContent-Length: 2\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(read_response(&mut r, true).status, "HTTP/1.1 100 Continue");
    s.write_all(b"ok").unwrap();
    assert_eq!(
        read_response(&mut r, false).body,
        format!("demo origin {addr}: POST /e\n")
    );

    s.write_all(format!("GET /healthz HTTP/1.1\r\n{host}\r\n").as_bytes())
        .unwrap();
    assert_eq!(read_response(&mut r, false).body, "ok\n");

    // HTTP/1.0 without keep-alive, or `Connection: close`: answered, then closed.
    s.write_all(b"GET /old HTTP/1.0\r\n\r\n").unwrap();
    let resp = read_response(&mut r, false);
    assert_eq!(resp.field("connection"), Some("close"));
    let mut rest = Vec::new();
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);

    let (mut s, mut r) = connect(addr);
    s.write_all(b"GET /k HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /c HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_response(&mut r, false).field("connection"),
        Some("keep-alive")
    );
    assert_eq!(
        read_response(&mut r, false).field("connection"),
        Some("close")
    );
    assert_eq!(r.read_to_end(&mut rest).unwrap(), 0);

    // Garbage: 400, closed.
    let (mut s, mut r) = connect(addr);
    s.write_all(b"nonsense\r\n\r\n").unwrap();
    assert_eq!(
        read_response(&mut r, false).status,
        "HTTP/1.1 400 Bad Request"
    );
}

#[test]
fn several_addresses_and_a_busy_one_left_alone() {
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap();
    let (a, b) = (free_addr(), free_addr());
    let origin = Origin::start(&[a, busy_addr, b]);
    assert_eq!(
        origin.said,
        [
            format!("{busy_addr} is in use: left to whatever listens there"),
            format!("ready: demo origins on {a} {b}"),
        ]
    );
    for addr in [a, b] {
        let (mut s, mut r) = connect(addr);
        s.write_all(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n").unwrap();
        assert_eq!(
            read_response(&mut r, false).body,
            format!("demo origin {addr}: GET /x\n")
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["not-an-address"][..]] {
        let out = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
    }
}

#[test]
fn exits_when_its_parent_is_gone() {
    let addr = free_addr();
    // bash starts the origin, waits until it accepts (bounded), and exits: the origin follows.
    let out = Command::new("bash")
        .arg("-c")
        .arg(
            "\"$0\" --exit-with-parent \"$1\" >/dev/null &
             for _ in $(seq 100); do
               (exec 3<>\"/dev/tcp/127.0.0.1/$2\") 2>/dev/null && exit 0
               sleep 0.05
             done
             exit 1",
        )
        .arg(BIN)
        .arg(addr.to_string())
        .arg(addr.port().to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "the origin never accepted: {out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the demo origin on {addr} outlived its parent"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
