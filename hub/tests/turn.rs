//! The embedded TURN server: coturn-compatible credentials, the peer policy, quotas and the
//! bad-credential rate limit, over real UDP sockets on 127.0.0.1 (port 0), with both the
//! webrtc-rs `turn` client and Debian coturn's `turnutils_uclient` as clients.
//!
//! Run: `cargo test -p doorbell-hub --test turn`. The coturn tests need `turnutils_uclient`
//! (`bash scripts/install-deps.sh` installs coturn). Under qemu (`DOORBELL_TEST_RUNNER` set,
//! `scripts/test-aarch64.sh`) the coturn tests are skipped: they exercise the same Rust code as
//! on x86, and the x86 host's coturn tools would only add emulation time.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorbell_hub::testing::{
    denied_class, parse_port_range, password, Cidr, CredentialError, DeniedClass, PeerPolicy,
    TurnVerifier,
};
use doorbell_hub::{EmbeddedTurn, ResolvedTurn, TurnConfig, TurnDefaults, TurnIssuer, TurnMode};
use tempfile::TempDir;
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};
use webrtc_util::Conn;

/// Every network wait in these tests ends by this deadline with a message.
const WAIT: Duration = Duration::from_secs(20);

const SECRET: &str = "test-secret-0123456789abcdef";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

// ---------------------------------------------------------------------------------------------
// Credentials

#[test]
fn minted_credentials_verify_and_match_coturn_formula() {
    let issuer = TurnIssuer::new(SECRET, Duration::from_secs(300), vec!["turn:x:1".into()]);
    let (user, pass) = issuer.mint_at("p-7c1b", at(1_767_225_300));
    assert_eq!(user, "1767225600:p-7c1b");
    // The fixture value, computed independently (Python hmac / node crypto).
    assert_eq!(
        password(b"doorbell-example-secret", "1767225600:p-7c1b"),
        "sk/11w/xYJNKUPwlCUMAQ6eJdyg="
    );
    let verifier = TurnVerifier::new(SECRET, Duration::from_secs(3600));
    assert_eq!(verifier.check(&user, &pass, at(1_767_225_300)), Ok(()));
    assert_eq!(verifier.check(&user, &pass, at(1_767_225_599)), Ok(()));
}

