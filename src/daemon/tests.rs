//! The shell with fake ports: actions reach the right port, results that come at once are
//! fed back, and the published status adds the shell's counters to the core's.

use super::*;
use crate::core::{CallPhase, LedState, MediaEvent, MediaEventKind};
use crate::gpio::{PulseOutcome, StatusLed};
use crate::media::{Counters, SessionStats};
use doorbell_protocol::{CallId, DoorToHub, IceCandidate, IceServer};
use std::sync::{Arc, Mutex};

/// Everything the fakes were asked to do, in order.
type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: impl Into<String>) {
    log.lock().unwrap().push(line.into());
}

struct FakeHub(Log);
impl HubPort for FakeHub {
    fn send(&mut self, message: DoorToHub) {
        note(
            &self.0,
            format!("hub {}", serde_json::to_string(&message).unwrap()),
        );
    }
}

struct FakeMedia {
    log: Log,
    fail_start: bool,
    session: Option<CallId>,
}
impl MediaPort for FakeMedia {
    fn start(&mut self, call_id: &CallId, _: Vec<IceServer>) -> Result<(), String> {
        note(&self.log, format!("media start {call_id}"));
        if self.fail_start {
            return Err("no camera".into());
        }
        self.session = Some(call_id.clone());
        Ok(())
    }
    fn start_ice(&mut self, call_id: &CallId, _: &str, _: &[IceServer]) {
        note(&self.log, format!("media ice {call_id}"));
    }
    fn set_answer(&mut self, _: &CallId, _: &str) -> Result<(), String> {
        Ok(())
    }
    fn add_remote_candidate(&mut self, _: &CallId, _: &IceCandidate) {}
    fn request_keyframe(&mut self, call_id: &CallId) {
        note(&self.log, format!("media keyframe {call_id}"));
    }
    fn send_control(&mut self, _: &CallId, text: &str) -> Result<(), String> {
        note(&self.log, format!("media control {text}"));
        Ok(())
    }
    fn tear_down(&mut self, call_id: &CallId) -> Option<SessionStats> {
        note(&self.log, format!("media tear down {call_id}"));
        self.session.take().map(|_| SessionStats {
            video_frames_sent: 42,
            audio_buffers_received: 7,
            ..SessionStats::default()
        })
    }
    fn stats(&self) -> Option<(SessionStats, Arc<Counters>)> {
        self.session
            .as_ref()
            .map(|_| (SessionStats::default(), Arc::new(Counters::default())))
    }
}

struct FakeLed(Log);
impl StatusLed for FakeLed {
    fn show(&mut self, state: LedState) {
        note(&self.0, format!("led {state:?}"));
    }
}

struct FakeStrike(Log);
impl StrikePort for FakeStrike {
    fn pulse(&mut self, length: Duration) -> PulseOutcome {
        note(&self.0, format!("strike {}ms", length.as_millis()));
        PulseOutcome::Started(length)
    }
}

struct FakeChime(Log);
impl ChimePort for FakeChime {
    fn play(&mut self) -> bool {
        note(&self.0, "chime");
        true
    }
}

struct FakeSnapshots(Log);
impl SnapshotPort for FakeSnapshots {
    fn for_call(&mut self, call_id: &CallId, grab: Option<crate::media::SnapshotGrab>) {
        note(
            &self.0,
            format!("snapshot {call_id} session={}", grab.is_some()),
        );
    }
    fn for_missed_ring(&mut self, at_ms: u64) {
        note(&self.0, format!("snapshot missed {at_ms}"));
    }
    fn upload_missed(&mut self) {
        note(&self.0, "upload missed snapshots");
    }
}

struct FakeVoice(Log);
impl super::ports::VoicePort for FakeVoice {
    fn record(&mut self, of: &crate::core::SnapshotOf, secs: u32) {
        note(&self.0, format!("voice record {of:?} {secs}"));
    }
    // Not logged: every media start sends it, and the call logs read better without.
    fn stop(&mut self) {}
    fn upload_kept(&mut self) {
        note(&self.0, "voice upload kept");
    }
    fn play_reply(&mut self, reply_id: u64) {
        note(&self.0, format!("play reply {reply_id}"));
    }
}

struct FakeStore(Log);
impl MissedRingStore for FakeStore {
    fn save(&mut self, rings: &[u64]) {
        note(&self.0, format!("save {rings:?}"));
    }
}

