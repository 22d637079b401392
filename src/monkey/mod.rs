//! The Monkey adapter: the only place with `unsafe` code.
//!
//! Monkey v1.8.9 loads `monkey-proxy_reverse.so`, looks up the data symbol
//! `mk_plugin_proxy_reverse` (`plugin`) and calls `stage30` on a worker thread for every
//! request its `[HANDLERS]` rules map to the plugin. The adapter wraps Monkey's session and
//! request once (`session`), hands the request line and the raw bytes behind it to the
//! core's intake (`request`), answers locally what the core answers itself (`answer`), or
//! takes the response path away from Monkey as `../shared/monkey-abi.md` §1 describes and
//! gives the request to the worker's core, whose exchanges drive the backend and a `dup` of
//! the client socket through Monkey's own event loop (`reactor`: registrations by token,
//! one timer). When an exchange ends, `finish` hands the connection back to Monkey.
//! Per-worker state lives in `worker`; `hold` keeps Monkey from reading a client
//! connection while its request is served; `guard` keeps requests Monkey dispatches from
//! behind its own refusals away from the core; `trim` gives memory back after a burst;
//! `signal` lets `SIGUSR1` ask for a reload; `tls` carries a TLS listener's client bytes
//! through Monkey's TLS layer. Nothing here decides anything about HTTP or balancing.
//!
//! Arrows: `plugin` → everything; `guard` → `session`; `reactor` → `trim`, `finish` →
//! `worker` → `session` → `api` → `sys`; `reactor`, `worker` → `regs`; nothing calls back up.

#![warn(
    clippy::undocumented_unsafe_blocks,
    clippy::multiple_unsafe_ops_per_block
)]

mod answer;
mod api;
mod finish;
mod guard;
mod hold;
mod plugin;
mod reactor;
mod regs;
mod request;
mod session;
mod signal;
pub mod sys;
mod tls;
mod trim;
mod worker;

#[cfg(test)]
mod layout_tests;
