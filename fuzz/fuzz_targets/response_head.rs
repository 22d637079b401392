//! Fuzz target: the one-pass response-head reader against the httparse-based reference it
//! replaced, and the memo of a backend's previous head against the reader
//! (`proxy_reverse::http::response::agree`, the checks the `equivalence` tests use).
//!
//! Input: a flags byte (the client side, the edit kind), two bytes saying where the
//! backend's first head ends and its next begins, then the bytes of both heads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use proxy_reverse::http::response::agree::{
    agree, agree_on_prefixes, memo_agrees, rules, with_edits,
};
use proxy_reverse::http::response::ClientSide;

/// Heads up to this long are checked on every prefix too (each prefix costs a parse).
const PREFIXES_UP_TO: usize = 512;

fuzz_target!(|data: &[u8]| {
    let [flags, hi, lo, heads @ ..] = data else {
        return;
    };
    let client = ClientSide {
        head_request: flags & 1 != 0,
        minor_version: (flags >> 1) & 1,
        wants_close: flags & 4 != 0,
        upgrade: flags & 8 != 0,
    };
    let split = usize::from(u16::from_be_bytes([*hi, *lo])) % (heads.len() + 1);
    let (first, next) = heads.split_at(split);
    let rules = rules();
    with_edits(flags >> 4, &rules, |edits| {
        for head in [first, next] {
            if head.len() <= PREFIXES_UP_TO {
                agree_on_prefixes(head, client, edits);
            } else {
                agree(head, client, edits);
            }
        }
    });
    memo_agrees(first, next, client);
});
