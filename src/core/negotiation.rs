//! The signaling gate in front of one call's media.
//!
//! The session makes its offer while the phones ring (the encoder needs its caps first, see
//! `media::session`), and the hub sends the call's ICE servers (TURN credentials minted for
//! it) in `ringing`, or, from an older hub, in `answered`. ICE starts once both the offer and
//! the servers exist, whichever comes last, so a TURN allocation is done before anyone
//! answers. The offer and the local candidates gathered so far are released to the hub only
//! once a phone has answered and ICE has started, again whichever comes last; candidates
//! gathered after that go out at once.

use doorbell_protocol::{CallId, IceCandidate, IceServer};

#[derive(Debug)]
pub(crate) struct Negotiation {
    pub(crate) call_id: CallId,
    offer: Option<String>,
    answered: bool,
    offer_sent: bool,
    pending_candidates: Vec<IceCandidate>,
    /// The hub link dropped during this call. The call goes on peer to peer, but a restarted
    /// hub knows nothing about it and cannot relay the phone's `hang_up`: the phone closing
    /// its peer connection (the data channel ends) is then the hang-up.
    pub(crate) hub_lost: bool,
    /// STUN/TURN servers for this call; the first ones to arrive win.
    ice_servers: Option<Vec<IceServer>>,
    /// The offer is the local description: ICE is gathering (with `ice_servers`).
    ice_started: bool,
}

/// Everything the hub gets once the gate opens.
#[derive(Debug)]
pub(crate) struct Release {
    pub(crate) offer: String,
    pub(crate) candidates: Vec<IceCandidate>,
}

impl Negotiation {
    pub(crate) fn new(call_id: CallId) -> Self {
        Negotiation {
            call_id,
            offer: None,
            answered: false,
            offer_sent: false,
            pending_candidates: Vec::new(),
            hub_lost: false,
            ice_servers: None,
            ice_started: false,
        }
    }

    /// The call's ICE servers arrived (from `ringing` or `answered`); later ones are ignored.
    pub(crate) fn ice_servers(&mut self, servers: Vec<IceServer>) {
        self.ice_servers.get_or_insert(servers);
    }

    pub(crate) fn offer_ready(&mut self, sdp: String) {
        self.offer = Some(sdp);
    }

    pub(crate) fn answered(&mut self) {
        self.answered = true;
    }

    /// A local candidate: `Some` to send now, `None` if it waits for the offer.
    pub(crate) fn local_candidate(&mut self, candidate: IceCandidate) -> Option<IceCandidate> {
        if self.offer_sent {
            Some(candidate)
        } else {
            self.pending_candidates.push(candidate);
            None
        }
    }

    /// The offer and servers to start ICE with, once both exist; only ever once.
    pub(crate) fn start_ice(&mut self) -> Option<(String, Vec<IceServer>)> {
        if self.ice_started {
            return None;
        }
        let (Some(sdp), Some(servers)) = (&self.offer, &self.ice_servers) else {
            return None;
        };
        self.ice_started = true;
        Some((sdp.clone(), servers.clone()))
    }

    /// The offer and buffered candidates, once a phone answered and ICE started; only once.
    pub(crate) fn release(&mut self) -> Option<Release> {
        if !self.answered || self.offer_sent || !self.ice_started {
            return None;
        }
        let offer = self.offer.clone()?;
        self.offer_sent = true;
        Some(Release {
            offer,
            candidates: std::mem::take(&mut self.pending_candidates),
        })
    }
}
