//! TURN relay benchmark: relayed packets per second per core, embedded server vs coturn.
//!
//! ```text
//! cargo run --release -p doorbell-hub --example turn_bench [-- --secs 5 --rate 20000 --clients 4 --len 1200]
//! ```
//!
//! In one run it starts (1) the embedded server in a child process (this example re-executed
//! with `--embedded-server`) and (2) coturn's `turnserver` with equivalent settings (UDP only,
//! REST API secret, loopback peers allowed, `--relay-threads 1`), both on 127.0.0.1. The same
//! load generator drives each: `--clients` allocations, each with a channel bound to one UDP
//! sink on 127.0.0.1, sending `--len`-byte ChannelData messages at `--rate` packets/s in total
//! for `--secs` seconds. The sink counts the datagrams the server relayed. CPU time of each
//! server process (user + system, from /proc/PID/stat) gives packets per CPU-second, i.e. per
//! core. Both servers run as separate processes so neither measurement includes the client.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use stun::attributes::ATTR_XOR_RELAYED_ADDRESS;
use stun::error_code::ErrorCodeAttribute;
use stun::integrity::MessageIntegrity;
use stun::message::{
    Getter, Message, MessageType, Setter, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_ALLOCATE,
    METHOD_CHANNEL_BIND,
};
use stun::textattrs::{Nonce, Realm, Username};
use turn::proto::channum::ChannelNumber;
use turn::proto::peeraddr::PeerAddress;
use turn::proto::reqtrans::RequestedTransport;
use turn::proto::PROTO_UDP;

// The tests' coturn launcher (free port, readiness from its log, log drained, killed on drop).
#[path = "../tests/common/coturn.rs"]
mod coturn;

const SECRET: &str = "turn-bench-secret";
const REALM: &str = "doorbell";
const CHANNEL: u16 = 0x4000;

#[derive(Debug, Clone, Copy)]
struct Load {
    secs: u64,
    rate: u64,
    clients: usize,
    len: usize,
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--embedded-server") {
        embedded_server();
        return;
    }
    let load = Load {
        secs: arg(&args, "--secs", 5),
        rate: arg(&args, "--rate", 20_000),
        clients: arg(&args, "--clients", 4) as usize,
        len: arg(&args, "--len", 1200) as usize,
    };
    println!(
        "TURN relay benchmark: {} clients, {}-byte packets, {} packets/s offered for {} s, loopback",
        load.clients, load.len, load.rate, load.secs
    );
    let embedded = EmbeddedChild::start();
    let e = measure(
        "embedded (webrtc-rs turn 0.17)",
        embedded.addr,
        embedded.pid(),
        load,
    );
    drop(embedded);
    // Equivalent settings: UDP only, REST API secret, loopback peers allowed, one relay thread.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let coturn = rt.block_on(coturn::start(
        SECRET,
        None,
        &["--allow-loopback-peers", "--no-multicast-peers", "-m", "1"],
    ));
    let c = measure(
        "coturn 4.6 (--relay-threads 1)",
        coturn.addr,
        coturn.pid(),
        load,
    );
    rt.block_on(async move { drop(coturn) });
    println!();
    println!(
        "{:<34} {:>10} {:>10} {:>9} {:>14}",
        "server", "relayed", "lost", "CPU s", "pkts/s/core"
    );
    for r in [&e, &c] {
        println!(
            "{:<34} {:>10} {:>9.2}% {:>9.3} {:>14.0}",
            r.name,
            r.relayed,
            100.0 * (r.sent - r.relayed.min(r.sent)) as f64 / r.sent.max(1) as f64,
            r.cpu_secs,
            r.per_core()
        );
    }
    println!(
        "embedded / coturn (packets per core): {:.2}x",
        e.per_core() / c.per_core().max(1.0)
    );
}

struct Result {
    name: &'static str,
    sent: u64,
    relayed: u64,
    cpu_secs: f64,
}

impl Result {
    fn per_core(&self) -> f64 {
        self.relayed as f64 / self.cpu_secs.max(1e-6)
    }
}

/// CPU seconds (user + system, all threads) of `pid`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    ticks as f64 / clock_ticks()
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .expect("getconf");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}

