//! Tearing a call down while its ICE agent is still gathering candidates.
//!
//! GStreamer 1.22 (Debian 12, Raspberry Pi OS) crashes on libnice's thread when gathering
//! ends after the session's transport is gone (see `src/media/gathering.rs`). A phone that
//! hangs up within a second or two of the offer, or a ring preview closed because another
//! phone answered, does that whenever a STUN or TURN server is slow. The crash itself needs a
//! connected call whose ICE agent outlives its webrtcbin and showed in about one e2e loop in
//! four (`pwa` + `call`); this test pins the mechanism that prevents it: a stopped session is
//! held until gathering ends (here a TURN server that never answers), then released.

mod common;

use doorbell_protocol::{CallId, IceServer};
use doorbelld::config::EncoderKind;
use doorbelld::media::{self, IceSettings, MediaEventKind, Session};
use gstreamer::prelude::*;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// libnice gives up on an unanswered TURN Allocate after its retransmissions; bound with room.
const GATHERING_GIVES_UP_WITHIN: Duration = Duration::from_secs(70);

/// The address this machine would use towards the outside (a UDP connect sends nothing).
fn own_address() -> std::net::IpAddr {
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").expect("bind");
    probe
        .connect("192.0.2.1:9")
        .expect("a route other than loopback (TEST-NET-1)");
    probe.local_addr().expect("local address").ip()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_while_gathering_is_released_after_gathering_ends_without_crashing() {
    media::check_installation().expect("GStreamer installation");
    // libnice asks no server from a loopback candidate: use this machine's own address.
    let address = own_address();
    let silent_turn = std::net::UdpSocket::bind((address, 0)).expect("bind a silent TURN port");
    let turn = format!(
        "turn:{}?transport=udp",
        silent_turn.local_addr().expect("address")
    );
    let plan = media::plan(&common::test_media(EncoderKind::Auto)).expect("plan");
    let ice = IceSettings {
        servers: vec![],
        local_addresses: vec![address.to_string()],
    };
    let servers = [IceServer {
        urls: vec![turn],
        username: Some("door".into()),
        credential: Some("secret".into()),
    }];
    let (tx, mut rx) = mpsc::channel(64);
    let call_id = CallId::new("c-teardown-1");
    let session = Session::start(call_id, &plan, &ice, tx).expect("session starts");
    // As the door does: the offer is set (starting gathering) once the servers are known.
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match rx.recv().await.expect("event channel open").kind {
                MediaEventKind::OfferReady(offer) => {
                    session.start_ice(&offer, &servers).expect("offer set");
                }
                MediaEventKind::LocalCandidate { .. } => return,
                MediaEventKind::Failed(why) => panic!("media failed: {why}"),
                _ => {}
            }
        }
    })
    .await
    .expect("gathering under way (a host candidate) within 20 s");

    let webrtc = session.pipeline().by_name("webrtc").expect("webrtcbin");
    let (finalized_tx, finalized) = oneshot::channel();
    let _notify = webrtc.add_weak_ref_notify(move || {
        let _ = finalized_tx.send(Instant::now());
    });
    let weak = webrtc.downgrade();
    drop(webrtc);
    let dropped_at = Instant::now();
    drop(session);

    // The media stopped at once, but the webrtcbin (and with it the transport GStreamer's
    // gathering handler walks) outlives the session while the TURN server keeps silent.
    let alive = weak
        .upgrade()
        .expect("still held while gathering is under way");
    assert_eq!(
        alive.current_state(),
        gstreamer::State::Null,
        "a dropped call sends nothing, even while it waits for gathering"
    );
    drop(alive);

    // Gathering ends (libnice gives up on the TURN server), GStreamer's handler runs with the
    // transport still alive, and only then is the session released.
    let finalized_at = tokio::time::timeout(GATHERING_GIVES_UP_WITHIN, finalized)
        .await
        .expect("the stopped session is released once gathering has ended")
        .expect("weak-ref notification");
    println!(
        "released {} ms after the drop (libnice gave up on the TURN server)",
        finalized_at.duration_since(dropped_at).as_millis()
    );
    drop(silent_turn);
}
