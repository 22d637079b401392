//! The relay: client requests proxied to backends, as state machines driven by a host's
//! event loop through the [`crate::reactor::Reactor`] seam.
//!
//! [`Worker`] is one event-loop thread's share: it owns every exchange in progress and every
//! idle upstream connection, by token, and the timer that drives their timeouts. An
//! exchange connects (walking the balancer's candidates on failure, `attempt`), sends the
//! rebuilt request, parses the response head strictly and streams the body to the client with
//! backpressure through one fixed-size buffer (`response`), so memory per exchange is
//! bounded whatever the response size; after a `101` it becomes a `tunnel`. Backend
//! connections are [`BackendStream`]s, so neither the exchange nor the `pool` assumes
//! plain TCP.

mod affinity;
mod attempt;
mod client;
mod deferred;
mod exchange;
mod local;
mod pool;
mod report;
mod response;
mod spares;
mod splice;
mod stream;
mod tokens;
mod tunnel;
mod worker;

pub use client::{ClientConn, ClientTransport};
pub use exchange::{Finish, Progress};
pub use pool::{Limits, Pooled, UpstreamPool};
pub use spares::BUFFER_SIZE;
pub use stream::{BackendStream, Connect};
pub use worker::{Ended, Worker};

/// Most bytes [`discard_unread`] reads before giving up: it runs on an event-loop thread.
const DISCARD_LIMIT: usize = 256 * 1024;

/// Reads and drops what a client sent that will never be answered (requests pipelined
/// behind a response that closes the connection), without waiting, just before the
/// connection is closed. Closing a socket with unread bytes makes the kernel send a reset
/// instead of an orderly end, and a reset can destroy response bytes the client has not read
/// yet — for a body that ends with the connection, the client could not tell it was cut.
/// (Bytes that arrive later still cause a reset; a full lingering close is not attempted.)
pub fn discard_unread(stream: &mut impl std::io::Read) {
    let mut scratch = [0u8; 16 * 1024];
    let mut total = 0;
    while total < DISCARD_LIMIT {
        match stream.read(&mut scratch) {
            Ok(0) | Err(_) => return,
            Ok(n) => total += n,
        }
    }
}
