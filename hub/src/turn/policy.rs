//! Which peers the embedded TURN server relays to.
//!
//! A TURN server is an open proxy into whatever network it sits on unless it refuses
//! internal destinations (CVE-2020-26262: coturn relayed to loopback through `0.0.0.0` and
//! `::`; CVE-2026-27624: IPv4-mapped IPv6 forms slipped past IPv4 deny lists). Every address is
//! first normalised with [`IpAddr::to_canonical`] (so `::ffff:127.0.0.1` is judged as
//! `127.0.0.1`), then refused if it is loopback, private (RFC 1918, IPv6 ULA `fc00::/7`),
//! shared/CGNAT (`100.64.0.0/10`), link-local, multicast, broadcast, unspecified, or one of
//! the other special-purpose ranges below. An explicit allow-list (lab use) overrides.
//!
//! The server's own addresses are a second rule, which the allow-list does not lift: its own
//! TURN port on any of its addresses (a relay into itself: loops and amplification), and every
//! port outside the relay range on its own public addresses (services that trust "this
//! machine", a resolver, anything firewalled to its own IP). Relay ports on its own address
//! stay open, since two clients of the same server talk relay to relay.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address block, e.g. `10.0.0.0/8` or `fe80::/10`. A bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

/// Not an address or CIDR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an address or CIDR: {0:?}")]
pub struct BadCidr(pub String);

