//! The plugin's per-request HTTP work outside the kernel: rewriting a backend's response head
//! for the client (read, or recalled from the memo of the backend's previous head), and
//! writing the request for the backend.
//!
//! `cargo bench --bench http -- --warm-up-time 1 --measurement-time 2`
//!
//! The inputs are what the load benchmark (`scripts/bench.sh`) exchanges: the head nginx sends
//! for a 1 KiB file, a browser-like request of eleven fields, and wrk's two-field request.
//! Output buffers are reused, as the relay reuses them, so nothing allocates per iteration.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use proxy_reverse::http::request::{ForwardPolicy, ProxyRequest};
use proxy_reverse::http::response::{parse_head, ClientSide, HeadEdits, HeadMemo};

/// The response head nginx sends for a static 1 KiB file, keep-alive.
const NGINX_1K: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Fri, 27 Nov 2026 19:36:03 GMT\r\nContent-Type: application/octet-stream\r\nContent-Length: 1024\r\nLast-Modified: Fri, 27 Nov 2026 11:25:20 GMT\r\nConnection: keep-alive\r\nETag: \"6b0968a0-400\"\r\nAccept-Ranges: bytes\r\n\r\n";

/// An application's chunked response with cookies and caching fields.
const APP_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nDate: Fri, 27 Nov 2026 19:36:03 GMT\r\nContent-Type: text/html; charset=utf-8\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nVary: Accept-Encoding\r\nSet-Cookie: session=0123456789abcdef; Path=/; HttpOnly; SameSite=Lax\r\nCache-Control: private, max-age=0\r\nX-Request-Id: 5f0c2a1e-8b5d-4c3a-9e7f-1a2b3c4d5e6f\r\nStrict-Transport-Security: max-age=31536000\r\n\r\n";

const GET11: ClientSide = ClientSide {
    head_request: false,
    minor_version: 1,
    wants_close: false,
    upgrade: false,
};

fn request(fields: &[(&str, &str)]) -> ProxyRequest {
    let mut r = ProxyRequest::default();
    r.method = "GET".into();
    r.path = "/static/app.js".into();
    r.query = Some("v=3".into());
    r.minor_version = 1;
    r.headers = fields.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
    r.host = fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.as_bytes().to_vec());
    r.client = Some("192.0.2.7:51234".parse().unwrap());
    r
}

fn bench(c: &mut Criterion) {
    let mut out = Vec::with_capacity(4096);
    let mut heads = c.benchmark_group("response_head");
    for (name, head) in [("nginx_1k", NGINX_1K), ("app_chunked", APP_CHUNKED)] {
        heads.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(
                    parse_head(black_box(head), GET11, &HeadEdits::default(), &mut out).unwrap(),
                );
            })
        });
    }
    heads.finish();

    // What the relay does with a memo: recall, else read and remember.
    let through_memo = |memo: &mut HeadMemo, head: &[u8], out: &mut Vec<u8>| {
        out.clear();
        if memo.recall(head, GET11, out).is_none() {
            let read = parse_head(head, GET11, &HeadEdits::default(), out)
                .unwrap()
                .unwrap();
            memo.remember(head, GET11, &read, out);
        }
    };
    let next_second = String::from_utf8(NGINX_1K.to_vec())
        .unwrap()
        .replace("19:36:03", "19:36:04");
    let other_length = String::from_utf8(NGINX_1K.to_vec())
        .unwrap()
        .replace("Length: 1024", "Length: 2048");
    let mut memo = c.benchmark_group("response_head_memo");
    for (name, second) in [
        // The same head every time: one comparison.
        ("same", NGINX_1K),
        // Two dates in turn: the date written into the memo each time.
        ("new_date", next_second.as_bytes()),
        // Two lengths in turn: never recognised; after eight, one head in 64 remembered.
        ("other_length", other_length.as_bytes()),
    ] {
        let mut m = HeadMemo::default();
        memo.bench_function(name, |b| {
            b.iter(|| {
                through_memo(&mut m, black_box(NGINX_1K), &mut out);
                through_memo(&mut m, black_box(second), &mut out);
            })
        });
    }
    memo.finish();

    let wrk = request(&[("Host", "127.0.0.1:8080")]);
    let browser = request(&[
        ("Host", "www.example.com"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        ),
        ("Accept", "*/*"),
        ("Accept-Language", "en-US,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Referer", "https://www.example.com/"),
        ("Connection", "keep-alive"),
        ("Cookie", "session=0123456789abcdef; theme=dark"),
        ("Sec-Fetch-Dest", "script"),
        ("Sec-Fetch-Mode", "no-cors"),
        ("If-None-Match", "\"6b0968a0-400\""),
    ]);
    let policy = ForwardPolicy::default();
    let mut upstream = c.benchmark_group("upstream_request");
    for (name, req) in [("wrk", &wrk), ("browser", &browser)] {
        upstream.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                black_box(req).write_upstream(&policy, &mut out);
                black_box(&out);
            })
        });
    }
    upstream.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
