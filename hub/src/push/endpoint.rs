//! Which push endpoints the hub will send to. A phone hands the hub a URL and the hub makes
//! requests to it, so without these checks any paired phone could make the hub reach into its
//! own network (routers, printers, cloud metadata services). Only `https://` URLs on public
//! hosts are accepted; names are checked again after DNS at send time
//! ([`crate::push::client`]), so a public name that resolves to a private address is refused
//! there too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::Uri;

use super::config::PushConfig;

/// Name suffixes that only ever mean a local network (RFC 6761/6762/8375 and common home-router
/// and corporate conventions). A push service is never there.
const LOCAL_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "home.arpa",
    "arpa",
];

/// A push endpoint that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub uri: Uri,
    /// `scheme://host[:port]`, the VAPID `aud` (RFC 8292 section 2: the push resource's origin).
    pub origin: String,
}

/// Why an endpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EndpointError {
    #[error("not a valid absolute URL")]
    InvalidUrl,
    #[error("must be an https:// URL")]
    NotHttps,
    #[error("must not contain a user name or password")]
    UserInfo,
    #[error("host {0:?} is a loopback, private, link-local or otherwise non-public address")]
    ForbiddenHost(String),
}

/// Checks `url` as a push endpoint under `config` (see the module docs).
pub(crate) fn check(url: &str, config: &PushConfig) -> Result<Endpoint, EndpointError> {
    let uri: Uri = url.parse().map_err(|_| EndpointError::InvalidUrl)?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(EndpointError::InvalidUrl);
    };
    if authority.as_str().contains('@') {
        return Err(EndpointError::UserInfo);
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(EndpointError::InvalidUrl);
    }
    let insecure_ok = config.insecure_allowed(host);
    let default_port = match scheme {
        "https" => 443,
        "http" if insecure_ok => 80,
        _ => return Err(EndpointError::NotHttps),
    };
    if !insecure_ok && !host_is_public(host) {
        return Err(EndpointError::ForbiddenHost(host.to_owned()));
    }
    let origin = match uri.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    };
    Ok(Endpoint { uri, origin })
}

/// Whether a URL host (a name, an IPv4 literal or a bracketed IPv6 literal) may be public.
/// Names are judged by their form only; their addresses are checked after DNS.
fn host_is_public(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip_is_public(ip);
    }
    let name = bare.trim_end_matches('.').to_ascii_lowercase();
    let Some((_, tld)) = name.rsplit_once('.') else {
        // A single label ("router", "nas") only resolves through a local search domain.
        return false;
    };
    // A numeric last label is an IPv4 address in a form the resolver still accepts
    // ("127.1", "2130706433", "0x7f.1"); no top-level domain is numeric.
    let numeric = tld.chars().all(|c| c.is_ascii_digit())
        || tld.starts_with("0x") && tld[2..].chars().all(|c| c.is_ascii_hexdigit());
    let local = LOCAL_SUFFIXES
        .iter()
        .any(|s| name == *s || name.ends_with(&format!(".{s}")));
    !numeric && !local
}

/// Whether the hub may connect to `ip` for a push: a globally routed unicast address.
/// (`IpAddr::is_global` is not stable yet, hence this list.)
pub(crate) fn ip_is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => ipv4_is_public(v4),
        IpAddr::V6(v6) => ipv6_is_public(v6),
    }
}

fn ipv4_is_public(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0                                  // "this network"
        || a == 10                            // private
        || a == 127                           // loopback
        || a == 100 && (64..128).contains(&b) // carrier-grade NAT (shared address space)
        || a == 169 && b == 254               // link-local (cloud metadata lives here)
        || a == 172 && (16..32).contains(&b)  // private
        || a == 192 && b == 0 && c == 0       // IETF protocol assignments
        || a == 192 && b == 0 && c == 2       // documentation
        || a == 192 && b == 88 && c == 99     // 6to4 relay anycast (deprecated)
        || a == 192 && b == 168               // private
        || a == 198 && (18..20).contains(&b)  // benchmarking
        || a == 198 && b == 51 && c == 100    // documentation
        || a == 203 && b == 0 && c == 113     // documentation
        || a >= 224) // multicast, reserved, broadcast
}

