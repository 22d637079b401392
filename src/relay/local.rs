//! What one worker lends its exchanges while they run: the idle upstream pool, spare
//! memory, socket identities and the access log lines gathering for the writer thread.

use super::pool::UpstreamPool;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::spares::Spares;
use crate::http::response::HeadMemo;
use crate::http::rules::RequestId;

/// Backends' previous response heads a worker keeps ([`HeadMemos`]).
const HEAD_MEMOS: usize = 4;

/// The last response heads of a few backends, to recognise their next ones
/// ([`HeadMemo`]): a few kilobytes a worker, whatever the number of connections.
#[derive(Debug, Default)]
pub(super) struct HeadMemos([HeadMemo; HEAD_MEMOS]);

impl HeadMemos {
    /// The memo of server `server`'s previous response head in entry `entry`'s group. A few
    /// servers share each memo: what it recalls is checked against the head's bytes, so
    /// sharing only costs a server whose turn another's head took a reading anew.
    #[inline]
    pub fn of(&mut self, entry: usize, server: usize) -> &mut HeadMemo {
        &mut self.0[entry.wrapping_mul(3).wrapping_add(server) % HEAD_MEMOS]
    }
}

/// What a worker lends its exchanges: the idle pool, spare memory, socket identities, the
/// access log batch.
#[derive(Debug, Default)]
pub(super) struct Local {
    /// Idle upstream connections.
    pub pool: UpstreamPool,
    /// Memory reused across exchanges.
    pub spares: Spares,
    /// The last socket identity handed out ([`crate::reactor::Source::id`]).
    pub last_id: u64,
    /// Access log lines not yet handed to the writer thread.
    pub access: crate::access::Batch,
    /// The last response heads of a few backends.
    pub heads: HeadMemos,
    /// The last `$request_id` made (its serial), and the worker's random prefix (0 until
    /// the first is made).
    request_ids: RequestId,
}

impl Local {
    /// A new `$request_id` (only for entries whose header rules use it): the worker's
    /// random prefix, drawn once, and the next serial number; no shared counter, no
    /// allocation.
    pub fn next_request_id(&mut self) -> RequestId {
        let ids = &mut self.request_ids;
        if ids.prefix == 0 {
            // std's hasher keys are random per process and thread: a prefix no other worker
            // (nor another run) is likely to share.
            let random = RandomState::new().hash_one(std::thread::current().id());
            ids.prefix = random.max(1);
        }
        ids.serial += 1;
        *ids
    }

    /// A new socket identity ([`crate::reactor::Source::id`]).
    pub fn new_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }
}
