//! The Monkey adapter: the only place with `unsafe` code.
//!
//! Monkey v1.8.9 loads `monkey-proxy_reverse.so`, looks up the data symbol
//! `mk_plugin_proxy_reverse` ([`plugin`]) and calls `stage30` on a worker thread for every
//! request its `[HANDLERS]` rules map to the plugin. The adapter copies the request into core
//! types ([`request`]), answers locally what needs no backend ([`answer`]), or takes the
//! response path away from Monkey as `../shared/monkey-abi.md` §1 describes and lets a core
//! [`crate::relay::Exchange`] drive the backend and a `dup` of the client socket through
//! Monkey's own event loop ([`context`]). Per-worker state and the timeout timer live in
//! [`worker`]; [`hold`] keeps Monkey from reading a client connection while its request is
//! served. Nothing here decides anything about HTTP or balancing.

mod answer;
mod api;
mod context;
mod hold;
mod plugin;
mod request;
pub mod sys;
mod worker;

#[cfg(test)]
mod layout_tests;
