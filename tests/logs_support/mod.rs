//! What the log tests of both hosts share: readers of the two kinds of lines, the origins
//! that make requests fail, and the requests that fail.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use proxy_reverse::log;

/// A response head promising 100 bytes, then 5 of them and the end of the connection.
pub const CUT_REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";

/// The access log's fields, as documented in `docs/logs.md` (the Promtail stage uses this
/// expression; a test that reads the log with it checks the documentation too).
pub const ACCESS_REGEX: &str = r#"^(?P<remote_addr>\S+) - (?P<remote_user>\S+) \[(?P<time_local>[^\]]+)\] "(?P<method>\S+) (?P<target>\S+) (?P<protocol>[^"]+)" (?P<status>\d{3}) (?P<body_bytes_sent>\d+) "(?P<referer>[^"]*)" "(?P<user_agent>[^"]*)" (?P<upstream_addr>\S+) (?P<upstream_status>\S+) (?P<upstream_connect_time>\S+) (?P<upstream_header_time>\S+) (?P<upstream_response_time>\S+) (?P<attempts>\d+) (?P<upstream_bytes_sent>\d+) (?P<upstream_bytes_received>\d+) (?P<entry>\S+)$"#;

/// Every line logged in this test process (tests tell theirs apart by entry name); the
/// first call makes the crate's log sink write here (stand-in host tests).
pub fn captured() -> &'static Mutex<Vec<String>> {
    static LINES: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    LINES.get_or_init(|| {
        log::set_sink(|level, line| captured().lock().unwrap().push(format!("{level:?} {line}")));
        Mutex::new(Vec::new())
    })
}

/// The lines logged so far (after those queued reached the sink).
pub fn lines() -> Vec<String> {
    captured();
    assert!(
        log::flush(Duration::from_secs(10)),
        "the log thread is stuck"
    );
    captured().lock().unwrap().clone()
}

/// One entry named `name` matching every path, for `servers`, with the entry lines `extra`.
pub fn named_conf(name: &str, servers: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "[PROXY_ENTRY]\n    Name {name}\n    Match ^/\n    ServerList {}\n{extra}",
        list.join(" ")
    )
}

/// The fields of every failed-request line about entry `entry` in `lines` (whatever the
/// host puts in front of them), key by key; `path` without its quotes.
pub fn failed_of<S: AsRef<str>>(lines: &[S], entry: &str) -> Vec<BTreeMap<String, String>> {
    let tag = format!("entry {entry}: failed request ");
    lines
        .iter()
        .filter_map(|l| {
            let l = l.as_ref();
            let rest = &l[l.find(&tag)? + tag.len()..];
            Some(
                rest.split(' ')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                    .collect(),
            )
        })
        .collect()
}

/// The counts of every `N similar lines suppressed` line about entry `entry`.
pub fn suppressed_of<S: AsRef<str>>(lines: &[S], entry: &str) -> Vec<u64> {
    let tag = format!("entry {entry}: ");
    lines
        .iter()
        .filter_map(|l| {
            let l = l.as_ref();
            let rest = &l[l.find(&tag)? + tag.len()..];
            let (n, what) = rest.split_once(' ')?;
            what.starts_with("similar line").then(|| n.parse().ok())?
        })
        .collect()
}

/// Asserts that `fields` has `expected` (key, value) pairs, and numbers where `numbers` says.
pub fn assert_fields(
    fields: &BTreeMap<String, String>,
    expected: &[(&str, &str)],
    numbers: &[&str],
) {
    for (k, v) in expected {
        assert_eq!(
            fields.get(*k).map(String::as_str),
            Some(*v),
            "{k} in {fields:?}"
        );
    }
    for k in numbers {
        let v = fields
            .get(*k)
            .unwrap_or_else(|| panic!("no {k} in {fields:?}"));
        assert!(
            v.parse::<f64>().is_ok(),
            "{k}={v} is not a number: {fields:?}"
        );
    }
}

/// A backend that takes connections and requests and never answers (each connection is
/// held, read, until the proxy closes it or 60 s pass).
pub fn mute_origin() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                let mut buf = [0u8; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// `threads` clients, each sending `per_thread` requests for `path` one after the other on
/// keep-alive connections (a new one every 500 requests); the statuses, counted.
pub fn load(
    proxy: SocketAddr,
    path: &str,
    threads: usize,
    per_thread: usize,
) -> BTreeMap<u16, usize> {
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut seen = BTreeMap::new();
                let mut c = crate::common::Client::connect(proxy);
                for i in 0..per_thread {
                    if i > 0 && i % 500 == 0 {
                        c = crate::common::Client::connect(proxy);
                    }
                    let status = c.get(&path).status;
                    *seen.entry(status).or_insert(0) += 1;
                }
                seen
            })
        })
        .collect();
    let mut all = BTreeMap::new();
    for h in handles {
        for (status, n) in h.join().expect("a load thread") {
            *all.entry(status).or_insert(0) += n;
        }
    }
    all
}

/// Sends `GET path` and reads until the proxy closes or answers; the status line's code, if
/// one came, and everything read.
pub fn get_raw(proxy: SocketAddr, path: &str) -> (Option<u16>, Vec<u8>) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let status = std::str::from_utf8(all.get(9..12).unwrap_or(b""))
        .ok()
        .and_then(|s| s.parse().ok());
    (status, all)
}

/// The access log's lines, each parsed with [`ACCESS_REGEX`] (panics on a line it does not
/// match).
pub fn access_lines(path: &Path) -> Vec<BTreeMap<String, String>> {
    let re = regex::Regex::new(ACCESS_REGEX).unwrap();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| {
            let c = re
                .captures(line)
                .unwrap_or_else(|| panic!("not an access log line: {line:?}"));
            re.capture_names()
                .flatten()
                .map(|n| (n.to_string(), c[n].to_string()))
                .collect()
        })
        .collect()
}

/// A fresh file name in the system's temporary directory (the file is not created).
pub fn temp_log(tag: &str) -> std::path::PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let p = std::env::temp_dir().join(format!(
        "proxy_reverse_access_{}_{tag}_{n}.log",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&p);
    p
}
