//! Which `Host` the hub answers and which browser `Origin` may open `/ws`.
//!
//! DNS rebinding: a page on `evil.example` makes its name resolve to the hub's address and
//! then talks to the hub as "same origin". Its requests still carry `Host: evil.example`, so
//! the hub answers only names it knows: `localhost`, its certificate's names, its public
//! URL's host and the configured ones. An address literal needs no check (rebinding needs a
//! name; a page loaded from the hub's address is the hub's own).
//!
//! Cross-site WebSocket hijacking: a browser attaches no cookies here, but a page on another
//! origin that learned a token could still use the visitor's network position (a LAN hub).
//! A browser always sends `Origin`; doors and other programs send none and are not affected.

use std::net::IpAddr;

/// The names and origins allowed, lowercase.
#[derive(Debug, Clone, Default)]
pub(crate) struct HostPolicy {
    /// Host names (no port). `*.example.org` matches one label in front.
    names: Vec<String>,
    /// Full origins (`https://app.example`) allowed to open `/ws` besides the hub's own.
    origins: Vec<String>,
}

/// The host of a `Host` header or an origin's authority: port and IPv6 brackets removed,
/// lowercase, without a trailing dot.
fn host_of(authority: &str) -> String {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

impl HostPolicy {
    /// `names`: certificate names, the public URL's host, `[limits] allowed_hosts`;
    /// `origins`: `[limits] allowed_origins`.
    pub(crate) fn new<'a>(
        names: impl IntoIterator<Item = &'a str>,
        origins: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let mut names: Vec<String> = names.into_iter().map(host_of).collect();
        names.sort();
        names.dedup();
        HostPolicy {
            names,
            origins: origins
                .into_iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with this `Host` header is served.
    pub(crate) fn host_allowed(&self, host_header: &str) -> bool {
        let host = host_of(host_header.trim());
        if host.parse::<IpAddr>().is_ok() || host == "localhost" || host.ends_with(".localhost") {
            return true;
        }
        self.names.iter().any(|name| match name.strip_prefix("*.") {
            Some(parent) => host
                .split_once('.')
                .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
            None => *name == host,
        })
    }

    /// Whether a browser page from `origin` may open `/ws` on a request whose `Host` is
    /// `host_header`: its own origin (same authority), or a configured one.
    pub(crate) fn origin_allowed(&self, origin: &str, host_header: Option<&str>) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let (authority, default_port) = if let Some(a) = origin.strip_prefix("https://") {
            (a, ":443")
        } else if let Some(a) = origin.strip_prefix("http://") {
            (a, ":80")
        } else {
            // "null" (a sandboxed frame, a file:// page) and other schemes.
            return false;
        };
        // `Host: example.net:443` and `Origin: https://example.net` are the same authority.
        let bare = |a: &str| {
            a.strip_suffix(default_port)
                .unwrap_or(a)
                .to_ascii_lowercase()
        };
        host_header.is_some_and(|host| bare(host.trim()) == bare(authority))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HostPolicy {
        HostPolicy::new(
            ["doorbell.local", "Door.Example.org", "*.hub.example"],
            ["https://app.example/"],
        )
    }

    #[test]
    fn hosts_known_to_the_hub_are_served_others_refused() {
        let p = policy();
        for host in [
            "127.0.0.1:8443",
            "[::1]:8443",
            "192.168.1.20",
            "localhost:8443",
            "doorbell.local",
            "door.example.org.:443",
            "a.hub.example",
        ] {
            assert!(p.host_allowed(host), "{host}");
        }
        for host in [
            "evil.example",
            "evil.example:8443",
            "hub.example",
            "a.b.hub.example",
            "",
        ] {
            assert!(!p.host_allowed(host), "{host}");
        }
    }

    #[test]
    fn only_the_hubs_own_origin_or_a_configured_one_opens_ws() {
        let p = policy();
        assert!(p.origin_allowed("https://doorbell.local:8443", Some("doorbell.local:8443")));
        assert!(p.origin_allowed("http://127.0.0.1:9000", Some("127.0.0.1:9000")));
        assert!(p.origin_allowed("https://app.example", Some("doorbell.local")));
        assert!(!p.origin_allowed("https://evil.example", Some("doorbell.local")));
        assert!(!p.origin_allowed("null", Some("doorbell.local")));
        assert!(!p.origin_allowed("https://doorbell.local", None));
        // Default ports are the same authority either way round.
        assert!(p.origin_allowed("https://door.example.org", Some("door.example.org:443")));
        assert!(p.origin_allowed("http://door.example.org:80", Some("door.example.org")));
        assert!(!p.origin_allowed("https://door.example.org", Some("door.example.org:8443")));
    }
}
