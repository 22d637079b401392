//! The bounded queue between the threads that log and the one thread that calls the sink.
//!
//! `std::sync::mpsc::sync_channel` with `try_send`: a full queue refuses the line at once
//! (counted), so a worker never waits for the sink and the queue never grows past
//! [`CAPACITY`] lines. The process's queue is started once, on the first use (the hosts
//! start it when they install their sink, before any worker runs).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{write_out, Level};

/// Lines the queue holds at most. Log lines are rare (state changes, and failed requests at
/// most 11 a second per entry): a full queue means the sink is stuck.
const CAPACITY: usize = 4096;

/// Where the writer thread puts lines.
type Out = fn(Level, &str);

/// Lines queued, written and dropped.
#[derive(Debug, Default)]
struct Counts {
    queued: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
}

/// A queue and its writer thread.
struct Queue {
    /// `None` when the writer thread could not be started: lines then go out at once.
    tx: Option<SyncSender<(Level, String)>>,
    out: Out,
    counts: Arc<Counts>,
}

impl Queue {
    /// A queue of `capacity` lines whose thread hands them to `out`.
    fn new(capacity: usize, out: Out) -> Queue {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let counts = Arc::<Counts>::default();
        let thread_counts = counts.clone();
        let spawned = std::thread::Builder::new()
            .name("proxy-log".into())
            .spawn(move || serve(&rx, out, &thread_counts));
        Queue {
            tx: spawned.ok().map(|_| tx),
            out,
            counts,
        }
    }

    /// Queues a line; drops (and counts) it when the queue is full.
    fn push(&self, level: Level, message: &str) {
        let Some(tx) = &self.tx else {
            (self.out)(level, message);
            return;
        };
        match tx.try_send((level, message.to_owned())) {
            Ok(()) => {
                self.counts.queued.fetch_add(1, Relaxed);
            }
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counts.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Waits (polling, bounded) until the thread has written every line queued so far.
    fn flush(&self, timeout: Duration) -> bool {
        let target = self.counts.queued.load(Relaxed);
        let until = Instant::now() + timeout;
        while self.counts.written.load(Relaxed) < target {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

fn queue() -> &'static Queue {
    QUEUE.get_or_init(|| Queue::new(CAPACITY, write_out))
}

/// Starts the process's writer thread if it is not running yet.
pub(super) fn start() {
    let _ = queue();
}

/// Queues a line for the process's sink.
pub(super) fn push(level: Level, message: &str) {
    queue().push(level, message);
}

/// Lines dropped so far.
pub(super) fn dropped() -> u64 {
    QUEUE.get().map_or(0, |q| q.counts.dropped.load(Relaxed))
}

/// Waits until every line queued so far reached the sink, at most `timeout`.
pub(super) fn flush(timeout: Duration) -> bool {
    QUEUE.get().map_or(true, |q| q.flush(timeout))
}

/// The writer thread: every line to `out`, then, when drops happened meanwhile, one line
/// saying how many.
fn serve(rx: &Receiver<(Level, String)>, out: Out, counts: &Counts) {
    let mut reported = 0;
    while let Ok((level, line)) = rx.recv() {
        out(level, &line);
        let dropped = counts.dropped.load(Relaxed);
        if dropped > reported {
            out(
                Level::Warn,
                &format!(
                    "{} log line{} dropped: the log queue was full",
                    dropped - reported,
                    if dropped - reported == 1 { "" } else { "s" }
                ),
            );
            reported = dropped;
        }
        counts.written.fetch_add(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Mutex;

    /// What the test sink was given; a gate that holds it; whether it was entered.
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static GATE: Mutex<()> = Mutex::new(());
    static ENTERED: AtomicBool = AtomicBool::new(false);

    fn held_sink(_: Level, line: &str) {
        ENTERED.store(true, Relaxed);
        drop(GATE.lock());
        SEEN.lock().unwrap().push(line.to_string());
    }

    #[test]
    fn a_stuck_sink_costs_the_callers_nothing_and_a_full_queue_drops_and_says_so() {
        let q = Queue::new(4, held_sink);
        let gate = GATE.lock().unwrap();
        q.push(Level::Info, "line 0");
        let until = Instant::now() + Duration::from_secs(10);
        while !ENTERED.load(Relaxed) {
            assert!(
                Instant::now() < until,
                "the thread never took the first line"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        // The thread waits in the sink: four lines fill the queue, the rest are dropped.
        let started = Instant::now();
        for i in 1..=100 {
            q.push(Level::Info, &format!("line {i}"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a caller waited"
        );
        assert_eq!(q.counts.queued.load(Relaxed), 5);
        assert_eq!(q.counts.dropped.load(Relaxed), 96);
        drop(gate);
        assert!(q.flush(Duration::from_secs(10)));
        assert_eq!(
            *SEEN.lock().unwrap(),
            [
                "line 0",
                "96 log lines dropped: the log queue was full",
                "line 1",
                "line 2",
                "line 3",
                "line 4"
            ]
        );
    }
}
