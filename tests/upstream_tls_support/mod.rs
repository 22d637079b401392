//! HTTPS origins for the tests of TLS to backends: a certificate authority made at test time
//! (rcgen), server certificates it signs (good, for the wrong name, expired) or another CA
//! signs, client certificates, and a rustls origin that counts handshakes, resumed
//! handshakes and presented client certificates. `tests/monkey_upstream_tls.rs` uses the
//! certificates with nginx as the origin.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection, StreamOwned};

use crate::common::body_of;

/// A certificate authority made at test time.
pub struct Ca {
    key: KeyPair,
    cert: rcgen::Certificate,
}

/// A certificate and its key, in PEM and DER.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub chain: Vec<CertificateDer<'static>>,
    pub key_der: Vec<u8>,
}

/// What a server certificate says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// For `localhost` and 127.0.0.1, valid now.
    Good,
    /// For `elsewhere.example` only.
    WrongName,
    /// For `localhost` and 127.0.0.1, expired in 2021.
    Expired,
    /// A client certificate (`client.example`, client authentication).
    Client,
}

impl Ca {
    /// A new CA called `name`.
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { key, cert }
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate in DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A certificate of `kind` signed by this CA.
    pub fn issue(&self, kind: Kind) -> Issued {
        let names = match kind {
            Kind::WrongName => vec!["elsewhere.example".to_string()],
            Kind::Client => vec!["client.example".to_string()],
            _ => vec!["localhost".to_string()],
        };
        let mut params = CertificateParams::new(names).unwrap();
        if matches!(kind, Kind::Good | Kind::Expired) {
            params
                .subject_alt_names
                .push(SanType::IpAddress([127, 0, 0, 1].into()));
        }
        params.extended_key_usages = vec![if kind == Kind::Client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        if kind == Kind::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            chain: vec![cert.der().clone()],
            key_der: key.serialize_der(),
        }
    }
}

/// A directory of its own under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "proxy-utls-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `text` to `name` in the directory; its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A rustls server configuration for `cert` (ALPN `http/1.1`); with `clients`, client
/// certificates signed by that CA are asked for (not required) and verified.
pub fn server_config(cert: &Issued, clients: Option<&Ca>) -> Arc<ServerConfig> {
    let builder = match clients {
        None => ServerConfig::builder().with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            roots.add(ca.der()).unwrap();
            let verifier = WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .unwrap();
            ServerConfig::builder().with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(
            cert.chain.clone(),
            PrivateKeyDer::try_from(cert.key_der.clone()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A loopback HTTPS origin, thread per connection, HTTP/1.1 keep-alive. Routes: `/size/N`
/// (N pattern bytes), `/stream/N` (the same, written in 64 KiB pieces), `/echo` (the request
/// body back), `/headers` (the request head back), `/ws` (a `101`, then an echo of every
/// byte), anything else 404.
pub struct TlsOrigin {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub conns: Arc<AtomicUsize>,
    /// Handshakes completed, and those that resumed a session.
    pub handshakes: Arc<AtomicUsize>,
    pub resumed: Arc<AtomicUsize>,
    /// Handshakes in which the client presented a certificate.
    pub client_certs: Arc<AtomicUsize>,
    /// Requests answered.
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl TlsOrigin {
    pub fn start(config: Arc<ServerConfig>) -> TlsOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let origin = TlsOrigin {
            addr: listener.local_addr().unwrap(),
            conns: Arc::default(),
            handshakes: Arc::default(),
            resumed: Arc::default(),
            client_certs: Arc::default(),
            requests: Arc::default(),
            stop: Arc::default(),
        };
        let counts = [
            origin.conns.clone(),
            origin.handshakes.clone(),
            origin.resumed.clone(),
            origin.client_certs.clone(),
            origin.requests.clone(),
        ];
        let stop = origin.stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                counts[0].fetch_add(1, Ordering::SeqCst);
                let (config, counts) = (config.clone(), counts.clone());
                thread::spawn(move || serve(stream, config, &counts));
            }
        });
        origin
    }
}

impl Drop for TlsOrigin {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut tcp: TcpStream, config: Arc<ServerConfig>, counts: &[Arc<AtomicUsize>; 5]) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = tcp.set_nodelay(true);
    let Ok(mut conn) = ServerConnection::new(config) else {
        return;
    };
    while conn.is_handshaking() {
        if conn.complete_io(&mut tcp).is_err() {
            return;
        }
    }
    counts[1].fetch_add(1, Ordering::SeqCst);
    if conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
        counts[2].fetch_add(1, Ordering::SeqCst);
    }
    if conn.peer_certificates().is_some_and(|c| !c.is_empty()) {
        counts[3].fetch_add(1, Ordering::SeqCst);
    }
    let mut r = BufReader::with_capacity(64 * 1024, StreamOwned::new(conn, tcp));
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut head = line.clone();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            head.push_str(&h);
            if h == "\r\n" {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if target == "/ws" {
            // An upgrade: 101, then every byte back until the client closes.
            let out = r.get_mut();
            let head =
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n";
            if out
                .write_all(head.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                return;
            }
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match r.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let out = r.get_mut();
                if out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
                    return;
                }
            }
        }
        let (status, reply) = if let Some(n) = target.strip_prefix("/size/") {
            ("200 OK", body_of(n.parse().unwrap()))
        } else if let Some(n) = target.strip_prefix("/stream/") {
            ("200 OK", body_of(n.parse().unwrap()))
        } else if target == "/echo" {
            ("200 OK", body)
        } else if target == "/headers" {
            ("200 OK", head.into_bytes())
        } else {
            ("404 Not Found", b"not found\n".to_vec())
        };
        let out = r.get_mut();
        let h = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        if out.write_all(h.as_bytes()).is_err() {
            return;
        }
        for part in reply.chunks(64 * 1024) {
            if out.write_all(part).is_err() {
                return;
            }
        }
        if out.flush().is_err() {
            return;
        }
        counts[4].fetch_add(1, Ordering::SeqCst);
    }
}

/// The `[PROXY_ENTRY]` for one HTTPS server at `addr`, with `extra` key lines (each ending
/// in a newline), behind `StatisticsURL /proxy-stats`.
pub fn conf_https(addr: SocketAddr, extra: &str) -> String {
    format!(
        "[PROXY_DEFAULTS]\n    StatisticsURL /proxy-stats\n\n[PROXY_ENTRY]\n    Match ^/\n    \
         ServerList https://{addr}\n{extra}"
    )
}
