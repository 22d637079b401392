//! A real Monkey v1.8 started around the freshly built plugin, for end-to-end tests.
//!
//! `Monkey::start(conf)` lays out a scratch configuration root (monkey.conf, monkey.mime,
//! plugins.load, sites/default, the plugin's own config), starts `$MONKEY_BIN -c <root>` in the
//! foreground with its log captured to a file, and waits until the port accepts. Dropping it
//! stops the process (SIGTERM, then SIGKILL after a bounded wait) and removes the directory.
#![allow(dead_code)]

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The Monkey binary (`MONKEY_BIN`). Real-Monkey tests are marked
/// `#[cfg_attr(not(monkey), ignore = ...)]`: `build.rs` sets `cfg(monkey)` when `MONKEY_BIN`
/// is set, so without it `cargo test` reports them ignored, and one run on purpose
/// (`--include-ignored`) fails here with this message instead of passing without a server.
pub fn monkey_bin() -> PathBuf {
    match std::env::var_os("MONKEY_BIN") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "MONKEY_BIN is not set: point it at a Monkey v1.8 build to run the real-server tests"
        ),
    }
}

/// The plugin to load: `$PROXY_REVERSE_SO`, else the cdylib cargo built with this test binary.
///
/// `cargo test` leaves the cdylib in `target/<profile>/deps/` (next to the test binary) and
/// only `cargo build` copies it up to `target/<profile>/`; look in both, deps first because
/// it is the one built from the same sources as this test.
pub fn plugin_so() -> PathBuf {
    if let Some(p) = std::env::var_os("PROXY_REVERSE_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary directory");
    for dir in [Some(deps), deps.parent()].into_iter().flatten() {
        let so = dir.join("libproxy_reverse.so");
        if so.is_file() {
            return so;
        }
    }
    panic!(
        "libproxy_reverse.so not found next to {} (build it with cargo build, or set PROXY_REVERSE_SO)",
        exe.display()
    );
}

/// Where Monkey's shipped configuration (for monkey.mime) lives.
fn monkey_conf_dir(bin: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("MONKEY_CONF") {
        return PathBuf::from(p);
    }
    bin.parent()
        .and_then(Path::parent)
        .map(|p| p.join("conf"))
        .expect("MONKEY_BIN has no parent directory")
}

/// A port nothing listens on right now (the OS picks it; tiny race until Monkey binds it).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A directory name unique across concurrent tests and test processes. No `-` in it: Monkey
/// derives the plugin symbol from the text after the last `-` of the whole Load path.
fn scratch_dir() -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "proxy_reverse_e2e_{}_{}_{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ))
}

/// Descriptors the workers of a test Monkey (`Workers 2`) keep by design between requests:
/// one empty pipe each for spliced bodies.
pub const KEPT_PIPE_FDS: usize = 2 * 2;

/// A running Monkey with the plugin loaded; every path is mapped to the plugin.
pub struct Monkey {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// On a TLS listener: the self-signed certificate it serves (DER), for clients to trust.
    tls_cert: Option<Vec<u8>>,
}

impl Monkey {
    /// Starts Monkey with `plugin_conf` as `proxy_reverse.conf`. Panics (with the log) if it
    /// exits or does not accept connections within 15 s.
    pub fn start(plugin_conf: &str) -> Monkey {
        Monkey::start_with(plugin_conf, None)
    }

    /// Like [`Monkey::start`], with at most `fds` open descriptors (`ulimit -n`, through
    /// `sh`, which then becomes Monkey).
    pub fn start_with_fd_limit(plugin_conf: &str, fds: u32) -> Monkey {
        Monkey::start_with(plugin_conf, Some(fds))
    }

    fn start_with(plugin_conf: &str, fd_limit: Option<u32>) -> Monkey {
        let mut m = Monkey::spawn(plugin_conf, fd_limit, false);
        m.wait_ready();
        m
    }

    /// Like [`Monkey::start`] on a TLS listener (`Listen … tls`, Monkey's own TLS layer) with a
    /// self-signed certificate for 127.0.0.1 made now ([`Monkey::tls_cert`]).
    pub fn start_tls(plugin_conf: &str) -> Monkey {
        let mut m = Monkey::spawn(plugin_conf, None, true);
        m.wait_ready();
        m
    }

    /// The certificate a TLS Monkey serves (DER), `None` on a plain listener.
    pub fn tls_cert(&self) -> Option<&[u8]> {
        self.tls_cert.as_deref()
    }

