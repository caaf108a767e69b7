//! Who a client is, for counting: its address (IPv6 grouped by /64, the block one subscriber
//! gets), seen through trusted reverse proxies; and a table of open connections per address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

/// The unit limits count by. An IPv6 subscriber is handed a whole /64 and can use any address
/// in it, so counting single IPv6 addresses would let one client multiply its share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddrKey {
    V4(Ipv4Addr),
    /// The upper 64 bits of an IPv6 address.
    V6Prefix(u64),
}

impl AddrKey {
    pub(crate) fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddrKey::V4(v4),
            IpAddr::V6(v6) => AddrKey::V6Prefix((u128::from(v6) >> 64) as u64),
        }
    }
}

/// The client's address: `peer` itself, unless `peer` is a trusted proxy; then the rightmost
/// `X-Forwarded-For` entry that is not a trusted proxy (each proxy appends the address it
/// saw, so entries left of the first untrusted one could be forged by the client).
/// `forwarded_for` is every `X-Forwarded-For` header joined by commas, in order.
pub(crate) fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.contains(&ip.to_canonical());
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let Some(list) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in list.rsplit(',') {
        // Some proxies write the client's port too: "203.0.113.4:5678", "[2001:db8::1]:443".
        let hop = hop.trim();
        let parsed = hop
            .parse::<IpAddr>()
            .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()));
        match parsed {
            Ok(ip) => {
                client = ip.to_canonical();
                if !is_trusted(client) {
                    return client;
                }
            }
            // Not an address (a proxy that writes "unknown", or garbage): what the last
            // trusted hop vouched for is all there is.
            Err(_) => return client,
        }
    }
    client
}

/// Open connections per [`AddrKey`], at most `max` each. Entries exist only while an address
/// has connections, so the table is bounded by the global connection cap.
#[derive(Debug)]
pub(crate) struct PerAddress {
    max: usize,
    counts: Mutex<HashMap<AddrKey, usize>>,
}

/// One counted connection; gives its place back on drop.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    table: Arc<PerAddress>,
    key: AddrKey,
}

impl PerAddress {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            max,
            counts: Mutex::default(),
        })
    }

    /// A slot for `key`, or `None` if that address already holds `max`.
    pub(crate) fn try_take(self: &Arc<Self>, key: AddrKey) -> Option<AddressSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.table.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn ipv6_is_grouped_by_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:2:ffff::9"))
        );
        assert_ne!(
            AddrKey::of(ip("2001:db8:1:2::1")),
            AddrKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddrKey::of(ip("::ffff:192.0.2.7")),
            AddrKey::of(ip("192.0.2.7"))
        );
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let proxy = ip("127.0.0.1");
        let xff = Some("198.51.100.9, 203.0.113.4");
        assert_eq!(
            client_ip(proxy, xff, &[]),
            proxy,
            "nobody trusted by default"
        );
        assert_eq!(client_ip(proxy, xff, &[proxy]), ip("203.0.113.4"));
        // A client cannot hide behind an address it writes itself.
        assert_eq!(
            client_ip(proxy, Some("127.0.0.1, 203.0.113.4"), &[proxy]),
            ip("203.0.113.4")
        );
        assert_eq!(client_ip(proxy, Some("unknown"), &[proxy]), proxy);
        // Entries with the client's port, as some load balancers write them.
        assert_eq!(
            client_ip(proxy, Some("203.0.113.4:5678"), &[proxy]),
            ip("203.0.113.4")
        );
        assert_eq!(
            client_ip(proxy, Some("[2001:db8::1]:443"), &[proxy]),
            ip("2001:db8::1")
        );
        assert_eq!(client_ip(ip("192.0.2.1"), xff, &[proxy]), ip("192.0.2.1"));
    }

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let table = PerAddress::new(2);
        let a = AddrKey::of(ip("192.0.2.1"));
        let b = AddrKey::of(ip("192.0.2.2"));
        let first = table.try_take(a).expect("first");
        let _second = table.try_take(a).expect("second");
        assert!(table.try_take(a).is_none(), "third from the same address");
        assert!(
            table.try_take(b).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert!(
            table.try_take(a).is_some(),
            "a closed connection frees its slot"
        );
    }
}
