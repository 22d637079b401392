//! The bounded queue between the threads that log and the one thread that calls the sink.
//!
//! `std::sync::mpsc::sync_channel` with `try_send`: a full queue refuses the line at once
//! (counted), so a worker never waits for the sink and the queue never grows past
//! [`CAPACITY`] lines. The writer thread is started once, on the first use (the hosts start
//! it when they install their sink, before any worker runs).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{write_out, Level};

/// Lines the queue holds at most. Log lines are rare (state changes, and failed requests at
/// most 11 a second per entry): a full queue means the sink is stuck.
const CAPACITY: usize = 4096;

/// The queue and its counters.
struct Queue {
    /// `None` when the writer thread could not be started: lines then go to the sink at once.
    tx: Option<SyncSender<(Level, String)>>,
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| {
        let (tx, rx) = mpsc::sync_channel(CAPACITY);
        let spawned = std::thread::Builder::new()
            .name("proxy-log".into())
            .spawn(move || serve(&rx));
        Queue {
            tx: spawned.ok().map(|_| tx),
            queued: AtomicU64::new(0),
            written: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    })
}

/// Starts the writer thread if it is not running yet.
pub(super) fn start() {
    let _ = queue();
}

/// Queues a line; drops (and counts) it when the queue is full.
pub(super) fn push(level: Level, message: &str) {
    let q = queue();
    let Some(tx) = &q.tx else {
        write_out(level, message);
        return;
    };
    match tx.try_send((level, message.to_owned())) {
        Ok(()) => {
            q.queued.fetch_add(1, Relaxed);
        }
        Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
            q.dropped.fetch_add(1, Relaxed);
        }
    }
}

/// Lines dropped so far.
pub(super) fn dropped() -> u64 {
    QUEUE.get().map_or(0, |q| q.dropped.load(Relaxed))
}

/// Waits (polling, bounded) until the writer has written every line queued so far.
pub(super) fn flush(timeout: Duration) -> bool {
    let Some(q) = QUEUE.get() else { return true };
    let target = q.queued.load(Relaxed);
    let until = Instant::now() + timeout;
    while q.written.load(Relaxed) < target {
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

/// The writer thread: every line to the sink, then, when drops happened meanwhile, one line
/// saying how many.
fn serve(rx: &Receiver<(Level, String)>) {
    let mut reported = 0;
    while let Ok((level, line)) = rx.recv() {
        write_out(level, &line);
        let Some(q) = QUEUE.get() else { continue };
        let dropped = q.dropped.load(Relaxed);
        if dropped > reported {
            write_out(
                Level::Warn,
                &format!(
                    "{} log line{} dropped: the log queue was full",
                    dropped - reported,
                    if dropped - reported == 1 { "" } else { "s" }
                ),
            );
            reported = dropped;
        }
        q.written.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_sink_in_order_and_flush_waits_for_them() {
        for i in 0..100 {
            push(Level::Info, &format!("queue test line {i}"));
        }
        assert!(flush(Duration::from_secs(10)));
        let q = queue();
        assert!(q.written.load(Relaxed) >= 100);
    }
}
