//! The access log (`AccessLog FILE`): one line per proxied request, in nginx's combined
//! format followed by the upstream's address, status, times, the attempts and the bytes
//! moved ([`line`](mod@line); documented field by field in `docs/logs.md`).
//!
//! No worker opens or writes the file. Each worker formats its lines into a [`Batch`] of
//! its own; batches go to one writer thread through a bounded queue, and a full queue drops
//! the batch and counts its lines ([`AccessLog::dropped`], shown in the statistics). The
//! writer thread opens the file, and opens it again on every reload
//! ([`AccessLog::reopened`]), so that a rotated log is let go of and a changed or removed
//! `AccessLog` takes effect; the thread lives as long as a proxy refers to it.

pub mod batch;
pub mod line;
pub mod time;
mod writer;

pub use batch::Batch;
pub use line::Line;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use writer::Writer;

/// Sizes of the queue and of the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// Batches the queue holds at most (each up to [`batch::BATCH_BYTES`] and `batch_lines`
    /// lines).
    pub queue: usize,
    /// Lines a worker gathers before it sends them.
    pub batch_lines: usize,
}

impl Default for Options {
    /// 256 batches of at most 64 lines (16 384 lines, at most 4 MiB, waiting at once).
    fn default() -> Options {
        Options {
            queue: 256,
            batch_lines: 64,
        }
    }
}

/// A proxy's access log: off, or on with a writer thread (kept across reloads).
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    writer: Option<Arc<Writer>>,
    on: bool,
}

/// The writer thread reads nothing from its queue while this lives (see
/// [`AccessLog::pause`]).
#[derive(Debug)]
pub struct Paused(#[allow(dead_code)] std::sync::mpsc::SyncSender<()>);

impl AccessLog {
    /// No access log.
    pub fn off() -> AccessLog {
        AccessLog::default()
    }

    /// The access log to `path` (off for none), its file opened before this returns.
    /// Starts a thread: not for a worker.
    pub fn start(path: Option<&Path>) -> Result<AccessLog, String> {
        AccessLog::start_with(path, Options::default())
    }

    /// [`AccessLog::start`] with other queue and batch sizes (tests fill a small queue).
    pub fn start_with(path: Option<&Path>, options: Options) -> Result<AccessLog, String> {
        let Some(path) = path else {
            return Ok(AccessLog::off());
        };
        Ok(AccessLog {
            writer: Some(Arc::new(Writer::spawn(path, options)?)),
            on: true,
        })
    }

    /// The access log after a reload to a configuration whose `AccessLog` is `path`: the
    /// writer thread (started if there was none) closes its file and opens `path`, even if
    /// it is the same (so that a rotated file is let go of), or stays closed for none. If
    /// the new file cannot be opened the old one stays open and the error is returned.
    /// Waits for the thread: for the reload thread, not a worker.
    pub fn reopened(&self, path: Option<&Path>) -> Result<AccessLog, String> {
        match &self.writer {
            None => AccessLog::start(path),
            Some(w) => {
                w.reopen(path)?;
                Ok(AccessLog {
                    writer: Some(w.clone()),
                    on: path.is_some(),
                })
            }
        }
    }

    /// Whether requests are logged.
    #[inline]
    pub fn is_on(&self) -> bool {
        self.on
    }

    fn writer_if_on(&self) -> Option<&Arc<Writer>> {
        self.writer.as_ref().filter(|_| self.on)
    }

    /// Queues one line at once, outside any worker's batch (a request answered before an
    /// exchange existed). Never waits; allocates.
    pub fn write_one(&self, line: &Line<'_>) {
        if let Some(w) = self.writer_if_on() {
            let mut bytes = Vec::with_capacity(256);
            line.write(&mut bytes, time::Stamp::default().now());
            w.send(bytes, 1);
        }
    }

    /// Lines written to the file so far (by this log's thread, across reloads).
    pub fn written(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.written())
    }

    /// Lines lost so far: dropped because the queue was full, or refused by the file.
    pub fn dropped(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.dropped())
    }

    /// Waits until every batch queued before this call is in the file, at most `timeout`
    /// (batches still gathering in workers are not included). True if they are.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.writer.as_ref().map_or(true, |w| w.flush(timeout))
    }

    /// Stops the writer thread from reading its queue until the returned value is dropped
    /// (after everything queued before was written), so a test can fill the queue.
    pub fn pause(&self) -> Option<Paused> {
        self.writer.as_ref()?.pause().map(Paused)
    }
}
