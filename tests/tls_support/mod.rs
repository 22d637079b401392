//! TLS clients for the tests: a blocking rustls client that trusts one certificate made at
//! test time (a TLS Monkey's, or a stand-in host's).

#![allow(dead_code)]

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::common::{body_of, post_echo, read_response, read_switching_head, Response};

/// A rustls client configuration trusting only `cert` (DER), offering `http/1.1`.
pub fn trusting(cert: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert.to_vec()))
        .expect("a usable test certificate");
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A server configuration serving a self-signed certificate for 127.0.0.1 made now, and the
/// certificate (DER), for a stand-in host's TLS listener.
pub fn self_signed_server() -> (Arc<rustls::ServerConfig>, Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
    let cert = params.self_signed(&key).unwrap();
    let der = cert.der().to_vec();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    (Arc::new(config), der)
}

/// One TLS client connection, verified against the configuration's root, for 127.0.0.1.
pub struct TlsClient {
    pub reader: BufReader<StreamOwned<ClientConnection, TcpStream>>,
}

impl TlsClient {
    /// Connects and completes the handshake (so a refusal shows here, not at the first read).
    pub fn connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsClient {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let name = ServerName::IpAddress(addr.ip().into());
        let mut conn = ClientConnection::new(config.clone(), name).expect("client connection");
        let mut tcp = tcp;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)
                .expect("TLS handshake with the server");
        }
        TlsClient {
            reader: BufReader::with_capacity(64 * 1024, StreamOwned::new(conn, tcp)),
        }
    }

    /// Sends `raw` (whole).
    pub fn send(&mut self, raw: &[u8]) {
        let s = self.reader.get_mut();
        s.write_all(raw).expect("TLS write");
        s.flush().expect("TLS flush");
    }

    /// `GET path` on this connection and its response.
    pub fn get(&mut self, path: &str) -> Response {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes());
        self.read_response(false).expect("response")
    }

    /// Reads one response.
    pub fn read_response(&mut self, head: bool) -> Option<Response> {
        read_response(&mut self.reader, head)
    }
}

/// Through a TLS listener at `addr` in front of an [`Origin`] named `a` (whose accepted
/// connections are `origin_conns`), with `StatisticsURL /proxy-stats`: exact bodies of every
/// framing, a POST body, pipelining and a local page, all on one keep-alive connection.
pub fn assert_exact_bodies_keep_alive_and_pipelining(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    origin_conns: &std::sync::atomic::AtomicUsize,
) {
    let mut c = TlsClient::connect(addr, config);
    for n in [1024usize, 0, 10 * 1024 * 1024, 1024] {
        let r = c.get(&format!("/stream/{n}"));
        assert_eq!(r.status, 200, "size {n}");
        assert_eq!(r.body.len(), n);
        assert!(r.body == body_of(n), "body of {n} bytes differs");
    }
    // A chunked response and a close-delimited one (re-framed chunked for HTTP/1.1).
    assert_eq!(c.get("/chunked/5000").body, body_of(5000));
    assert_eq!(c.get("/close/3000").body, body_of(3000));
    // A POST body reaches the origin and comes back. (Monkey 1.8.9 itself answers 400 to a
    // request over 16 KiB on a TLS listener, for its own pages too: README's limits.)
    let body = body_of(12_000);
    c.send(&post_echo(&body));
    let r = c.read_response(false).unwrap();
    assert_eq!((r.status, r.body == body), (200, true));
    // Pipelined: two requests in one write, answered in order.
    c.send(b"GET /id HTTP/1.1\r\nHost: test\r\n\r\nGET /size/777 HTTP/1.1\r\nHost: test\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().body, b"a");
    assert_eq!(c.read_response(false).unwrap().body, body_of(777));
    // Local answers still go through Monkey's own response path.
    let stats = c.get("/proxy-stats?format=json");
    assert_eq!(stats.status, 200);
    assert!(String::from_utf8_lossy(&stats.body).contains("\"schema\""));
    // All of it on one connection; the origin saw few.
    assert!(origin_conns.load(std::sync::atomic::Ordering::SeqCst) <= 3);
}

/// Through a TLS listener at `addr` in front of an upgrade echo origin: a tunnel carries the
/// bytes sent behind the upgrade request, then echoes both ways.
pub fn assert_tunnel_echoes(addr: SocketAddr, config: &Arc<ClientConfig>) {
    let mut c = TlsClient::connect(addr, config);
    // The first bytes ride behind the upgrade request, in the same TLS record.
    c.send(b"GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nearly\n");
    read_switching_head(&mut c.reader);
    let mut early = [0u8; 6];
    c.reader.read_exact(&mut early).unwrap();
    assert_eq!(&early, b"early\n");
    for round in 0..5 {
        let msg = format!("round {round} {}\n", "x".repeat(round * 20_000));
        c.send(msg.as_bytes());
        let mut back = vec![0u8; msg.len()];
        c.reader.read_exact(&mut back).unwrap();
        assert_eq!(back, msg.as_bytes());
    }
}
