//! `[hub]` for a standalone door: where the hub is and how the door proves who it is.
//!
//! The door's secret travels in its first WebSocket message, so the link to a remote hub must
//! be TLS (`wss://`); plain `ws://` is only for a hub on this machine (tests, a hub behind a
//! local TLS proxy).

use std::net::IpAddr;

use super::{Config, ConfigError};

impl Config {
    /// The hub settings a standalone (non-demo) daemon needs.
    pub fn validate_hub(&self) -> Result<(), ConfigError> {
        let url = self.hub.url.trim();
        if url.is_empty() {
            return Err(invalid(
                "hub.url",
                "is not set".into(),
                "set hub.url = \"wss://your-hub/ws\" in /etc/doorbell/doorbell.toml, or hub.listen = \"0.0.0.0:8443\" for a hub inside this process (or run `doorbelld --demo`)",
            ));
        }
        check_url(url)?;
        let door_id = self.hub.door_id.trim();
        if door_id.is_empty() {
            return Err(invalid(
                "hub.door_id",
                "is not set".into(),
                "run `doorbell-hub add-door \"Front door\"` on the hub and copy door_id",
            ));
        }
        if let Err(problem) = doorbell_protocol::limits::check_id(door_id) {
            return Err(invalid(
                "hub.door_id",
                format!("{door_id:?}: {problem}"),
                "copy door_id exactly as `doorbell-hub add-door` printed it (like \"d-1f2e3d4c5b6a7988\")",
            ));
        }
        if self.hub.secret.trim().is_empty() {
            return Err(invalid(
                "hub.secret",
                "is not set".into(),
                "copy the secret printed by `doorbell-hub add-door` (there is no default secret)",
            ));
        }
        Ok(())
    }
}

/// `wss://` anywhere; `ws://` only to this machine (its secret would cross the network in
/// clear).
fn check_url(url: &str) -> Result<(), ConfigError> {
    let bad_shape = || {
        invalid(
            "hub.url",
            format!("{url:?} is not a ws:// or wss:// URL"),
            "write it like \"wss://hub.example.net/ws\"",
        )
    };
    let uri: hyper::Uri = url.parse().map_err(|_| bad_shape())?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad_shape)?;
    match uri.scheme_str() {
        Some("wss") => Ok(()),
        Some("ws") if is_loopback(host) => Ok(()),
        Some("ws") => Err(invalid(
            "hub.url",
            format!("{url:?} is plain ws:// to {host}, which is not this machine: the door's secret would cross the network unencrypted"),
            &format!("use wss://{}{} (the hub serves TLS on its port; a self-signed hub certificate goes in hub.ca_file)", uri.authority().map_or(host, |a| a.as_str()), uri.path()),
        )),
        _ => Err(bad_shape()),
    }
}

/// `localhost` or a loopback IP (`127.0.0.0/8`, `::1`, written `[::1]` in a URL).
fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn invalid(key: &'static str, problem: String, fix: &str) -> ConfigError {
    ConfigError::Invalid {
        key,
        problem,
        fix: fix.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub_config(url: &str, door_id: &str) -> Config {
        let mut c = Config::default();
        c.hub.url = url.into();
        c.hub.door_id = door_id.into();
        c.hub.secret = "s".into();
        c
    }

    #[test]
    fn plain_ws_to_a_remote_host_is_refused_naming_the_key_and_the_fix() {
        let err = hub_config("ws://203.0.113.5/ws", "d-1")
            .validate_hub()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`hub.url`"), "{err}");
        assert!(err.contains("unencrypted"), "{err}");
        assert!(err.contains("wss://203.0.113.5/ws"), "{err}");
        for remote in [
            "ws://hub.example.net/ws",
            "ws://[2001:db8::1]:8443/ws",
            "ws://192.168.1.10:8443/ws",
        ] {
            assert!(
                hub_config(remote, "d-1").validate_hub().is_err(),
                "{remote}"
            );
        }
    }

    #[test]
    fn wss_anywhere_and_ws_to_this_machine_are_accepted() {
        for ok in [
            "wss://hub.example.net/ws",
            "wss://203.0.113.5:8443/ws",
            "ws://127.0.0.1:9/ws",
            "ws://127.0.0.2:8443/ws",
            "ws://localhost:8443/ws",
            "ws://[::1]:8443/ws",
        ] {
            hub_config(ok, "d-1")
                .validate_hub()
                .unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn other_schemes_and_hostless_urls_are_not_hub_urls() {
        for bad in ["https://hub/ws", "wss://", "ws:///ws", "hub.example.net/ws"] {
            let err = hub_config(bad, "d-1")
                .validate_hub()
                .unwrap_err()
                .to_string();
            assert!(err.contains("`hub.url`"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_door_id_the_protocol_would_refuse_is_a_config_error() {
        let err = hub_config("wss://hub/ws", &"d".repeat(65))
            .validate_hub()
            .unwrap_err()
            .to_string();
        assert!(err.contains("`hub.door_id`"), "{err}");
        assert!(hub_config("wss://hub/ws", "d 1").validate_hub().is_err());
    }
}
