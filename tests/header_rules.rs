//! Header rules (#19) through the stand-in host against loopback origins; the same
//! scenarios run in a real Monkey in `tests/monkey_headers.rs`.

mod common;
mod headers_support;

use common::*;
use headers_support::*;

#[test]
fn request_and_response_rules_are_seen_at_both_ends() {
    let origin = Origin::start("a");
    let host = host_from_conf(&both_ways_conf(origin.addr));
    assert_rules_apply_both_ways(host.addr(), origin.addr);
    assert_eq!(
        origin.conns.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the three requests shared one backend connection"
    );
}

#[test]
fn response_rules_remove_set_and_add() {
    let (backend, _) = keep_alive_raw_origin(TWICE_REPLY.to_vec(), None);
    let host = host_from_conf(&response_edits_conf(backend));
    assert_response_edits(host.addr());
}

#[test]
fn a_retried_request_names_the_server_it_reached() {
    let origin = Origin::start("a");
    // A first server that closes after the request was sent to it, and one that refuses
    // the connection.
    for failing in [closing_backend(), dead_addr()] {
        let host = host_from_conf(&retried_conf(failing, origin.addr));
        assert_retried_request_names_its_server(host.addr(), origin.addr);
    }
}

#[test]
fn connection_names_cannot_undo_rules_or_forwarding_headers() {
    let origin = Origin::start("a");
    let host = host_from_conf(&connection_conf(origin.addr));
    assert_connection_names_cannot_undo_rules(host.addr());
}

#[test]
fn the_proxys_own_error_pages_get_no_response_rules() {
    let conf = format!(
        "{}    ResponseHeader set X-Entry $entry\n",
        conf_for(&[dead_addr()], "")
    );
    let host = host_from_conf(&conf);
    let r = Client::connect(host.addr()).get("/x");
    assert_eq!(r.status, 502);
    assert!(r.header("X-Entry").is_none(), "{:?}", r.headers);
}

#[test]
fn a_rule_removing_x_forwarded_for_is_refused() {
    let no_dns = |host: &str, _: u16| Err(format!("no DNS in tests ({host})"));
    let errors = proxy_reverse::config::parse_str(
        REFUSED_CONF,
        std::path::Path::new("proxy_reverse.conf"),
        &no_dns,
    )
    .unwrap_err();
    let lines: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines, [format!("proxy_reverse.conf{REFUSAL}")]);
}

#[test]
fn a_request_written_again_for_its_try_keeps_its_rewritten_target() {
    // Rules naming `$server` write the request once per try; the entry's path rewrite must
    // be in every copy, the query kept, on the retried try as on the first.
    let origin = Origin::start("a");
    let conf = format!(
        "{}    PathStripPrefix /api\n",
        retried_conf(closing_backend(), origin.addr)
    );
    let host = host_from_conf(&conf);
    let mut c = Client::connect(host.addr());
    for i in 0..2 {
        let r = c.get("/api/headers?x=1");
        assert_eq!(r.status, 200, "request {i}");
        let head = String::from_utf8(r.body.clone()).unwrap();
        assert!(
            head.starts_with("GET /headers?x=1 HTTP/1.1\r\n"),
            "request {i}: {head}"
        );
        assert_eq!(
            r.header("X-Served-By"),
            Some(origin.addr.to_string().as_str()),
            "{:?}",
            r.headers
        );
    }
}
