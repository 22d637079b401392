//! The HTTP attack catalogue: one function per rule of the proxying contract, named for the
//! attack or the rule, run on both hosts by [`attack_catalogue!`]. The same request must get
//! the same answer from the stand-in host and from a real Monkey for every case here.
//!
//! Cases only one host can run stay in that host's file (`relay_attacks.rs`,
//! `monkey_http.rs`).

// An unlisted case would be dead code: warn (and fail clippy) rather than never run it.
#![warn(dead_code)]

use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::common::*;

/// Expands the catalogue into one `#[test]` per case, named for the case, that runs it on a
/// fresh `$harness` (a [`Harness`] + `Default` type), with the attributes in braces added to
/// every test (the real-Monkey file adds its `ignore` condition there).
///
/// ```ignore
/// attack_catalogue!(StandIn, {});
/// ```
macro_rules! attack_catalogue {
    ($harness:ty, { $($attrs:tt)* }) => {
        attack_catalogue!(@tests $harness, { $($attrs)* }, [
            // Forwarding headers.
            xff_is_set_to_the_client_address,
            spoofed_xff_from_an_untrusted_client_is_replaced,
            xff_from_a_trusted_proxy_is_appended_to,
            x_forwarded_proto_and_host_are_set_and_not_spoofable,
            http10_request_without_host_reaches_the_origin_with_one,
            a_trusted_proxys_proto_host_and_forwarded_are_kept,
            host_is_forwarded_exactly_as_sent,
            forwarded_header_is_absent_by_default_even_if_the_client_sends_one,
            forwarded_header_is_sent_with_forwarded_header_on,
            // Hop-by-hop headers.
            connection_header_is_not_forwarded,
            keep_alive_header_is_not_forwarded,
            te_header_is_not_forwarded,
            proxy_connection_header_is_not_forwarded,
            upgrade_without_connection_upgrade_is_not_forwarded,
            header_named_in_connection_does_not_reach_the_origin,
            a_request_with_many_fields_reaches_the_origin_whole,
            connection_naming_xff_cannot_strip_the_proxys_xff,
            // Host and target.
            host_is_preserved_with_port_and_target_kept_exactly,
            eight_bit_bytes_in_the_target_are_percent_encoded,
            // Routing: the statistics page and paths no entry serves.
            statistics_url_gets_the_page_from_the_proxy,
            unmatched_path_gets_404_from_the_proxy,
            malformed_request_to_the_statistics_url_gets_400_and_close,
            malformed_request_to_an_unrouted_path_gets_400_and_close,
            // Persistent upstream connections.
            upstream_connections_are_reused_across_client_connections,
            // Request bodies and smuggling.
            chunked_upload_reaches_the_origin_intact,
            smuggling_cl_zero_and_te_together_gets_400_and_nothing_reaches_the_origin,
            smuggling_two_different_content_lengths_gets_400_and_close,
            smuggling_two_equal_content_lengths_gets_400_and_close,
            smuggling_content_length_too_large_to_hold_gets_refused,
            smuggling_transfer_encoding_gzip_chunked_gets_400,
            connection_is_closed_after_a_400_for_a_chunked_request,
            two_host_fields_get_400_and_close,
            host_that_is_not_an_authority_gets_400_and_close,
            http11_request_without_host_gets_400,
            host_breaking_out_of_forwarded_gets_400_and_close,
            bare_cr_in_the_target_gets_400_and_close,
            fragment_in_the_target_gets_400,
            nul_in_the_path_gets_400_and_close,
            absolute_form_target_gets_400,
            // Broken origins.
            garbage_origin_gets_502,
            origin_sending_two_different_content_lengths_gets_502,
            origin_transfer_coding_other_than_chunked_gets_502,
            obs_fold_in_origin_response_gets_502,
            bare_line_feeds_and_connection_named_fields_never_reach_the_client,
            interim_100_continue_is_relayed_as_just_the_200,
            // Message framing on one connection.
            head_then_get_on_one_connection,
            close_delimited_response_goes_chunked_and_the_client_connection_stays,
            close_delimited_body_cut_by_a_reset_closes_the_client_without_a_last_chunk,
            streaming_first_part_arrives_well_before_the_last,
        ]);
    };
    (@tests $harness:ty, $attrs:tt, [$($case:ident),* $(,)?]) => {
        $( attack_catalogue!(@test $harness, $attrs, $case); )*
    };
    (@test $harness:ty, { $($attrs:tt)* }, $case:ident) => {
        #[test]
        $($attrs)*
        fn $case() {
            $crate::attack_support::run_case::<$harness>(
                stringify!($case),
                $crate::attack_support::cases::$case,
            );
        }
    };
}

