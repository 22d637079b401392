//! Logging from the core without naming the host: the host installs a sink once at start-up
//! (Monkey's `_error` in the plugin, stderr or a capture in tests).
//!
//! Only rare events are logged (configuration problems, health transitions), never one line
//! per request, so the sink may take a lock.

use std::sync::OnceLock;

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal operation worth noting (start-up summary, a server back up).
    Info,
    /// Something is wrong but the plugin keeps serving (a server taken offline).
    Warn,
    /// Something prevents serving (a broken configuration).
    Error,
}

type Sink = Box<dyn Fn(Level, &str) + Send + Sync>;

static SINK: OnceLock<Sink> = OnceLock::new();

/// Installs the process-wide sink; later calls are ignored (the first host wins).
pub fn set_sink(sink: impl Fn(Level, &str) + Send + Sync + 'static) {
    let _ = SINK.set(Box::new(sink));
}

/// Writes one line through the installed sink, or to stderr when none is installed.
pub fn log(level: Level, message: &str) {
    match SINK.get() {
        Some(sink) => sink(level, message),
        None => eprintln!("proxy_reverse: {level:?}: {message}"),
    }
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
