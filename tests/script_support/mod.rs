//! Running `scripts/*.sh` from tests: already built binaries instead of a release build
//! (`PREBUILT`), the script in its own process group with its output collected line by line,
//! and a bounded stop of the whole group.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The backend addresses of the shipped example, where the quick start starts demo origins.
pub const DEMO_ADDRS: [&str; 4] = [
    "127.0.0.1:8080",
    "127.0.0.1:8081",
    "127.0.0.1:9001",
    "127.0.0.1:9002",
];

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under cargo's test scratch space.
pub fn scratch(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The plugin cargo built with this test (`target/<profile>/deps/libproxy_reverse.so`, or
/// the copy one level up).
fn plugin_so() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let found = [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join("libproxy_reverse.so"))
        .find(|p| p.is_file());
    found.expect("libproxy_reverse.so next to the test binary")
}

/// A `PREBUILT` directory: the plugin, the checker and the demo origin of this build.
pub fn prebuilt() -> PathBuf {
    let dir = scratch("prebuilt");
    let link =
        |from: PathBuf, name: &str| std::os::unix::fs::symlink(from, dir.join(name)).unwrap();
    link(plugin_so(), "libproxy_reverse.so");
    link(
        env!("CARGO_BIN_EXE_proxy-reverse-check").into(),
        "proxy-reverse-check",
    );
    link(
        env!("CARGO_BIN_EXE_proxy-reverse-demo-origin").into(),
        "proxy-reverse-demo-origin",
    );
    dir
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// Whether something accepts connections on `addr`.
pub fn listening(addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().unwrap();
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Waits (at most `within`) until nothing accepts on `addr`.
pub fn wait_closed(addr: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while listening(addr) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// A script running in its own process group; stdout and stderr lines arrive in order of
/// reading (stderr prefixed `! `).
pub struct Script {
    child: Child,
    lines: Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
}

impl Script {
    /// Starts `bash scripts/NAME args...` with `env` added to the environment.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Script {
        let mut cmd = Command::new("bash");
        cmd.arg(repo().join("scripts").join(name))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let (tx, lines) = channel();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        for (stream, prefix) in [
            (Box::new(out) as Box<dyn Read + Send>, ""),
            (Box::new(err) as Box<dyn Read + Send>, "! "),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(format!("{prefix}{line}")).is_err() {
                        break;
                    }
                }
            });
        }
        Script {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Collects lines until `done` holds for what was seen, the output ends, or `within`
    /// passes; returns whether `done` held.
    pub fn wait_for(&mut self, within: Duration, done: impl Fn(&[String]) -> bool) -> bool {
        let deadline = Instant::now() + within;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return done(&self.seen)
                }
            }
        }
        true
    }

    /// Waits (bounded) for the script to exit by itself; its exit code and all its output.
    pub fn finish(mut self, within: Duration) -> (Option<i32>, Vec<String>) {
        self.wait_for(within, |_| false);
        let deadline = Instant::now() + within;
        let code = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code();
            }
            if Instant::now() > deadline {
                self.stop();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (code, std::mem::take(&mut self.seen))
    }

    /// SIGTERM to the whole group, as a terminal's Ctrl-C reaches all of it; SIGKILL after
    /// 10 s. Returns whether the script exited after the SIGTERM.
    pub fn stop(&mut self) -> bool {
        let pgid = self.child.id().to_string();
        let signal = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
        };
        signal("-TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal("-KILL");
        let _ = self.child.wait();
        false
    }

    /// The output so far, one string.
    pub fn output(&self) -> String {
        self.seen.join("\n")
    }
}

impl Drop for Script {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            self.stop();
        }
    }
}

/// The URLs the quick start printed (`  http://...  what` lines): `(url, what)`.
pub fn printed_urls(lines: &[String]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix("  http://"))
        .map(|l| {
            let (url, what) = l.split_once(' ').unwrap_or((l, ""));
            (format!("http://{url}"), what.trim().to_string())
        })
        .collect()
}

/// `GET url` with `Connection: close`: status code and body.
pub fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut s = TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    use std::io::Write;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("\r\ntransfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// The data of a chunked body (test input: well-formed).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}
