//! Header rules (`RequestHeader`, `ResponseHeader`, #19), written once against any host: the
//! stand-in host (`tests/header_rules.rs`) and a real Monkey (`tests/monkey_headers.rs`) run
//! the same configurations and checks. Each scenario takes the configuration its function
//! `*_conf` wrote, started by the caller's host, and the proxy's address.

#![allow(dead_code)]

use std::net::SocketAddr;

use crate::common::{Client, Response};

/// Request and response rules of every kind, with every variable, for an entry named `api`
/// in front of one origin ([`crate::common::Origin`], whose `/headers` answers the request
/// head it got and whose responses carry `X-Backend`).
pub fn both_ways_conf(origin: SocketAddr) -> String {
    format!(
        "[PROXY_ENTRY]\n    Name api\n    Match ^/\n    ServerList {origin}\n\
         \x20   RequestHeader set X-Env prod\n\
         \x20   RequestHeader add X-Tag $entry\n\
         \x20   RequestHeader remove X-Secret\n\
         \x20   RequestHeader set X-Client $client_addr\n\
         \x20   RequestHeader set X-Server $server\n\
         \x20   RequestHeader set X-Id $request_id\n\
         \x20   RequestHeader set X-Price 5$$ (${{entry}}s)\n\
         \x20   ResponseHeader set X-Id $request_id\n\
         \x20   ResponseHeader remove X-Backend\n\
         \x20   ResponseHeader add X-Served-By $server\n\
         \x20   ResponseHeader set X-Entry $entry\n"
    )
}

/// The values of the fields named `name` in a request head as text (`Name: value` lines).
fn request_fields<'t>(head: &'t str, name: &str) -> Vec<&'t str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

/// The values of the response's fields named `name`.
fn response_fields<'r>(r: &'r Response, name: &str) -> Vec<&'r str> {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

fn is_request_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Against [`both_ways_conf`]: on one client connection (so on a reused backend connection
/// too), every request reaches the origin with the request rules applied and every response
/// reaches the client with the response rules applied, the variables expanded with this
/// request's values; the request id is the same at both ends of one request and new for each.
pub fn assert_rules_apply_both_ways(proxy: SocketAddr, origin: SocketAddr) {
    let mut c = Client::connect(proxy);
    let mut ids = Vec::new();
    for i in 0..3 {
        c.send(
            b"GET /headers HTTP/1.1\r\nHost: test\r\nX-Env: dev\r\nX-Tag: client\r\n\
              X-Secret: s1\r\nx-secret: s2\r\nX-Id: forged\r\nX-Client: 6.6.6.6\r\n\r\n",
        );
        let r = c.read_response(false).expect("a response");
        assert_eq!(r.status, 200, "request {i}");
        let head = String::from_utf8(r.body.clone()).unwrap();
        let at_origin = |name| request_fields(&head, name);
        assert_eq!(at_origin("X-Env"), ["prod"], "{head}");
        assert_eq!(at_origin("X-Tag"), ["client", "api"], "{head}");
        assert!(at_origin("X-Secret").is_empty(), "{head}");
        assert_eq!(at_origin("X-Client"), ["127.0.0.1"], "{head}");
        assert_eq!(at_origin("X-Server"), [origin.to_string()], "{head}");
        assert_eq!(at_origin("X-Price"), ["5$ (apis)"], "{head}");
        // The proxy's own headers are still there, its X-Forwarded-For first of all.
        assert_eq!(at_origin("X-Forwarded-For"), ["127.0.0.1"], "{head}");
        assert_eq!(at_origin("Host"), ["test"], "{head}");
        let id = at_origin("X-Id");
        assert!(id.len() == 1 && is_request_id(id[0]), "{head}");
        // The client sees the same id, the response rules, and no X-Backend.
        assert_eq!(response_fields(&r, "X-Id"), id, "{:?}", r.headers);
        assert!(r.header("X-Backend").is_none(), "{:?}", r.headers);
        assert_eq!(
            response_fields(&r, "X-Served-By"),
            [origin.to_string()],
            "{:?}",
            r.headers
        );
        assert_eq!(response_fields(&r, "X-Entry"), ["api"], "{:?}", r.headers);
        ids.push(id[0].to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per request: {ids:?}");
}

/// A backend answer with a `Server` field and a field sent twice, for
/// [`response_edits_conf`].
pub const TWICE_REPLY: &[u8] = b"HTTP/1.1 200 OK\r\nServer: raw/1.0\r\nX-Twice: 1\r\nX-Keep: k\r\n\
    x-twice: 2\r\nX-Add: backend\r\nContent-Length: 2\r\n\r\nok";

/// Response rules on a backend that answers [`TWICE_REPLY`].
pub fn response_edits_conf(backend: SocketAddr) -> String {
    format!(
        "[PROXY_ENTRY]\n    Match ^/\n    ServerList {backend}\n\
         \x20   ResponseHeader remove Server\n\
         \x20   ResponseHeader set X-Twice once\n\
         \x20   ResponseHeader add X-Add a\n\
         \x20   ResponseHeader add X-Add b\n"
    )
}

/// Against [`response_edits_conf`], on one keep-alive connection: `Server` is gone, the field
/// sent twice comes once with the rule's value, `add` keeps the backend's field and adds
/// its own, the other fields and the body are untouched.
pub fn assert_response_edits(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    for i in 0..2 {
        let r = c.get("/x");
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"ok"[..]),
            "request {i}"
        );
        assert!(r.header("Server").is_none(), "{:?}", r.headers);
        assert_eq!(response_fields(&r, "X-Twice"), ["once"], "{:?}", r.headers);
        assert_eq!(
            response_fields(&r, "X-Add"),
            ["backend", "a", "b"],
            "{:?}",
            r.headers
        );
        assert_eq!(response_fields(&r, "X-Keep"), ["k"], "{:?}", r.headers);
    }
}

/// A backend that accepts every connection and closes it without reading or answering: a
/// try there fails after its request was written and sent, before any response byte, so an
/// idempotent request is retried on the next server.
pub fn closing_backend() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    addr
}