fn shell(fail_start: bool) -> (Shell, Log, watch::Receiver<Status>) {
    let log = Log::default();
    let door = Door::new(DoorSetup {
        timings: Timings {
            ring_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(20),
            max_call: Duration::from_secs(600),
        },
        id_prefix: "c-test".into(),
        door_name: "Front door".into(),
        missed_rings: vec![],
        voice_message_secs: 20,
        view: Default::default(),
    });
    let ports = Ports {
        hub: Box::new(FakeHub(log.clone())),
        media: Box::new(FakeMedia {
            log: log.clone(),
            fail_start,
            session: None,
        }),
        led: Box::new(FakeLed(log.clone())),
        strike: Box::new(FakeStrike(log.clone())),
        chime: Box::new(FakeChime(log.clone())),
        missed: Box::new(FakeStore(log.clone())),
        snapshots: Box::new(FakeSnapshots(log.clone())),
        voice: Box::new(FakeVoice(log.clone())),
    };
    let hardware = Hardware {
        gpio_backend: "simulated",
        relay_pulse: Duration::from_millis(1500),
        live_relay: None,
        voice: None,
    };
    let (status_tx, status_rx) = watch::channel(Status::default());
    (Shell::new(door, ports, hardware, status_tx), log, status_rx)
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

fn media(call: &str, kind: MediaEventKind) -> Event {
    Event::Media(MediaEvent {
        call_id: CallId::new(call),
        kind,
    })
}

#[test]
fn a_call_runs_on_the_ports_and_its_stats_are_reported() {
    let (mut shell, log, status) = shell(false);
    assert_eq!(take(&log), vec!["led HubUnreachable"]);
    shell.handle(Event::HubUp {
        door_name: "Front door".into(),
        ice_servers: vec![],
    });
    assert_eq!(
        take(&log),
        vec!["upload missed snapshots", "voice upload kept", "led Idle"],
        "the hub is back: kept snapshots and voice messages go up"
    );
    shell.handle(Event::ButtonPressed { unix_ms: 5 });
    assert_eq!(
        take(&log),
        [
            r#"hub {"type":"ring","call_id":"c-test-1"}"#,
            "media start c-test-1",
            // The fake session has no GStreamer snapshot branch to hand over.
            "snapshot c-test-1 session=false",
            "led Ringing"
        ]
    );
    assert_eq!(status.borrow().state, CallPhase::Ringing);
    shell.handle(Event::Hub(doorbell_protocol::HubToDoor::Answered {
        call_id: CallId::new("c-test-1"),
        phone_id: doorbell_protocol::PhoneId::new("p"),
        ice_servers: vec![],
        may_unlock: true,
    }));
    shell.handle(media("c-test-1", MediaEventKind::OfferReady("v=0".into())));
    shell.handle(media("c-test-1", MediaEventKind::Connected));
    shell.handle(media(
        "c-test-1",
        MediaEventKind::ControlMessage(r#"{"version":1,"type":"unlock","request_id":1}"#.into()),
    ));
    shell.handle(Event::LocalHangUp);
    let log = take(&log);
    assert!(log.contains(&"strike 1500ms".to_string()), "{log:?}");
    assert!(
        log.iter()
            .any(|l| l.starts_with("media control") && l.contains("unlocked")),
        "{log:?}"
    );
    assert!(log.contains(&"media tear down c-test-1".to_string()));
    let status = status.borrow().clone();
    assert_eq!(status.state, CallPhase::Idle);
    assert_eq!(status.unlocks, 1);
    let last = status.last_call.expect("a last call");
    assert_eq!(
        last.stats.video_frames_sent, 42,
        "the torn-down session's stats"
    );
    assert!(status.current_call.is_none());
}

#[test]
fn a_session_that_cannot_start_is_fed_back_and_the_led_shows_a_fault() {
    let (mut shell, log, status) = shell(true);
    shell.handle(Event::HubUp {
        door_name: "Front door".into(),
        ice_servers: vec![],
    });
    take(&log);
    shell.handle(Event::ButtonPressed { unix_ms: 5 });
    let log = take(&log);
    assert_eq!(log[1], "media start c-test-1");
    assert_eq!(
        log[2], "snapshot c-test-1 session=false",
        "no session, no picture"
    );
    assert_eq!(log[3], "led Ringing");
    assert!(log[4].contains(r#""type":"cancel_ring""#), "{log:?}");
    assert_eq!(log.last().map(String::as_str), Some("led Fault"));
    assert_eq!(status.borrow().state, CallPhase::Idle);
}

#[test]
fn a_press_without_a_hub_chimes_and_saves_the_ring() {
    let (mut shell, log, status) = shell(false);
    take(&log);
    shell.handle(Event::ButtonPressed { unix_ms: 5 });
    assert_eq!(
        take(&log),
        vec![
            "save [5]",
            "chime",
            "snapshot missed 5",
            "voice record MissedRing(5) 20"
        ]
    );
    assert_eq!(status.borrow().local_chimes, 1);
    assert_eq!(status.borrow().missed_rings_pending, 1);
}
