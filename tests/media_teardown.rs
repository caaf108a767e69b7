//! Tearing a call down while its ICE agent is still gathering candidates.
//!
//! GStreamer 1.22 (Debian 12, Raspberry Pi OS) crashes on libnice's thread when gathering
//! ends after the session's transport is gone (see `src/media/gathering.rs`). A phone that
//! hangs up within a second of the offer, or a ring preview closed because another phone
//! answered, does exactly that whenever a STUN or TURN server is slow. Here the STUN server
//! is a bound UDP socket that never answers, so gathering lasts until libnice gives up.

mod common;

use doorbell_protocol::{CallId, IceServer};
use doorbelld::config::EncoderKind;
use doorbelld::media::{self, IceSettings, MediaEventKind, Session};
use gstreamer::prelude::*;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// libnice gives up on an unanswered STUN Binding after its retransmissions; bound with room.
const GATHERING_GIVES_UP_WITHIN: Duration = Duration::from_secs(70);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_dropped_while_gathering_is_released_after_gathering_ends_without_crashing() {
    media::check_installation().expect("GStreamer installation");
    let silent_stun = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind a silent STUN port");
    let stun = format!("stun:{}", silent_stun.local_addr().expect("address"));
    let plan = media::plan(&common::test_media(EncoderKind::Auto)).expect("plan");
    let ice = IceSettings {
        servers: vec![],
        local_addresses: vec!["127.0.0.1".into()],
    };
    let servers = [IceServer {
        urls: vec![stun],
        username: None,
        credential: None,
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
    // gathering handler walks) outlives the session while the STUN server keeps silent.
    let alive = weak
        .upgrade()
        .expect("still held while gathering is under way");
    assert_eq!(
        alive.current_state(),
        gstreamer::State::Null,
        "a dropped call sends nothing, even while it waits for gathering"
    );
    drop(alive);

    // Gathering ends (libnice gives up on the STUN server), GStreamer's handler runs with the
    // transport still alive, and only then is the session released. Without the wait this
    // process died here with SIGSEGV on the `webrtc:ice` thread.
    let finalized_at = tokio::time::timeout(GATHERING_GIVES_UP_WITHIN, finalized)
        .await
        .expect("the stopped session is released once gathering has ended")
        .expect("weak-ref notification");
    println!(
        "released {} ms after the drop (libnice's STUN timeout)",
        finalized_at.duration_since(dropped_at).as_millis()
    );
    drop(silent_stun);
}
