//! TLS clients for the tests: a blocking rustls client that trusts one certificate made at
//! test time (a TLS Monkey's, or a stand-in host's).

#![allow(dead_code)]

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::common::{read_response, Response};

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