fn ipv6_is_public(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return ipv4_is_public(v4);
    }
    let s = ip.segments();
    // Only global unicast (2000::/3) is routed on the internet.
    if s[0] & 0xe000 != 0x2000 {
        return false;
    }
    let embedded_v4 =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match (s[0], s[1]) {
        // Teredo, ORCHID, benchmarking, documentation: never a push service.
        (0x2001, 0x0000..=0x01ff) | (0x2001, 0x0db8) => false,
        // 6to4 carries an IPv4 address: judge that one.
        (0x2002, _) => ipv4_is_public(embedded_v4(s[1], s[2])),
        // Documentation (RFC 9637).
        (0x3fff, 0x0000..=0x0fff) => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(insecure: &[&str]) -> PushConfig {
        PushConfig {
            allow_insecure_endpoints: insecure.iter().map(|s| s.to_string()).collect(),
            ..PushConfig::default()
        }
    }

    #[test]
    fn public_https_endpoints_pass_with_their_origin() {
        let e = check("https://fcm.googleapis.com/fcm/send/abc:def", &cfg(&[])).unwrap();
        assert_eq!(e.origin, "https://fcm.googleapis.com");
        let e = check("https://push.example.net:8443/x", &cfg(&[])).unwrap();
        assert_eq!(e.origin, "https://push.example.net:8443");
        let e = check("https://push.example.net:443/x", &cfg(&[])).unwrap();
        assert_eq!(e.origin, "https://push.example.net");
        let e = check("https://[2a00:1450:4001::200e]/x", &cfg(&[])).unwrap();
        assert_eq!(e.origin, "https://[2a00:1450:4001::200e]");
    }

    #[test]
    fn non_public_hosts_and_schemes_are_refused() {
        let c = cfg(&[]);
        assert_eq!(
            check("http://push.example.net/x", &c),
            Err(EndpointError::NotHttps)
        );
        assert_eq!(
            check("ftp://push.example.net/x", &c),
            Err(EndpointError::NotHttps)
        );
        assert_eq!(check("/relative", &c), Err(EndpointError::InvalidUrl));
        assert_eq!(check("not a url", &c), Err(EndpointError::InvalidUrl));
        assert_eq!(
            check("https://user:pw@push.example.net/", &c),
            Err(EndpointError::UserInfo)
        );
        for host in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "[::1]",
            "[::]",
            "[fe80::1]",
            "[fd00::1]",
            "[::ffff:127.0.0.1]",
            "[::ffff:10.0.0.1]",
            "[2002:c0a8:0101::1]",
            "[2001:db8::1]",
            "[64:ff9b::a00:1]",
            "localhost",
            "LOCALHOST",
            "foo.localhost",
            "printer.local",
            "nas.lan",
            "router",
            "host.home.arpa",
            "metadata.google.internal",
            "127.1",
            "2130706433",
            "0x7f.1",
            "1.2.3.4.in-addr.arpa",
            "localhost.",
        ] {
            let url = format!("https://{host}/push");
            assert!(
                matches!(check(&url, &c), Err(EndpointError::ForbiddenHost(_))),
                "{url} was accepted"
            );
        }
    }

    #[test]
    fn listed_loopback_hosts_may_use_http() {
        let c = cfg(&["127.0.0.1"]);
        let e = check("http://127.0.0.1:4000/push/a", &c).unwrap();
        assert_eq!(e.origin, "http://127.0.0.1:4000");
        assert!(check("http://[::1]:4000/push/a", &c).is_err());
        assert!(check("http://localhost:4000/push/a", &c).is_err());
    }

    #[test]
    fn public_addresses() {
        for ip in [
            "8.8.8.8",
            "142.250.74.46",
            "2a00:1450:4001:82a::200a",
            "2002:0808:0808::1",
        ] {
            assert!(ip_is_public(ip.parse().unwrap()), "{ip}");
        }
    }
}
