//! 200 doors reconnecting after a hub restart: do they spread out or stampede?
//!
//! ```text
//! cargo run --release --example reconnect_storm [-- DOORS [GAP_MS]]
//! ```
//!
//! A real hub (the `doorbell-hub` library, plain WebSocket on 127.0.0.1:0, a fresh SQLite
//! database with DOORS registered doors) and DOORS real door links (`doorbelld::link`, the
//! real full-jitter backoff, one task each, all in this process). Once every door is online,
//! and has been for longer than its backoff's `stable_after` (shortened to 1 s here; in the
//! field doors have been up for hours), the hub shuts down, stays down for GAP_MS (a process
//! restart; default 2000), and comes back on the same port and database. Printed: when each
//! door is back (its `welcome`, measured from the moment the new hub listens): first, p50,
//! p95, last, and the largest number of doors welcomed within any 100 ms window, next to what
//! a backoff without jitter would do.
//!
//! A benchmark, not a test: the figures depend on the random draws and the machine.

use std::time::Duration;

use doorbell_hub::{Hub, HubConfig, Store, TlsMode};
use doorbelld::link::{self, Backoff, LinkConfig, LinkEvent};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The window for "how many hellos at once": about what a small hub handles without queueing
/// (each hello is a SHA-256 check and a SQLite read).
const WINDOW: Duration = Duration::from_millis(100);

/// One door's link events, tagged with the door's index and when they arrived.
struct Seen {
    door: usize,
    at: Instant,
    up: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let doors: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(200);
    let gap = Duration::from_millis(args.next().map(|a| a.parse()).transpose()?.unwrap_or(2000));

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("hub.sqlite3");
    let store = Store::open(&db)?;
    let credentials = (0..doors)
        .map(|i| store.add_door(&format!("Door {i}")))
        .collect::<Result<Vec<_>, _>>()?;
    drop(store);

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let hub = start_hub(&db, listener)?;

    let mut backoff = Backoff::default();
    backoff.stable_after = Duration::from_secs(1);
    let (seen_tx, mut seen) = mpsc::channel::<Seen>(doors * 4);
    let shutdown = CancellationToken::new();
    let mut links = Vec::new();
    for (door, (door_id, secret)) in credentials.into_iter().enumerate() {
        let (events_tx, mut events) = mpsc::channel(16);
        let config = LinkConfig {
            url: format!("ws://{addr}/ws"),
            door_id: door_id.to_string(),
            secret,
            software: "reconnect_storm".into(),
            ca_file: None,
            keepalive: link::DEFAULT_KEEPALIVE,
            backoff: backoff.clone(),
        };
        let (handle, task) = link::spawn(config, events_tx, shutdown.child_token());
        let seen_tx = seen_tx.clone();
        links.push((handle, task));
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let up = match event {
                    LinkEvent::Up { .. } => true,
                    LinkEvent::Down { .. } | LinkEvent::Refused { .. } => false,
                    LinkEvent::Message(_) => continue,
                };
                let at = Instant::now();
                if seen_tx.send(Seen { door, at, up }).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(seen_tx);

    // Everyone online, and for longer than `stable_after`, so the backoff is reset as it
    // would be after hours online.
    let first_up = wait_up(&mut seen, doors, Duration::from_secs(60)).await?;
    println!(
        "{doors} doors online {:.2} s after start",
        first_up.last().map_or(0.0, |d| d.as_secs_f64())
    );
    tokio::time::sleep(backoff.stable_after + Duration::from_millis(500)).await;

    // Restart: stop, stay down for `gap`, listen again on the same address and database.
    hub.stop().await?;
    let down = Instant::now();
    tokio::time::sleep(gap).await;
    let listener = TcpListener::bind(addr).await?;
    let restarted = Instant::now();
    let hub2 = start_hub(&db, listener)?;
    println!(
        "hub stopped, down for {:.2} s, listening again on {addr}",
        (restarted - down).as_secs_f64()
    );

    // Drain the Down events from the stop, then time each door's next Up from the restart.
    let mut back: Vec<Option<Duration>> = vec![None; doors];
    let deadline = restarted + Duration::from_secs(120);
    while back.iter().any(Option::is_none) {
        let Ok(Some(event)) = tokio::time::timeout_at(deadline, seen.recv()).await else {
            anyhow::bail!(
                "only {} of {doors} doors came back within 120 s",
                back.iter().flatten().count()
            );
        };
        if event.up && event.at >= restarted && back[event.door].is_none() {
            back[event.door] = Some(event.at - restarted);
        }
    }
    let mut times: Vec<Duration> = back.into_iter().flatten().collect();
    times.sort();

    println!();
    println!("full-jitter backoff (measured, {doors} real links):");
    report(&times);
    println!();
    println!("backoff without jitter (computed from the same schedule):");
    let fixed = no_jitter_return(&backoff, gap);
    println!(
        "  every door retries at the same instants; all {doors} come back at {:.2} s: {doors} in one {} ms window",
        fixed.as_secs_f64(),
        WINDOW.as_millis()
    );

    shutdown.cancel();
    for (_, task) in links {
        let _ = task.await;
    }
    hub2.stop().await?;
    Ok(())
}

struct RunningHub {
    stop: oneshot::Sender<()>,
    finished: tokio::task::JoinHandle<()>,
}

impl RunningHub {
    /// Graceful stop (every door gets a close frame), then wait until the hub is gone.
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.finished.await?;
        Ok(())
    }
}

