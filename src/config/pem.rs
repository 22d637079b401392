//! The PEM files of the `UpstreamTls…` keys: read while the configuration is read (so that
//! no worker ever reads a file) and checked to hold what their key needs.

use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::PemFile;

/// What a PEM file must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holds {
    /// Certificate authorities (`UpstreamCaFile`): at least one usable as a trust root.
    Authorities,
    /// A certificate chain (`UpstreamCertFile`): at least one certificate.
    Chain,
    /// A private key (`UpstreamKeyFile`).
    Key,
}

/// The certificates of a PEM text, in file order.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not a readable PEM file ({e})"))?;
    if certs.is_empty() {
        return Err("holds no CERTIFICATE".to_string());
    }
    Ok(certs)
}

/// The private key of a PEM text (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => "holds no PRIVATE KEY".to_string(),
        e => format!("not a readable PEM file ({e})"),
    })
}

/// A trust store of the certificates of a PEM text; an error when none is usable.
pub fn roots(pem: &[u8]) -> Result<rustls::RootCertStore, String> {
    let mut store = rustls::RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certificates(pem)?);
    if added == 0 {
        return Err("holds no certificate usable as a certificate authority".to_string());
    }
    Ok(store)
}

/// Reads the file `value` of key `key` (relative paths are taken from the directory of the
/// configuration file `config`) and checks that it holds what `holds` says.
pub fn read(key: &str, value: &str, config: &Path, holds: Holds) -> Result<PemFile, String> {
    let path = PathBuf::from(value);
    let full = match config.parent() {
        Some(dir) if path.is_relative() => dir.join(&path),
        _ => path.clone(),
    };
    let pem = std::fs::read(&full).map_err(|e| format!("{key}: cannot read `{value}`: {e}"))?;
    let checked = match holds {
        Holds::Authorities => roots(&pem).map(drop),
        Holds::Chain => certificates(&pem).map(drop),
        Holds::Key => private_key(&pem).map(drop),
    };
    checked.map_err(|e| format!("{key}: `{value}` {e}"))?;
    Ok(PemFile { path, pem })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_and_empty_files_are_named() {
        let dir = std::env::temp_dir().join(format!("pem-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("p.conf");
        let e = read("UpstreamCaFile", "missing.pem", &conf, Holds::Authorities).unwrap_err();
        assert!(
            e.starts_with("UpstreamCaFile: cannot read `missing.pem`"),
            "{e}"
        );
        std::fs::write(dir.join("empty.pem"), "nothing here\n").unwrap();
        let e = read("UpstreamCaFile", "empty.pem", &conf, Holds::Authorities).unwrap_err();
        assert_eq!(e, "UpstreamCaFile: `empty.pem` holds no CERTIFICATE");
        let e = read("UpstreamKeyFile", "empty.pem", &conf, Holds::Key).unwrap_err();
        assert_eq!(e, "UpstreamKeyFile: `empty.pem` holds no PRIVATE KEY");
        std::fs::write(
            dir.join("bad.pem"),
            "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = read("UpstreamCertFile", "bad.pem", &conf, Holds::Chain).unwrap_err();
        assert!(e.contains("not a readable PEM file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
