//! Host and method routing and path rewrites (#19), written once against any host: the
//! stand-in host (`tests/routing.rs`) and a real Monkey (`tests/monkey_routing.rs`) run the
//! same scenarios against [`Origin`]s, which say who answered (`X-Backend`) and echo the
//! request head they received (`/headers`, also as `/m/ANYTHING/headers`).

#![allow(dead_code)]

use std::net::SocketAddr;

use crate::common::{Client, Origin, Response};

/// The configuration of every scenario: origins `a`, `b`, `c` (the fallback), and `d` for
/// rewrites.
pub fn routing_conf(a: SocketAddr, b: SocketAddr, c: SocketAddr, d: SocketAddr) -> String {
    format!(
        "[PROXY_ENTRY]\n    Name hosts-a\n    MatchHost a.test ~^alias[0-9]+\\.test$\n    Match ^/\n    ServerList {a}\n\
         [PROXY_ENTRY]\n    Name hosts-b\n    MatchHost *.b.test\n    ServerList {b}\n\
         [PROXY_ENTRY]\n    Name writes\n    Match ^/m/write/\n    MatchMethod POST PUT\n    ServerList {b}\n\
         [PROXY_ENTRY]\n    Name strip\n    MatchHost strip.test\n    PathStripPrefix /api\n    ServerList {d}\n\
         [PROXY_ENTRY]\n    Name rewrite\n    MatchHost rewrite.test\n    PathRewrite ^/v1/(?P<what>[a-z]+)/(.*)$ /m/$2/${{what}}\n    ServerList {d}\n\
         [PROXY_ENTRY]\n    Name fallback\n    Match ^/\n    ServerList {c}\n"
    )
}

/// The four origins of [`routing_conf`].
pub fn origins() -> [Origin; 4] {
    ["a", "b", "c", "d"].map(Origin::start)
}

/// `METHOD target` with `Host: host` (none when `None`) on a new connection.
pub fn request(proxy: SocketAddr, method: &str, target: &str, host: Option<&str>) -> Response {
    let mut c = Client::connect(proxy);
    let host = host.map_or(String::new(), |h| format!("Host: {h}\r\n"));
    let version = if host.is_empty() { "1.0" } else { "1.1" };
    let body = if method == "POST" || method == "PUT" {
        "Content-Length: 2\r\n\r\nhi"
    } else {
        "\r\n"
    };
    c.send(
        format!("{method} {target} HTTP/{version}\r\n{host}Connection: close\r\n{body}").as_bytes(),
    );
    c.read_response(method == "HEAD").expect("a response")
}

/// Which origin answered.
fn backend(r: &Response) -> String {
    r.header("X-Backend").unwrap_or("(none)").to_string()
}

/// The request line the origin received, from its `/headers` echo.
fn received_line(r: &Response) -> String {
    let text = String::from_utf8_lossy(&r.body).into_owned();
    text.lines().next().unwrap_or("").to_string()
}

/// Two hosts, the same path, different backends; the `Host` in any letter case, with a port,
/// with a trailing dot; wildcards for subdomains only; a regex; no `Host` at all.
pub fn assert_hosts_choose_the_backend(proxy: SocketAddr) {
    for (host, expected) in [
        (Some("a.test"), "a"),
        (Some("A.Test:8080"), "a"),
        (Some("a.TEST."), "a"),
        (Some("alias7.test"), "a"),
        (Some("x.b.test"), "b"),
        (Some("Deep.X.B.Test:81"), "b"),
        // `*.b.test` does not take b.test itself.
        (Some("b.test"), "c"),
        (Some("other.test"), "c"),
        (None, "c"),
    ] {
        let r = request(proxy, "GET", "/id", host);
        assert_eq!(r.status, 200, "{host:?}");
        assert_eq!(backend(&r), expected, "Host {host:?}");
        // The Host header reaches the backend as the client sent it.
        let r = request(proxy, "GET", "/headers", host);
        let head = String::from_utf8_lossy(&r.body).into_owned();
        if let Some(h) = host {
            assert!(head.contains(&format!("\nHost: {h}\r")), "{head}");
        }
    }
}

/// `MatchMethod POST PUT` on `^/m/write/`: those methods reach `b`, the others fall through
/// to the fallback.
pub fn assert_methods_choose_the_backend(proxy: SocketAddr) {
    for (method, expected) in [("POST", "b"), ("PUT", "b"), ("GET", "c"), ("HEAD", "c")] {
        let r = request(proxy, method, "/m/write/id", Some("x.test"));
        assert_eq!(r.status, 200, "{method}");
        assert_eq!(backend(&r), expected, "{method}");
    }
}

/// The origin sees exactly the rewritten target, the query intact; the client's `Host` is
/// kept.
pub fn assert_rewrites_reach_the_origin_exactly(proxy: SocketAddr) {
    for (host, sent, received) in [
        ("strip.test", "/api/headers?x=1&y=%2F", "/headers?x=1&y=%2F"),
        ("strip.test", "/api/m/a%20b/headers?", "/m/a%20b/headers?"),
        // Not at a segment boundary: sent as it came.
        ("strip.test", "/apim/x/headers", "/apim/x/headers"),
        (
            "rewrite.test",
            "/v1/headers/x%20y?q=a%2Fb&r",
            "/m/x%20y/headers?q=a%2Fb&r",
        ),
        // The regex does not match: sent as it came.
        ("rewrite.test", "/m/z/headers?k", "/m/z/headers?k"),
    ] {
        let r = request(proxy, "GET", sent, Some(host));
        let line = received_line(&r);
        if received.starts_with("/apim") {
            // The origin answers only /headers and /m/X/headers: a 404 names it.
            assert_eq!(backend(&r), "d", "{sent}");
            continue;
        }
        assert_eq!(r.status, 200, "{sent}");
        assert_eq!(line, format!("GET {received} HTTP/1.1"), "{host} {sent}");
        let head = String::from_utf8_lossy(&r.body).into_owned();
        assert!(head.contains(&format!("\nHost: {host}\r")), "{head}");
    }
}