fn start_hub(db: &std::path::Path, listener: TcpListener) -> anyhow::Result<RunningHub> {
    let hub = Hub::open(HubConfig {
        db_path: db.to_owned(),
        public_url: None,
        ice_servers: Vec::new(),
        turn: None,
        tls: TlsMode::Plain,
        history: Default::default(),
        push: Default::default(),
        notify: Default::default(),
        limits: Default::default(),
    })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let finished = tokio::spawn(async move {
        let served = hub
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            eprintln!("hub: {e}");
        }
    });
    Ok(RunningHub { stop, finished })
}

/// Waits until `doors` distinct doors are up; returns their times since the call, sorted.
async fn wait_up(
    seen: &mut mpsc::Receiver<Seen>,
    doors: usize,
    limit: Duration,
) -> anyhow::Result<Vec<Duration>> {
    let start = Instant::now();
    let mut up = vec![None; doors];
    while up.iter().any(Option::is_none) {
        let Ok(Some(event)) = tokio::time::timeout(limit, seen.recv()).await else {
            anyhow::bail!("doors did not all come online within {limit:?}");
        };
        if event.up {
            up[event.door].get_or_insert(event.at - start);
        }
    }
    let mut times: Vec<Duration> = up.into_iter().flatten().collect();
    times.sort();
    Ok(times)
}

fn report(sorted: &[Duration]) {
    let pct = |p: f64| {
        let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[i].as_secs_f64()
    };
    println!(
        "  back after: first {:.2} s, p50 {:.2} s, p95 {:.2} s, last {:.2} s",
        pct(0.0),
        pct(0.5),
        pct(0.95),
        pct(1.0)
    );
    // Largest number of welcomes in any WINDOW (sliding over the sorted times).
    let mut peak = 0;
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= WINDOW {
            lo += 1;
        }
        peak = peak.max(hi - lo + 1);
    }
    println!(
        "  most doors back within one {} ms window: {peak} of {}",
        WINDOW.as_millis(),
        sorted.len()
    );
}

/// When a door with a jitter-free backoff (always waiting the full ceiling) is first back:
/// every door lost the hub at the same instant, so they all retry at the same instants.
fn no_jitter_return(backoff: &Backoff, gap: Duration) -> Duration {
    let mut b = backoff.clone();
    b.connection_ended(b.stable_after);
    let mut t = Duration::ZERO;
    loop {
        // Every refused connect is one more attempt, as in the link.
        t += b.next_ceiling();
        if t >= gap {
            return t - gap;
        }
    }
}