// ---- helpers --------------------------------------------------------------------------

/// The path [`STATISTICS_CONF`] serves the statistics page at.
const STATISTICS_URL: &str = "/proxy-status";

/// `[PROXY_DEFAULTS]` with `StatisticsURL` [`STATISTICS_URL`], to put before an entry.
fn statistics_defaults() -> String {
    format!("[PROXY_DEFAULTS]\n    StatisticsURL {STATISTICS_URL}\n\n")
}

/// A configuration whose one entry serves only `^/api/`, for `servers`, after `defaults`.
fn api_only_conf(defaults: &str, servers: &[SocketAddr]) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "{defaults}[PROXY_ENTRY]\n    Match ^/api/\n    ServerList {}\n",
        list.join(" ")
    )
}

/// What the origin received for `GET /headers` with `Host: host` and the `extra` header
/// lines, through a proxy whose one entry has the lines `conf_extra`.
pub fn origin_sees(
    h: &dyn Harness,
    conf_extra: &str,
    host: &str,
    extra: &str,
) -> (String, Vec<(String, String)>) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], conf_extra));
    let mut c = Client::connect(proxy);
    c.send(&headers_request(host, extra));
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    parse_head(&r.body)
}

/// Sends one raw request to the proxy at `proxy`; returns the response and the client
/// connection (to check what follows it).
pub fn through(proxy: SocketAddr, raw: &[u8]) -> (Response, Client) {
    let mut c = Client::connect(proxy);
    c.reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    c.send(raw);
    let r = c.read_response(false).expect("a response");
    (r, c)
}

/// `raw` sent to the proxy at `proxy`, in front of `origin`: 400, then the connection closed,
/// and nothing sent to the origin.
pub fn assert_refused_before(proxy: SocketAddr, origin: &Origin, raw: &[u8]) {
    let (r, mut c) = through(proxy, raw);
    assert_eq!(
        r.status,
        400,
        "{:?} got {:?}",
        String::from_utf8_lossy(raw),
        String::from_utf8_lossy(&r.body)
    );
    assert_closed_after(&mut c);
    assert_eq!(
        origin.conns.load(Ordering::SeqCst),
        0,
        "{:?} reached the origin",
        String::from_utf8_lossy(raw)
    );
}

/// An ambiguous request to a proxy whose entry sends every path to an origin: 400, the
/// connection closed, nothing sent to the origin.
pub fn refused_before_the_origin(h: &dyn Harness, raw: &[u8]) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    assert_refused_before(proxy, &origin, raw);
}

/// A request refused with a 400 before anything reaches the origin (whether the connection
/// then closes is the host's choice).
pub fn refused_whatever_follows(h: &dyn Harness, raw: &[u8]) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    let (r, _c) = through(proxy, raw);
    assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
}

