//! The rustls client configuration of an entry's TLS servers, built from its `UpstreamTls…`
//! settings while the configuration is read or a proxy is built (never on a worker: the
//! system's trust roots are files).
//!
//! One [`rustls::ClientConfig`] per entry: its session cache is shared by every connection
//! to the entry's servers, on every worker, so new connections resume the sessions earlier
//! ones made (keyed by server name).

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::pem;
use super::{Entry, ServerSpec, TlsSettings};

/// Sessions each entry's cache keeps for resumption.
const SESSIONS: usize = 1024;

/// Plaintext and records a TLS connection may hold on its way to the network, in bytes.
pub const SEND_BUFFER: usize = 32 * 1024;

/// The rustls client configuration for `settings`: protocol versions and ciphers of the ring
/// provider's safe defaults, ALPN `http/1.1`, the trust roots (`UpstreamCaFile`, else the
/// system's) or no verification (`UpstreamTlsVerify off`), and the client certificate.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let builder = if settings.verify {
        let roots = match &settings.ca_file {
            Some(f) => pem::roots(&f.pem)
                .map_err(|e| format!("UpstreamCaFile: `{}` {e}", f.path.display()))?,
            None => system_roots()?,
        };
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
    };
    let mut config = match (&settings.cert_file, &settings.key_file) {
        (Some(cert), Some(key)) => {
            let chain = pem::certificates(&cert.pem)
                .map_err(|e| format!("UpstreamCertFile: `{}` {e}", cert.path.display()))?;
            let key_der = pem::private_key(&key.pem)
                .map_err(|e| format!("UpstreamKeyFile: `{}` {e}", key.path.display()))?;
            builder.with_client_auth_cert(chain, key_der).map_err(|e| {
                format!(
                    "UpstreamCertFile `{}` with UpstreamKeyFile `{}`: {e}",
                    cert.path.display(),
                    key.path.display()
                )
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::in_memory_sessions(SESSIONS);
    Ok(Arc::new(config))
}

/// The name server `spec` of `entry` is greeted with (SNI) and checked against:
/// `UpstreamTlsName`, else its host as written.
pub fn server_name(entry: &Entry, spec: &ServerSpec) -> Result<ServerName<'static>, String> {
    let name = entry.tls.name.as_deref().unwrap_or(spec.host());
    ServerName::try_from(name.to_string()).map_err(|_| {
        format!(
            "server `{}`: `{name}` is not a name TLS can check (set UpstreamTlsName)",
            spec.name
        )
    })
}

/// The system's trust roots (rustls-native-certs), read once per process.
fn system_roots() -> Result<RootCertStore, String> {
    static ROOTS: OnceLock<Result<RootCertStore, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or("none found".to_string(), |e| e.to_string());
                return Err(format!(
                    "TLS: no system trust roots ({why}); set UpstreamCaFile"
                ));
            }
            Ok(store)
        })
        .clone()
}

/// `UpstreamTlsVerify off`: any certificate is accepted (the handshake's signatures are
/// still checked, so the connection is encrypted to whoever holds the key presented).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
