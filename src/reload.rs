//! Changing the configuration without a restart, off the workers: a thread of its own reads
//! and validates the file (its DNS lookups and regex compilation never run on a worker), builds
//! the new proxy from the one in service (servers that stay keep their health, administrative
//! state and statistics) and swaps it in. Requests in flight finish on the configuration they
//! started with.
//!
//! Work reaches the thread as [`Job`]s: from the admin endpoint, whose request waits for the
//! answer without blocking its worker ([`Waiting`]: the thread writes the answer into a shared
//! slot and wakes the worker through a socket the worker's loop watches), or from a signal
//! ([`Reloader::control_fd`]: one byte written from a signal handler asks for a reload whose
//! outcome is only logged).

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::json;

use crate::config::{self, Config};
use crate::http::status::LocalPage;
use crate::log;
use crate::proxy::admin;
pub use crate::proxy::Job;
use crate::proxy::{Current, Proxy};

/// The byte a signal handler writes to [`Reloader::control_fd`] to ask for a reload.
pub const SIGNAL_BYTE: u8 = b'S';

/// The byte [`Reloader::submit`] writes after queueing a job.
const JOB_BYTE: u8 = b'J';

/// Where the answer to a submitted job appears, and the socket that becomes readable when it
/// has. A worker watches `wake` and takes the page from the slot.
#[derive(Debug)]
pub struct Waiting {
    answer: Arc<Mutex<Option<LocalPage>>>,
    wake: UnixStream,
}

impl Waiting {
    /// The answer, once the job is done (never blocks: the thread holds the lock only to
    /// store it).
    pub fn take(&self) -> Option<LocalPage> {
        self.answer.try_lock()?.take()
    }

    /// The socket to watch (readable once the answer is in).
    pub fn wake_fd(&self) -> RawFd {
        self.wake.as_raw_fd()
    }

    /// Reads the wake-up byte, so that a level-triggered loop does not report it again.
    pub fn drain(&self) {
        let mut bytes = [0u8; 8];
        let _ = (&self.wake).read(&mut bytes);
    }
}

/// How the thread hands an answer back.
struct Reply {
    answer: Arc<Mutex<Option<LocalPage>>>,
    wake: UnixStream,
}

/// The handle of the reload thread.
#[derive(Debug)]
pub struct Reloader {
    jobs: Mutex<Sender<(Job, Reply)>>,
    control: UnixStream,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reply")
    }
}

impl Reloader {
    /// Starts the thread that reloads `path` into `current` (without a path, only weight
    /// changes can be made; a reload is answered 503).
    pub fn spawn(current: Arc<Current>, path: Option<PathBuf>) -> io::Result<Reloader> {
        let (control, mut thread_end) = UnixStream::pair()?;
        let (jobs, queue) = mpsc::channel::<(Job, Reply)>();
        std::thread::Builder::new()
            .name("proxy-reload".into())
            .spawn(move || serve(&current, path.as_deref(), &mut thread_end, &queue))?;
        control.set_nonblocking(true)?;
        Ok(Reloader {
            jobs: Mutex::new(jobs),
            control,
        })
    }

    /// Queues `job`; its answer (a page for the client that asked) comes through the
    /// returned [`Waiting`]. Never blocks.
    pub fn submit(&self, job: Job) -> io::Result<Waiting> {
        let (wake, thread_end) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        let answer = Arc::new(Mutex::new(None));
        let reply = Reply {
            answer: answer.clone(),
            wake: thread_end,
        };
        self.jobs
            .lock()
            .send((job, reply))
            .map_err(|_| io::Error::other("the reload thread is gone"))?;
        // The thread reads one byte per job (a full buffer means it has bytes enough).
        let _ = (&self.control).write(&[JOB_BYTE]);
        Ok(Waiting { answer, wake })
    }

    /// The socket a signal handler may write [`SIGNAL_BYTE`] to (`write(2)` is
    /// async-signal-safe) to ask for a reload from the file.
    pub fn control_fd(&self) -> RawFd {
        self.control.as_raw_fd()
    }
}

