//! What the prober probes: one target per server address and check, whichever entries list
//! it, with the (entry, server) pairs its results go to.

use std::collections::HashMap;

use super::probe::{ProbeSpec, ProbeTls};
use crate::proxy::Proxy;

/// One server of one entry that a target's probes report to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The entry's index in the configuration.
    pub entry: usize,
    /// The server's index in the entry.
    pub server: usize,
}

/// One thing to probe, and who hears of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// What to send, where, how often.
    pub spec: ProbeSpec,
    /// Every (entry, server) with this address and check, in configuration order.
    pub links: Vec<Link>,
}

/// The targets of `proxy`: every server of every entry with `HealthCheck`, one target per
/// address and check (a server listed in several entries with the same check is probed
/// once), in configuration order.
pub fn targets(proxy: &Proxy) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    // `ProbeTls` hashes and compares its client configuration by address, never by the
    // session cache inside it, so the key cannot change while it is in the map.
    #[allow(clippy::mutable_key_type)]
    let mut seen: HashMap<ProbeSpec, usize> = HashMap::new();
    for (e, entry) in proxy.config.entries.iter().enumerate() {
        let Some(check) = &entry.health_check else {
            continue;
        };
        for (s, server) in entry.servers.iter().enumerate() {
            let spec = ProbeSpec {
                addr: server.addr,
                kind: check.probe.clone(),
                host: check.host.clone().unwrap_or_else(|| server.name.clone()),
                expect: check.expect.clone(),
                interval: check.interval,
                timeout: check.timeout,
                tls: proxy.upstreams[e].servers()[s].tls.clone().map(ProbeTls),
            };
            let link = Link {
                entry: e,
                server: s,
            };
            match seen.get(&spec) {
                Some(&t) => out[t].links.push(link),
                None => {
                    seen.insert(spec.clone(), out.len());
                    out.push(Target {
                        spec,
                        links: vec![link],
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(text: &str) -> Proxy {
        let config = crate::config::parse_str(
            text,
            std::path::Path::new("t.conf"),
            &crate::config::SystemResolver,
        )
        .unwrap();
        Proxy::new(config).unwrap()
    }

    #[test]
    fn a_server_in_several_entries_with_the_same_check_is_one_target() {
        let p = proxy(
            "[PROXY_DEFAULTS]\n HealthCheck GET /healthz\n\
             [PROXY_ENTRY]\n Match ^/a\n ServerList 127.0.0.1:81 127.0.0.1:82\n\
             [PROXY_ENTRY]\n Match ^/b\n ServerList 127.0.0.1:82 127.0.0.1:83\n\
             [PROXY_ENTRY]\n Match ^/c\n ServerList 127.0.0.1:82\n HealthCheck GET /other\n\
             [PROXY_ENTRY]\n Match ^/d\n ServerList 127.0.0.1:84\n HealthCheck off\n",
        );
        let t = targets(&p);
        let summary: Vec<(u16, usize)> = t
            .iter()
            .map(|t| (t.spec.addr.port(), t.links.len()))
            .collect();
        assert_eq!(summary, [(81, 1), (82, 2), (83, 1), (82, 1)]);
        assert_eq!(
            t[1].links,
            [
                Link {
                    entry: 0,
                    server: 1
                },
                Link {
                    entry: 1,
                    server: 0
                }
            ]
        );
        assert_eq!(t[0].spec.host, "127.0.0.1:81");
    }
}
