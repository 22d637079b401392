//! HTTP attack catalogue through the stand-in mio host (runs everywhere, no Monkey needed):
//! the rules of the proxying contract that `relay.rs` does not already cover, one test per
//! rule, named for the attack or the rule. `monkey_http.rs` runs the same rules in Monkey.

mod attack_support;
mod common;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use attack_support::*;
use common::*;
use proxy_reverse::config::{Cidr, Entry};

fn cidr(addr: &str, prefix: u8) -> Cidr {
    Cidr {
        addr: addr.parse::<IpAddr>().unwrap(),
        prefix,
    }
}

/// What the origin received for `GET /headers` with `Host: host` and `extra` header lines,
/// through a host whose entry `tune` adjusted.
fn origin_sees(
    tune: impl FnOnce(&mut Entry),
    host: &str,
    extra: &str,
) -> (String, Vec<(String, String)>) {
    let origin = Origin::start("a");
    let mut entry = entry_for(&[origin.addr]);
    tune(&mut entry);
    let proxy = host_for(vec![entry]);
    let mut c = Client::connect(proxy.addr());
    c.send(&headers_request(host, extra));
    let r = c.read_response(false).expect("response");
    assert_eq!(r.status, 200, "{:?}", String::from_utf8_lossy(&r.body));
    parse_head(&r.body)
}

fn no_tuning(_: &mut Entry) {}

/// An ambiguous request: 400, the connection closed, nothing sent to the origin.
fn refused_before_the_origin(raw: &[u8]) {
    let origin = Origin::start("a");
    let proxy = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(proxy.addr());
    c.send(raw);
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(&r.body));
    assert_closed_after(&mut c);
    assert_eq!(origin.conns.load(Ordering::SeqCst), 0, "reached the origin");
}

/// A broken origin reply: the client gets `status`.
fn origin_reply_gives(reply: &'static [u8], status: u16) -> Response {
    let mut entry = entry_for(&[raw_origin(reply)]);
    entry.attempts_count = 1;
    let proxy = host_for(vec![entry]);
    let mut c = Client::connect(proxy.addr());
    c.reader
        .get_mut()
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let r = c.get("/x");
    assert_eq!(r.status, status, "{:?}", String::from_utf8_lossy(&r.body));
    r
}

// ---- forwarding headers ---------------------------------------------------------------

#[test]
fn xff_is_set_to_the_client_address() {
    let (_, h) = origin_sees(no_tuning, "t", "");
    assert_eq!(values(&h, "x-forwarded-for"), ["127.0.0.1"]);
}

#[test]
fn spoofed_xff_from_an_untrusted_client_is_replaced() {
    let (_, h) = origin_sees(
        |e| e.trusted_proxies = vec![cidr("10.0.0.0", 8)],
        "t",
        "X-Forwarded-For: 6.6.6.6\r\nx-forwarded-for: 7.7.7.7\r\n",
    );
    assert_eq!(values(&h, "x-forwarded-for"), ["127.0.0.1"]);
}

#[test]
fn xff_from_a_trusted_proxy_is_appended_to() {
    let (_, h) = origin_sees(
        |e| e.trusted_proxies = vec![cidr("127.0.0.1", 32)],
        "t",
        "X-Forwarded-For: 203.0.113.7\r\n",
    );
    assert_eq!(values(&h, "x-forwarded-for"), ["203.0.113.7, 127.0.0.1"]);
}

#[test]
fn x_forwarded_proto_and_host_are_set_and_not_spoofable() {
    let (_, h) = origin_sees(
        no_tuning,
        "shop.example:8443",
        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\n",
    );
    assert_eq!(values(&h, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&h, "x-forwarded-host"), ["shop.example:8443"]);
}

#[test]
fn http10_request_without_host_reaches_the_origin_with_one() {
    let origin = Origin::start("a");
    let proxy = host_for(vec![entry_for(&[origin.addr])]);
    assert_http10_without_host_gets_a_host(proxy.addr(), &origin.addr.to_string());
}

#[test]
fn a_trusted_proxys_proto_host_and_forwarded_are_kept() {
    let (_, h) = origin_sees(
        |e| {
            e.trusted_proxies = vec![cidr("127.0.0.1", 32)];
            e.forwarded_header = true;
        },
        TRUSTED_HOST,
        TRUSTED_FORWARDING,
    );
    assert_trusted_values_kept(&h);
}

#[test]
fn forwarded_header_is_absent_by_default_even_if_the_client_sends_one() {
    let (_, h) = origin_sees(no_tuning, "t", "Forwarded: for=6.6.6.6\r\n");
    assert!(values(&h, "forwarded").is_empty(), "{h:?}");
}

#[test]
fn forwarded_header_is_sent_with_forwarded_header_on() {
    let (_, h) = origin_sees(
        |e| e.forwarded_header = true,
        "h.example:81",
        "Forwarded: for=6.6.6.6\r\n",
    );
    assert_eq!(
        values(&h, "forwarded"),
        ["for=127.0.0.1;host=\"h.example:81\";proto=http"]
    );
}

// ---- hop-by-hop headers ---------------------------------------------------------------

fn assert_not_forwarded(name: &str, line: &str) {
    let (_, h) = origin_sees(no_tuning, "t", line);
    assert!(
        values(&h, name).is_empty(),
        "{name} reached the origin: {h:?}"
    );
}

#[test]
fn connection_header_is_not_forwarded() {
    assert_not_forwarded("connection", "Connection: keep-alive\r\n");
}