#[test]
fn expired_far_future_bad_hmac_and_malformed_are_refused() {
    let verifier = TurnVerifier::new(SECRET, Duration::from_secs(3600));
    let now = at(1_767_225_300);
    let ok = |u: &str| password(SECRET.as_bytes(), u);
    // Expired (and exactly at expiry).
    for u in ["1767225299:d-1", "1767225300:d-1", "1:d-1"] {
        assert_eq!(
            verifier.check(u, &ok(u), now),
            Err(CredentialError::Expired),
            "{u}"
        );
    }
    // Further ahead than max_ttl.
    for u in [
        "1767228901:d-1",
        "99999999999:d-1",
        "18446744073709551615:d-1",
    ] {
        assert_eq!(
            verifier.check(u, &ok(u), now),
            Err(CredentialError::TooFarAhead),
            "{u}"
        );
    }
    // Right shape and time, wrong HMAC (other secret, other username, truncated).
    let u = "1767225600:d-1";
    assert_eq!(
        verifier.check(u, &password(b"other", u), now),
        Err(CredentialError::WrongPassword)
    );
    assert_eq!(
        verifier.check(u, &ok("1767225600:d-2"), now),
        Err(CredentialError::WrongPassword)
    );
    assert_eq!(
        verifier.check(u, &ok(u)[..10], now),
        Err(CredentialError::WrongPassword)
    );
    // Malformed: the crate's stock handler's integer-only form, empty parts, signs, spaces,
    // overlong expiry or id, non-ASCII.
    let long_id = format!("1767225600:{}", "x".repeat(65));
    for u in [
        "1767225600",
        "d-1",
        ":d-1",
        "1767225600:",
        "+1767225600:d-1",
        "-1:d-1",
        " 1767225600:d-1",
        "1767225600:d 1",
        "1767225600:dé",
        "123456789012345678901:d-1",
        long_id.as_str(),
    ] {
        assert_eq!(
            verifier.check(u, &ok(u), now),
            Err(CredentialError::Malformed),
            "{u:?}"
        );
    }
    // A colon inside the id is part of the id (coturn splits at the first separator too).
    let u = "1767225600:call:d-1";
    assert_eq!(verifier.check(u, &ok(u), now), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Peer policy

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Every denied class, with IPv4-mapped IPv6 forms of the IPv4 ones.
const DENIED: &[(&str, DeniedClass)] = &[
    ("64:ff9b::a00:1", DeniedClass::Private),
    ("64:ff9b::7f00:1", DeniedClass::Loopback),
    ("192.88.99.1", DeniedClass::Reserved),
    ("100::1", DeniedClass::Reserved),
    ("2001:2::1", DeniedClass::Reserved),
    ("0.0.0.0", DeniedClass::Unspecified),
    ("0.1.2.3", DeniedClass::Unspecified),
    ("::", DeniedClass::Unspecified),
    ("::ffff:0.0.0.0", DeniedClass::Unspecified),
    ("127.0.0.1", DeniedClass::Loopback),
    ("127.255.0.9", DeniedClass::Loopback),
    ("::1", DeniedClass::Loopback),
    ("::ffff:127.0.0.1", DeniedClass::Loopback),
    ("10.0.0.1", DeniedClass::Private),
    ("172.16.0.1", DeniedClass::Private),
    ("172.31.255.254", DeniedClass::Private),
    ("192.168.1.1", DeniedClass::Private),
    ("::ffff:10.0.0.1", DeniedClass::Private),
    ("::ffff:192.168.0.1", DeniedClass::Private),
    ("fc00::1", DeniedClass::Private),
    ("fd12:3456::1", DeniedClass::Private),
    ("100.64.0.1", DeniedClass::SharedCgnat),
    ("100.127.255.254", DeniedClass::SharedCgnat),
    ("::ffff:100.64.0.1", DeniedClass::SharedCgnat),
    ("169.254.169.254", DeniedClass::LinkLocal),
    ("::ffff:169.254.169.254", DeniedClass::LinkLocal),
    ("fe80::1", DeniedClass::LinkLocal),
    ("febf::1", DeniedClass::LinkLocal),
    ("224.0.0.1", DeniedClass::Multicast),
    ("239.255.255.250", DeniedClass::Multicast),
    ("::ffff:224.0.0.251", DeniedClass::Multicast),
    ("ff02::1", DeniedClass::Multicast),
    ("255.255.255.255", DeniedClass::Broadcast),
    ("192.0.2.1", DeniedClass::Reserved),
    ("198.18.0.1", DeniedClass::Reserved),
    ("240.0.0.1", DeniedClass::Reserved),
    ("2001:db8::1", DeniedClass::Reserved),
    ("64:ff9b:1::a00:1", DeniedClass::Reserved),
    ("2002:a00:1::", DeniedClass::Reserved),
    ("::10.0.0.1", DeniedClass::Reserved),
];

#[test]
fn every_private_class_is_denied_including_mapped_forms() {
    let policy = PeerPolicy::default();
    for (addr, class) in DENIED {
        assert_eq!(denied_class(ip(addr)), Some(*class), "{addr}");
        assert!(!policy.permits(ip(addr)), "{addr} must be denied");
    }
    for public in [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "::ffff:8.8.8.8",
        "2606:4700:4700::1111",
        "64:ff9b::808:808",
    ] {
        assert_eq!(denied_class(ip(public)), None, "{public}");
        assert!(policy.permits(ip(public)), "{public} must be allowed");
    }
}

#[test]
fn allow_list_exempts_exactly_its_blocks_in_every_form() {
    let allow: Vec<Cidr> = ["127.0.0.1/32", "10.1.0.0/16", "fd00::/64"]
        .iter()
        .map(|s| s.parse().expect("cidr"))
        .collect();
    let policy = PeerPolicy::new(allow);
    for yes in ["127.0.0.1", "::ffff:127.0.0.1", "10.1.2.3", "fd00::5"] {
        assert!(policy.permits(ip(yes)), "{yes}");
    }
    for no in [
        "127.0.0.2",
        "10.2.0.1",
        "::ffff:10.2.0.1",
        "fd00:0:0:1::5",
        "::1",
    ] {
        assert!(!policy.permits(ip(no)), "{no}");
    }
    for bad in ["10.0.0.0/33", "fd00::/129", "nope", "10.0.0.1/", "/8"] {
        assert!(bad.parse::<Cidr>().is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration

fn parse(toml_text: &str) -> TurnConfig {
    #[derive(serde::Deserialize)]
    struct File {
        turn: TurnConfig,
    }
    toml::from_str::<File>(toml_text).expect("valid toml").turn
}

fn defaults(dir: &Path) -> TurnDefaults {
    TurnDefaults {
        mode: TurnMode::Off,
        listen: "0.0.0.0:3478".parse().expect("addr"),
        relay_address: None,
        secret_file: dir.join("turn-secret"),
    }
}

#[test]
fn config_errors_name_the_key_and_defaults_fill_in() {
    let dir = TempDir::new().expect("tempdir");
    let d = defaults(dir.path());
    let err = |t: &str| parse(t).resolve(&d).expect_err(t).key;
    assert_eq!(err("[turn]\nmode = \"embedded\""), "turn.relay_address");
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nrelay_address = \"203.0.113.7\"\nrelay_ports = \"9-1\""),
        "turn.relay_ports"
    );
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\nallow_peers = [\"10.0.0.0/99\"]"),
        "turn.allow_peers"
    );
    assert_eq!(err("[turn]\nmode = \"external\""), "turn.urls");
    assert_eq!(
        err("[turn]\nmode = \"external\"\nurls = [\"turn:t.example:3478\"]"),
        "turn.secret_file"
    );
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\ncredential_ttl_secs = 7200"),
        "turn.credential_ttl_secs"
    );
    assert_eq!(
        err("[turn]\nmode = \"external\"\nurls = [\"http://x\"]"),
        "turn.urls"
    );
    // Embedded with only a STUN URL would mint credentials nobody can use.
    assert_eq!(
        err("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\nurls = [\"stun:127.0.0.1:3478\"]"),
        "turn.urls"
    );
    assert!(
        toml::from_str::<toml::Table>("[turn]\nmdoe = \"embedded\"")
            .ok()
            .and_then(|t| t["turn"].clone().try_into::<TurnConfig>().err())
            .is_some(),
        "unknown keys are errors"
    );
    assert_eq!(parse("[turn]").resolve(&d).expect("off"), ResolvedTurn::Off);
    match parse("[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"")
        .resolve(&d)
        .expect("ok")
    {
        ResolvedTurn::Embedded(s) => {
            assert_eq!(s.relay_address, ip("127.0.0.1"));
            assert_eq!(s.relay_ports, (49152, 65535));
            assert_eq!(s.mint.credential_ttl_secs, 900);
            assert_eq!(s.max_ttl_secs, 3600);
            assert_eq!(s.max_allocations_per_credential, 8);
            assert_eq!(s.mint.secret_file, dir.path().join("turn-secret"));
        }
        other => panic!("expected embedded, got {other:?}"),
    }
    assert_eq!(parse_port_range("49152-49407"), Some((49152, 49407)));
    assert_eq!(parse_port_range("0-10"), None);
}

// ---------------------------------------------------------------------------------------------
// The embedded server over UDP

struct Embedded {
    _dir: TempDir,
    turn: doorbell_hub::Turn,
    secret: String,
}

impl Embedded {
    fn addr(&self) -> SocketAddr {
        self.server().local_addr()
    }
    fn server(&self) -> &EmbeddedTurn {
        self.turn.embedded.as_ref().expect("embedded server")
    }
    fn issuer(&self) -> &TurnIssuer {
        self.turn.issuer.as_ref().expect("issuer")
    }
}

/// An embedded server on 127.0.0.1 (port 0) configured by `extra` TOML lines.
async fn embedded(extra: &str) -> Embedded {
    let dir = TempDir::new().expect("tempdir");
    let text = format!(
        "[turn]\nmode = \"embedded\"\nlisten = \"127.0.0.1:0\"\nrelay_ports = \"40000-60999\"\n{extra}\n"
    );
    let resolved = parse(&text).resolve(&defaults(dir.path())).expect("config");
    let turn = doorbell_hub::start_turn(&resolved)
        .await
        .expect("TURN starts");
    let secret_path = dir.path().join("turn-secret");
    let secret = std::fs::read_to_string(&secret_path).expect("secret generated");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&secret_path)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the generated secret is private");
    Embedded {
        _dir: dir,
        turn,
        secret: secret.trim().to_owned(),
    }
}

async fn client(server: SocketAddr, username: &str, password: &str) -> Client {
    let conn = UdpSocket::bind("127.0.0.1:0").await.expect("bind client");
    let c = Client::new(ClientConfig {
        stun_serv_addr: server.to_string(),
        turn_serv_addr: server.to_string(),
        username: username.to_owned(),
        password: password.to_owned(),
        realm: "doorbell".to_owned(),
        software: String::new(),
        rto_in_ms: 0,
        conn: Arc::new(conn),
        vnet: None,
    })
    .await
    .expect("client");
    c.listen().await.expect("client listens");
    c
}

/// A client authenticating with the credentials in `ice` (as minted by the hub).
async fn client_for(server: SocketAddr, ice: &doorbell_protocol::IceServer) -> Client {
    client(
        server,
        ice.username.as_deref().expect("username"),
        ice.credential.as_deref().expect("credential"),
    )
    .await
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

/// A UDP echo peer on 127.0.0.1; returns its address and a counter of datagrams seen.
async fn echo_peer() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind peer");
    let addr = sock.local_addr().expect("addr");
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = sock.send_to(&buf[..n], from).await;
        }
    });
    (addr, seen)
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allocations_per_credential_are_capped() {
    let server = embedded("max_allocations_per_credential = 2").await;
    let ice = server.issuer().ice_server("p-quota");
    let (u, p) = (
        ice.username.clone().expect("u"),
        ice.credential.clone().expect("p"),
    );
    let mut kept = Vec::new();
    for _ in 0..2 {
        let c = client(server.addr(), &u, &p).await;
        let relay = within("allocate", c.allocate())
            .await
            .expect("within quota");
        kept.push((c, relay));
    }
    let c = client(server.addr(), &u, &p).await;
    let err = within("over quota", c.allocate())
        .await
        .err()
        .expect("third allocation refused")
        .to_string();
    assert!(err.contains("486"), "expected 486, got {err}");
    // Another credential (another side of the call) is unaffected.
    let other = server.issuer().ice_server("d-quota");
    let c2 = client_for(server.addr(), &other).await;
    within("other credential", c2.allocate())
        .await
        .expect("another credential allocates");
}