/// A broken origin reply to `GET /x`: the client gets `status`.
pub fn origin_reply_gives(h: &dyn Harness, reply: &'static [u8], status: u16) -> Response {
    let proxy = h.start(&conf_for(&[raw_origin(reply)], "    AttemptsCount 1\n"));
    let (r, _c) = through(proxy, b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    r
}

/// The header `name` (lower case) does not reach the origin when the client sends `line`.
fn assert_not_forwarded(h: &dyn Harness, name: &str, line: &str) {
    let (_, hd) = origin_sees(h, "", "t", line);
    assert!(
        values(&hd, name).is_empty(),
        "{name} reached the origin: {hd:?}"
    );
}

/// Malformed requests for `path` (two different Content-Length fields; a Host that is not an
/// authority), each on a connection of its own.
fn malformed_requests_for(path: &str) -> [Vec<u8>; 2] {
    [
        format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 6\r\nContent-Length: 5\r\n\r\nhello"
        )
        .into_bytes(),
        format!("GET {path} HTTP/1.1\r\nHost: a b\r\n\r\n").into_bytes(),
    ]
}

// ---- forwarding headers ---------------------------------------------------------------

/// `X-Forwarded-For` is the client's address.
pub fn xff_is_set_to_the_client_address(h: &dyn Harness) {
    let (_, hd) = origin_sees(h, "", "t", "");
    assert_eq!(values(&hd, "x-forwarded-for"), ["127.0.0.1"]);
}

/// An untrusted client's `X-Forwarded-For` fields are replaced, not appended to.
pub fn spoofed_xff_from_an_untrusted_client_is_replaced(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "    TrustedProxies 10.0.0.0/8\n",
        "t",
        "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 7.7.7.7\r\n",
    );
    assert_eq!(values(&hd, "x-forwarded-for"), ["127.0.0.1"]);
}

/// A trusted proxy's `X-Forwarded-For` is kept and the client's address appended.
pub fn xff_from_a_trusted_proxy_is_appended_to(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "    TrustedProxies 127.0.0.1/32\n",
        "t",
        "X-Forwarded-For: 203.0.113.7\r\n",
    );
    assert_eq!(values(&hd, "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"]);
}

/// `X-Forwarded-Proto` and `-Host` are the proxy's own, whatever an untrusted client sends.
pub fn x_forwarded_proto_and_host_are_set_and_not_spoofable(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "",
        "shop.example:8443",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n",
    );
    assert_eq!(values(&hd, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&hd, "x-forwarded-host"), ["shop.example:8443"]);
}

/// An HTTP/1.0 request without `Host` reaches the origin as HTTP/1.1 with one.
pub fn http10_request_without_host_reaches_the_origin_with_one(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    assert_http10_without_host_gets_a_host(proxy, &origin.addr.to_string());
}

/// A trusted proxy's protocol, host and `Forwarded` element are kept.
pub fn a_trusted_proxys_proto_host_and_forwarded_are_kept(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "    TrustedProxies 127.0.0.1/32\n    ForwardedHeader on\n",
        TRUSTED_HOST,
        TRUSTED_FORWARDING,
    );
    assert_trusted_values_kept(&hd);
}

/// `Host` reaches the origin byte for byte (Monkey's own parse of Host dropped a port of 0).
pub fn host_is_forwarded_exactly_as_sent(h: &dyn Harness) {
    let (_, hd) = origin_sees(h, "", "a:0", "");
    assert_eq!(values(&hd, "host"), ["a:0"]);
}

/// Without `ForwardedHeader on` no `Forwarded` reaches the origin, not even the client's.
pub fn forwarded_header_is_absent_by_default_even_if_the_client_sends_one(h: &dyn Harness) {
    let (_, hd) = origin_sees(h, "", "t", "Forwarded: for=6.6.6.6\r\n");
    assert!(values(&hd, "forwarded").is_empty(), "{hd:?}");
}

/// With `ForwardedHeader on` the origin gets the proxy's own `Forwarded`, the client's gone.
pub fn forwarded_header_is_sent_with_forwarded_header_on(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "    ForwardedHeader on\n",
        "h.example:81",
        "Forwarded: for=6.6.6.6\r\n",
    );
    assert_eq!(
        values(&hd, "forwarded"),
        ["for=127.0.0.1;host=\"h.example:81\";proto=http"]
    );
}

