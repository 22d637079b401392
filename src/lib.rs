//! proxy_reverse — a reverse proxy and load balancer for the Monkey HTTP server (v1.8).
//!
//! The crate is built twice: as a `cdylib` that Monkey loads (`monkey-proxy_reverse.so`) and
//! as an `rlib` that the tests, benchmarks and the `proxy-reverse-check` tool link.
//!
//! Layout (see `docs/architecture.md`): everything that decides — configuration, routing,
//! balancing, health, HTTP framing, the relay state machine, statistics — is safe Rust in the
//! modules below and never names a Monkey type; the crate denies anything else outside
//! [`monkey`], the thin adapter that drives the core from Monkey's event loop (the only place
//! allowed to dereference Monkey's pointers). The stand-in host (`host`, feature
//! `stand-in-host`) drives the same core from a `mio::Poll` loop for tests.

#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]

pub mod access;
pub mod balancer;
pub mod clock;
pub mod config;
mod handoff;
pub mod health;
#[cfg(feature = "stand-in-host")]
pub mod host;
pub mod http;
pub mod log;
pub mod prober;
pub mod proxy;
pub mod reactor;
pub mod relay;
pub mod reload;
pub mod routing;
pub mod stats;
pub mod upstream;

#[allow(unsafe_code)]
pub mod monkey;