impl FromStr for Cidr {
    type Err = BadCidr;
    fn from_str(s: &str) -> Result<Self, BadCidr> {
        let bad = || BadCidr(s.to_owned());
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (
                a.parse::<IpAddr>().map_err(|_| bad())?,
                Some(p.parse::<u8>().map_err(|_| bad())?),
            ),
            None => (s.trim().parse::<IpAddr>().map_err(|_| bad())?, None),
        };
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` (compared in its canonical form) is inside this block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix.min(32)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// Why a peer is refused (for logs and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeniedClass {
    Unspecified,
    Loopback,
    Private,
    SharedCgnat,
    LinkLocal,
    Multicast,
    Broadcast,
    /// Documentation, benchmarking, reserved, "this network" and similar special-purpose blocks.
    Reserved,
}

fn classify_v4(ip: Ipv4Addr) -> Option<DeniedClass> {
    let o = ip.octets();
    Some(if ip.is_unspecified() || o[0] == 0 {
        DeniedClass::Unspecified
    } else if ip.is_loopback() {
        DeniedClass::Loopback
    } else if ip.is_private() {
        DeniedClass::Private
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        DeniedClass::SharedCgnat
    } else if ip.is_link_local() {
        DeniedClass::LinkLocal
    } else if ip.is_multicast() {
        DeniedClass::Multicast
    } else if ip.is_broadcast() {
        DeniedClass::Broadcast
    } else if (o[0] == 192 && o[1] == 0 && o[2] == 0)   // 192.0.0.0/24 IETF protocol assignments
        || (o[0] == 192 && o[1] == 88 && o[2] == 99)      // 192.88.99.0/24 6to4 relay anycast
        || ip.is_documentation()
        || (o[0] == 198 && (o[1] & 0xfe) == 18)           // 198.18.0.0/15 benchmarking
        || o[0] >= 240
    {
        DeniedClass::Reserved
    } else {
        return None;
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<DeniedClass> {
    let s = ip.segments();
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        // 64:ff9b::/96, well-known NAT64: a NAT64 gateway would relay to the IPv4 address in
        // the last 32 bits, so that address decides (64:ff9b::a00:1 is 10.0.0.1).
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return classify_v4(Ipv4Addr::new(a, b, c, d));
    }
    Some(if ip.is_unspecified() {
        DeniedClass::Unspecified
    } else if ip.is_loopback() {
        DeniedClass::Loopback
    } else if (s[0] & 0xfe00) == 0xfc00 {
        DeniedClass::Private // fc00::/7 unique local
    } else if (s[0] & 0xffc0) == 0xfe80 || (s[0] & 0xffc0) == 0xfec0 {
        DeniedClass::LinkLocal // fe80::/10, and deprecated site-local fec0::/10
    } else if ip.is_multicast() {
        DeniedClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0x0db8)           // documentation
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // 64:ff9b:1::/48 local-use NAT64
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])        // 100::/64 discard-only
        || (s[0] == 0x2002)                                // 6to4: embeds any IPv4 address
        || (s[0] == 0x2001 && s[1] < 0x0200)               // 2001::/23 IETF assignments, Teredo
        || s[0] == 0
    // ::/8 minus the cases above: IPv4-compatible and other reserved forms
    {
        DeniedClass::Reserved
    } else {
        return None;
    })
}

/// The class `ip` is refused for, after normalising IPv4-mapped IPv6, or `None` if it is a
/// public unicast address.
pub fn denied_class(ip: IpAddr) -> Option<DeniedClass> {
    match ip.to_canonical() {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The peer policy of one embedded TURN server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerPolicy {
    /// Lab use only: blocks exempt from [`denied_class`].
    pub allow: Vec<Cidr>,
    own: OwnAddresses,
}

/// Where the server itself is (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OwnAddresses {
    /// Its own addresses (the relay address, the listen address if specific), canonical.
    ips: Vec<IpAddr>,
    /// The TURN listening port, refused on every own address and on loopback.
    turn_port: Option<u16>,
    /// The relay port range, the only ports open on an own public address.
    relay_ports: (u16, u16),
}

impl PeerPolicy {
    pub fn new(allow: Vec<Cidr>) -> Self {
        PeerPolicy {
            allow,
            own: OwnAddresses::default(),
        }
    }

    /// The same policy, also refusing the server's own services: it listens on `listen`,
    /// relays from `relay_address` on `relay_ports`.
    pub fn with_own_addresses(
        mut self,
        listen: SocketAddr,
        relay_address: IpAddr,
        relay_ports: (u16, u16),
    ) -> Self {
        let mut ips = vec![relay_address.to_canonical()];
        if !listen.ip().is_unspecified() && !ips.contains(&listen.ip().to_canonical()) {
            ips.push(listen.ip().to_canonical());
        }
        self.own = OwnAddresses {
            ips,
            turn_port: Some(listen.port()),
            relay_ports,
        };
        self
    }

    /// Whether the server may relay to (and accept data from) `ip` (the address rule only).
    pub fn permits(&self, ip: IpAddr) -> bool {
        denied_class(ip).is_none() || self.allow.iter().any(|c| c.contains(ip))
    }

    /// Whether the server may relay to (and accept data from) `peer`: [`Self::permits`], and
    /// not one of the server's own services.
    pub fn permits_peer(&self, peer: SocketAddr) -> bool {
        self.permits(peer.ip()) && !self.is_own_service(peer)
    }

    fn is_own_service(&self, peer: SocketAddr) -> bool {
        let ip = peer.ip().to_canonical();
        let port = peer.port();
        let own = &self.own;
        let is_own_ip = own.ips.contains(&ip);
        if own.turn_port == Some(port) && (is_own_ip || ip.is_loopback()) {
            return true;
        }
        // Loopback is the address rule's (and a lab's allow-list's) business; an own public
        // address is open only on relay ports.
        is_own_ip && !ip.is_loopback() && !(own.relay_ports.0..=own.relay_ports.1).contains(&port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn server_policy(allow: &[&str]) -> PeerPolicy {
        PeerPolicy::new(allow.iter().map(|c| c.parse().unwrap()).collect()).with_own_addresses(
            sock("0.0.0.0:3478"),
            "198.51.7.1".parse().unwrap(),
            (49152, 65535),
        )
    }

    #[test]
    fn the_servers_own_public_address_is_open_on_relay_ports_only() {
        let p = server_policy(&[]);
        assert!(p.permits_peer(sock("198.51.7.1:50000")), "relay to relay");
        assert!(
            !p.permits_peer(sock("198.51.7.1:3478")),
            "its own TURN port"
        );
        assert!(
            !p.permits_peer(sock("198.51.7.1:53")),
            "a service on its address"
        );
        assert!(!p.permits_peer(sock("198.51.7.1:8443")), "the hub's port");
        assert!(
            !p.permits_peer(sock("[::ffff:198.51.7.1]:22")),
            "mapped form"
        );
        assert!(p.permits_peer(sock("198.51.7.2:3478")), "another host");
    }

    #[test]
    fn the_allow_list_does_not_open_the_servers_own_turn_port() {
        let p = PeerPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]).with_own_addresses(
            sock("127.0.0.1:40000"),
            "127.0.0.1".parse().unwrap(),
            (49152, 65535),
        );
        assert!(
            p.permits_peer(sock("127.0.0.1:41234")),
            "a lab peer on loopback"
        );
        assert!(
            !p.permits_peer(sock("127.0.0.1:40000")),
            "the server itself"
        );
        let unspecified = server_policy(&["127.0.0.1/32"]);
        assert!(!unspecified.permits_peer(sock("127.0.0.1:3478")));
    }
}