fn measure(name: &'static str, server: SocketAddr, pid: u32, load: Load) -> Result {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind sink");
    let sink_addr = sink.local_addr().expect("sink addr");
    let clients: Vec<UdpSocket> = (0..load.clients)
        .map(|i| setup_client(server, sink_addr, i))
        .collect();
    // Counts relayed datagrams until the sender is done and the socket has been quiet 300 ms.
    let relayed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let counter = {
        let relayed = relayed.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            sink.set_read_timeout(Some(Duration::from_millis(300)))
                .expect("timeout");
            let mut buf = vec![0u8; 2048];
            loop {
                match sink.recv_from(&mut buf) {
                    Ok(_) => {
                        relayed.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) if done.load(Ordering::Acquire) => break,
                    Err(_) => {}
                }
            }
        })
    };
    let mut packet = vec![0u8; 4 + load.len];
    packet[..2].copy_from_slice(&CHANNEL.to_be_bytes());
    packet[2..4].copy_from_slice(&(load.len as u16).to_be_bytes());
    let cpu0 = cpu_secs(pid);
    let start = Instant::now();
    let total = load.rate * load.secs;
    let mut sent = 0u64;
    // Paced: wake every 0.5 ms and send what is due by then, so the offered rate is steady
    // (a load generator sleeps between slices by design; it waits on nothing).
    while sent < total {
        let due = (start.elapsed().as_secs_f64() * load.rate as f64) as u64;
        while sent < due.min(total) {
            let c = &clients[(sent as usize) % clients.len()];
            let _ = c.send(&packet);
            sent += 1;
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    done.store(true, Ordering::Release);
    counter.join().expect("sink thread");
    let cpu_secs = cpu_secs(pid) - cpu0;
    let r = Result {
        name,
        sent,
        relayed: relayed.load(Ordering::Relaxed),
        cpu_secs,
    };
    println!(
        "{name}: sent {} relayed {} in {:.2} s wall, server CPU {:.3} s",
        r.sent,
        r.relayed,
        start.elapsed().as_secs_f64(),
        r.cpu_secs
    );
    r
}

/// One allocation with a channel to `peer`, over a connected UDP socket.
fn setup_client(server: SocketAddr, peer: SocketAddr, i: usize) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind client");
    sock.connect(server).expect("connect");
    sock.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 600;
    let username = format!("{expiry}:bench-{i}");
    let password = doorbell_hub::testing::password(SECRET.as_bytes(), &username);
    let integrity =
        MessageIntegrity::new_long_term_integrity(username.clone(), REALM.into(), password);
    // 1. Unauthenticated Allocate -> 401 with a nonce.
    let reply = transact(
        &sock,
        vec![
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
        ],
    );
    let mut nonce = Nonce::new(stun::attributes::ATTR_NONCE, String::new());
    nonce.get_from(&reply).expect("401 carries a nonce");
    let auth = |m: Vec<Box<dyn Setter>>| -> Vec<Box<dyn Setter>> {
        let mut m = m;
        m.push(Box::new(Username::new(
            stun::attributes::ATTR_USERNAME,
            username.clone(),
        )));
        m.push(Box::new(Realm::new(
            stun::attributes::ATTR_REALM,
            REALM.into(),
        )));
        m.push(Box::new(nonce.clone()));
        m.push(Box::new(integrity.clone()));
        m
    };
    // 2. Allocate with credentials.
    let reply = transact(
        &sock,
        auth(vec![
            Box::new(MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)),
            Box::new(RequestedTransport {
                protocol: PROTO_UDP,
            }),
        ]),
    );
    expect_success(&reply, "Allocate");
    assert!(reply.contains(ATTR_XOR_RELAYED_ADDRESS));
    // 3. ChannelBind to the sink.
    let reply = transact(
        &sock,
        auth(vec![
            Box::new(MessageType::new(METHOD_CHANNEL_BIND, CLASS_REQUEST)),
            Box::new(ChannelNumber(CHANNEL)),
            Box::new(PeerAddress {
                ip: peer.ip(),
                port: peer.port(),
            }),
        ]),
    );
    expect_success(&reply, "ChannelBind");
    sock
}

fn expect_success(m: &Message, what: &str) {
    if m.typ.class != CLASS_SUCCESS_RESPONSE {
        let mut code = ErrorCodeAttribute::default();
        let _ = code.get_from(m);
        panic!("{what} failed: {code}");
    }
}

/// Sends a request and waits for its response, retransmitting (RFC 5389 style) a few times.
fn transact(sock: &UdpSocket, setters: Vec<Box<dyn Setter>>) -> Message {
    let mut all: Vec<Box<dyn Setter>> = vec![Box::new(stun::agent::TransactionId::new())];
    all.extend(setters);
    let mut m = Message::new();
    m.build(&all).expect("build request");
    let mut buf = vec![0u8; 2048];
    for _ in 0..5 {
        sock.send(&m.raw).expect("send request");
        while let Ok(n) = sock.recv(&mut buf) {
            let mut r = Message {
                raw: buf[..n].to_vec(),
                ..Default::default()
            };
            if r.decode().is_ok() && r.transaction_id == m.transaction_id {
                return r;
            }
        }
    }
    panic!("no response from the TURN server");
}

/// The embedded server in a child process (this example with `--embedded-server`).
struct EmbeddedChild {
    child: Child,
    addr: SocketAddr,
}

impl EmbeddedChild {
    fn start() -> Self {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .arg("--embedded-server")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the embedded server");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the embedded server's address");
        let addr = line
            .trim()
            .strip_prefix("LISTENING ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the embedded server: {line:?}"));
        EmbeddedChild { child, addr }
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for EmbeddedChild {
    fn drop(&mut self) {
        // Closing stdin tells it to exit.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Child process: run the embedded server until stdin closes. Like the coturn run, it has no
/// bandwidth cap that the load would reach (`max_relay_kbps` at its maximum).
fn embedded_server() {
    let rt = match std::env::var("TURN_BENCH_RUNTIME").as_deref() {
        Ok("current") => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime"),
        _ => tokio::runtime::Runtime::new().expect("runtime"),
    };
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret_file = dir.path().join("turn-secret");
        std::fs::write(&secret_file, SECRET).expect("secret");
        let config: doorbell_hub::TurnConfig = toml::from_str(&format!(
            "mode = \"embedded\"\nlisten = \"127.0.0.1:0\"\nallow_peers = [\"127.0.0.1/32\"]\nmax_allocations_per_credential = 8\nmax_relay_kbps = 1000000\nsecret_file = {:?}\n",
            secret_file.display().to_string()
        ))
        .expect("config");
        let resolved = config
            .resolve(&doorbell_hub::TurnDefaults::standalone(&dir.path().join("db")))
            .expect("resolve");
        let turn = doorbell_hub::start_turn(&resolved).await.expect("start");
        let addr = turn.embedded.as_ref().expect("embedded").local_addr();
        println!("LISTENING {addr}");
        std::io::stdout().flush().expect("flush");
        // Wait for stdin EOF on a blocking thread.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            while std::io::stdin().read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {}
        })
        .await;
        if let Some(e) = turn.embedded {
            e.close().await;
        }
    });
}
