//! `proxy-reverse-demo-origin`: a tiny HTTP/1.1 origin for trying the proxy, std only.
//!
//! ```text
//! proxy-reverse-demo-origin [--exit-with-parent] ADDR...
//! ```
//!
//! Listens on every `ADDR` it can bind (an address already in use is left to whatever
//! listens there, and said so), prints `ready: ...` once all are tried, and answers every
//! request `200` with one line naming itself, the method and the target:
//! `demo origin 127.0.0.1:8080: GET /index.php`. `GET /healthz` answers `ok`. Connections are
//! kept alive (HTTP/1.1, or HTTP/1.0 asking for it), `HEAD` gets the headers only, request
//! bodies (`Content-Length` or chunked) are read and dropped, `Expect: 100-continue` is
//! honoured. With `--exit-with-parent` it exits when the process that started it is gone
//! (`scripts/run-with-monkey.sh` uses it, so no origin outlives the script).
//!
//! Exit status: 0 after the parent left (or when no address could be bound), 2 usage error.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::thread;
use std::time::Duration;

/// How long a kept-alive connection may stay idle; longer than the plugin's default
/// `UpstreamKeepAliveTimeout` (60 s), so the proxy closes first.
const IDLE: Duration = Duration::from_secs(75);

/// Largest request head read (the proxy's own limit is smaller).
const MAX_HEAD: usize = 64 * 1024;

const USAGE: &str = "usage: proxy-reverse-demo-origin [--exit-with-parent] ADDR...";

fn main() -> ExitCode {
    let mut exit_with_parent = false;
    let mut addrs = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--exit-with-parent" => exit_with_parent = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            a => match a.parse::<SocketAddr>() {
                Ok(addr) => addrs.push(addr),
                Err(_) => {
                    eprintln!(
                        "proxy-reverse-demo-origin: `{a}` is not an IP:PORT address\n{USAGE}"
                    );
                    return ExitCode::from(2);
                }
            },
        }
    }
    if addrs.is_empty() {
        eprintln!("proxy-reverse-demo-origin: no address given\n{USAGE}");
        return ExitCode::from(2);
    }
    let parent = std::os::unix::process::parent_id();
    let mut bound = Vec::new();
    for addr in addrs {
        match TcpListener::bind(addr) {
            Ok(listener) => {
                let name = addr.to_string();
                bound.push(name.clone());
                thread::spawn(move || serve(listener, name));
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                println!("{addr} is in use: left to whatever listens there");
            }
            Err(e) => println!("{addr}: cannot listen: {e}"),
        }
    }
    if bound.is_empty() {
        println!("ready: no demo origin started");
        return ExitCode::SUCCESS;
    }
    println!("ready: demo origins on {}", bound.join(" "));
    let _ = io::stdout().flush();
    loop {
        thread::sleep(Duration::from_millis(250));
        if exit_with_parent && std::os::unix::process::parent_id() != parent {
            return ExitCode::SUCCESS;
        }
    }
}

fn serve(listener: TcpListener, name: String) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let name = name.clone();
                thread::spawn(move || {
                    let _ = connection(stream, &name);
                });
            }
            // Out of descriptors and the like: wait a little rather than spin.
            Err(_) => thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// One request head.
struct Request {
    method: String,
    target: String,
    keep_alive: bool,
    body: Body,
    expect_continue: bool,
}

enum Body {
    None,
    Length(u64),
    Chunked,
}

