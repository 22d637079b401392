//! Hash keys, bounded loads and sticky sessions (#19), written once against any proxy
//! address: the stand-in host (`tests/affinity.rs`) and real Monkey (`tests/monkey_affinity.rs`)
//! run the same functions. Origins are `common::Origin`s, which answer `/id` with their name
//! and `/slow` in half a second.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::admin_support::{call, change, json, ADMIN};
use crate::common::{Client, Response};

/// A secret for the tests' sticky cookies.
pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// The sticky cookie's attributes the scenarios configure and expect back.
pub const ATTRIBUTES: &str = "Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax";

/// `[PROXY_DEFAULTS]` with the admin endpoint and the statistics, then one entry `web` over
/// `servers` with the key lines `extra`.
pub fn conf(servers: &[SocketAddr], extra: &str) -> String {
    let list: Vec<String> = servers.iter().map(|a| a.to_string()).collect();
    format!(
        "[PROXY_DEFAULTS]\n    AdminURL {ADMIN}\n    StatisticsURL /proxy-stats\n\n\
         [PROXY_ENTRY]\n    Name web\n    Match ^/\n    ServerList {}\n{extra}",
        list.join(" ")
    )
}

/// SourceHash on the `X-User` header, with `HashBalanceFactor factor`.
pub fn hash_conf(servers: &[SocketAddr], factor: u32) -> String {
    conf(
        servers,
        &format!(
            "    LoadBalancer SourceHash\n    HashKey header X-User\n    HashBalanceFactor {factor}\n"
        ),
    )
}

/// Round robin with the sticky cookie `SRV`.
pub fn sticky_conf(servers: &[SocketAddr]) -> String {
    conf(
        servers,
        &format!(
            "    LoadBalancer RoundRobin\n    StickyCookie SRV Secure HttpOnly SameSite=Lax \
             Max-Age=3600\n    StickySecret {SECRET}\n"
        ),
    )
}

/// For keys `user-0` … `user-(n-1)` in `X-User`, the name of the origin that answered `/id`
/// (one keep-alive connection).
pub fn owners(proxy: SocketAddr, n: usize) -> Vec<String> {
    let mut c = Client::connect(proxy);
    (0..n)
        .map(|k| {
            c.send(
                format!("GET /id HTTP/1.1\r\nHost: test\r\nX-User: user-{k}\r\n\r\n").as_bytes(),
            );
            let r = c.read_response(false).expect("a response");
            assert_eq!(r.status, 200, "key {k}");
            String::from_utf8_lossy(&r.body).into_owned()
        })
        .collect()
}

/// Two proxies with the same configuration send each of 1 000 keys to the same origin, and
/// the keys spread over all of them.
pub fn assert_keys_map_identically(a: SocketAddr, b: SocketAddr, origins: usize) {
    let (first, second) = (owners(a, 1000), owners(b, 1000));
    let differ = first.iter().zip(&second).filter(|(x, y)| x != y).count();
    assert_eq!(differ, 0, "keys mapped differently by the two instances");
    let mut per: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &first {
        *per.entry(o).or_default() += 1;
    }
    assert_eq!(per.len(), origins, "every origin has keys: {per:?}");
    // Without a key the client address decides: one origin for every request.
    let mut c = Client::connect(a);
    let one: BTreeSet<Vec<u8>> = (0..20).map(|_| c.get("/id").body).collect();
    assert_eq!(
        one.len(),
        1,
        "requests without the header hash on the client address"
    );
    eprintln!("1000 keys, identical on both instances; per origin: {per:?}");
}

/// Keys owned before (`ten`: all ten origins) and after (`nine`: `removed` left out) one of
/// ten servers is removed: only the removed server's keys move, and a few more at most.
/// Returns the share of keys that moved.
pub fn assert_removal_moves_few(ten: &[String], nine: &[String], removed: &str) -> f64 {
    let n = ten.len() as f64;
    let moved = ten.iter().zip(nine).filter(|(a, b)| a != b).count() as f64 / n;
    let removed_share = ten.iter().filter(|o| *o == removed).count() as f64 / n;
    let others = ten
        .iter()
        .zip(nine)
        .filter(|(a, b)| a != b && *a != removed)
        .count() as f64
        / n;
    eprintln!(
        "removing 1 of 10 servers: {:.1} % of keys moved ({:.1} % were on the removed one, \
         {:.1} % moved between the others)",
        moved * 100.0,
        removed_share * 100.0,
        others * 100.0
    );
    assert!(
        nine.iter().all(|o| o != removed),
        "a key went to the removed server"
    );
    assert!(
        others <= 0.02,
        "{:.1} % of the others' keys moved",
        others * 100.0
    );
    assert!(
        moved <= 0.1 + 0.02 || moved <= removed_share + 0.02,
        "{:.1} % of keys moved",
        moved * 100.0
    );
    moved
}

