//! The client's address behind trusted reverse proxies: what the
//! per-address connection limit counts when herald is not reached directly.
//!
//! A proxy appends the address it got the request from to
//! `X-Forwarded-For`, so the list reads client first, nearest proxy last.
//! Only hops herald trusts can vouch for the entry before them: the client
//! is the rightmost entry that is not a trusted proxy, reached by walking
//! from the right through trusted hops only. Anything left of it was written
//! by the client and proves nothing.

use std::net::{IpAddr, SocketAddr};

use http::HeaderMap;
use ipnet::IpNet;

/// Proxies whose `X-Forwarded-For` herald believes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Trusts these networks (a single address is a /32 or /128 network).
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self { networks }
    }

    /// Reads one configured entry: an address (`127.0.0.1`, `::1`) or a
    /// network in CIDR notation (`10.0.0.0/8`).
    pub fn parse_entry(entry: &str) -> Result<IpNet, String> {
        if let Ok(address) = entry.parse::<IpAddr>() {
            return Ok(IpNet::from(address));
        }
        entry.parse::<IpNet>().map_err(|_| {
            format!("`{entry}` is neither an IP address nor a network such as 10.0.0.0/8")
        })
    }

    /// Whether none is trusted: the peer is always the client.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The client's address for a request that came from `peer` with
    /// `headers`: `peer` itself unless it is a trusted proxy.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Header lines in order, then each line's entries from the right.
        let lines: Vec<&[u8]> = headers
            .get_all("x-forwarded-for")
            .iter()
            .map(|value| value.as_bytes())
            .collect();
        for entry in lines
            .iter()
            .rev()
            .flat_map(|line| line.rsplit(|&b| b == b','))
        {
            let Some(address) = parse_hop(entry) else {
                // Not an address: nothing left of it can be believed.
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port
/// (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(entry: &[u8]) -> Option<IpAddr> {
    let entry = std::str::from_utf8(entry).ok()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .map(canonical)
}

/// An IPv4 address mapped into IPv6 (a dual-stack socket's peer) is the
/// IPv4 address.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            entries
                .iter()
                .map(|e| TrustedProxies::parse_entry(e).unwrap())
                .collect(),
        )
    }

    fn forwarded(lines: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append("x-forwarded-for", line.parse().unwrap());
        }
        headers
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_client_is_the_rightmost_hop_no_trusted_proxy_wrote() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        let cases: &[(&str, &[&str], &str)] = &[
            // Not from a trusted proxy: the header is the client's own.
            ("192.0.2.9", &["198.51.100.1"], "192.0.2.9"),
            ("127.0.0.1", &["198.51.100.1"], "198.51.100.1"),
            // A client's forged entries stay left of the real one.
            ("127.0.0.1", &["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
            // Through two trusted proxies.
            ("127.0.0.1", &["198.51.100.1, 10.1.2.3"], "198.51.100.1"),
            (
                "127.0.0.1",
                &["6.6.6.6", "198.51.100.1", "10.1.2.3"],
                "198.51.100.1",
            ),
            // Ports, brackets, spaces.
            ("127.0.0.1", &[" 198.51.100.1:4711 "], "198.51.100.1"),
            ("127.0.0.1", &["[2001:db8::1]:4711"], "2001:db8::1"),
            // Garbage ends the walk at the last believable hop.
            ("127.0.0.1", &["198.51.100.1, unknown"], "127.0.0.1"),
            ("127.0.0.1", &["198.51.100.1, 10.0.0.1, bad"], "127.0.0.1"),
            ("127.0.0.1", &["unknown, 10.0.0.1"], "10.0.0.1"),
            // Every hop trusted: the leftmost.
            ("127.0.0.1", &["10.0.0.2, 10.0.0.1"], "10.0.0.2"),
            // No header.
            ("127.0.0.1", &[], "127.0.0.1"),
            // A dual-stack socket's mapped peer is its IPv4 address.
            ("::ffff:127.0.0.1", &["198.51.100.1"], "198.51.100.1"),
        ];
        for (peer, lines, client) in cases {
            assert_eq!(
                trusted.client(ip(peer), &forwarded(lines)),
                ip(client),
                "{peer} {lines:?}"
            );
        }
        assert_eq!(
            TrustedProxies::default().client(ip("127.0.0.1"), &forwarded(&["198.51.100.1"])),
            ip("127.0.0.1"),
            "nobody trusted"
        );
    }

    #[test]
    fn entries_are_addresses_or_networks() {
        assert!(TrustedProxies::parse_entry("::1").is_ok());
        assert!(TrustedProxies::parse_entry("fd00::/8").is_ok());
        let error = TrustedProxies::parse_entry("localhost").unwrap_err();
        assert!(error.contains("`localhost`"), "{error}");
        assert!(TrustedProxies::parse_entry("10.0.0.0/33").is_err());
    }
}
