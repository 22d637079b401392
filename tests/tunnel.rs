//! `Upgrade` tunnels (WebSocket-style) through the stand-in host and through a real Monkey.

mod common;
mod e2e;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::*;
use e2e::Monkey;

/// An origin that answers an upgrade request with `101` and then echoes every byte back
/// until the client closes; any other request gets a 400.
fn upgrade_echo_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                let lower = head.to_ascii_lowercase();
                if !(lower.contains("\r\nupgrade: echo\r\n")
                    && lower.contains("connection: upgrade"))
                {
                    let _ = out.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
                    return;
                }
                let _ = out.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nready\n");
                let mut buf = [0u8; 4096];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if out.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// Opens a tunnel through the proxy at `proxy` to an [`upgrade_echo_origin`]: checks the 101
/// and the bytes the origin sent with it; returns the client socket and a reader on it.
fn open_tunnel(proxy: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    open_tunnel_sending(proxy, b"")
}

/// Like [`open_tunnel`], with `early` sent in the same write as the upgrade request.
fn open_tunnel_sending(proxy: SocketAddr, early: &[u8]) -> (TcpStream, BufReader<TcpStream>) {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut request =
        b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n".to_vec();
    request.extend_from_slice(early);
    s.write_all(&request).unwrap();
    let mut reader = BufReader::new(s.try_clone().unwrap());
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 101"), "status line {status:?}");
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("upgrade: echo\r\n") && lower.contains("connection: upgrade\r\n"),
        "{head}"
    );
    let mut ready = String::new();
    reader.read_line(&mut ready).unwrap();
    assert_eq!(
        ready, "ready\n",
        "bytes the origin sent with the 101 arrive"
    );
    (s, reader)
}

/// Sends `msg` into an open tunnel and reads it back.
fn echo(s: &mut TcpStream, reader: &mut BufReader<TcpStream>, msg: &[u8]) {
    s.set_read_timeout(Some(PROMPTLY)).unwrap();
    s.write_all(msg).unwrap();
    let mut back = vec![0u8; msg.len()];
    reader.read_exact(&mut back).unwrap();
    assert_eq!(back, msg);
}

/// Opens a tunnel through the proxy at `proxy`, checks the echo both ways, then closes.
fn echo_through(proxy: SocketAddr) {
    let (mut s, mut reader) = open_tunnel(proxy);
    for round in 0..3 {
        let msg = format!("message {round} {}\n", "x".repeat(round * 30000));
        echo(&mut s, &mut reader, msg.as_bytes());
    }
    drop(reader);
    drop(s);
}

#[test]
fn tunnel_through_the_stand_in_host() {
    let origin = upgrade_echo_origin();
    let host = host_for(vec![entry_for(&[origin])]);
    echo_through(host.addr());
    let t = std::time::Instant::now();
    while host.open_connections() > 0 && t.elapsed() < Duration::from_secs(5) {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        host.open_connections(),
        0,
        "the tunnel ends when the client closes"
    );
}

/// #21.9: bytes a client sends right behind its upgrade request, before the `101` (RFC 9110
/// §7.8 does not forbid it; nginx and haproxy carry them), reach the backend through the
/// tunnel once it switched. They used to be dropped.
fn early_bytes_reach_the_tunnel(proxy: SocketAddr) {
    let early = b"sent with the upgrade request\n";
    let (mut s, mut reader) = open_tunnel_sending(proxy, early);
    let mut back = vec![0u8; early.len()];
    reader.read_exact(&mut back).unwrap();
    assert_eq!(back, early, "{:?}", String::from_utf8_lossy(&back));
    echo(&mut s, &mut reader, b"and after it\n");
}

#[test]
fn early_bytes_reach_the_tunnel_through_the_stand_in_host() {
    let origin = upgrade_echo_origin();
    let host = host_for(vec![entry_for(&[origin])]);
    early_bytes_reach_the_tunnel(host.addr());
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn early_bytes_reach_the_tunnel_through_monkey() {
    let origin = upgrade_echo_origin();
    let mut monkey = Monkey::start(&e2e::conf_for(&[origin], ""));
    early_bytes_reach_the_tunnel(monkey.addr());
    monkey.assert_alive();
}

#[test]
fn unsolicited_101_is_a_bad_gateway() {
    let addr = raw_origin(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n\r\n");
    let host = host_for(vec![entry_for(&[addr])]);
    assert_eq!(Client::connect(host.addr()).get("/x").status, 502);
}

#[test]
fn idle_tunnel_closes_after_read_timeout_and_traffic_keeps_it_open() {
    // On the host's test clock: the tunnel is open and the clock has not moved since, so
    // each step below is exact.
    let origin = upgrade_echo_origin();
    let mut entry = entry_for(&[origin]);
    entry.read_timeout = Duration::from_secs(2);
    let (host, _proxy) = host_on_test_clock(vec![entry]);
    let (mut s, mut reader) = open_tunnel(host.addr());
    echo(&mut s, &mut reader, b"first\n");
    host.advance(Duration::from_millis(1999));
    assert_quiet(&mut s, "1 ms before the tunnel's idle timeout");
    // Traffic now restarts the idle time.
    echo(&mut s, &mut reader, b"second\n");
    host.advance(Duration::from_millis(2));
    assert_quiet(&mut s, "after traffic restarted the idle time");
    host.advance(Duration::from_millis(1997));
    assert_quiet(&mut s, "1 ms before the restarted idle timeout");
    host.advance(Duration::from_millis(2));
    let rest = read_until_closed(&mut s, "past the tunnel's idle timeout");
    assert!(rest.is_empty(), "{:?}", String::from_utf8_lossy(&rest));
    wait_until("the tunnel is closed", || host.open_connections() == 0);
}

#[test]
#[cfg_attr(not(monkey), ignore = "needs a real Monkey: set MONKEY_BIN")]
fn tunnel_through_monkey() {
    let origin = upgrade_echo_origin();
    let mut monkey = Monkey::start(&e2e::conf_for(&[origin], "    UpstreamKeepAlive 0\n"));
    let baseline = monkey.fd_count();
    echo_through(monkey.addr());
    // A second tunnel and a normal request afterwards: Monkey keeps serving.
    echo_through(monkey.addr());
    let r = Client::connect(monkey.addr()).get("/plain");
    assert_eq!(
        r.status, 400,
        "the echo origin refuses plain requests, through Monkey"
    );
    let now = monkey.wait_fds_at_most(baseline, Duration::from_secs(5));
    assert!(
        now <= baseline,
        "fds {now} after the tunnels, {baseline} before"
    );
    monkey.assert_alive();
}