/// Requests in flight per server of entry `web`, from the statistics JSON.
pub fn in_flight(proxy: SocketAddr) -> Vec<u64> {
    let doc = json(&call(proxy, "GET", "/proxy-stats?format=json", "", ""));
    doc["entries"][0]["servers"]
        .as_array()
        .expect("servers")
        .iter()
        .map(|s| s["in_flight"].as_u64().expect("in_flight"))
        .collect()
}

/// What a load run saw.
#[derive(Debug, Clone, Copy)]
pub struct LoadFigures {
    /// Samples with at least half the clients' requests in flight.
    pub samples: usize,
    /// The largest `max / mean` of requests in flight per server among them.
    pub worst_ratio: f64,
    /// The largest amount by which a server exceeded the cap, `max(floor(1.25 (m + 1) / n),
    /// ceil((m + 1) / n))` (0: never).
    pub worst_excess: u64,
    /// Requests answered, and those that failed.
    pub answered: usize,
    pub failed: usize,
}

/// `clients` connections request `/slow` (half a second each) for `secs` seconds, the even
/// ones all with the hot key `X-User: hot`, the odd ones with a new key each time; the
/// statistics are sampled all the while.
pub fn load_with_a_hot_key(proxy: SocketAddr, clients: usize, secs: u64) -> LoadFigures {
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..clients)
        .map(|t| {
            let (stop, answered, failed) = (stop.clone(), answered.clone(), failed.clone());
            thread::spawn(move || {
                let mut c = Client::connect(proxy);
                let mut k = 0u64;
                // Bounded: at most `secs` seconds of half-second requests, and a cap.
                while !stop.load(Ordering::Relaxed) && k < 10_000 {
                    let key = if t % 2 == 0 {
                        "hot".to_string()
                    } else {
                        format!("cold-{t}-{k}")
                    };
                    k += 1;
                    c.send(
                        format!("GET /slow HTTP/1.1\r\nHost: test\r\nX-User: {key}\r\n\r\n")
                            .as_bytes(),
                    );
                    match c.read_response(false) {
                        Some(r) if r.status == 200 => answered.fetch_add(1, Ordering::Relaxed),
                        _ => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            c = Client::connect(proxy);
                            0
                        }
                    };
                }
            })
        })
        .collect();
    // Let every client get its first request in before sampling.
    thread::sleep(Duration::from_millis(300));
    let (samples, worst_ratio, worst_excess) = sample_in_flight(proxy, clients / 2, secs);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    LoadFigures {
        samples,
        worst_ratio,
        worst_excess,
        answered: answered.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
    }
}

/// Samples the requests in flight per server every 40 ms for `secs` seconds: how many
/// samples had at least `min_total` in flight, the largest `max / mean` among them and the
/// largest excess over the cap, `max(floor(1.25 (m + 1) / n), ceil((m + 1) / n))`.
pub fn sample_in_flight(proxy: SocketAddr, min_total: usize, secs: u64) -> (usize, f64, u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut samples, mut worst_ratio, mut worst_excess) = (0, 0.0f64, 0u64);
    while Instant::now() < end {
        let f = in_flight(proxy);
        let total: u64 = f.iter().sum();
        if total as usize >= min_total.max(1) {
            samples += 1;
            let n = f.len() as u64;
            let max = *f.iter().max().unwrap();
            worst_ratio = worst_ratio.max(max as f64 / (total as f64 / n as f64));
            let cap = (125 * (total + 1) / (100 * n)).max((total + 1).div_ceil(n));
            worst_excess = worst_excess.max(max.saturating_sub(cap));
        }
        thread::sleep(Duration::from_millis(40));
    }
    (samples, worst_ratio, worst_excess)
}

/// The wrk script of a hot key: every other request of a connection carries `X-User: hot`,
/// the others a random key.
pub const WRK_HOT_KEY: &str = r#"
local n = 0
request = function()
  n = n + 1
  local key = "hot"
  if n % 2 == 1 then key = "cold-" .. math.random(1, 1000000000) end
  return wrk.format("GET", "/slow", { ["X-User"] = key, ["Host"] = "test" })
