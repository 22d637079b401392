//! The check that holds the one-pass intake to the httparse-based intake and validation it
//! replaced ([`super::reference`] then [`ProxyRequest::validate`]): shared by the
//! `equivalence` property tests and the fuzz targets (`fuzz/`, with the `fuzz-reference`
//! feature). It panics, naming the request, where the two disagree.

use super::super::headers::Field;
use super::super::request::ProxyRequest;
use super::{read_request, reference, RawRequest};

/// What a read request holds, every public part of it.
type Facts = (
    String,
    String,
    Option<String>,
    u8,
    Vec<(Field, Vec<u8>, Vec<u8>)>,
    Option<Vec<u8>>,
    Vec<u8>,
    String,
    bool,
    Vec<u8>,
);

fn facts(r: &ProxyRequest) -> Facts {
    (
        r.method.clone(),
        r.path.clone(),
        r.query.clone(),
        r.minor_version,
        r.headers
            .fields()
            .map(|(f, n, v)| (f, n.to_vec(), v.to_vec()))
            .collect(),
        r.host.clone(),
        r.body.clone(),
        format!("{:?} {:?}", r.body_kind, r.client),
        r.client_wants_close,
        r.early.clone(),
    )
}

/// Runs both intakes on `raw` (each into a request that held another one before: what is
/// left of it must not matter) and asserts they agree.
pub fn agree(raw: &RawRequest<'_>) {
    let mut new = dirty();
    let mut old = dirty();
    let read = read_request(raw, &mut new);
    let before = reference::read_request(raw, &mut old);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let shown = format!(
        "{} {} ?{:?} HTTP/1.{} {:?}",
        text(raw.method),
        text(raw.path),
        raw.query.map(text),
        raw.minor_version,
        text(raw.rest)
    );
    assert_eq!(read.map(|r| r.consumed), before, "decision for {shown:?}");
    let Ok(read) = read else { return };
    assert_eq!(read.verdict, old.validate(), "verdict for {shown:?}");
    // The verdict is the request's own too (what `validate` says of what was read).
    assert_eq!(read.verdict, new.validate(), "own verdict for {shown:?}");
    assert_eq!(facts(&new), facts(&old), "request for {shown:?}");
}

/// A request that was filled before (the worker's recycled ones are).
fn dirty() -> ProxyRequest {
    let mut r = ProxyRequest::default();
    let raw = RawRequest {
        method: b"PUT",
        path: b"/old",
        query: Some(b"q=old"),
        minor_version: 1,
        rest: b"Host: old\r\nConnection: upgrade, close\r\nUpgrade: x\r\nContent-Length: 2\r\n\r\nabEARLY",
        peer: Some("192.0.2.9:9".parse().unwrap()),
        host_closes: true,
    };
    reference::read_request(&raw, &mut r).unwrap();
    r
}