// ---- hop-by-hop headers ---------------------------------------------------------------

/// `Connection` is hop-by-hop.
pub fn connection_header_is_not_forwarded(h: &dyn Harness) {
    assert_not_forwarded(h, "connection", "Connection: keep-alive\r\n");
}

/// `Keep-Alive` is hop-by-hop.
pub fn keep_alive_header_is_not_forwarded(h: &dyn Harness) {
    assert_not_forwarded(h, "keep-alive", "Keep-Alive: timeout=300\r\n");
}

/// `TE` is hop-by-hop.
pub fn te_header_is_not_forwarded(h: &dyn Harness) {
    assert_not_forwarded(h, "te", "TE: trailers\r\n");
}

/// `Proxy-Connection` is hop-by-hop.
pub fn proxy_connection_header_is_not_forwarded(h: &dyn Harness) {
    assert_not_forwarded(h, "proxy-connection", "Proxy-Connection: keep-alive\r\n");
}

/// `Upgrade` without `Connection: upgrade` is no upgrade, and not forwarded.
pub fn upgrade_without_connection_upgrade_is_not_forwarded(h: &dyn Harness) {
    assert_not_forwarded(h, "upgrade", "Upgrade: h2c\r\n");
}

/// A field named in `Connection` is hop-by-hop; the others stay.
pub fn header_named_in_connection_does_not_reach_the_origin(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "",
        "t",
        "Connection: keep-alive, x-secret\r\nX-Secret: s3cr3t\r\nX-Kept: yes\r\n",
    );
    assert!(values(&hd, "x-secret").is_empty(), "{hd:?}");
    assert_eq!(values(&hd, "x-kept"), ["yes"]);
}

/// More fields than the plugin's first parse array holds: every one arrives, in order.
pub fn a_request_with_many_fields_reaches_the_origin_whole(h: &dyn Harness) {
    let extra: String = (0..40)
        .map(|i| format!("X-Field-{i}: value {i}\r\n"))
        .collect();
    let (_, hd) = origin_sees(h, "", "t", &extra);
    let got: Vec<&str> = hd
        .iter()
        .filter(|(n, _)| n.starts_with("x-field-"))
        .map(|(_, v)| v.as_str())
        .collect();
    let want: Vec<String> = (0..40).map(|i| format!("value {i}")).collect();
    assert_eq!(got, want);
}

/// Naming the proxy's own forwarding fields in `Connection` does not remove them.
pub fn connection_naming_xff_cannot_strip_the_proxys_xff(h: &dyn Harness) {
    let (_, hd) = origin_sees(
        h,
        "",
        "t",
        "Connection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host\r\n\
         X-Forwarded-For: 6.6.6.6\r\n",
    );
    assert_eq!(values(&hd, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(values(&hd, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&hd, "x-forwarded-host"), ["t"]);
}

// ---- Host and target ------------------------------------------------------------------

/// `Host` keeps its port, and the target (with encoded bytes in the query) reaches the
/// origin exactly as sent.
pub fn host_is_preserved_with_port_and_target_kept_exactly(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    let mut c = Client::connect(proxy);
    c.send(b"GET /headers?a=%2F&b=1%20 HTTP/1.1\r\nHost: app.example:8080\r\n\r\n");
    let (line, hd) = parse_head(&c.read_response(false).expect("a response").body);
    assert_eq!(values(&hd, "host"), ["app.example:8080"]);
    assert_eq!(line, "GET /headers?a=%2F&b=1%20 HTTP/1.1");
}

/// Bytes that are not ASCII in the target (UTF-8, and not even UTF-8) reach the origin
/// percent-encoded, none replaced.
pub fn eight_bit_bytes_in_the_target_are_percent_encoded(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    assert_target_reaches_the_origin_as(proxy, UTF8_TARGET, "/headers?q=caf%C3%A9");
    assert_target_reaches_the_origin_as(proxy, EIGHT_BIT_TARGET, "/headers?q=caf%C3%A9&r=%FF");
}

// ---- routing: the statistics page and paths no entry serves ------------------------------

/// `StatisticsURL` is answered by the proxy itself (200 to a loopback client, the servers
/// listed), without a byte to any origin, and the connection stays usable.
pub fn statistics_url_gets_the_page_from_the_proxy(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&format!(
        "{}{}",
        statistics_defaults(),
        conf_for(&[origin.addr], "")
    ));
    let mut c = Client::connect(proxy);
    let r = c.get(&format!("{STATISTICS_URL}?format=json"));
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("x-backend"), None, "the page came from the origin");
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains(&origin.addr.to_string()), "{body}");
    assert_eq!(origin.conns.load(Ordering::SeqCst), 0);
    let r = c.get("/id");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"a"[..]));
}

