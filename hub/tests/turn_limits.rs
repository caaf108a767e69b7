//! The embedded TURN server's limits beyond the peer classes (issue: abuse): its own addresses,
//! quotas per door or phone rather than per minted username, and a cap for the whole server.
//! Over real UDP on 127.0.0.1, with the webrtc-rs `turn` client and coturn's
//! `turnutils_uclient`.

#[path = "support/turn.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use webrtc_util::Conn;

use support::{
    client_for, echo_peer, embedded, run_uclient, uclient, uclient_args, within, UCLIENT_MAX_TTL,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uclient_is_refused_the_servers_own_turn_port_even_with_loopback_allowed() {
    if uclient().is_none() {
        return;
    }
    // The lab allow-list opens loopback, where the server itself listens: a relay into the
    // server's own port (a loop, or a way around its per-address limits) stays refused.
    let server = embedded(&format!(
        "allow_peers = [\"127.0.0.1/32\"]\n{UCLIENT_MAX_TTL}"
    ))
    .await;
    let own: SocketAddr = server.addr();
    let args = uclient_args(&server, &server.secret, own, &["-n", "5"]);
    let (ok, text) = run_uclient(&args).await;
    assert!(text.contains("403"), "expected a 403 refusal:\n{text}");
    assert!(
        !ok || !text.contains("Total lost packets 0"),
        "the server relayed into itself:\n{text}"
    );

    // The same client and server still relay to a real peer on loopback.
    let (peer, seen) = echo_peer().await;
    let args = uclient_args(&server, &server.secret, peer, &["-n", "5"]);
    let (ok, text) = run_uclient(&args).await;
    assert!(ok, "uclient failed:\n{text}");
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) >= 5,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_follows_the_door_or_phone_across_its_per_ring_usernames() {
    let server = embedded("max_allocations_per_credential = 2").await;
    let now = SystemTime::now();
    // Each ring mints a username with a new expiry: three rings, one phone.
    let minted: Vec<_> = (0..3)
        .map(|ring| {
            server
                .issuer()
                .ice_server_at("p-quota", now + Duration::from_secs(ring))
        })
        .collect();
    assert_ne!(minted[0].username, minted[1].username);
    let mut kept = Vec::new();
    for ice in &minted[..2] {
        let c = client_for(server.addr(), ice).await;
        let relay = within("allocate", c.allocate())
            .await
            .expect("within quota");
        kept.push((c, relay));
    }
    let c = client_for(server.addr(), &minted[2]).await;
    let err = within("over quota", c.allocate())
        .await
        .err()
        .expect("a third allocation of the same phone is refused")
        .to_string();
    assert!(err.contains("486"), "expected 486, got {err}");
    // Another door or phone is unaffected.
    let other = server.issuer().ice_server("d-quota");
    let c2 = client_for(server.addr(), &other).await;
    within("other identity", c2.allocate())
        .await
        .expect("another identity allocates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_server_holds_at_most_max_allocations() {
    let server = embedded("max_allocations = 2").await;
    let mut kept = Vec::new();
    for id in ["p-one", "p-two"] {
        let c = client_for(server.addr(), &server.issuer().ice_server(id)).await;
        let relay = within("allocate", c.allocate())
            .await
            .expect("under the cap");
        kept.push((c, relay));
    }
    let c = client_for(server.addr(), &server.issuer().ice_server("p-three")).await;
    let err = within("over the cap", c.allocate())
        .await
        .err()
        .expect("a third allocation on the server is refused")
        .to_string();
    assert!(err.contains("486"), "expected 486, got {err}");
    // Freeing one makes room again.
    let (first, relay) = kept.remove(0);
    // Closing the relayed connection sends a Refresh with lifetime 0: the allocation ends.
    relay.close().await.expect("release");
    first.close().await.expect("close");
    let c = client_for(server.addr(), &server.issuer().ice_server("p-three")).await;
    within("after a release", c.allocate())
        .await
        .expect("room again after a release");
}
