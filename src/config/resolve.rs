//! Host name resolution for `ServerList`, done once while the configuration is read (at
//! start-up, never on a worker). Injectable so tests and the fuzzer need no DNS.

use std::net::{SocketAddr, ToSocketAddrs};

/// Turns a host name and port into one address.
///
/// IP literals never reach a resolver: the parser reads them itself.
pub trait Resolver {
    /// The address for `host:port`, or a one-line reason why there is none.
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String>;
}

/// The system resolver (`getaddrinfo` through [`ToSocketAddrs`]); the first address wins.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        let mut addrs = (host, port).to_socket_addrs().map_err(|e| e.to_string())?;
        addrs
            .next()
            .ok_or_else(|| "the name has no address".to_string())
    }
}

impl<F> Resolver for F
where
    F: Fn(&str, u16) -> Result<SocketAddr, String>,
{
    fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, String> {
        self(host, port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closures_are_resolvers() {
        let r = |h: &str, p: u16| {
            if h == "a" {
                Ok(SocketAddr::from(([10, 0, 0, 1], p)))
            } else {
                Err("unknown".to_string())
            }
        };
        assert_eq!(r.resolve("a", 80).unwrap().to_string(), "10.0.0.1:80");
        assert!(r.resolve("b", 80).is_err());
    }

    #[test]
    fn system_resolver_reads_localhost() {
        assert_eq!(
            SystemResolver.resolve("localhost", 8080).unwrap().port(),
            8080
        );
    }
}