/// A path no entry matches gets the proxy's 404 (nothing reaches the origin); a matched path
/// on the same connection reaches the origin (which has no such route: its own 404).
pub fn unmatched_path_gets_404_from_the_proxy(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&api_only_conf("", &[origin.addr]));
    let mut c = Client::connect(proxy);
    let r = c.get("/other");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-backend"), None, "the 404 came from the origin");
    assert_eq!(origin.conns.load(Ordering::SeqCst), 0);
    let r = c.get("/api/nothing");
    assert_eq!(r.status, 404, "origin's own 404 for an unknown route");
    assert_eq!(r.header("x-backend"), Some("a"));
    assert_eq!(origin.conns.load(Ordering::SeqCst), 1);
}

/// A malformed request for the statistics page is malformed too: 400 and close, no page.
pub fn malformed_request_to_the_statistics_url_gets_400_and_close(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&format!(
        "{}{}",
        statistics_defaults(),
        conf_for(&[origin.addr], "")
    ));
    for raw in malformed_requests_for(STATISTICS_URL) {
        assert_refused_before(proxy, &origin, &raw);
    }
}

/// A malformed request for a path no entry matches: 400 and close, not 404.
pub fn malformed_request_to_an_unrouted_path_gets_400_and_close(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&api_only_conf(&statistics_defaults(), &[origin.addr]));
    for raw in malformed_requests_for("/other") {
        assert_refused_before(proxy, &origin, &raw);
    }
}

// ---- persistent upstream connections ----------------------------------------------------

/// 20 sequential requests on 4 client connections (5 each, one after the other) share the
/// pooled upstream connections: a worker's pool needs one for sequential requests (Monkey
/// runs two workers, each with its own pool).
pub fn upstream_connections_are_reused_across_client_connections(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    for _ in 0..4 {
        let mut c = Client::connect(proxy);
        for n in 0..5 {
            assert_eq!(c.get(&format!("/size/{n}")).body, body_of(n));
        }
    }
    let seen = origin.conns.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&seen),
        "origin saw {seen} connections for 20 sequential requests"
    );
}

// ---- request bodies and smuggling ------------------------------------------------------

/// A chunked upload reaches the origin whole. (With a chunk extension the hosts differ:
/// `chunked_upload_with_extensions_reaches_the_origin_intact` in `relay_attacks.rs`,
/// `a_chunk_extension_never_reaches_the_origin` in `monkey_http.rs`.)
pub fn chunked_upload_reaches_the_origin_intact(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    let (r, _c) = through(
        proxy,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello world"[..]));
}

/// Both framings at once (RFC 9112 §6.1), the length zero. (With a length above zero the
/// hosts differ: `smuggling_cl_and_te_together_*` in each host's file.)
pub fn smuggling_cl_zero_and_te_together_gets_400_and_nothing_reaches_the_origin(h: &dyn Harness) {
    refused_before_the_origin(
        h,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
}

/// Two different `Content-Length` fields.
pub fn smuggling_two_different_content_lengths_gets_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, TWO_DIFFERENT_CL);
}

