//! A worker's access log lines on their way to the writer thread: formatted into one buffer
//! and handed over together, when [`Options::batch_lines`](super::Options) lines are in
//! it, when it holds [`BATCH_BYTES`], or [`FLUSH_AFTER`] after its first line (the worker's
//! timer asks for that moment, see [`Batch::due`]) — as nginx's `access_log ... buffer=
//! flush=` does. A request costs formatting its line into memory the batch already has;
//! a batch costs one allocation and one queue operation.

use std::sync::Arc;
use std::time::Duration;

use super::line::Line;
use super::time::Stamp;
use super::writer::Writer;
use super::AccessLog;
use crate::clock::Moment;

/// Bytes of lines a batch holds before it is sent.
pub const BATCH_BYTES: usize = 16 * 1024;

/// How long after its first line a batch is sent at the latest.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);

/// One worker's batch. Dropping it sends what it holds.
#[derive(Debug, Default)]
pub struct Batch {
    buf: Vec<u8>,
    lines: u64,
    /// When the first line of the batch came.
    since: Option<Moment>,
    /// The writer the lines are for.
    to: Option<Arc<Writer>>,
    stamp: Stamp,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds `line` for `log` (nothing when it is off) at `now` (the worker's clock, for
    /// [`Batch::due`]); sends the batch when it is full.
    pub fn push(&mut self, log: &AccessLog, now: Moment, line: &Line<'_>) {
        let Some(writer) = log.writer_if_on() else {
            return;
        };
        match &self.to {
            Some(to) if Arc::ptr_eq(to, writer) => {}
            _ => {
                self.send();
                self.to = Some(writer.clone());
            }
        }
        if self.buf.capacity() == 0 {
            self.buf.reserve(BATCH_BYTES + 2 * 1024);
        }
        let time = *self.stamp.now();
        line.write(&mut self.buf, &time);
        self.lines += 1;
        self.since.get_or_insert(now);
        if self.lines >= writer.batch_lines || self.buf.len() >= BATCH_BYTES {
            self.send();
        }
    }

    /// When the batch must be sent at the latest (none while it is empty).
    pub fn due(&self) -> Option<Moment> {
        self.since.map(|s| s.after(FLUSH_AFTER))
    }

    /// Lines waiting in the batch.
    pub fn len(&self) -> u64 {
        self.lines
    }

    /// Whether no line waits.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    /// Hands the lines to the writer thread now (dropped and counted if its queue is full).
    /// Never waits.
    pub fn send(&mut self) {
        if self.lines == 0 {
            return;
        }
        if let Some(to) = &self.to {
            to.send(std::mem::take(&mut self.buf), self.lines);
        }
        self.buf = Vec::new();
        self.lines = 0;
        self.since = None;
    }
}

impl Drop for Batch {
    fn drop(&mut self) {
        self.send();
    }
}
