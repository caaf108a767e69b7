//! Starts Debian coturn's `turnserver` on 127.0.0.1 for tests and the TURN benchmark
//! (`hub/examples/turn_bench.rs` includes this file). The port is picked free by binding
//! port 0 and releasing it; readiness is coturn's "Total General servers" log line followed by
//! an answered STUN Binding request (the client retransmits; nothing sleeps).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where Debian installs it.
pub const TURNSERVER: &str = "/usr/bin/turnserver";

/// A running `turnserver`; killed on drop.
pub struct Coturn {
    pub child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Coturn {
    pub fn pid(&self) -> u32 {
        self.child.id().expect("turnserver is running")
    }
}

/// A UDP port that was free a moment ago.
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Starts `turnserver` with REST API credentials for `secret`, the config file `conf` (if
/// any) and `extra` arguments, listening and relaying on 127.0.0.1.
pub async fn start(secret: &str, conf: Option<&Path>, extra: &[&str]) -> Coturn {
    assert!(
        Path::new(TURNSERVER).exists(),
        "turnserver (Debian package coturn) is missing: `bash scripts/install-deps.sh` installs it"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_udp_port();
    let mut cmd = Command::new(TURNSERVER);
    match conf {
        Some(conf) => cmd.arg("-c").arg(conf),
        None => cmd.arg("-n"),
    };
    cmd.args([
        "--log-file",
        "stdout",
        "--no-tcp",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
    ])
    .args(["-L", "127.0.0.1", "-E", "127.0.0.1", "-r", "doorbell"])
    .arg("-p")
    .arg(port.to_string())
    .arg("--pidfile")
    .arg(dir.path().join("turnserver.pid"))
    .arg("-b")
    .arg(dir.path().join("turndb"))
    .arg("--use-auth-secret")
    .arg(format!("--static-auth-secret={secret}"))
    .args(extra)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn turnserver");
    let stdout = child.stdout.take().expect("stdout");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<()>();
    // Drains the log for the server's whole life (a full pipe would stall coturn).
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        let mut ready = Some(ready_tx);
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("Total General servers") {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), ready_rx)
        .await
        .expect("turnserver did not start within 20 s")
        .expect("turnserver exited before it was ready");
    Coturn {
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        _dir: dir,
    }
}
