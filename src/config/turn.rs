//! The `[turn]` table: TURN/STUN for the embedded hub only (feature `embedded-hub`), the same
//! table as `doorbell-hub serve --config`.

use super::{Config, ConfigError};

impl Config {
    /// The `[turn]` table resolves, and its credentials outlive the longest call.
    pub(super) fn validate_turn(&self) -> Result<(), ConfigError> {
        let c = &self.call;
        // Checked with the embedded hub's defaults; the relay address a wildcard listener
        // needs is only known at start (the address phones reach the hub on).
        let turn = self
            .turn
            .resolve(&self.turn_defaults(
                std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                Some(std::net::Ipv4Addr::LOCALHOST.into()),
            ))
            .map_err(|e| ConfigError::Invalid {
                key: e.key,
                problem: e.problem,
                fix: e.fix,
            })?;
        // TURN refreshes re-authenticate with the call's username, so a relayed call ends
        // when its credentials expire: they must outlive the longest call this door allows.
        let mint = match &turn {
            doorbell_hub::ResolvedTurn::Off => None,
            doorbell_hub::ResolvedTurn::Embedded(s) => Some(&s.mint),
            doorbell_hub::ResolvedTurn::External(s) => Some(&s.mint),
        };
        let longest = c.ring_timeout_secs + c.connect_timeout_secs + c.max_call_secs;
        if let Some(ttl) = mint
            .map(|m| m.credential_ttl_secs)
            .filter(|ttl| *ttl < longest)
        {
            return Err(ConfigError::Invalid {
                key: "turn.credential_ttl_secs",
                problem: format!(
                    "{ttl} s is shorter than the longest call ({longest} s: call.ring_timeout_secs + call.connect_timeout_secs + call.max_call_secs), so a relayed call would drop when its TURN credentials expire"
                ),
                fix: format!("set turn.credential_ttl_secs = {longest} or more (and turn.max_ttl_secs at least as high), or lower call.max_call_secs"),
            });
        }
        Ok(())
    }

    /// Defaults of the `[turn]` table for the hub inside this process, which listens on
    /// `hub_listen`; `relay_address` is used when the hub listens on all interfaces.
    pub fn turn_defaults(
        &self,
        hub_listen: std::net::SocketAddr,
        relay_address: Option<std::net::IpAddr>,
    ) -> doorbell_hub::TurnDefaults {
        doorbell_hub::TurnDefaults {
            mode: doorbell_hub::TurnMode::Embedded,
            listen: std::net::SocketAddr::new(hub_listen.ip(), 0),
            relay_address,
            secret_file: self.state_dir.join("turn-secret"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::load;

    #[test]
    fn turn_table_defaults_to_embedded_and_errors_name_the_key() {
        use doorbell_hub::{ResolvedTurn, TurnMode};
        let c = load(None, &[]).unwrap();
        assert_eq!(c.turn.mode, None, "absent: the embedded hub's default");
        let hub_listen: std::net::SocketAddr = "192.0.2.10:8443".parse().unwrap();
        match c.turn.resolve(&c.turn_defaults(hub_listen, None)).unwrap() {
            ResolvedTurn::Embedded(s) => {
                assert_eq!(s.listen, "192.0.2.10:0".parse().unwrap());
                assert_eq!(s.relay_address, hub_listen.ip());
                assert_eq!(s.mint.secret_file, c.state_dir.join("turn-secret"));
            }
            other => panic!("expected embedded, got {other:?}"),
        }
        let c = load(
            Some("[turn]\nmode = \"off\"\nallow_peers = [\"127.0.0.1/32\"]\n"),
            &[],
        )
        .unwrap();
        assert_eq!(c.turn.mode, Some(TurnMode::Off));
        let err = load(None, &["turn.relay_ports=9-1"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("turn.relay_ports") && err.contains("fix:"),
            "{err}"
        );
        let err = load(Some("[turn]\nmode = \"external\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("turn.urls"), "{err}");
        // Credentials that would expire in the middle of the longest allowed call.
        let err = load(None, &["call.max_call_secs=3600"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("turn.credential_ttl_secs") && err.contains("3650 s"),
            "{err}"
        );
        let err = load(Some("[turn]\nrelay_port = \"1-2\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("relay_port"), "unknown keys are errors: {err}");
    }
}