// ---------------------------------------------------------------------------------------------
// coturn's reference client against the embedded server

/// `turnutils_uclient`, or a failure telling how to install it; `None` under qemu (see the
/// module docs).
fn uclient() -> Option<&'static str> {
    if std::env::var_os("DOORBELL_TEST_RUNNER").is_some() {
        eprintln!("skipped under DOORBELL_TEST_RUNNER: coturn tools run on the x86 host only");
        return None;
    }
    let path = "/usr/bin/turnutils_uclient";
    assert!(
        Path::new(path).exists(),
        "turnutils_uclient (Debian package coturn) is missing: `bash scripts/install-deps.sh` installs it"
    );
    Some(path)
}

async fn run_uclient(args: &[String]) -> (bool, String) {
    let bin = match uclient() {
        Some(b) => b,
        None => return (true, String::new()),
    };
    let child = tokio::process::Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn turnutils_uclient");
    let out = within("turnutils_uclient", child.wait_with_output())
        .await
        .expect("uclient output");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("turnutils_uclient {}:\n{text}", args.join(" "));
    (out.status.success(), text)
}

fn uclient_args(server: &Embedded, secret: &str, peer: SocketAddr, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-W".into(),
        secret.into(),
        "-u".into(),
        "d-uclient".into(),
        "-p".into(),
        server.addr().port().to_string(),
        "-e".into(),
        peer.ip().to_string(),
        "-r".into(),
        peer.port().to_string(),
        "-c".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("127.0.0.1".into());
    args
}

/// uclient's REST usernames expire a day ahead; the server is configured to accept that.
const UCLIENT_MAX_TTL: &str = "max_ttl_secs = 172800";

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
