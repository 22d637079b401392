//! The bounded queue between the threads that log and the one thread that calls the sink.
//!
//! `std::sync::mpsc::sync_channel` with `try_send`: a full queue refuses the line at once
//! (counted), so a worker never waits for the sink and the queue never grows past
//! [`CAPACITY`] lines. The process's queue is started once, on the first use (the hosts
//! start it when they install their sink, before any worker runs).
//!
//! A flush is a mark sent down the same queue, which the writer answers when it reaches it:
//! the channel is first in, first out, so every line queued before the mark, by any thread,
//! has been written by then. (Counting lines queued and written instead is racy: a thread
//! whose line is in the channel but not yet counted lets the count of written lines reach
//! the target while a line queued later is still waiting.)

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::{write_out, Level};
use crate::handoff::send_before;

/// Lines the queue holds at most. Log lines are rare (state changes, and failed requests at
/// most 11 a second per entry): a full queue means the sink is stuck.
const CAPACITY: usize = 4096;

/// Where the writer thread puts lines.
type Out = fn(Level, &str);

/// Lines dropped because the queue was full.
#[derive(Debug, Default)]
struct Counts {
    dropped: AtomicU64,
}

/// What goes down the queue.
enum Message {
    /// A line for the sink.
    Line(Level, String),
    /// A flush: answered once every message before it was handled.
    Mark(Sender<()>),
}

/// A queue and its writer thread.
struct Queue {
    /// `None` when the writer thread could not be started: lines then go out at once.
    tx: Option<SyncSender<Message>>,
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

    /// Queues a line; drops (and counts) it when the queue is full. False if it was dropped.
    fn push(&self, level: Level, message: &str) -> bool {
        let Some(tx) = &self.tx else {
            (self.out)(level, message);
            return true;
        };
        match tx.try_send(Message::Line(level, message.to_owned())) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.counts.dropped.fetch_add(1, Relaxed);
                false
            }
        }
    }

    /// Waits, at most `timeout`, until the thread has written every line queued so far: sends
    /// a mark behind them (retrying while the queue is full) and waits for its answer.
    fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let until = Instant::now() + timeout;
        let (answer, answered) = mpsc::channel();
        if !send_before(tx, Message::Mark(answer), until) {
            return false;
        }
        answered
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .is_ok()
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
    let _ = queue().push(level, message);
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
fn serve(rx: &Receiver<Message>, out: Out, counts: &Counts) {
    let mut reported = 0;
    while let Ok(message) = rx.recv() {
        let (level, line) = match message {
            Message::Line(level, line) => (level, line),
            Message::Mark(answer) => {
                // The flush may have given up waiting; then nobody listens.
                let _ = answer.send(());
                continue;
            }
        };
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

    /// The lines of the concurrent test's sink.
    static ORDERED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    fn ordered_sink(_: Level, line: &str) {
        ORDERED.lock().unwrap().push(line.to_string());
    }

    #[test]
    fn a_flush_waits_for_the_callers_own_lines_while_other_threads_log() {
        let q = Arc::new(Queue::new(CAPACITY, ordered_sink));
        let stop = Arc::new(AtomicBool::new(false));
        let others: Vec<_> = (0..3)
            .map(|t| {
                let (q, stop) = (q.clone(), stop.clone());
                std::thread::spawn(move || {
                    // Bounded: the main loop ends in at most a few seconds and stops them.
                    let mut i = 0u64;
                    while !stop.load(Relaxed) && i < 5_000_000 {
                        let _ = q.push(Level::Info, &format!("other {t} {i}"));
                        i += 1;
                        if i % 64 == 0 {
                            // Now and then room for the writer, so that most lines are kept.
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                })
            })
            .collect();
        let started = Instant::now();
        let (mut rounds, mut kept) = (0, 0);
        while rounds < 2_000 && started.elapsed() < Duration::from_secs(5) {
            let mine = format!("mine {rounds}");
            let queued = q.push(Level::Info, &mine);
            assert!(q.flush(Duration::from_secs(10)), "the writer is stuck");
            rounds += 1;
            if !queued {
                // A full queue dropped it: nothing for the flush to wait for.
                continue;
            }
            kept += 1;
            let seen = ORDERED.lock().unwrap().iter().rev().any(|l| *l == mine);
            assert!(seen, "flush returned before {mine:?} was written");
            if rounds % 100 == 0 {
                ORDERED.lock().unwrap().clear();
            }
        }
        stop.store(true, Relaxed);
        for t in others {
            t.join().unwrap();
        }
        assert!(
            kept >= 100,
            "only {kept} of {rounds} rounds had their line queued"
        );
    }

    #[test]
    fn a_flush_behind_a_stuck_sink_gives_up_in_time() {
        static HELD: Mutex<()> = Mutex::new(());
        fn stuck_sink(_: Level, _: &str) {
            drop(HELD.lock());
        }
        let q = Queue::new(4, stuck_sink);
        let held = HELD.lock().unwrap();
        for i in 0..10 {
            q.push(Level::Info, &format!("line {i}"));
        }
        let started = Instant::now();
        assert!(!q.flush(Duration::from_millis(200)));
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(held);
        assert!(q.flush(Duration::from_secs(10)));
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
        let kept = (1..=100)
            .filter(|i| q.push(Level::Info, &format!("line {i}")))
            .count();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a caller waited"
        );
        assert_eq!(kept, 4);
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