#[test]
fn keep_alive_header_is_not_forwarded() {
    assert_not_forwarded("keep-alive", "Keep-Alive: timeout=300\r\n");
}

#[test]
fn te_header_is_not_forwarded() {
    assert_not_forwarded("te", "TE: trailers\r\n");
}

#[test]
fn proxy_connection_header_is_not_forwarded() {
    assert_not_forwarded("proxy-connection", "Proxy-Connection: keep-alive\r\n");
}

#[test]
fn upgrade_without_connection_upgrade_is_not_forwarded() {
    assert_not_forwarded("upgrade", "Upgrade: h2c\r\n");
}

#[test]
fn header_named_in_connection_does_not_reach_the_origin() {
    let (_, h) = origin_sees(
        no_tuning,
        "t",
        "Connection: keep-alive, x-secret\r\nX-Secret: s3cr3t\r\nX-Kept: yes\r\n",
    );
    assert!(values(&h, "x-secret").is_empty(), "{h:?}");
    assert_eq!(values(&h, "x-kept"), ["yes"]);
}

#[test]
fn connection_naming_xff_cannot_strip_the_proxys_xff() {
    let (_, h) = origin_sees(
        no_tuning,
        "t",
        "Connection: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host\r\n\
         X-Forwarded-For: 6.6.6.6\r\n",
    );
    assert_eq!(values(&h, "x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(values(&h, "x-forwarded-proto"), ["http"]);
    assert_eq!(values(&h, "x-forwarded-host"), ["t"]);
}

// ---- Host and target ------------------------------------------------------------------

#[test]
fn host_is_preserved_with_port_and_target_kept_exactly() {
    let origin = Origin::start("a");
    let proxy = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(proxy.addr());
    c.send(b"GET /headers?a=%2F&b=1%20 HTTP/1.1\r\nHost: app.example:8080\r\n\r\n");
    let (line, h) = parse_head(&c.read_response(false).unwrap().body);
    assert_eq!(values(&h, "host"), ["app.example:8080"]);
    assert_eq!(line, "GET /headers?a=%2F&b=1%20 HTTP/1.1");
}

// ---- persistent upstream connections ----------------------------------------------------

#[test]
fn upstream_connections_are_reused_across_client_connections() {
    let origin = Origin::start("a");
    let proxy = host_for(vec![entry_for(&[origin.addr])]);
    for _ in 0..4 {
        let mut c = Client::connect(proxy.addr());
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

#[test]
fn chunked_upload_with_extensions_reaches_the_origin_intact() {
    let origin = Origin::start("a");
    let proxy = host_for(vec![entry_for(&[origin.addr])]);
    let mut c = Client::connect(proxy.addr());
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n\r\n",
    );
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body.as_slice()), (200, &b"hello world"[..]));
}

#[test]
fn smuggling_cl_and_te_together_gets_400_and_nothing_reaches_the_origin() {
    refused_before_the_origin(CL_AND_TE);
}

#[test]
fn smuggling_two_different_content_lengths_gets_400() {
    refused_before_the_origin(TWO_DIFFERENT_CL);
}

#[test]
fn smuggling_two_equal_content_lengths_gets_400() {
    refused_before_the_origin(TWO_EQUAL_CL);
}

#[test]
fn smuggling_transfer_encoding_gzip_chunked_gets_400() {
    refused_before_the_origin(TE_GZIP_CHUNKED);
}

#[test]
fn two_host_fields_get_400() {
    refused_before_the_origin(TWO_HOSTS);
}

#[test]
fn host_that_is_not_an_authority_gets_400() {
    refused_before_the_origin(HOST_WITH_A_SPACE);
}

#[test]
fn http11_request_without_host_gets_400() {
    refused_before_the_origin(NO_HOST);
}

#[test]
fn host_breaking_out_of_forwarded_gets_400() {
    refused_before_the_origin(HOST_BREAKING_FORWARDED);
}

#[test]
fn bare_cr_in_the_target_gets_400() {
    refused_before_the_origin(CR_IN_TARGET);
}

#[test]
fn fragment_in_the_target_gets_400() {
    refused_before_the_origin(FRAGMENT_IN_TARGET);
}

#[test]
fn nul_in_the_path_gets_400() {
    refused_before_the_origin(NUL_IN_PATH);
}

#[test]
fn eight_bit_bytes_in_the_target_are_percent_encoded() {
    let origin = Origin::start("a");
    let proxy = host_for(vec![entry_for(&[origin.addr])]);
    assert_target_reaches_the_origin_as(proxy.addr(), UTF8_TARGET, "/headers?q=caf%C3%A9");
}

// ---- broken origins --------------------------------------------------------------------

#[test]
fn origin_sending_two_different_content_lengths_gets_502() {
    origin_reply_gives(TWO_CL_REPLY, 502);
}

#[test]
fn origin_transfer_coding_other_than_chunked_gets_502() {
    origin_reply_gives(TE_GZIP_REPLY, 502);
}

#[test]
fn obs_fold_in_origin_response_gets_502() {
    origin_reply_gives(OBS_FOLD_REPLY, 502);
}

#[test]
fn bare_line_feeds_and_connection_named_fields_never_reach_the_client() {
    let mut entry = entry_for(&[raw_origin(DIRTY_HEAD_REPLY)]);
    entry.attempts_count = 1;
    let proxy = host_for(vec![entry]);
    assert_backend_head_reaches_the_client_clean(proxy.addr());
}

#[test]
fn interim_100_continue_is_relayed_as_just_the_200() {
    let r = origin_reply_gives(INTERIM_100_REPLY, 200);
    assert_eq!(r.body, b"ok");
}