/// Serves requests on one connection until the client closes, asks to, or errs.
fn connection(stream: TcpStream, name: &str) -> io::Result<()> {
    stream.set_read_timeout(Some(IDLE))?;
    stream.set_write_timeout(Some(IDLE))?;
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_head(&mut reader)? {
            Some(Ok(r)) => r,
            Some(Err(why)) => {
                let body = format!("demo origin {name}: bad request: {why}\n");
                write!(
                    out,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )?;
                return Ok(());
            }
            None => return Ok(()),
        };
        if request.expect_continue && !matches!(request.body, Body::None) {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        match request.body {
            Body::None => {}
            Body::Length(n) => {
                io::copy(&mut (&mut reader).take(n), &mut io::sink())?;
            }
            Body::Chunked => drain_chunked(&mut reader)?,
        }
        let path = request.target.split('?').next().unwrap_or("");
        let body = if path == "/healthz" {
            "ok\n".to_string()
        } else {
            format!(
                "demo origin {name}: {} {}\n",
                request.method, request.target
            )
        };
        let connection = if request.keep_alive {
            "keep-alive"
        } else {
            "close"
        };
        let mut response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: {}\r\nX-Demo-Origin: {name}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        );
        if request.method != "HEAD" {
            response.push_str(&body);
        }
        out.write_all(response.as_bytes())?;
        if !request.keep_alive {
            return Ok(());
        }
    }
}

/// Reads one request head: `None` when the client closed (or idled out) between requests.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Result<Request, String>>> {
    let mut lines = Vec::new();
    let mut size = 0;
    loop {
        let mut line = String::new();
        let n = match reader.read_line(&mut line) {
            Ok(n) => n,
            Err(e)
                if lines.is_empty()
                    && matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
            {
                return Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Ok(Some(Err("the head is not UTF-8".into())))
            }
            Err(e) => return Err(e),
        };
        if n == 0 {
            return if lines.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        size += n;
        if size > MAX_HEAD {
            return Ok(Some(Err("the head is too large".into())));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            if lines.is_empty() {
                // A stray empty line between requests (RFC 9112 §2.2 lets servers skip it).
                continue;
            }
            return Ok(Some(parse_head(&lines)));
        }
        lines.push(line);
    }
}

fn parse_head(lines: &[String]) -> Result<Request, String> {
    let mut parts = lines[0].split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("`{}` is not a request line", lines[0]));
    };
    let http11 = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        v => return Err(format!("version `{v}` is not HTTP/1.0 or HTTP/1.1")),
    };
    let mut keep_alive = http11;
    let mut body = Body::None;
    let mut expect_continue = false;
    for line in &lines[1..] {
        let (field, value) = line
            .split_once(':')
            .ok_or_else(|| format!("`{line}` is not a header field"))?;
        let value = value.trim();
        let has = |token: &str| {
            value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case(token))
        };
        if field.eq_ignore_ascii_case("connection") {
            if has("close") {
                keep_alive = false;
            } else if has("keep-alive") {
                keep_alive = true;
            }
        } else if field.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse()
                .map_err(|_| format!("Content-Length `{value}`"))?;
            if !matches!(body, Body::Chunked) {
                body = Body::Length(n);
            }
        } else if field.eq_ignore_ascii_case("transfer-encoding") {
            if !has("chunked") {
                return Err(format!("Transfer-Encoding `{value}`"));
            }
            body = Body::Chunked;
        } else if field.eq_ignore_ascii_case("expect") {
            expect_continue = value.eq_ignore_ascii_case("100-continue");
        }
    }
    Ok(Request {
        method: method.to_string(),
        target: target.to_string(),
        keep_alive,
        body,
        expect_continue,
    })
}

/// Reads a chunked body to its end (trailers included) and drops it.
fn drain_chunked(reader: &mut impl BufRead) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunked body");
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad());
        }
        let size = line.trim_end().split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size, 16).map_err(|_| bad())?;
        if size == 0 {
            // Trailer fields, then the empty line.
            loop {
                let mut t = String::new();
                if reader.read_line(&mut t)? == 0 {
                    return Err(bad());
                }
                if t.trim_end().is_empty() {
                    return Ok(());
                }
            }
        }
        io::copy(&mut reader.by_ref().take(size), &mut io::sink())?;
        let mut crlf = String::new();
        reader.read_line(&mut crlf)?;
        if !crlf.trim_end().is_empty() {
            return Err(bad());
        }
    }
}