/// Rules naming `$server`, on an entry whose first server fails every try (`failing`, a
/// [`closing_backend`] or a dead address) and whose second is `origin`: the request is
/// written for the first, then retried on `origin`.
pub fn retried_conf(failing: SocketAddr, origin: SocketAddr) -> String {
    format!(
        "[PROXY_ENTRY]\n    Match ^/\n    ServerList {failing} {origin}\n    LoadBalancer FirstAlive\n\
         \x20   RequestHeader set Host $server\n\
         \x20   RequestHeader set X-Server $server\n\
         \x20   ResponseHeader set X-Served-By $server\n"
    )
}

/// Against [`retried_conf`]: the request the origin gets names the origin (the server of
/// the try that reached it), not the failing server the first try was written for, in
/// `Host` too; the client's own host goes on as `X-Forwarded-Host`.
pub fn assert_retried_request_names_its_server(proxy: SocketAddr, origin: SocketAddr) {
    let mut c = Client::connect(proxy);
    for i in 0..2 {
        let r = c.get("/headers");
        assert_eq!(r.status, 200, "request {i}");
        let head = String::from_utf8(r.body.clone()).unwrap();
        assert_eq!(
            request_fields(&head, "Host"),
            [origin.to_string()],
            "{head}"
        );
        assert_eq!(
            request_fields(&head, "X-Server"),
            [origin.to_string()],
            "{head}"
        );
        assert_eq!(
            request_fields(&head, "X-Forwarded-Host"),
            ["test"],
            "{head}"
        );
        assert_eq!(
            response_fields(&r, "X-Served-By"),
            [origin.to_string()],
            "{:?}",
            r.headers
        );
    }
}

/// A rule on a header the client names in its `Connection` (the Traefik CVE-2024-45410
/// shape), and a client asking the proxy to drop its X-Forwarded-For that way.
pub fn connection_conf(origin: SocketAddr) -> String {
    format!(
        "[PROXY_ENTRY]\n    Match ^/\n    ServerList {origin}\n\
         \x20   RequestHeader set X-Env prod\n"
    )
}

/// Against [`connection_conf`]: fields a client names in `Connection` are dropped before the
/// rules run, so the rule's field arrives and the client's does not, and naming
/// `X-Forwarded-For` there removes nothing the proxy writes.
pub fn assert_connection_names_cannot_undo_rules(proxy: SocketAddr) {
    let mut c = Client::connect(proxy);
    c.send(
        b"GET /headers HTTP/1.1\r\nHost: test\r\nConnection: keep-alive, X-Env, X-Forwarded-For\r\n\
          X-Env: dev\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    );
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 200);
    let head = String::from_utf8(r.body).unwrap();
    assert_eq!(request_fields(&head, "X-Env"), ["prod"], "{head}");
    assert_eq!(
        request_fields(&head, "X-Forwarded-For"),
        ["127.0.0.1"],
        "{head}"
    );
}

/// The refused configuration of the acceptance: a rule removing `X-Forwarded-For`, on its
/// line 4.
pub const REFUSED_CONF: &str =
    "[PROXY_ENTRY]\n    Match ^/\n    ServerList 127.0.0.1:9\n    RequestHeader remove X-Forwarded-For\n";

/// What the refusal says, after `FILE:` (the file's name is the host's).
pub const REFUSAL: &str = ":4: X-Forwarded-For is set by the proxy (a client's is replaced, a \
                           trusted proxy's kept); a rule cannot remove it";