end
"#;

/// With `HashBalanceFactor 125` (`bounded`) no server holds more than 1.25 × the mean of the
/// requests in flight (in whole requests, at least its share rounded up), while a hot key sends half the
/// traffic; without it (`unbounded`, the same load) the hot key's server holds far more.
pub fn assert_bounded_loads(bounded: SocketAddr, unbounded: SocketAddr, clients: usize) {
    let with = load_with_a_hot_key(bounded, clients, 4);
    eprintln!("HashBalanceFactor 125: {with:?}");
    let without = load_with_a_hot_key(unbounded, clients, 3);
    eprintln!("HashBalanceFactor 0:   {without:?}");
    for (what, f) in [("bounded", &with), ("unbounded", &without)] {
        assert_eq!(f.failed, 0, "{what}: {f:?}");
        assert!(f.samples >= 10, "{what}: too few samples under load: {f:?}");
    }
    // Slack for what a sample cannot see exactly: it reads the servers' counts one after the
    // other while requests come and go, and two workers placing at the same moment may both
    // take a server's last room. The ratio is reported, not asserted: with whole requests it
    // depends on the total in flight at each sample (and requests ending elsewhere after a
    // placement can leave a server above it for a while).
    assert!(with.worst_excess <= 2, "{with:?}");
    assert!(
        without.worst_ratio >= 1.6,
        "the hot key alone should overload its server without the bound: {without:?}"
    );
}

/// The value of cookie `SRV` a response sets, after checking the attributes.
pub fn set_value(r: &Response) -> Option<String> {
    let line = r.header("Set-Cookie")?;
    let (pair, attrs) = line.split_once("; ").unwrap_or((line, ""));
    assert_eq!(attrs, ATTRIBUTES, "attributes as configured: {line}");
    let value = pair.strip_prefix("SRV=").expect("cookie SRV");
    assert_eq!(value.len(), 22, "{line}");
    assert!(
        value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "{line}"
    );
    Some(value.to_string())
}

/// `GET /id` on a new connection, with cookie `SRV=value` when given.
pub fn get_id(proxy: SocketAddr, value: Option<&str>) -> Response {
    let cookie = value.map_or(String::new(), |v| {
        format!("Cookie: theme=dark; SRV={v}\r\n")
    });
    call(proxy, "GET", "/id", &cookie, "")
}

