//! Logging from the core without naming the host: the host installs a sink once at start-up
//! (Monkey's `_error` in the plugin, stderr or a capture in tests).
//!
//! No thread that calls [`log`] waits for the sink: lines go through a bounded queue to a
//! writer thread of their own, which calls the sink (Monkey's `_error` is a blocking write
//! to its standard output, and a worker must never block). A full queue drops the line and
//! counts it ([`dropped`]); the writer says how many were dropped once the queue has room
//! again. [`flush`] waits, bounded, until every line queued before it was written (for tests,
//! and before the process exits).
//!
//! Lines about single requests ([`failed`]) are rate-limited per entry ([`limit`]), so a
//! flood of failures writes a bounded number of lines.

pub mod escape;
pub mod failed;
pub mod limit;
mod queue;

use std::sync::OnceLock;
use std::time::Duration;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation worth noting (start-up summary, a server back up).
    Info,
    /// Something is wrong but the plugin keeps serving (a server taken offline, a failed
    /// request).
    Warn,
    /// Something prevents serving (a broken configuration).
    Error,
}

type Sink = Box<dyn Fn(Level, &str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the process-wide sink; later calls are ignored (the first host wins). Starts the
/// writer thread, so that the first line logged from a worker does not start it.
pub fn set_sink(sink: impl Fn(Level, &str) + Send + Sync + 'static) {
    let _ = SINK.set(Box::new(sink));
    queue::start();
}

/// Where the writer thread puts a line: the installed sink, or stderr when none is.
fn write_out(level: Level, message: &str) {
    match SINK.get() {
        Some(sink) => sink(level, message),
        None => eprintln!("proxy_reverse: {level:?}: {message}"),
    }
}

/// Queues one line for the sink; never waits. A full queue drops it (counted in
/// [`dropped`]).
pub fn log(level: Level, message: &str) {
    queue::push(level, message);
}

/// Logs at [`Level::Info`].
pub fn info(message: &str) {
    log(Level::Info, message)
}

/// Logs at [`Level::Warn`].
pub fn warn(message: &str) {
    log(Level::Warn, message)
}

/// Logs at [`Level::Error`].
pub fn error(message: &str) {
    log(Level::Error, message)
}

/// Waits until every line queued before this call has reached the sink, at most `timeout`.
/// True if they all did. Not for a worker thread: it waits.
pub fn flush(timeout: Duration) -> bool {
    queue::flush(timeout)
}

/// Lines dropped so far because the queue was full.
pub fn dropped() -> u64 {
    queue::dropped()
}