    /// Starts Monkey with `plugin_conf` and expects it to refuse to start: waits (at most
    /// 10 s) for it to exit, checking all the while that its port never accepts. Returns the
    /// exit code, how long it ran, and its output.
    pub fn start_expecting_refusal(plugin_conf: &str) -> (Option<i32>, Duration, String) {
        let mut m = Monkey::spawn(plugin_conf, None, false);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(10);
        loop {
            if let Some(status) = m.child.try_wait().expect("wait for Monkey") {
                let ran = started.elapsed();
                return (status.code(), ran, m.log());
            }
            assert!(
                TcpStream::connect(m.addr()).is_err(),
                "Monkey listens with a broken configuration; log:\n{}",
                m.log()
            );
            assert!(
                Instant::now() < deadline,
                "Monkey still runs after 10 s; log:\n{}",
                m.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Lays out the scratch configuration and starts `$MONKEY_BIN` on it, without waiting.
    fn spawn(plugin_conf: &str, fd_limit: Option<u32>, tls: bool) -> Monkey {
        let bin = monkey_bin();
        let dir = scratch_dir();
        let conf = dir.join("conf");
        fs::create_dir_all(conf.join("sites")).unwrap();
        fs::create_dir_all(conf.join("plugins/proxy_reverse")).unwrap();
        fs::create_dir_all(dir.join("lib")).unwrap();
        fs::create_dir_all(dir.join("htdocs")).unwrap();
        let d = dir.display();
        let port = free_port();
        // Keys must be indented (rconf). No `User` line: the server keeps the caller's
        // identity, so it can read the scratch files whoever runs the tests.
        let tls_cert = tls.then(|| {
            let key = rcgen::KeyPair::generate().expect("key");
            let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
            let cert = params.self_signed(&key).expect("certificate");
            fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
            fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
            fs::write(
                conf.join("tls.conf"),
                format!(
                    "[TLS]\n    CertificateFile {d}/cert.pem\n    RSAKeyFile {d}/key.pem\n",
                    d = dir.display()
                ),
            )
            .unwrap();
            cert.der().to_vec()
        });
        let listen_flags = if tls { " tls" } else { "" };
        let monkey_conf = format!(
            "[SERVER]\n    Listen 127.0.0.1:{port}{listen_flags}\n    Workers 2\n    Timeout 15\n    \
             PidFile {d}/monkey.pid\n    UserDir public_html\n    Indexfile index.html\n    \
             HideVersion Off\n    Resume On\n    KeepAlive On\n    KeepAliveTimeout 5\n    \
             MaxKeepAliveRequest 1000\n    MaxRequestSize 32\n    SymLink Off\n    \
             DefaultMimeType text/plain\n    FDT On\n    OverCapacity Resist\n"
        );
        fs::write(conf.join("monkey.conf"), monkey_conf).unwrap();
        let mime = monkey_conf_dir(&bin).join("monkey.mime");
        fs::copy(&mime, conf.join("monkey.mime"))
            .unwrap_or_else(|e| panic!("copy {}: {e} (set MONKEY_CONF)", mime.display()));
        // Named `*-proxy_reverse.so` so Monkey looks up the symbol `mk_plugin_proxy_reverse`.
        let so = dir.join("lib/monkey-proxy_reverse.so");
        fs::copy(plugin_so(), &so).expect("copy the plugin");
        fs::write(
            conf.join("plugins.load"),
            format!("[PLUGINS]\n    Load {}\n", so.display()),
        )
        .unwrap();
        fs::write(
            conf.join("sites/default"),
            format!(
                "[HOST]\n    ServerName 127.0.0.1\n    DocumentRoot {d}/htdocs\n\n\
                 [HANDLERS]\n    Match /.* proxy_reverse\n"
            ),
        )
        .unwrap();
        fs::write(
            conf.join("plugins/proxy_reverse/proxy_reverse.conf"),
            plugin_conf,
        )
        .unwrap();

        let log = fs::File::create(dir.join("monkey.log")).unwrap();
        let mut command = match fd_limit {
            None => Command::new(&bin),
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(&bin);
                c
            }
        };
        let child = command
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        Monkey {
            child,
            dir,
            port,
            tls_cert,
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("Monkey exited at start-up ({status}); log:\n{}", self.log());
            }
            if TcpStream::connect(self.addr()).is_ok() {
                self.settle();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Monkey does not accept on {} after 15 s; log:\n{}",
                self.addr(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the fd count has not changed for 500 ms (at most 5 s).
    ///
    /// The port accepts before every worker has finished starting: a worker's plugin timerfd
    /// was seen appearing after the first client connections, which made a baseline taken
    /// right after start-up one or two fds too low.
    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.fd_count();
        let mut since = Instant::now();
        while Instant::now() < deadline && since.elapsed() < Duration::from_millis(500) {
            std::thread::sleep(Duration::from_millis(25));
            let n = self.fd_count();
            if n != last {
                last = n;
                since = Instant::now();
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything Monkey (and the plugin, through Monkey's logger) printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("monkey.log")).unwrap_or_default()
    }

    /// Monkey's log once `ready` holds for it (the plugin's lines reach the log from its log
    /// thread, a moment after what caused them), waiting at most 10 s, then 200 ms more so
    /// that a line written twice by mistake shows up too. Panics with the log if `ready`
    /// never holds.
    pub fn log_when(&self, ready: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + Duration::from_secs(10);
        while !ready(&self.log()) {
            assert!(
                Instant::now() < until,
                "not in Monkey's log within 10 s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(200));
        self.log()
    }

    /// Open file descriptors of the Monkey process (all its threads share one table).
    pub fn fd_count(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// What each open fd of the process points at (`socket:[inode]`, `anon_inode:[eventpoll]`,
    /// paths), sorted: printed when an fd check fails, to tell leaked sockets from other fds.
    pub fn fd_targets(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        fs::read_link(e.path())
                            .map(|t| {
                                format!("{} -> {}", e.file_name().to_string_lossy(), t.display())
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Polls `fd_count` until it is at most `limit` or `timeout` passes; returns the last count.
    pub fn wait_fds_at_most(&self, limit: usize, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.fd_count();
            if n <= limit || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Descriptors of the process that are pipes (Monkey's own, and those the plugin
    /// splices large bodies through).
    pub fn pipe_fd_count(&self) -> usize {
        self.fd_targets()
            .iter()
            .filter(|t| t.contains("-> pipe:"))
            .count()
    }

    /// [`Monkey::fd_count`] but for the empty pipe each worker may keep for its next spliced
    /// body (`relay::splice`: one pipe, two descriptors, per worker), told by the pipes
    /// beyond the `pipes_before` of an earlier [`Monkey::pipe_fd_count`].
    pub fn fds_but_kept_pipes(&self, pipes_before: usize) -> usize {
        let kept = self
            .pipe_fd_count()
            .saturating_sub(pipes_before)
            .min(KEPT_PIPE_FDS);
        self.fd_count() - kept
    }

    /// Polls [`Monkey::fds_but_kept_pipes`] until it is at most `limit` or `timeout` passes;
    /// returns the last count.
    pub fn wait_fds_but_kept_pipes_at_most(
        &self,
        limit: usize,
        pipes_before: usize,
        timeout: Duration,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self.fds_but_kept_pipes(pipes_before);
            if n <= limit || Instant::now() >= deadline {
                return n;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Panics (with the log) unless the server process is still running: a crash of Monkey
    /// is the worst failure a plugin can cause, so every test ends with this check.
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("Monkey died ({status}); log:\n{}", self.log());
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within 5 s. Idempotent.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // `kill(1)` rather than libc::kill: these tests stay free of `unsafe`.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The scratch directory (configuration root is `conf/` inside it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The plugin's configuration file (a reload reads it again).
    pub fn plugin_conf(&self) -> PathBuf {
        self.dir
            .join("conf/plugins/proxy_reverse/proxy_reverse.conf")
    }

    /// Resident memory of the process in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// Sends `signal` (a name such as `USR1`) to the process.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{signal} {}", self.pid());
    }
}

impl Drop for Monkey {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("E2E_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// A plugin configuration with one entry matching every path (shared with the stand-in
/// host's tests, which parse the same text: see [`crate::common::conf_for`]).
#[allow(unused_imports)]
pub use crate::common::conf_for;

/// Whether `wrk` can be run; prints the skip line when it cannot.
pub fn wrk_available() -> bool {
    let ok = Command::new("wrk").arg("--version").output().is_ok();
    if !ok {
        println!("skipped: wrk is not installed (apt-get install wrk)");
    }
    ok
}

/// Counts from wrk's summary; wrk prints the error lines only when they are non-zero.
#[derive(Debug, Default)]
pub struct WrkSummary {
    pub requests: u64,
    pub non_2xx: u64,
    pub socket_errors: u64,
}

pub fn parse_wrk(out: &str) -> WrkSummary {
    let mut s = WrkSummary::default();
    for line in out.lines().map(str::trim) {
        if let Some(n) = line.split_once(" requests in") {
            s.requests = n.0.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            s.non_2xx = v.trim().parse().unwrap_or(u64::MAX);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 3, write 0, timeout 0"
            s.socket_errors = v
                .split(',')
                .filter_map(|kv| kv.split_whitespace().nth(1))
                .map(|n| n.parse::<u64>().unwrap_or(u64::MAX))
                .sum();
        }
    }
    s
}
