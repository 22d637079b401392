//! What one worker lends its exchanges while they run: the idle upstream pool, spare
//! memory, socket identities and the access log lines gathering for the writer thread.

use super::pool::UpstreamPool;
use super::spares::Spares;

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
}

impl Local {
    pub fn new_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }
}