/// Two equal `Content-Length` fields.
pub fn smuggling_two_equal_content_lengths_gets_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, TWO_EQUAL_CL);
}

/// A `Content-Length` of digits too large for any counter: read as no body, the bytes behind
/// the head would be taken for a second request (here one for `/id`). The proxy answers 400;
/// Monkey's own parser refuses it first, with 413. Either way the connection closes and
/// nothing reaches the origin.
pub fn smuggling_content_length_too_large_to_hold_gets_refused(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    let (r, mut c) = through(
        proxy,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999\r\n\r\n\
          GET /id HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert!(matches!(r.status, 400 | 413), "got {}", r.status);
    assert_closed_after(&mut c);
    assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
}

/// A transfer coding other than a lone `chunked`.
pub fn smuggling_transfer_encoding_gzip_chunked_gets_400(h: &dyn Harness) {
    refused_before_the_origin(h, TE_GZIP_CHUNKED);
}

/// After the 400 for a chunked request the connection closes: a request pipelined behind
/// the refused body is never answered (it may be the smuggled half).
pub fn connection_is_closed_after_a_400_for_a_chunked_request(h: &dyn Harness) {
    let mut raw = TE_GZIP_CHUNKED.to_vec();
    raw.extend_from_slice(b"GET /headers HTTP/1.1\r\nHost: t\r\n\r\n");
    refused_before_the_origin(h, &raw);
}

/// Two `Host` fields (RFC 9112 §3.2).
pub fn two_host_fields_get_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, TWO_HOSTS);
}

/// A `Host` that is not an authority.
pub fn host_that_is_not_an_authority_gets_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, HOST_WITH_A_SPACE);
}

/// An HTTP/1.1 request without `Host` (RFC 9112 §3.2): 400, nothing sent to the origin.
/// (What follows differs: the stand-in host closes, Monkey answers this one itself, before
/// the plugin, and keeps the connection — see each host's file.)
pub fn http11_request_without_host_gets_400(h: &dyn Harness) {
    refused_whatever_follows(h, NO_HOST);
}

/// A target in absolute form (`http://host/path`): the proxy routes by path while a backend
/// could take the authority in it for the host. 400, nothing sent to the origin. (Monkey
/// answers this one itself, before the plugin, and keeps the connection; the stand-in host
/// closes it.)
pub fn absolute_form_target_gets_400(h: &dyn Harness) {
    refused_whatever_follows(
        h,
        b"GET http://elsewhere/headers HTTP/1.1\r\nHost: t\r\n\r\n",
    );
}

/// A `Host` that would break out of the `Forwarded` quoted-string.
pub fn host_breaking_out_of_forwarded_gets_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, HOST_BREAKING_FORWARDED);
}

/// A bare CR inside the request target.
pub fn bare_cr_in_the_target_gets_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, CR_IN_TARGET);
}

/// A fragment in the request target.
pub fn fragment_in_the_target_gets_400(h: &dyn Harness) {
    refused_before_the_origin(h, FRAGMENT_IN_TARGET);
}

/// A NUL inside the request path.
pub fn nul_in_the_path_gets_400_and_close(h: &dyn Harness) {
    refused_before_the_origin(h, NUL_IN_PATH);
}

// ---- broken origins --------------------------------------------------------------------

/// Not HTTP at all: 502, and the proxy's own error page carries a `Date`, as Monkey's do.
pub fn garbage_origin_gets_502(h: &dyn Harness) {
    let r = origin_reply_gives(h, GARBAGE_REPLY, 502);
    assert!(
        r.header("date").is_some_and(|d| d.ends_with(" GMT")),
        "{r:?}"
    );
}

