//! Helpers shared by the configuration tests: a resolver without DNS and parse shorthands.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use proxy_reverse::config::{self, Config, ConfigError};

/// Maps the host names used by the fixtures to fixed addresses; anything else fails.
pub fn resolver(host: &str, port: u16) -> Result<SocketAddr, String> {
    let ip = match host {
        "Host1" => [10, 0, 0, 1],
        "Host2" => [10, 0, 0, 2],
        "Host3" => [10, 0, 0, 3],
        "Host4" => [10, 0, 0, 4],
        "Host5" => [10, 0, 0, 5],
        "remote" => [10, 0, 1, 1],
        "RemoteStatic" => [10, 0, 1, 2],
        _ => return Err("Name or service not known".to_string()),
    };
    Ok(SocketAddr::from((ip, port)))
}

/// Parses `text` as `t.conf`.
pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    config::parse_str(text, Path::new("t.conf"), &resolver)
}

/// Parses `text`, which must be valid.
pub fn ok(text: &str) -> Config {
    match parse(text) {
        Ok(c) => c,
        Err(e) => panic!("unexpected errors: {e:#?}"),
    }
}

/// Parses `text`, which must be invalid, and returns the printed errors.
pub fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("expected errors, got {c:#?}"),
        Err(e) => e.iter().map(|e| e.to_string()).collect(),
    }
}

/// A fixture file under `tests/config_fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/config_fixtures")
        .join(name)
}

/// Loads a fixture with the test resolver.
pub fn load_fixture(name: &str) -> Config {
    match config::load_with(&fixture(name), &resolver) {
        Ok(c) => c,
        Err(e) => panic!("{name}: {e:#?}"),
    }
}
