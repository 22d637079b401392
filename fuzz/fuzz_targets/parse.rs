//! Fuzz target: the configuration parser must return `Ok` or errors for any bytes, never
//! panic, and a model it accepts must print and parse back to itself.
#![no_main]

use std::net::SocketAddr;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use proxy_reverse::config;

/// Resolves every name to one loopback address (no DNS while fuzzing), except names
/// starting with `x`, which fail, to exercise the error path.
fn resolver(host: &str, port: u16) -> Result<SocketAddr, String> {
    if host.starts_with('x') {
        Err("unknown host".to_string())
    } else {
        Ok(SocketAddr::from(([127, 0, 0, 1], port)))
    }
}

fuzz_target!(|data: &[u8]| {
    let file = Path::new("fuzz.conf");
    if let Ok(c) = config::parse_bytes(data, file, &resolver) {
        let text = config::print(&c);
        let again = config::parse_str(&text, file, &resolver).expect("printed config parses");
        assert_eq!(config::print(&again), text);
    }
});