/// Two different lengths in a response (RFC 9112 §6.3 (5)).
pub fn origin_sending_two_different_content_lengths_gets_502(h: &dyn Harness) {
    origin_reply_gives(h, TWO_CL_REPLY, 502);
}

/// A response body in a transfer coding other than chunked.
pub fn origin_transfer_coding_other_than_chunked_gets_502(h: &dyn Harness) {
    origin_reply_gives(h, TE_GZIP_REPLY, 502);
}

/// An obs-fold line in a response head (RFC 9112 §5.2).
pub fn obs_fold_in_origin_response_gets_502(h: &dyn Harness) {
    origin_reply_gives(h, OBS_FOLD_REPLY, 502);
}

/// A response head with bare LFs and `Connection`-named fields reaches the client clean.
pub fn bare_line_feeds_and_connection_named_fields_never_reach_the_client(h: &dyn Harness) {
    let proxy = h.start(&conf_for(
        &[raw_origin(DIRTY_HEAD_REPLY)],
        "    AttemptsCount 1\n",
    ));
    assert_backend_head_reaches_the_client_clean(proxy);
}

/// An interim 100 Continue the client did not ask for is not passed on: just the 200.
pub fn interim_100_continue_is_relayed_as_just_the_200(h: &dyn Harness) {
    let r = origin_reply_gives(h, INTERIM_100_REPLY, 200);
    assert_eq!(r.body, b"ok");
}

// ---- message framing on one connection -------------------------------------------------

/// A HEAD response has no body: a body byte after its head would garble the next response.
pub fn head_then_get_on_one_connection(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    let mut c = Client::connect(proxy);
    c.send(b"HEAD /stream/70000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true).expect("HEAD response");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length"), Some("70000"));
    let r = c.get("/size/9");
    assert_eq!((r.status, r.body), (200, body_of(9)));
}

/// Close-delimited bodies reach an HTTP/1.1 client chunked on a connection that stays; an
/// HTTP/1.0 client, which cannot take chunks, gets the body ended by the close.
pub fn close_delimited_response_goes_chunked_and_the_client_connection_stays(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    assert_close_delimited_bodies_go_chunked(proxy);
    let mut old = Client::connect(proxy);
    old.send(b"GET /close/3000 HTTP/1.0\r\n\r\n");
    let r = old.read_response(false).expect("response");
    assert_eq!(r.header("transfer-encoding"), None);
    assert_eq!(r.body, body_of(3000));
}

/// A close-delimited body cut by a reset closes the client without a last chunk.
pub fn close_delimited_body_cut_by_a_reset_closes_the_client_without_a_last_chunk(h: &dyn Harness) {
    let origin = raw_origin_reset_after(b"HTTP/1.1 200 OK\r\n\r\npartial body");
    let proxy = h.start(&conf_for(&[origin], ""));
    assert_cut_body_closes_the_client(proxy);
}

/// A streamed response is passed on as it comes, not buffered: the origin sends five parts
/// 100 ms apart, and the first reaches the client long before the last.
pub fn streaming_first_part_arrives_well_before_the_last(h: &dyn Harness) {
    let origin = Origin::start("a");
    let proxy = h.start(&conf_for(&[origin.addr], ""));
    let mut c = Client::connect(proxy);
    c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n");
    let t = Instant::now();
    let (mut first, mut last) = (None, None);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    // Bounded: the origin sends 5 parts 100 ms apart; the read timeout is 20 s.
    for _ in 0..1000 {
        let n = c.reader.read(&mut buf).expect("read");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if first.is_none() && text.contains("part 0") {
            first = Some(t.elapsed());
        }
        if text.contains("part 4") {
            last = Some(t.elapsed());
            break;
        }
    }
    let (first, last) = (first.expect("part 0"), last.expect("part 4"));
    assert!(
        first < Duration::from_millis(250),
        "first part after {first:?}"
    );
    assert!(
        last >= first + Duration::from_millis(300),
        "buffered: first {first:?}, last {last:?}"
    );
}