/// The thread: one byte per request on `control`, jobs on `queue`.
fn serve(
    current: &Current,
    path: Option<&Path>,
    control: &mut UnixStream,
    queue: &Receiver<(Job, Reply)>,
) {
    let mut byte = [0u8; 1];
    loop {
        match control.read(&mut byte) {
            Ok(0) | Err(_) => return,
            Ok(_) if byte[0] == SIGNAL_BYTE => {
                if let Some(path) = path {
                    let _ = reload(current, path, "a signal");
                }
            }
            Ok(_) => {
                while let Ok((job, reply)) = queue.try_recv() {
                    let page = run(current, path, &job);
                    *reply.answer.lock() = Some(page);
                    let _ = (&reply.wake).write(&[1]);
                }
            }
        }
    }
}

/// The answer to a reload.
#[derive(serde::Serialize)]
struct Reloaded<'a> {
    reloaded: bool,
    file: &'a Path,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    problems: Vec<String>,
}

/// Does `job` and answers it.
fn run(current: &Current, path: Option<&Path>, job: &Job) -> LocalPage {
    match job {
        Job::Reload { by } => {
            let Some(path) = path else {
                return LocalPage::json(
                    503,
                    &json!({ "error": "no configuration file to reload" }),
                );
            };
            let outcome = reload(current, path, by);
            let status = if outcome.is_ok() { 200 } else { 400 };
            let (summary, problems) = match outcome {
                Ok(summary) => (Some(summary), Vec::new()),
                Err(problems) => (None, problems),
            };
            LocalPage::json(
                status,
                &Reloaded {
                    reloaded: status == 200,
                    file: path,
                    summary,
                    problems,
                },
            )
        }
        Job::Weight {
            entry,
            server,
            weight,
            by,
        } => match reweigh(current, entry, server, *weight, by) {
            Ok(view) => LocalPage::json(200, &view),
            Err(problem) => LocalPage::json(404, &json!({ "error": problem })),
        },
    }
}

/// Reads `path` again and puts it in service if it validates (`by` asked for it); the
/// summary, or every problem (`FILE:LINE: problem`). Both are logged.
pub fn reload(current: &Current, path: &Path, by: &str) -> Result<String, Vec<String>> {
    let outcome = config::load(path)
        .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())
        .and_then(|config| swap_in(current, config).map_err(|e| vec![e]));
    match &outcome {
        Ok(summary) => log::info(&format!(
            "{}: reloaded (asked by {by}): {summary}",
            path.display()
        )),
        Err(problems) => {
            for p in problems {
                log::error(p);
            }
            log::error(&format!(
                "{}: reload asked by {by} refused ({} problem{}); the configuration in service stays",
                path.display(),
                problems.len(),
                if problems.len() == 1 { "" } else { "s" }
            ));
        }
    }
    outcome
}

/// Builds the proxy for `config` from the one in service and swaps it in.
fn swap_in(current: &Current, config: Config) -> Result<String, String> {
    let old = current.load();
    for w in config.warnings() {
        log::warn(&format!("{}:{}: {}", w.file.display(), w.line, w.message));
    }
    let proxy = Proxy::reloaded(config, &old)?;
    let summary = proxy.config.summary();
    current.swap(Arc::new(proxy));
    Ok(summary)
}

/// Rebuilds the proxy in service with server `server` of entry `entry` weighing `weight`
/// (`by` asked for it); the server as the admin endpoint shows it.
fn reweigh(
    current: &Current,
    entry: &str,
    server: &str,
    weight: u32,
    by: &str,
) -> Result<admin::ServerView, String> {
    let mut config = current.load().config.clone();
    let e = config
        .entries
        .iter_mut()
        .find(|e| e.name == entry)
        .ok_or_else(|| format!("no entry `{entry}`"))?;
    let s = e
        .servers
        .iter_mut()
        .find(|s| s.name == server)
        .ok_or_else(|| format!("entry `{entry}` has no server `{server}`"))?;
    let old = std::mem::replace(&mut s.weight, weight);
    swap_in(current, config)?;
    log::info(&format!(
        "admin: {by} set entry {entry} server {server}: weight {old} -> {weight} (until the next reload from the file)"
    ));
    let proxy = current.load();
    let (e, s) = admin::find(&proxy, entry, server)?;
    Ok(admin::server_view(&proxy, e, s, crate::clock::now_ms()))
}
