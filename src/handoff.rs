//! Hand-offs to the threads that serve a bounded queue (the log's and the access log's
//! writers), for callers that may wait a little: tests and shutdown. Workers never
//! call these; they use `try_send` and drop what does not fit.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// Sends `message` down `tx`, retrying every millisecond while the queue is full, until
/// `deadline`. False when the deadline passed first or the serving thread is gone.
pub(crate) fn send_before<T>(tx: &SyncSender<T>, mut message: T, deadline: Instant) -> bool {
    loop {
        match tx.try_send(message) {
            Ok(()) => return true,
            Err(TrySendError::Full(again)) if Instant::now() < deadline => {
                message = again;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_full_queue_is_waited_for_until_the_deadline_then_refused() {
        let (tx, rx) = mpsc::sync_channel(1);
        assert!(send_before(&tx, 1, Instant::now()));
        let started = Instant::now();
        assert!(!send_before(&tx, 2, started + Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
        // Room made while it waits: the message goes.
        let taker = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            let first = rx.recv().unwrap();
            (first, rx)
        });
        assert!(send_before(
            &tx,
            3,
            Instant::now() + Duration::from_secs(10)
        ));
        let (first, rx) = taker.join().unwrap();
        assert_eq!((first, rx.recv().unwrap()), (1, 3));
        drop(rx);
        assert!(!send_before(
            &tx,
            4,
            Instant::now() + Duration::from_secs(10)
        ));
    }
}
