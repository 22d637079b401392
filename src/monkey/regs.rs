//! The loop registrations of one worker's descriptors, by descriptor number: the table
//! [`super::reactor`] keeps, held in the worker's state ([`super::worker::WorkerState`]) so
//! that a registration is found without a thread-local lookup of its own (each is a
//! `__tls_get_addr` call in a shared library).

use std::os::fd::RawFd;
use std::ptr;

use super::sys;

/// The loop registration of one descriptor the core uses. `ev` must stay the first member:
/// Monkey's loop hands the handler the event pointer, which is the registration's.
#[repr(C)]
pub struct Reg {
    /// The event Monkey's loop dispatches.
    pub ev: sys::mk_event,
    /// The owner's token (0: none yet).
    pub token: u64,
    /// The socket the registration is for (`Source::id`); another id on the same
    /// descriptor means that socket was closed, which removed it from epoll.
    pub id: u64,
    /// The edge-triggered registration reported a hang-up or error the owner may not have
    /// acted on: when another owner takes it over, it is re-armed so that owner hears of it.
    pub unseen: bool,
}

/// One worker's registrations, indexed by descriptor; never freed (see `super::reactor`).
#[derive(Default)]
pub struct Regs(Vec<*mut Reg>);

impl Regs {
    /// The entry for `fd` (grown to it; null until a registration is made for it).
    pub fn entry(&mut self, fd: RawFd) -> Option<&mut *mut Reg> {
        let i = usize::try_from(fd).ok()?;
        if self.0.len() <= i {
            self.0.resize(i + 1, ptr::null_mut());
        }
        self.0.get_mut(i)
    }

    /// The registration for `fd` if one was made (null otherwise).
    pub fn existing(&self, fd: RawFd) -> *mut Reg {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.0.get(i).copied())
            .unwrap_or(ptr::null_mut())
    }
}
