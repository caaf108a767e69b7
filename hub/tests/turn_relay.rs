//! The embedded TURN server over UDP: the peer policy, quotas and the
//! bad-credential rate limit, over real UDP sockets on 127.0.0.1 (port 0), with both the
//! webrtc-rs `turn` client and Debian coturn's `turnutils_uclient` as clients.
//!
//! Run: `cargo test -p doorbell-hub --test turn_relay`. The coturn tests need `turnutils_uclient`
//! (`bash scripts/install-deps.sh` installs coturn). Under qemu (`DOORBELL_TEST_RUNNER` set,
//! `scripts/test-aarch64.sh`) the coturn tests are skipped: they exercise the same Rust code as
//! on x86, and the x86 host's coturn tools would only add emulation time.

#[path = "support/turn.rs"]
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorbell_hub::testing::{password, TurnVerifier};
use doorbell_hub::TurnIssuer;
use support::{
    client, client_for, defaults, echo_peer, embedded, ip, parse, run_uclient, uclient,
    uclient_args, within, DENIED, UCLIENT_MAX_TTL,
};
use tempfile::TempDir;
use tokio::net::UdpSocket;
use webrtc_util::Conn;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_through_the_embedded_server_with_minted_credentials() {
    let server = embedded("allow_peers = [\"127.0.0.1/32\"]").await;
    let url = &server.issuer().urls()[0];
    assert_eq!(url, &format!("turn:{}?transport=udp", server.addr()));
    assert_eq!(
        server.turn.stun[0].urls,
        vec![format!("stun:{}", server.addr())]
    );
    let ice = server.issuer().ice_server("p-test");
    let c = client_for(server.addr(), &ice).await;
    let relay = within("allocate", c.allocate()).await.expect("allocation");
    let relayed = relay.local_addr().expect("relayed address");
    assert_eq!(relayed.ip(), ip("127.0.0.1"));
    let (peer, seen) = echo_peer().await;
    let payload = vec![0x5a; 1200];
    within("send", relay.send_to(&payload, peer))
        .await
        .expect("send via relay");
    let mut buf = vec![0u8; 2048];
    let (n, from) = within("echo back through the relay", relay.recv_from(&mut buf))
        .await
        .expect("recv via relay");
    assert_eq!((n, from), (1200, peer));
    assert_eq!(&buf[..n], &payload[..]);
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 1);
    // STUN Binding works too (the `stun:` URL handed out in welcome).
    let mapped = within("binding", c.send_binding_request())
        .await
        .expect("binding");
    assert_eq!(mapped.ip(), ip("127.0.0.1"));
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_permission_to_every_denied_class_is_refused_with_403() {
    // The allow-list holds only 127.0.0.1: it is the positive control, and 127.0.0.2 shows
    // the list is exact.
    let server = embedded("allow_peers = [\"127.0.0.1/32\"]").await;
    let ice = server.issuer().ice_server("d-test");
    let c = client_for(server.addr(), &ice).await;
    let relay = within("allocate", c.allocate()).await.expect("allocation");
    let (peer, _) = echo_peer().await;
    within("allowed peer", relay.send_to(b"ok", peer))
        .await
        .expect("the allow-listed peer is permitted");
    // Its IPv4-mapped spelling passes the policy (it is canonicalised) and reaches the
    // server's own check, which refuses an IPv6 peer on an IPv4 relay (443, not 403).
    let mapped = SocketAddr::new(ip("::ffff:127.0.0.1"), peer.port());
    let err = within("mapped allowed peer", relay.send_to(b"ok", mapped))
        .await
        .expect_err("family mismatch")
        .to_string();
    assert!(err.contains("443"), "{err}");
    // 127.0.0.1 is allow-listed here (in both spellings); every other denied address stays
    // denied, and so does its neighbour 127.0.0.2.
    let mut denied: Vec<&str> = DENIED
        .iter()
        .map(|(a, _)| *a)
        .filter(|a| !matches!(*a, "127.0.0.1" | "::ffff:127.0.0.1"))
        .collect();
    denied.push("127.0.0.2");
    for addr in denied {
        let target = SocketAddr::new(ip(addr), 9);
        let err = within(addr, relay.send_to(b"x", target))
            .await
            .expect_err(addr)
            .to_string();
        assert!(
            err.contains("403"),
            "{addr}: expected 403 Forbidden, got {err}"
        );
    }
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_allow_list_loopback_is_refused_too() {
    let server = embedded("").await;
    let ice = server.issuer().ice_server("d-test");
    let c = client_for(server.addr(), &ice).await;
    let relay = within("allocate", c.allocate()).await.expect("allocation");
    let (peer, seen) = echo_peer().await;
    let err = within("denied", relay.send_to(b"x", peer))
        .await
        .expect_err("loopback peer refused")
        .to_string();
    assert!(err.contains("403"), "{err}");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_refused_then_rate_limited() {
    let server = embedded("").await;
    let now = SystemTime::now();
    let good = server.issuer().ice_server("d-good");
    let expired_user = format!(
        "{}:d-old",
        now.duration_since(UNIX_EPOCH).expect("clock").as_secs() - 10
    );
    let far_user = format!(
        "{}:d-far",
        now.duration_since(UNIX_EPOCH).expect("clock").as_secs() + 86_400
    );
    let attempts: Vec<(String, String)> = vec![
        (good.username.clone().expect("u"), "wrong-password".into()),
        (
            expired_user.clone(),
            password(server.secret.as_bytes(), &expired_user),
        ),
        (
            far_user.clone(),
            password(server.secret.as_bytes(), &far_user),
        ),
        ("1767225600".into(), "x".into()),
    ];
    // doorbell_hub::testing::PAIR_FAILURES_PER_WINDOW failures per window are allowed.
    let limit = doorbell_hub::testing::PAIR_FAILURES_PER_WINDOW as usize;
    for i in 0..limit {
        let (u, p) = &attempts[i % attempts.len()];
        let c = client(server.addr(), u, p).await;
        let err = within("bad allocate", c.allocate())
            .await
            .err()
            .unwrap_or_else(|| panic!("{u}/{p} must be refused"))
            .to_string();
        assert!(
            !err.contains("429"),
            "attempt {i} is not rate limited yet: {err}"
        );
        c.close().await.expect("close");
    }
    // Now more guesses from this address are refused outright for the rest of the window...
    let (u, p) = &attempts[0];
    let c = client(server.addr(), u, p).await;
    let err = within("rate limited allocate", c.allocate())
        .await
        .err()
        .expect("rate limited")
        .to_string();
    assert!(err.contains("429"), "expected 429, got {err}");
    c.close().await.expect("close");
    // ...but credentials that prove the secret still work: forged failures (UDP sources are
    // cheap to spoof) must not lock a real client out.
    let c = client_for(server.addr(), &good).await;
    within("allocate with good credentials", c.allocate())
        .await
        .expect("good credentials are never rate limited");
    c.close().await.expect("close");
}

// The allocation quotas: turn_limits.rs.

// ---------------------------------------------------------------------------------------------
// coturn's reference client against the embedded server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_uclient_allocates_and_relays_through_the_embedded_server() {
    if uclient().is_none() {
        return;
    }
    let server = embedded(&format!(
        "allow_peers = [\"127.0.0.1/32\"]\n{UCLIENT_MAX_TTL}"
    ))
    .await;
    let (peer, seen) = echo_peer().await;
    let args = uclient_args(
        &server,
        &server.secret,
        peer,
        &["-n", "20", "-l", "1200", "-z", "5"],
    );
    let (ok, text) = run_uclient(&args).await;
    assert!(ok, "uclient failed:\n{text}");
    assert!(
        text.contains("Total lost packets 0"),
        "uclient lost packets:\n{text}"
    );
    assert!(
        seen.load(std::sync::atomic::Ordering::SeqCst) >= 20,
        "the peer saw {} datagrams:\n{text}",
        seen.load(std::sync::atomic::Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coturn_uclient_is_refused_a_denied_peer_and_a_wrong_secret() {
    if uclient().is_none() {
        return;
    }
    let server = embedded(UCLIENT_MAX_TTL).await;
    let (peer, seen) = echo_peer().await;
    let args = uclient_args(&server, &server.secret, peer, &["-n", "5"]);
    let (ok, text) = run_uclient(&args).await;
    assert!(
        !ok || !text.contains("Total lost packets 0"),
        "a loopback peer was relayed:\n{text}"
    );
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0, "{text}");
    assert!(text.contains("403"), "expected a 403 refusal:\n{text}");

    let args = uclient_args(&server, "not-the-secret", peer, &["-n", "5"]);
    let (ok, text) = run_uclient(&args).await;
    assert!(!ok, "a wrong secret was accepted:\n{text}");
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0, "{text}");
}

// ---------------------------------------------------------------------------------------------
// The hub hands each side of a call its own credentials, and they work on the embedded server

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ring_and_answered_carry_working_per_call_credentials() {
    use doorbell_protocol::{CallId, DoorToHub, HubToDoor, HubToPhone, PhoneToHub};
    let server = embedded("").await;
    let dir = TempDir::new().expect("tempdir");
    let mut config = common::config(&dir, doorbell_hub::TlsMode::Plain);
    config.ice_servers = server.turn.stun.clone();
    config.turn = server.turn.issuer.clone();
    let hub = common::start_hub_with_config(dir, config, doorbell_hub::Timings::default()).await;
    let (door_id, secret) = hub.add_door("Front door");
    let (token, phone_id) = hub.pair_phone(&door_id).await;
    let mut door = common::connect_door(&hub, &door_id, &secret).await;
    let (mut phone, _) = common::connect_phone(&hub, &token).await;
    let call = CallId::new("c-turn-1");
    door.send(&DoorToHub::Ring {
        call_id: call.clone(),
    })
    .await;
    let HubToPhone::Ring { ice_servers, .. } = phone.recv().await else {
        panic!("expected ring");
    };
    let phone_turn = ice_servers
        .iter()
        .find(|s| s.username.is_some())
        .expect("a TURN server with credentials in ring")
        .clone();
    assert_eq!(phone_turn.urls, server.issuer().urls());
    assert!(ice_servers
        .iter()
        .any(|s| s.urls == server.turn.stun[0].urls));
    phone
        .send(&PhoneToHub::Answer {
            call_id: call.clone(),
        })
        .await;
    let door_turn = loop {
        match door.recv().await {
            HubToDoor::Answered { ice_servers, .. } => {
                break ice_servers
                    .into_iter()
                    .find(|s| s.username.is_some())
                    .expect("a TURN server with credentials in answered");
            }
            HubToDoor::Ringing { .. } => continue,
            other => panic!("expected answered, got {other:?}"),
        }
    };
    let verifier = TurnVerifier::new(server.secret.as_bytes(), Duration::from_secs(3600));
    for (turn, id) in [
        (&phone_turn, phone_id.as_str()),
        (&door_turn, door_id.as_str()),
    ] {
        let user = turn.username.as_deref().expect("username");
        let (expiry, who) = user.split_once(':').expect("EXPIRY:ID");
        assert_eq!(who, id);
        let left = expiry.parse::<u64>().expect("expiry")
            - SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs();
        assert!((890..=900).contains(&left), "TTL {left}");
        let pass = turn.credential.as_deref().expect("credential");
        verifier
            .check(user, pass, SystemTime::now())
            .expect("valid");
        let c = client(server.addr(), user, pass).await;
        within("allocate with minted credentials", c.allocate())
            .await
            .expect("minted credentials allocate");
        c.close().await.expect("close");
    }
}

// ---------------------------------------------------------------------------------------------
// External coturn with the shipped hardened configuration and the hub's credentials

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_credentials_work_on_coturn_with_the_hardened_example_config() {
    if uclient().is_none() {
        return; // skipped under qemu, like the other coturn tests
    }
    let dir = TempDir::new().expect("tempdir");
    let secret_file = dir.path().join("turn-secret");
    std::fs::write(&secret_file, "shared-with-coturn-0123456789\n").expect("write secret");
    let conf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/turnserver.conf");
    let coturn = common::coturn::start("shared-with-coturn-0123456789", Some(&conf), &[]).await;
    let text = format!(
        "[turn]\nmode = \"external\"\nurls = [\"turn:{}?transport=udp\"]\nsecret_file = {:?}\n",
        coturn.addr,
        secret_file.display().to_string()
    );
    let resolved = parse(&text).resolve(&defaults(dir.path())).expect("config");
    let turn = doorbell_hub::start_turn(&resolved).await.expect("external");
    assert!(turn.embedded.is_none());
    let ice = turn.issuer.as_ref().expect("issuer").ice_server("p-coturn");
    let c = client_for(coturn.addr, &ice).await;
    let relay = within("allocate on coturn", c.allocate())
        .await
        .expect("coturn accepts the hub's credentials");
    // The example config denies private peers: loopback (no allow-loopback-peers), RFC 1918,
    // CGNAT, link-local, multicast.
    let (peer, seen) = echo_peer().await;
    for target in [
        peer,
        SocketAddr::new(ip("10.0.0.1"), 9),
        SocketAddr::new(ip("100.64.0.1"), 9),
        SocketAddr::new(ip("169.254.169.254"), 80),
        SocketAddr::new(ip("224.0.0.1"), 9),
    ] {
        let err = within("coturn peer policy", relay.send_to(b"x", target))
            .await
            .expect_err("denied by the example config")
            .to_string();
        assert!(err.contains("403"), "{target}: {err}");
    }
    assert_eq!(seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    c.close().await.expect("close");
    // A credential minted with another secret is refused.
    let wrong = TurnIssuer::new("other", Duration::from_secs(300), vec![]).ice_server("p-x");
    let c = client_for(coturn.addr, &wrong).await;
    within("bad allocate on coturn", c.allocate())
        .await
        .err()
        .expect("coturn refuses a wrong credential");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_bandwidth_per_allocation_is_capped() {
    // 96 kbit/s = 12 000 bytes/s, with a one-second burst: ten 1200-byte datagrams.
    let server = embedded("allow_peers = [\"127.0.0.1/32\"]\nmax_relay_kbps = 96").await;
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
    let peer_addr = peer.local_addr().expect("peer addr");
    let a = client_for(server.addr(), &server.issuer().ice_server("p-fast")).await;
    let b = client_for(server.addr(), &server.issuer().ice_server("p-marker")).await;
    let relay_a = within("allocate A", a.allocate()).await.expect("A");
    let relay_b = within("allocate B", b.allocate()).await.expect("B");
    let (a_addr, b_addr) = (
        relay_a.local_addr().expect("A relayed"),
        relay_b.local_addr().expect("B relayed"),
    );
    let payload = vec![7u8; 1200];
    let start = std::time::Instant::now();
    for _ in 0..60 {
        within("send A", relay_a.send_to(&payload, peer_addr))
            .await
            .expect("send A");
    }
    // The server reads its socket in one loop, in order: once B's datagram (another
    // allocation, its own budget) reaches the peer, every one of A's has been handled.
    within("send marker", relay_b.send_to(b"marker", peer_addr))
        .await
        .expect("send B");
    let mut from_a = 0u32;
    let mut buf = vec![0u8; 2048];
    loop {
        let (_, from) = within("relayed datagrams", peer.recv_from(&mut buf))
            .await
            .expect("recv");
        if from == b_addr {
            break;
        }
        assert_eq!(from, a_addr);
        from_a += 1;
    }
    let refill = (start.elapsed().as_secs_f64() * 10.0).ceil() as u32;
    assert!(
        (10..=11 + refill).contains(&from_a),
        "{from_a} of 60 datagrams relayed; the cap allows 10 + {refill}"
    );
}
