//! `SIGUSR1` asks the reload thread for a reload from the file, as `POST {AdminURL}/reload`
//! does (its outcome is only logged). Monkey installs handlers for `SIGHUP`, `SIGINT` and
//! `SIGTERM` (all three make it exit) and leaves `SIGUSR1` alone, so the plugin may take it
//! without patching Monkey.
//!
//! Not with a handler: Monkey's main thread ends in `sigsuspend` and returns from `main`
//! once any handled signal reaches it, so a handler would stop the server. Instead the
//! signal is blocked in the thread that loads the plugin (Monkey's main thread, before it
//! starts its workers, which inherit the mask, and before `sigsuspend`, which keeps it), and
//! a thread of the plugin takes it with `sigwait`.

use std::ffi::c_int;
use std::os::fd::RawFd;

use crate::log;
use crate::reload::SIGNAL_BYTE;

/// The set holding `SIGUSR1` alone.
fn sigusr1() -> libc::sigset_t {
    // SAFETY: a zeroed `sigset_t` is plain memory that `sigemptyset` then initialises.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, writable `sigset_t`.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: as above; SIGUSR1 is a valid signal number.
    unsafe { libc::sigaddset(&mut set, libc::SIGUSR1) };
    set
}

/// Blocks `SIGUSR1` in the calling thread, and so in every thread it starts from now on.
/// Call it from `init_plugin` before the plugin starts any thread; `false` if it failed.
pub fn block_sigusr1() -> bool {
    let set = sigusr1();
    // SAFETY: changes only the calling thread's mask, with a valid set; the old mask is
    // not asked for.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) == 0 }
}

/// Makes `SIGUSR1` write a reload request to `control` (the reload thread's non-blocking
/// control socket, open for the life of the process), once [`block_sigusr1`] succeeded.
pub fn reload_on_sigusr1(control: RawFd) {
    let set = sigusr1();
    // The thread inherits the blocked mask; `sigwait` takes the signal while it is pending.
    let spawned = std::thread::Builder::new()
        .name("proxy-sigusr1".into())
        .spawn(move || loop {
            let mut signal: c_int = 0;
            // SAFETY: `set` is initialised and `signal` a live out-parameter.
            if unsafe { libc::sigwait(&set, &mut signal) } != 0 {
                // Only an invalid set fails, and would fail again.
                return;
            }
            if signal != libc::SIGUSR1 {
                continue;
            }
            let byte = SIGNAL_BYTE;
            // SAFETY: one byte from a live local to the control socket, which the reload
            // handle in a `static` keeps open; a full socket (EAGAIN) already holds a
            // request, so the result is ignored.
            let _ = unsafe { libc::write(control, std::ptr::addr_of!(byte).cast(), 1) };
        });
    if let Err(e) = spawned {
        log::warn(&format!(
            "SIGUSR1 cannot be used to reload ({e}); use the admin endpoint"
        ));
    }
}
