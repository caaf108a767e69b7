//! Helpers for the hub's load benchmark, `scripts/bench_hub_load.sh` (which prints the figures).
//!
//! ```text
//! cargo run --release -p doorbell-hub --example load_bench -- seed DB N
//! cargo run --release -p doorbell-hub --example load_bench -- ring HOST:PORT CODE [PROBES]
//! ```
//!
//! `seed` creates the database DB with N doors `d-w0` … whose secrets are `s0` … (the hello
//! `wsload` templates with `{i}`), all in one transaction (the `add-door` command would take a
//! process and a commit per door), plus the door `d-bench` (secret `bench-secret`), and prints
//! a hub-made pairing code for it (valid 10 minutes).
//!
//! `ring` pairs a phone with that code through `POST /api/pair`, connects it and `d-bench`,
//! then times PROBES rings (default 500): the door sends `ring`, the clock stops when the phone
//! reads it; the door cancels, the phone reads `ringing_cancelled`; 50 ms between rings (within the
//! hub's per-connection message rate). It prints min/p50/p90/p99/max in microseconds.

use std::time::{Duration, Instant};

use doorbell_hub::Store;
use doorbell_protocol::{
    CallId, DoorId, DoorToHub, HubToPhone, PhoneToHub, RingEndReason, PROTOCOL_VERSION,
};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const BENCH_DOOR: &str = "d-bench";
const BENCH_SECRET: &str = "bench-secret";
const WARM_UP: usize = 5;
/// Pause between two timed rings: a benchmark's pacing (one ring at a time, like a door), so
/// each ring's latency is measured on a hub that has finished the previous one's fan-out.
const PRESS_INTERVAL: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(10);

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

fn seed(db: &str, n: usize) -> anyhow::Result<()> {
    let store = Store::open(std::path::Path::new(db))?;
    store.ensure_door(&DoorId::new(BENCH_DOOR), "Bench", BENCH_SECRET)?;
    let code = store.create_pairing_code(&DoorId::new(BENCH_DOOR))?;
    drop(store);
    let mut conn = rusqlite::Connection::open(db)?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT OR REPLACE INTO doors (id, name, secret_sha256, created_at) VALUES (?1, ?2, ?3, 0)",
        )?;
        for i in 0..n {
            let digest = ring::digest::digest(&ring::digest::SHA256, format!("s{i}").as_bytes());
            insert.execute(rusqlite::params![
                format!("d-w{i}"),
                format!("Load {i}"),
                hex::encode(digest.as_ref())
            ])?;
        }
    }
    tx.commit()?;
    println!("{code}");
    Ok(())
}

async fn pair(addr: &str, code: &str) -> anyhow::Result<String> {
    let body = serde_json::json!({ "code": code }).to_string();
    let mut stream = TcpStream::connect(addr).await?;
    let request = format!(
        "POST /api/pair HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let json = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| anyhow::anyhow!("no HTTP body in {response}"))?;
    let v: serde_json::Value = serde_json::from_str(json)?;
    v["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("pairing failed: {response}"))
}

async fn connect(addr: &str, hello: String) -> anyhow::Result<Ws> {
    // Without Nagle, as browsers and doors send: a ring right after the last one would
    // otherwise wait for a delayed ACK.
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), None, true).await?;
    ws.send(Message::text(hello)).await?;
    let first = tokio::time::timeout(WAIT, ws.next()).await?;
    match first {
        Some(Ok(Message::Text(t))) if t.contains("\"welcome\"") => Ok(ws),
        other => anyhow::bail!("expected a welcome, got {other:?}"),
    }
}

/// Reads the phone's messages until `pick` accepts one.
async fn phone_reads(phone: &mut Ws, pick: impl Fn(&HubToPhone) -> bool) -> anyhow::Result<()> {
    tokio::time::timeout(WAIT, async {
        while let Some(frame) = phone.next().await {
            if let Message::Text(text) = frame? {
                if serde_json::from_str::<HubToPhone>(&text).is_ok_and(|m| pick(&m)) {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("the phone's connection ended")
    })
    .await?
}

async fn ring(addr: &str, code: &str, probes: usize) -> anyhow::Result<()> {
    let token = pair(addr, code).await?;
    let hello = serde_json::to_string(&PhoneToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        token,
    })?;
    let mut phone = connect(addr, hello).await?;
    let hello = serde_json::to_string(&DoorToHub::Hello {
        protocol_version: PROTOCOL_VERSION,
        door_id: DoorId::new(BENCH_DOOR),
        secret: BENCH_SECRET.into(),
        software: "load_bench".into(),
    })?;
    let mut door = connect(addr, hello).await?;
    let mut times = Vec::with_capacity(probes);
    for i in 0..probes + WARM_UP {
        let call_id = CallId::new(format!("c-{i}"));
        let started = Instant::now();
        let ring = DoorToHub::Ring {
            call_id: call_id.clone(),
        };
        door.send(Message::text(serde_json::to_string(&ring)?))
            .await?;
        phone_reads(
            &mut phone,
            |m| matches!(m, HubToPhone::Ring { call_id: c, .. } if *c == call_id),
        )
        .await?;
        if i >= WARM_UP {
            times.push(started.elapsed());
        }
        let cancel = DoorToHub::CancelRing {
            call_id: call_id.clone(),
            reason: RingEndReason::Cancelled,
        };
        door.send(Message::text(serde_json::to_string(&cancel)?))
            .await?;
        phone_reads(
            &mut phone,
            |m| matches!(m, HubToPhone::RingingCancelled { call_id: c, .. } if *c == call_id),
        )
        .await?;
        tokio::time::sleep(PRESS_INTERVAL).await;
    }
    times.sort();
    let q = |p: f64| {
        times[((p * (times.len() - 1) as f64).round() as usize).min(times.len() - 1)].as_micros()
    };
    println!(
        "ring latency   n={} min={} p50={} p90={} p99={} max={} us",
        times.len(),
        q(0.0),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0)
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seed", db, n] => seed(db, n.parse()?),
        ["ring", addr, code] => ring(addr, code, 500).await,
        ["ring", addr, code, probes] => ring(addr, code, probes.parse()?).await,
        _ => anyhow::bail!("usage: load_bench seed DB N | load_bench ring HOST:PORT CODE [PROBES]"),
    }
}
