//! Web Push latency benchmark: door presses (its `ring` message) to the push request arriving
//! at a push service, on loopback.
//!
//! ```text
//! cargo run --release -p doorbell-hub --example push_bench [-- RINGS [SUBSCRIPTIONS]]
//! ```
//!
//! A real hub (plain HTTP on 127.0.0.1) with one door and SUBSCRIPTIONS phones (default 4),
//! each with one push subscription at a mock RFC 8030 push service on 127.0.0.1 (the one the
//! tests use; it answers 201). For each of RINGS rings (default 100) the door sends `ring`
//! over its WebSocket and the clock runs until the mock service has read the request body,
//! for the first and for the last subscription; then the door cancels the ring and the
//! `ring_ended` pushes are awaited before the next press (presses are 50 ms apart, within the
//! hub's per-connection message rate). Three warm-up rings are not counted
//! (they open the pooled connections). Every push is encrypted (RFC 8291) and VAPID-signed
//! as in production; only TLS is absent (an `http://` loopback endpoint).

use std::time::{Duration, Instant};

use doorbell_protocol::{CallId, DoorToHub, HubToDoor, RingEndReason};

#[path = "../tests/common/mod.rs"]
mod common;

use common::push_service::{push_hub, subscribe, MockPushService, TestSubscription};

const WARM_UP: usize = 3;
/// One press per this interval: two messages per ring stay under the hub's per-connection
/// message rate (`ws::MESSAGES_PER_SECOND`), as a real door's rare presses do.
const PRESS_INTERVAL: Duration = Duration::from_millis(50);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let mut args = std::env::args().skip(1);
    let rings: usize = args
        .next()
        .map_or(100, |a| a.parse().expect("RINGS: a number"));
    let subs: usize = args
        .next()
        .map_or(4, |a| a.parse().expect("SUBSCRIPTIONS: a number"));
    assert!(
        rings > 0 && subs > 0,
        "RINGS and SUBSCRIPTIONS must be at least 1"
    );

    let mut mock = MockPushService::start().await;
    let hub = push_hub(&mock, false).await;
    let (door_id, secret) = hub.add_door("Front door");
    for i in 0..subs {
        let (token, _) = hub.pair_phone(&door_id).await;
        subscribe(
            &hub,
            &token,
            &TestSubscription::new(mock.url(&format!("/push/{i}"))),
        )
        .await;
    }
    let mut door = common::connect_door(&hub, &door_id, &secret).await;

    let (mut first, mut last) = (Vec::new(), Vec::new());
    let mut presses = tokio::time::interval(PRESS_INTERVAL);
    for n in 0..WARM_UP + rings {
        presses.tick().await;
        let call_id = CallId::new(format!("bench-{n}"));
        let pressed = Instant::now();
        door.send(&DoorToHub::Ring {
            call_id: call_id.clone(),
        })
        .await;
        let mut arrivals = Vec::with_capacity(subs);
        for _ in 0..subs {
            arrivals.push(mock.next().await.at - pressed);
        }
        match door.recv().await {
            HubToDoor::Ringing { .. } => {}
            other => panic!("expected ringing, got {other:?}"),
        }
        door.send(&DoorToHub::CancelRing {
            call_id,
            reason: RingEndReason::Timeout,
        })
        .await;
        for _ in 0..subs {
            mock.next().await;
        }
        if n >= WARM_UP {
            first.push(arrivals.iter().copied().min().unwrap_or_default());
            last.push(arrivals.iter().copied().max().unwrap_or_default());
        }
    }
    println!(
        "press -> push request at the push service, {rings} rings, {subs} subscriptions, loopback:"
    );
    for (what, mut samples) in [("first push", first), ("last push", last)] {
        samples.sort();
        println!(
            "  {what:<10}  p50 {:6.2} ms   p95 {:6.2} ms   max {:6.2} ms",
            ms(percentile(&samples, 50.0)),
            ms(percentile(&samples, 95.0)),
            ms(*samples.last().unwrap_or(&Duration::ZERO)),
        );
    }
}
