//! The statistics page's wording through a real Monkey v1.8 (`MONKEY_BIN`): a server that
//! goes offline, whose retry time passes, and that comes back; a client that leaves in the
//! middle of a response. Without `MONKEY_BIN` every test is reported ignored.
//! Run: `MONKEY_BIN=/path/to/monkey cargo test --test stats_monkey`.

mod common;
mod e2e;
mod stats_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;
use e2e::*;
use stats_support::{cell, row};

const STATS_URL: &str = "/proxy-status";

/// `GET STATS_URL?format=…` on a fresh connection: the body as text.
fn stats(monkey: &Monkey, format: &str) -> String {
    let mut c = Client::connect(monkey.addr());
    let path = format!("{STATS_URL}?format={format}");
    let r = c.get(&path);
    assert_eq!(r.status, 200, "{path}; log:\n{}", monkey.log());
    String::from_utf8(r.body).expect("UTF-8")
}

fn json(monkey: &Monkey) -> Value {
    serde_json::from_str(&stats(monkey, "json")).expect("statistics JSON")
}

/// The line under the state badge in `name`'s row.
fn why(html: &str, name: &str) -> String {
    let state = cell(row(html, name), "State");
    let at = state.find("<span class=\"why\">").expect("why line") + "<span class=\"why\">".len();
    state[at..state.len() - "</span>".len()].to_string()
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn offline_retry_due_and_back_up_read_plainly() {
    let a = Origin::start("a");
    let dead = dead_addr();
    let conf = format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS_URL}\n\n\
         [PROXY_ENTRY]\n    Match ^/\n    ServerList {dead} {}\n    LoadBalancer FirstAlive\n    \
         AttemptsCount 1\n    OfflineTimeOut 2\n",
        a.addr
    );
    let mut monkey = Monkey::start(&conf);
    let (nd, na) = (dead.to_string(), a.addr.to_string());

    // One refused connection takes the first server offline for 2 s; the second server answers
    // instead. (The page comes a few milliseconds later: 2 s left, rounded up; 1 s on a slow day.)
    let r = Client::connect(monkey.addr()).get("/id");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"a"[..]));
    let html = stats(&monkey, "html");
    let line = why(&html, &nd);
    assert!(
        ["retry in 2 s", "retry in 1 s"]
            .iter()
            .any(|r| line == format!("{r} · connection refused · 1 consecutive failure")),
        "{line}"
    );
    assert_eq!(
        cell(row(&html, &nd), "Errors"),
        "<span class=\"err\">1</span>"
    );
    assert_eq!(cell(row(&html, &nd), "Client aborts"), "0");
    assert_eq!(why(&html, &na), "");
    assert_eq!(cell(row(&html, &na), "Errors"), "0");

    // The period is over and nobody tried the server again: due, not "retry in 0 s".
    std::thread::sleep(Duration::from_millis(2_300));
    let html = stats(&monkey, "html");
    assert!(html.contains("class=\"badge offline\">offline<"), "{html}");
    assert_eq!(
        why(&html, &nd),
        "retry due · connection refused · 1 consecutive failure"
    );
    assert!(!html.contains("retry in 0 s"));
    let doc = json(&monkey);
    assert_eq!(doc["entries"][0]["servers"][0]["offline_for_secs"], 0);

    // The server comes back; the next request probes it and it answers.
    let revived = Origin::start_on(dead, "d");
    let r = Client::connect(monkey.addr()).get("/id");
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"d"[..]),
        "{}",
        monkey.log()
    );
    let html = stats(&monkey, "html");
    assert!(row(&html, &nd).contains("class=\"badge up\">up<"), "{html}");
    assert_eq!(why(&html, &nd), "");
    assert!(!html.contains("response received"), "{html}");
    let s = &json(&monkey)["entries"][0]["servers"][0];
    assert_eq!(s["state"], "up");
    assert_eq!(s["reason"], "");
    assert_eq!(s["offline_for_secs"], Value::Null);
    assert_eq!(s["consecutive_failures"], 0);

    revived.kill();
    monkey.assert_alive();
    monkey.stop();
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn a_client_that_leaves_is_a_client_abort_not_an_error() {
    let a = Origin::start("a");
    let conf = format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL {STATS_URL}\n\n\
         [PROXY_ENTRY]\n    Match ^/\n    ServerList {}\n    OfflineTimeOut 0\n",
        a.addr
    );
    let mut monkey = Monkey::start(&conf);
    let na = a.addr.to_string();

    // `/slow` sends five chunks 100 ms apart; the client reads the first bytes and leaves.
    let mut s = TcpStream::connect(monkey.addr()).unwrap();
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut first = [0u8; 64];
    assert!(s.read(&mut first).unwrap() > 0, "no response bytes");
    drop(s);

    // The relay sees the client gone at its next write, within the origin's next chunks.
    let deadline = Instant::now() + Duration::from_secs(10);
    let doc = loop {
        let doc = json(&monkey);
        let f = &doc["entries"][0]["servers"][0]["counters"]["failures"];
        if f["client_abort"] == 1 || Instant::now() >= deadline {
            break doc;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let f = &doc["entries"][0]["servers"][0]["counters"]["failures"];
    assert_eq!(f["client_abort"], 1, "{doc:#}");
    for (kind, n) in f.as_object().unwrap() {
        if kind != "client_abort" {
            assert_eq!(n, 0, "{kind}: {doc:#}");
        }
    }
    let html = stats(&monkey, "html");
    let r = row(&html, &na);
    assert_eq!(cell(r, "Errors"), "0", "{r}");
    assert_eq!(cell(r, "Client aborts"), "1", "{r}");
    assert_eq!(why(&html, &na), "");

    monkey.assert_alive();
    monkey.stop();
}
