//! The `UpstreamTls…` keys and `https://` servers: what the parser accepts, the files it
//! reads and checks (with `FILE:LINE` problems), and the warnings.

mod common;
mod config_common;
mod upstream_tls_support;

use config_common::{errors, ok};
use upstream_tls_support::{Ca, Kind, TempDir};

/// A directory with a CA, a client certificate and its key, and an unrelated key.
fn files() -> TempDir {
    let dir = TempDir::new("conf");
    let ca = Ca::new("conf CA");
    dir.write("ca.pem", &ca.pem());
    let client = ca.issue(Kind::Client);
    dir.write("client.pem", &client.cert_pem);
    dir.write("client.key", &client.key_pem);
    dir.write("other.key", &ca.issue(Kind::Client).key_pem);
    dir.write("junk.pem", "not a certificate\n");
    dir
}

#[test]
fn https_servers_and_the_tls_keys_make_the_model() {
    let dir = files();
    let d = dir.path().display();
    let c = ok(&format!(
        "[PROXY_DEFAULTS]\nUpstreamCaFile {d}/ca.pem\n[PROXY_ENTRY]\nMatch /\n\
         ServerList https://127.0.0.1:8443 https://[::1] 127.0.0.1:80\n\
         UpstreamTlsName api.example\nUpstreamCertFile {d}/client.pem\n\
         UpstreamKeyFile {d}/client.key\n"
    ));
    let e = &c.entries[0];
    let tls: Vec<(String, bool)> = e
        .servers
        .iter()
        .map(|s| (s.name.clone(), e.server_tls(s)))
        .collect();
    assert_eq!(
        tls,
        [
            ("127.0.0.1:8443".to_string(), true),
            ("[::1]:443".to_string(), true),
            ("127.0.0.1:80".to_string(), false),
        ]
    );
    assert_eq!(e.tls.name.as_deref(), Some("api.example"));
    assert!(e.tls.verify && !e.tls.all_servers);
    assert!(e
        .tls
        .ca_file
        .as_ref()
        .unwrap()
        .pem
        .starts_with(b"-----BEGIN"));
    assert!(e.tls.cert_file.is_some() && e.tls.key_file.is_some());
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    // The printer writes it back; the parser reads the same model.
    let printed = proxy_reverse::config::print(&c);
    assert!(
        printed.contains("ServerList https://127.0.0.1:8443 https://[::1]:443 127.0.0.1:80"),
        "{printed}"
    );
    let again = ok(&printed);
    assert_eq!(again.entries[0].tls, e.tls);
    assert_eq!(again.entries[0].servers, e.servers);
}

#[test]
fn file_problems_name_the_line_and_the_file() {
    let dir = files();
    let d = dir.path().display();
    let e = errors(&format!(
        "[PROXY_ENTRY]\nMatch /\nServerList https://127.0.0.1:1\n\
         UpstreamCaFile {d}/missing.pem\nUpstreamCertFile {d}/junk.pem\nUpstreamKeyFile {d}/ca.pem\n"
    ));
    assert_eq!(e.len(), 3, "{e:#?}");
    assert!(
        e[0].starts_with(&format!(
            "t.conf:4: UpstreamCaFile: cannot read `{d}/missing.pem`: "
        )),
        "{e:#?}"
    );
    assert_eq!(
        e[1],
        format!("t.conf:5: UpstreamCertFile: `{d}/junk.pem` holds no CERTIFICATE")
    );
    assert_eq!(
        e[2],
        format!("t.conf:6: UpstreamKeyFile: `{d}/ca.pem` holds no PRIVATE KEY")
    );
    let e = errors(&format!(
        "[PROXY_ENTRY]\nMatch /\nServerList https://127.0.0.1:1\nUpstreamCaFile {d}/client.key\n"
    ));
    assert_eq!(
        e,
        [format!(
            "t.conf:4: UpstreamCaFile: `{d}/client.key` holds no CERTIFICATE"
        )]
    );
}

#[test]
fn a_client_certificate_needs_its_key_and_they_must_belong_together() {
    let dir = files();
    let d = dir.path().display();
    let base = format!(
        "[PROXY_ENTRY]\nMatch /\nServerList https://127.0.0.1:1\nUpstreamCaFile {d}/ca.pem\n"
    );
    assert_eq!(
        errors(&format!("{base}UpstreamCertFile {d}/client.pem\n")),
        ["t.conf:5: UpstreamCertFile needs an UpstreamKeyFile"]
    );
    assert_eq!(
        errors(&format!("{base}UpstreamKeyFile {d}/client.key\n")),
        ["t.conf:5: UpstreamKeyFile needs an UpstreamCertFile"]
    );
    let e = errors(&format!(
        "{base}UpstreamCertFile {d}/client.pem\nUpstreamKeyFile {d}/other.key\n"
    ));
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(e[0].starts_with("t.conf:1: UpstreamCertFile"), "{e:#?}");
}

#[test]
fn names_values_and_schemes_are_checked() {
    let e = errors(
        "[PROXY_ENTRY]\nMatch /\nServerList https://127.0.0.1:1 127.0.0.1:1\n\
         UpstreamTlsName bad_name!\nUpstreamTls maybe\nUpstreamTlsVerify 1\n",
    );
    assert_eq!(
        e,
        [
            "t.conf:3: server `127.0.0.1:1`: 127.0.0.1:1 is listed both with and without https://; write it one way",
            "t.conf:4: UpstreamTlsName: `bad_name!` is not a DNS name or an IP address",
            "t.conf:5: UpstreamTls: `maybe` must be on or off",
            "t.conf:6: UpstreamTlsVerify: `1` must be on or off",
        ]
    );
}

#[test]
fn warnings_for_verification_off_and_settings_without_a_tls_server() {
    let c = ok("[PROXY_ENTRY]\nMatch /\nServerList https://127.0.0.1:1 https://127.0.0.2:1\nUpstreamTlsVerify off\n");
    let w: Vec<String> = c.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:1: warning: UpstreamTlsVerify off: the certificates of this entry's 2 TLS \
          servers are not verified, so anyone on the path can pose as them"
        ]
    );
    let c = ok("[PROXY_ENTRY]\nMatch /\nServerList 127.0.0.1:1\nUpstreamTlsName x.example\n");
    let w: Vec<String> = c.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "t.conf:1: warning: this entry has UpstreamTls settings but no TLS server (write \
          https://HOST:PORT or UpstreamTls on); they do nothing"
        ]
    );
}

#[test]
fn the_checker_reports_a_bad_file_with_its_line() {
    let dir = files();
    let conf = dir.write(
        "p.conf",
        "[PROXY_ENTRY]\nMatch /\nServerList https://127.0.0.1:1\nUpstreamCaFile junk.pem\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proxy-reverse-check"))
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.lines().next().unwrap(),
        format!(
            "{}:4: UpstreamCaFile: `junk.pem` holds no CERTIFICATE",
            conf.display()
        )
    );
}
