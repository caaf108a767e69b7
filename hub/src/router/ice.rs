//! The ICE servers the hub hands out: the static list in `welcome`, and per call the static
//! list plus TURN with credentials minted for one side. Every path (`ring` to each phone,
//! `ringing` and `answered` to the door, a phone that joins a ringing call late) asks
//! [`IceServers::for_call`], so the rules below cannot drift apart again.

use std::time::SystemTime;

use doorbell_protocol::IceServer;

use crate::turn::TurnIssuer;

/// Static servers plus an optional TURN credential issuer.
#[derive(Debug)]
pub(crate) struct IceServers {
    /// Handed to doors and phones in `welcome`, and first in every call's list.
    statics: Vec<IceServer>,
    /// Mints per-call TURN credentials for `ring` (each phone) and `ringing`/`answered`
    /// (the door). Credential expiry is Unix time, so minting takes the wall clock as an
    /// input; routing decisions never depend on it.
    turn: Option<TurnIssuer>,
}

impl IceServers {
    pub(crate) fn new(statics: Vec<IceServer>, turn: Option<TurnIssuer>) -> Self {
        IceServers { statics, turn }
    }

    /// The servers for `welcome` (no credentials: they are minted per call).
    pub(crate) fn welcome(&self) -> Vec<IceServer> {
        self.statics.clone()
    }

    /// The servers for one side (`id`: a phone or door id) of one call: the static ones plus
    /// TURN with credentials minted at `wall`.
    pub(crate) fn for_call(&self, id: &str, wall: SystemTime) -> Vec<IceServer> {
        let mut servers = self.statics.clone();
        if let Some(turn) = &self.turn {
            let server = turn.ice_server_at(id, wall);
            // Never hand out credentials without a URL to use them on (browsers refuse it).
            if !server.urls.is_empty() {
                servers.push(server);
            }
        }
        servers
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use doorbell_protocol::{HubToDoor, HubToPhone, PhoneId, PhoneToHub};

    use super::*;
    use crate::router::test_support::{call, now, ring, setup_with, A};
    use crate::router::{Out, Router};

    fn stun() -> IceServer {
        IceServer {
            urls: vec!["stun:192.0.2.1:3478".into()],
            username: None,
            credential: None,
        }
    }

    #[test]
    fn credentials_are_minted_at_the_wall_time_passed_in() {
        let issuer = TurnIssuer::new("s3cret", Duration::from_secs(300), vec!["turn:x".into()]);
        let ice = IceServers::new(vec![], Some(issuer));
        let wall = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let servers = ice.for_call("p-a", wall);
        assert_eq!(servers.len(), 1);
        assert_eq!(servers[0].username.as_deref(), Some("1000300:p-a"));
    }

    /// The drift this module exists to prevent: `answered` used to hand the door a TURN entry
    /// with no URL while `ring` left it out.
    #[test]
    fn a_turn_issuer_without_urls_adds_nothing_on_any_path() {
        let issuer = TurnIssuer::new("s3cret", Duration::from_secs(300), vec![]);
        let mut r = setup_with(Router::new(vec![stun()]).with_turn(Some(issuer)));
        let out = ring(&mut r);
        let mut lists = 0;
        for o in &out {
            match o {
                Out::Phone(_, HubToPhone::Ring { ice_servers, .. })
                | Out::Door(
                    _,
                    HubToDoor::Ringing {
                        ice_servers: Some(ice_servers),
                        ..
                    },
                ) => {
                    assert_eq!(ice_servers, &vec![stun()], "{o:?}");
                    lists += 1;
                }
                _ => {}
            }
        }
        assert_eq!(lists, 3, "two rings and a ringing: {out:?}");
        let out = r.phone_message(now(), A, PhoneToHub::Answer { call_id: call() });
        assert!(
            out.contains(&Out::Door(
                crate::router::test_support::DOOR,
                HubToDoor::Answered {
                    call_id: call(),
                    phone_id: PhoneId::new("p-a"),
                    ice_servers: vec![stun()],
                    may_unlock: true,
                }
            )),
            "{out:?}"
        );
    }
}