/// The body as text.
pub fn body(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

/// A client without a cookie gets one naming the server that answered; with it, it keeps
/// that server across 100 requests on new connections (round robin would have moved it),
/// and is not sent the cookie again. Returns the cookie and its server's name.
pub fn assert_sticky_client_keeps_its_server(proxy: SocketAddr) -> (String, String) {
    let first = get_id(proxy, None);
    assert_eq!(first.status, 200);
    let value = set_value(&first).expect("a new client gets the cookie");
    let server = body(&first);
    for i in 0..100 {
        let r = get_id(proxy, Some(&value));
        assert_eq!(r.status, 200, "request {i}");
        assert_eq!(body(&r), server, "request {i} left the cookie's server");
        assert_eq!(
            r.header("Set-Cookie"),
            None,
            "request {i}: the cookie is valid"
        );
    }
    (value, server)
}

/// A forged cookie value, or one made with another secret, is ignored: the balancer
/// chooses (round robin: several servers), and the response sets the value of the server
/// that answered, which then keeps the client.
pub fn assert_forged_cookies_are_ignored(proxy: SocketAddr) {
    let mut servers = BTreeSet::new();
    for forged in [
        "AAAAAAAAAAAAAAAAAAAAAA",
        "127.0.0.1:1",
        "",
        "x",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "_-_-_-_-_-_-_-_-_-_-_-",
    ] {
        let r = get_id(proxy, Some(forged));
        assert_eq!(r.status, 200, "{forged}");
        let value = set_value(&r).expect("a forged cookie is replaced");
        let server = body(&r);
        servers.insert(server.clone());
        assert_eq!(
            body(&get_id(proxy, Some(&value))),
            server,
            "the new cookie holds"
        );
    }
    assert!(
        servers.len() >= 2,
        "forged cookies were not ignored: {servers:?}"
    );
}

/// While the cookie's server `server` (at `addr`) is drained through the admin endpoint,
/// its client is served elsewhere with no error and given a new cookie, which then keeps
/// it; once the server is ready again, the old cookie leads back to it.
pub fn assert_drained_server_clients_move(
    proxy: SocketAddr,
    value: &str,
    server: &str,
    addr: SocketAddr,
) -> (String, String) {
    let path = format!("/servers/web/{addr}");
    assert_eq!(change(proxy, &path, "state=drain").status, 200);
    let mut moved = None;
    for i in 0..20 {
        let r = get_id(proxy, Some(value));
        assert_eq!(r.status, 200, "request {i} after the drain");
        assert_ne!(body(&r), server, "request {i} went to the drained server");
        let new = set_value(&r).expect("a client of a drained server gets a new cookie");
        moved.get_or_insert((new, body(&r)));
    }
    let (new, other) = moved.unwrap();
    for i in 0..20 {
        let r = get_id(proxy, Some(&new));
        assert_eq!((r.status, body(&r)), (200, other.clone()), "request {i}");
        assert_eq!(r.header("Set-Cookie"), None);
    }
    assert_eq!(change(proxy, &path, "state=ready").status, 200);
    assert_eq!(
        body(&get_id(proxy, Some(value))),
        server,
        "ready again: back to it"
    );
    (new, other)
}

/// After the cookie's server died (its origin killed by the caller), its clients are served
/// elsewhere with no error, each response setting a cookie of the server that answered.
pub fn assert_dead_server_clients_move(proxy: SocketAddr, value: &str, dead: &str) {
    for i in 0..20 {
        let r = get_id(proxy, Some(value));
        assert_eq!(r.status, 200, "request {i} after the server died");
        assert_ne!(body(&r), dead);
        let new = set_value(&r).expect("a client of a dead server gets a new cookie");
        assert_eq!(
            body(&get_id(proxy, Some(&new))),
            body(&r),
            "the new cookie holds"
        );
    }
}

/// The origin that answers `GET target` with the extra header lines `fields` (one
/// keep-alive connection per call).
pub fn owner_of(proxy: SocketAddr, target: &str, fields: &str) -> String {
    let mut c = Client::connect(proxy);
    c.send(format!("GET {target} HTTP/1.1\r\nHost: test\r\n{fields}\r\n").as_bytes());
    let r = c.read_response(false).expect("a response");
    assert_eq!(r.status, 200, "GET {target}");
    body(&r)
}

/// Every kind of key hashes the value alone, so one value picks one server whichever part
/// of the request carries it: `by_header` hashes `X-User`, `by_cookie` cookie `sid`,
/// `by_query` parameter `user`, `by_path` the path, `by_uri` the target, `by_source` the
/// client address. A request without its key hashes on the client address.
pub fn assert_every_key_kind_picks_the_same_server(
    by_header: SocketAddr,
    by_cookie: SocketAddr,
    by_query: SocketAddr,
    by_path: SocketAddr,
    by_uri: SocketAddr,
    by_source: SocketAddr,
) {
    let mut servers = BTreeSet::new();
    for k in 0..100 {
        let key = format!("k{k}");
        let want = owner_of(by_header, "/id", &format!("X-User: {key}\r\n"));
        servers.insert(want.clone());
        let cookie = format!("Cookie: a=1; sid={key}; b=2\r\n");
        assert_eq!(owner_of(by_cookie, "/id", &cookie), want, "cookie {key}");
        let target = format!("/id?x=1&user={key}&user=other");
        assert_eq!(owner_of(by_query, &target, ""), want, "query {key}");
        let path = format!("/m/{key}/id");
        let by_value = owner_of(by_header, "/id", &format!("X-User: {path}\r\n"));
        assert_eq!(
            owner_of(by_path, &format!("{path}?q={k}"), ""),
            by_value,
            "path"
        );
        let target = format!("{path}?q=1");
        let by_value = owner_of(by_header, "/id", &format!("X-User: {target}\r\n"));
        assert_eq!(owner_of(by_uri, &target, ""), by_value, "uri {target}");
    }
    assert!(servers.len() >= 3, "keys spread: {servers:?}");
    let by_address = owner_of(by_source, "/id", "X-User: k1\r\n");
    for (proxy, target, fields) in [
        (by_header, "/id", "X-User: \r\n"),
        (by_cookie, "/id", "Cookie: other=1\r\n"),
        (by_query, "/id?user=", ""),
        (by_query, "/id", ""),
    ] {
        assert_eq!(
            owner_of(proxy, target, fields),
            by_address,
            "{target} {fields}: without the key, the client address decides"
        );
    }
}
