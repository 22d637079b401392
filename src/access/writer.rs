//! The access log's writer thread: it alone opens and writes the file. Workers hand it
//! batches of formatted lines through a bounded queue (`sync_channel`, `try_send`): a full
//! queue drops the batch and counts its lines. It writes through a 64 KiB buffer, flushed
//! whenever the queue runs empty, so a busy log costs a few large writes a second.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::Options;
use crate::handoff::send_before;
use crate::log;

/// How long a caller off the workers waits for the thread to answer (open, flush).
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// What the thread is asked to do.
enum Msg {
    /// Formatted lines (each ending in `\n`) and how many.
    Lines(Vec<u8>, u64),
    /// Close the file and open this one (none: stay closed); answer how it went.
    Reopen(Option<PathBuf>, SyncSender<Result<(), String>>),
    /// Answer once everything queued before is written.
    Flush(SyncSender<()>),
    /// Stop reading the queue until the second channel says go (tests fill the queue so).
    Pause(SyncSender<()>, Receiver<()>),
}

/// Counters the thread and the handles share.
#[derive(Debug, Default)]
struct Counters {
    written: AtomicU64,
    dropped: AtomicU64,
}

/// The handle of one writer thread; the thread ends when the last handle is dropped.
#[derive(Debug)]
pub struct Writer {
    tx: SyncSender<Msg>,
    counters: Arc<Counters>,
    /// Lines a worker gathers before it sends them.
    pub(super) batch_lines: u64,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Writer {
    /// Starts a thread writing to `path` (opened, for appending, before this returns).
    pub(super) fn spawn(path: &Path, options: Options) -> Result<Writer, String> {
        let (tx, rx) = mpsc::sync_channel(options.queue.max(1));
        let counters = Arc::<Counters>::default();
        let (opened_tx, opened) = mpsc::sync_channel(1);
        let thread_counters = counters.clone();
        let path = path.to_path_buf();
        std::thread::Builder::new()
            .name("proxy-access-log".into())
            .spawn(move || {
                let file = match open(&path) {
                    Ok(file) => {
                        let _ = opened_tx.send(Ok(()));
                        Some(file)
                    }
                    Err(e) => {
                        let _ = opened_tx.send(Err(e));
                        return;
                    }
                };
                serve(&rx, &thread_counters, file);
            })
            .map_err(|e| format!("cannot start the access log's thread: {e}"))?;
        match opened.recv_timeout(ANSWER_WITHIN) {
            Ok(Ok(())) => Ok(Writer {
                tx,
                counters,
                batch_lines: options.batch_lines.max(1) as u64,
            }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err("the access log's thread did not answer".into()),
        }
    }

    /// Queues `lines` (`count` of them); drops and counts them when the queue is full. Never
    /// waits.
    pub(super) fn send(&self, lines: Vec<u8>, count: u64) {
        match self.tx.try_send(Msg::Lines(lines, count)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(count, Relaxed);
            }
        }
    }

    /// Closes the file and opens `path` (none: closed). On failure the old file stays.
    /// Waits for the thread: not for a worker.
    pub(super) fn reopen(&self, path: Option<&Path>) -> Result<(), String> {
        let (answer_tx, answer) = mpsc::sync_channel(1);
        self.tx
            .send(Msg::Reopen(path.map(Path::to_path_buf), answer_tx))
            .map_err(|_| "the access log's thread is gone".to_string())?;
        answer
            .recv_timeout(ANSWER_WITHIN)
            .unwrap_or_else(|_| Err("the access log's thread did not answer".into()))
    }

    /// Waits until everything queued before is in the file, at most `timeout`.
    pub(super) fn flush(&self, timeout: Duration) -> bool {
        let (done_tx, done) = mpsc::sync_channel(1);
        // A full queue is waited for (bounded): flushing is for tests and shutdown.
        let deadline = std::time::Instant::now() + timeout;
        if !send_before(&self.tx, Msg::Flush(done_tx), deadline) {
            return false;
        }
        done.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .is_ok()
    }

    /// Makes the thread stop reading the queue until the returned sender is dropped.
    pub(super) fn pause(&self) -> Option<SyncSender<()>> {
        let (ack_tx, ack) = mpsc::sync_channel(1);
        let (go, wait) = mpsc::sync_channel(1);
        self.tx.send(Msg::Pause(ack_tx, wait)).ok()?;
        ack.recv_timeout(ANSWER_WITHIN).ok()?;
        Some(go)
    }

    /// Lines written to the file so far.
    pub(super) fn written(&self) -> u64 {
        self.counters.written.load(Relaxed)
    }

    /// Lines lost so far: queue full, or the file refused them.
    pub(super) fn dropped(&self) -> u64 {
        self.counters.dropped.load(Relaxed)
    }
}

/// `path` opened for appending (created if missing, `0644` before the umask).
fn open(path: &Path) -> Result<BufWriter<File>, String> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map(|f| BufWriter::with_capacity(64 * 1024, f))
        .map_err(|e| format!("cannot open the access log `{}`: {e}", path.display()))
}

/// The thread: messages until every handle is gone.
fn serve(rx: &Receiver<Msg>, counters: &Counters, file: Option<BufWriter<File>>) {
    let mut out = Output {
        file,
        failing: false,
    };
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Lines(bytes, count) => out.write(&bytes, count, counters),
                Msg::Reopen(path, answer) => {
                    out.flush();
                    let result = match path {
                        None => {
                            out.file = None;
                            Ok(())
                        }
                        Some(path) => open(&path).map(|f| out.file = Some(f)),
                    };
                    if let Err(e) = &result {
                        log::error(&format!("access log: {e}; the file in use stays"));
                    }
                    let _ = answer.send(result);
                }
                Msg::Flush(done) => {
                    out.flush();
                    let _ = done.send(());
                }
                Msg::Pause(ack, wait) => {
                    out.flush();
                    let _ = ack.send(());
                    let _ = wait.recv();
                }
            }
            next = rx.try_recv().ok();
        }
        out.flush();
    }
    out.flush();
}

/// The open file, and whether writing it fails (reported once per run of failures).
struct Output {
    file: Option<BufWriter<File>>,
    failing: bool,
}

impl Output {
    fn write(&mut self, bytes: &[u8], count: u64, counters: &Counters) {
        let Some(f) = self.file.as_mut() else {
            // Requests that began before a reload turned the log off.
            return;
        };
        match f.write_all(bytes) {
            Ok(()) => {
                counters.written.fetch_add(count, Relaxed);
                self.failing = false;
            }
            Err(e) => {
                counters.dropped.fetch_add(count, Relaxed);
                self.failed(&e);
            }
        }
    }

    /// Writes out the buffer (kept for the next try if that fails).
    fn flush(&mut self) {
        if let Some(Err(e)) = self.file.as_mut().map(Write::flush) {
            self.failed(&e);
        }
    }

    fn failed(&mut self, e: &std::io::Error) {
        if !self.failing {
            log::error(&format!(
                "access log: write failed, lines are lost until it works again: {e}"
            ));
            self.failing = true;
        }
    }
}
