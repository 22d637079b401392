//! Who may read the statistics.
//!
//! The statistics reveal the backend topology (addresses, health, traffic), so they are
//! closed by default: only the machine itself may read them unless `StatisticsAllow` opens
//! them to more clients. Callers answer 403 when [`allowed`] says no.

use std::net::IpAddr;

use crate::config::Cidr;

/// Whether `client` may read the statistics: loopback (`127.0.0.0/8`, `::1`, and
/// `::ffff:127.0.0.0/104`) always; anyone else only if inside one of the `allow` blocks.
pub fn allowed(client: IpAddr, allow: &[Cidr]) -> bool {
    let loopback = match client {
        IpAddr::V4(v4) => v4.is_loopback(),
        // A dual-stack listener shows IPv4 clients as mapped addresses.
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    };
    loopback || allow.iter().any(|c| c.contains(client))
}
