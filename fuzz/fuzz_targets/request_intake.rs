//! Fuzz target: the one-pass request intake against the httparse-based intake and the
//! validation it replaced (`proxy_reverse::http::intake::agree`, the check the
//! `equivalence` tests use): the same decision, the same request, the same verdict.
//!
//! Input: a flags byte (HTTP minor version, whether the host closes, whether there is a
//! query), the lengths of the method, the path and the query (one byte each), then the
//! method, path and query bytes and the rest of the request (fields, body, what follows).
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_reverse::http::intake::{agree::agree, RawRequest};

fuzz_target!(|data: &[u8]| {
    let [flags, method_len, path_len, query_len, bytes @ ..] = data else {
        return;
    };
    let (method_len, path_len, query_len) = (
        usize::from(*method_len % 16),
        usize::from(*path_len),
        usize::from(*query_len),
    );
    if bytes.len() < method_len + path_len + query_len {
        return;
    }
    let (method, bytes) = bytes.split_at(method_len);
    let (path, bytes) = bytes.split_at(path_len);
    let (query, rest) = bytes.split_at(query_len);
    agree(&RawRequest {
        method,
        path,
        query: (flags & 4 != 0).then_some(query),
        minor_version: flags & 1,
        rest,
        peer: Some(([192, 0, 2, 7], 4000).into()),
        host_closes: flags & 2 != 0,
    });
});
