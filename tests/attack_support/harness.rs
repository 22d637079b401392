//! What a case of the attack catalogue needs from a host, and how one case is run.
//!
//! A case ([`super::cases`]) is a function of a [`Harness`]: it starts the proxies it needs
//! from plugin configuration text, talks to them over loopback, and asserts. Each test file
//! implements the trait for its host (`relay_attacks.rs`: the stand-in host; `monkey_http.rs`:
//! a real Monkey) and expands the catalogue into one `#[test]` per case with
//! `attack_catalogue!`, so a failure names the case (the test) and the host (the test binary,
//! and the line [`run_case`] prints).

use std::net::SocketAddr;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

/// A host the catalogue runs on.
pub trait Harness {
    /// The host's name, for failure messages.
    fn host(&self) -> &'static str;

    /// Starts a proxy configured by `conf` (the text of `proxy_reverse.conf`) on a free
    /// loopback port and returns the address clients connect to. The proxy runs until the
    /// case is over.
    fn start(&self, conf: &str) -> SocketAddr;

    /// After the case: checks that every proxy started is still sound (a real Monkey is still
    /// running: a crash is the worst a plugin can do), then stops them.
    fn finish(&self);

    /// After a failure: prints what helps to understand it (a real Monkey's log).
    fn report(&self);
}

/// Runs `case` (named `name`) on a fresh harness of type `H`, then [`Harness::finish`]; on a
/// failure, says which case failed on which host and prints the harness's report before
/// passing the panic on.
pub fn run_case<H: Harness + Default>(name: &str, case: fn(&dyn Harness)) {
    let harness = H::default();
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        case(&harness);
        harness.finish();
    }));
    if let Err(panic) = outcome {
        eprintln!(
            "attack catalogue: case `{name}` failed on the {}",
            harness.host()
        );
        harness.report();
        resume_unwind(panic);
    }
}
