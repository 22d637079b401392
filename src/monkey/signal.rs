//! `SIGUSR1` asks the reload thread for a reload from the file, as `POST {AdminURL}/reload`
//! does (its outcome is only logged). Monkey installs handlers for `SIGHUP`, `SIGINT` and
//! `SIGTERM` (all three make it exit) and leaves `SIGUSR1` alone, so the plugin may take it
//! without patching Monkey.

use std::ffi::c_int;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::log;
use crate::reload::SIGNAL_BYTE;

/// The reload thread's control socket (non-blocking), or -1 before it is set.
static CONTROL: AtomicI32 = AtomicI32::new(-1);

/// Writes one byte to the control socket: `write(2)` on a non-blocking socket and an atomic
/// load are all the handler does, both async-signal-safe.
extern "C" fn on_sigusr1(_signal: c_int) {
    let fd = CONTROL.load(Ordering::Relaxed);
    if fd >= 0 {
        let byte = SIGNAL_BYTE;
        // SAFETY: errno's address for this thread, always valid to read and write; a handler
        // must leave errno as the interrupted code had it.
        let errno = unsafe { libc::__errno_location() };
        // SAFETY: see above.
        let saved = unsafe { *errno };
        // SAFETY: one byte from a live local to a descriptor the reload handle keeps open for
        // the life of the process (it sits in a `static`); a full socket fails with EAGAIN,
        // which is ignored (a reload is already asked for).
        let _ = unsafe { libc::write(fd, std::ptr::addr_of!(byte).cast(), 1) };
        // SAFETY: see the first block.
        unsafe { *errno = saved };
    }
}

/// Makes `SIGUSR1` write to `control` (the reload thread's control socket).
pub fn reload_on_sigusr1(control: RawFd) {
    CONTROL.store(control, Ordering::Relaxed);
    // SAFETY: a zeroed `sigaction` is a valid "no flags, empty mask" value to fill in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_sigusr1 as extern "C" fn(c_int) as *const () as usize;
    // Interrupted system calls of Monkey's threads resume rather than fail with EINTR.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: installs a handler for a signal Monkey does not handle; `action` is fully
    // initialised and outlives the call, the old action is not asked for.
    if unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) } != 0 {
        log::warn("SIGUSR1 could not be set to reload; use the admin endpoint");
    }
}
