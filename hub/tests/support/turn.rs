//! Shared by `turn.rs` (rules) and `turn_relay.rs` (the server over UDP): the test secret,
//! the denied address classes, config parsing and an embedded server with its clients.

#![allow(dead_code)] // each test crate uses a part

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorbell_hub::testing::DeniedClass;
use doorbell_hub::{EmbeddedTurn, TurnConfig, TurnDefaults, TurnIssuer, TurnMode};
use tempfile::TempDir;
use tokio::net::UdpSocket;
use turn::client::{Client, ClientConfig};

/// Every network wait in these tests ends by this deadline with a message.
pub const WAIT: Duration = Duration::from_secs(20);

pub const SECRET: &str = "test-secret-0123456789abcdef";

pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// Every denied class, with IPv4-mapped IPv6 forms of the IPv4 ones.
pub const DENIED: &[(&str, DeniedClass)] = &[
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

pub fn parse(toml_text: &str) -> TurnConfig {
    #[derive(serde::Deserialize)]
    struct File {
        turn: TurnConfig,
    }
    toml::from_str::<File>(toml_text).expect("valid toml").turn
}

pub fn defaults(dir: &Path) -> TurnDefaults {
    TurnDefaults {
        mode: TurnMode::Off,
        listen: "0.0.0.0:3478".parse().expect("addr"),
        relay_address: None,
        secret_file: dir.join("turn-secret"),
    }
}

pub struct Embedded {
    _dir: TempDir,
    pub turn: doorbell_hub::Turn,
    pub secret: String,
}

impl Embedded {
    pub fn addr(&self) -> SocketAddr {
        self.server().local_addr()
    }
    pub fn server(&self) -> &EmbeddedTurn {
        self.turn.embedded.as_ref().expect("embedded server")
    }
    pub fn issuer(&self) -> &TurnIssuer {
        self.turn.issuer.as_ref().expect("issuer")
    }
}

/// An embedded server on 127.0.0.1 (port 0) configured by `extra` TOML lines.
pub async fn embedded(extra: &str) -> Embedded {
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

pub async fn client(server: SocketAddr, username: &str, password: &str) -> Client {
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
pub async fn client_for(server: SocketAddr, ice: &doorbell_protocol::IceServer) -> Client {
    client(
        server,
        ice.username.as_deref().expect("username"),
        ice.credential.as_deref().expect("credential"),
    )
    .await
}

pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?}: {what}"))
}

/// A UDP echo peer on 127.0.0.1; returns its address and a counter of datagrams seen.
pub async fn echo_peer() -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
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

// ---------------------------------------------------------------------------------------------
// coturn's reference client

/// `turnutils_uclient`, or a failure telling how to install it; `None` under qemu (see the
/// module docs).
pub fn uclient() -> Option<&'static str> {
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

pub async fn run_uclient(args: &[String]) -> (bool, String) {
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

pub fn uclient_args(
    server: &Embedded,
    secret: &str,
    peer: SocketAddr,
    extra: &[&str],
) -> Vec<String> {
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
pub const UCLIENT_MAX_TTL: &str = "max_ttl_secs = 172800";
