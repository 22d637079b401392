//! The administrative state of a server: what an operator decided, kept apart from what the
//! proxy learnt of the server's health (as pingora keeps `set_enable` apart from health).

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Administrative changes and reloads so far, process-wide.
static CHANGES: AtomicU64 = AtomicU64::new(0);

/// How many administrative changes and reloads there have been: a worker that sees the
/// number move closes the idle connections of servers that take no more requests.
#[inline]
pub fn changes() -> u64 {
    CHANGES.load(Ordering::Relaxed)
}

/// Counts one change (see [`changes`]).
pub fn note_change() {
    CHANGES.fetch_add(1, Ordering::Relaxed);
}

/// What an operator set a server to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admin {
    /// Serves as its health allows (the default).
    Ready,
    /// Takes no new request; requests in flight and tunnels finish, idle pooled connections
    /// close. For taking a server out gently.
    Drain,
    /// Like `Drain`, and no health probe is sent to it either: the server is down for
    /// maintenance.
    Maint,
}

impl Admin {
    /// The word the admin endpoint and the statistics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Admin::Ready => "ready",
            Admin::Drain => "drain",
            Admin::Maint => "maint",
        }
    }

    /// The state `word` names (`ready`, `drain` or `maint`, any case).
    pub fn parse(word: &str) -> Option<Admin> {
        [Admin::Ready, Admin::Drain, Admin::Maint]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(word))
    }

    /// Whether a server in this state may take new requests.
    pub fn takes_requests(self) -> bool {
        self == Admin::Ready
    }
}

/// A server's administrative state, shared by every worker (an atomic: set from the admin
/// endpoint on any worker, read on the request path of all).
#[derive(Debug, Default)]
pub struct AdminState(AtomicU8);

impl AdminState {
    /// The state now.
    #[inline]
    pub fn get(&self) -> Admin {
        match self.0.load(Ordering::Relaxed) {
            0 => Admin::Ready,
            1 => Admin::Drain,
            _ => Admin::Maint,
        }
    }

    /// Sets the state; returns the one it replaces.
    pub fn set(&self, admin: Admin) -> Admin {
        let code = match admin {
            Admin::Ready => 0,
            Admin::Drain => 1,
            Admin::Maint => 2,
        };
        let old = match self.0.swap(code, Ordering::Relaxed) {
            0 => Admin::Ready,
            1 => Admin::Drain,
            _ => Admin::Maint,
        };
        note_change();
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_words_and_the_atomic() {
        let s = AdminState::default();
        assert_eq!(s.get(), Admin::Ready);
        for a in [Admin::Drain, Admin::Maint, Admin::Ready] {
            assert_eq!(Admin::parse(&a.as_str().to_uppercase()), Some(a));
            s.set(a);
            assert_eq!(s.get(), a);
        }
        assert_eq!(s.set(Admin::Drain), Admin::Ready);
        assert!(Admin::parse("off").is_none());
        assert!(Admin::Ready.takes_requests() && !Admin::Drain.takes_requests());
    }
}
