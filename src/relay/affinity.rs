//! The request's affinity, read once when its exchange starts: the hash of its `HashKey` and
//! the server its sticky cookie names; and the `Set-Cookie` line its response carries.
//!
//! An entry without `HashKey` (or with a method that does not hash) and without
//! `StickyCookie` pays one test of each here and nothing else.

use crate::balancer::key_hash;
use crate::config::HashKey;
use crate::http::affinity::{cookies, hash_key_parts};
use crate::http::request::ProxyRequest;
use crate::upstream::{Sticky, Upstream};

/// The hash of the request's `HashKey`, when the entry hashes on one and the request has it
/// (else the hash method uses the client address).
#[inline(always)]
pub(super) fn key(upstream: &Upstream, request: &ProxyRequest) -> Option<u64> {
    match upstream.hash_key() {
        None => None,
        Some(key) => hash_of(key, request),
    }
}

/// [`key`] for an entry that has one. Out of line, so that the test in front of it is all
/// that other entries' requests execute (a call to a function holding the lookup saved and
/// restored registers on every request: 18 instructions).
#[inline(never)]
fn hash_of(key: &HashKey, request: &ProxyRequest) -> Option<u64> {
    hash_key_parts(request, key).map(|parts| key_hash(&parts))
}

/// The server the request's sticky cookie names, when the entry has one and a cookie of
/// that name is some server's value.
#[inline(always)]
pub(super) fn sticky_server(upstream: &Upstream, request: &ProxyRequest) -> Option<usize> {
    match upstream.sticky() {
        None => None,
        Some(sticky) => cookie_server(sticky, request),
    }
}

/// [`sticky_server`] for an entry that has a sticky cookie (out of line, as [`hash_of`]).
#[inline(never)]
fn cookie_server(sticky: &Sticky, request: &ProxyRequest) -> Option<usize> {
    sticky.server_in(cookies(request, sticky.name()))
}

/// The `Set-Cookie` line for a response from server `served` to `request`: nothing when the
/// entry has no sticky cookie or the request's cookie already names that server.
#[inline(always)]
pub(super) fn set_cookie<'u>(
    upstream: &'u Upstream,
    request: &ProxyRequest,
    served: usize,
) -> &'u [u8] {
    match upstream.sticky() {
        Some(sticky) if cookie_server(sticky, request) != Some(served) => sticky.line(served),
        _ => &[],
    }
}
