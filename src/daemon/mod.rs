//! The call task: the shell around the sans-IO [`Door`].
//!
//! Everything that happens (button presses, hub messages, GStreamer events, control commands,
//! deadlines) arrives as a typed message on a bounded channel; this loop only turns each into
//! a core [`Event`] and lets [`Shell`] carry out the resulting actions on its ports (hub link,
//! media session, LED, door strike, chime, the missed-rings file) and publish the status.
//! The door strike is pulsed only for an unlock the core authorised.

mod ports;
mod shell;
#[cfg(test)]
mod tests;

pub use ports::{
    ChimePort, DoorSnapshots, GstMedia, HubPort, MediaPort, MissedRingStore, SnapshotPort,
    SpeakerChime, StrikePort,
};
pub use shell::{Hardware, Ports, Shell};

use crate::config::Config;
use crate::control::{ControlCommand, ControlServer, HubCommands, Status};
use crate::core::{Door, DoorSetup, Event, Timings};
use crate::gpio::{self, Button, Motion, Press, StdinButton, MOTION_QUEUE, PRESS_QUEUE};
use crate::link::{self, LinkConfig, LinkEvent};
use crate::media::{self, MediaPlan};
use crate::missed::{self, MissedRingFile};
use crate::missed_snapshots::MissedSnapshots;
use crate::service::ServiceManager;
use doorbell_protocol::HubToDoor;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Link events waiting for the call task; a call's signaling is a few dozen messages.
const LINK_EVENT_QUEUE: usize = 64;
/// Control commands waiting; a person types them.
const CONTROL_QUEUE: usize = 4;
/// On shutdown, how long the hang-up message gets to leave before the link is closed.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(300);
/// How long the link and control tasks get to finish after shutdown.
const TASK_DRAIN: Duration = Duration::from_secs(2);

/// What the daemon is started with.
pub struct Setup {
    pub config: Config,
    /// Which camera, microphone, speaker and encoder (probed at start).
    pub plan: MediaPlan,
    /// Where the hub is and how to authenticate.
    pub link: LinkConfig,
    /// `doorbelld phones`: present when the hub is embedded in this process.
    pub pairing: Option<HubCommands>,
    /// `doorbelld pair` (door-made codes) and the pinned phones; `pair_request`s are answered
    /// from here, in this task.
    pub links: crate::pairing::PairLinks,
}

/// Why the door stopped.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Gpio(#[from] gpio::GpioError),
    #[error(transparent)]
    Control(#[from] crate::control::ControlError),
}

/// Run the door until `shutdown` is cancelled.
pub async fn run(setup: Setup, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let Setup {
        config,
        plan,
        link: link_config,
        pairing,
        links,
    } = setup;
    let (press_tx, mut presses) = mpsc::channel::<Press>(PRESS_QUEUE);
    let (link_tx, mut link_events) = mpsc::channel(LINK_EVENT_QUEUE);
    let (media_tx, mut media_events) = mpsc::channel(media::session::MEDIA_EVENT_QUEUE);
    let (command_tx, mut commands) = mpsc::channel(CONTROL_QUEUE);
    let (motion_tx, mut motions) = mpsc::channel::<Motion>(MOTION_QUEUE);

    // Hardware first: the strike is de-energised before anything else can happen, and a
    // wrong gpio.backend stops the daemon before it goes online.
    let hw = gpio::open(&config.gpio, press_tx.clone(), motion_tx)?;
    tracing::info!(backend = hw.backend, "GPIO ready; door strike de-energised");

    let control = ControlServer::bind(&config.control_socket()).await?;
    let uploader = crate::snapshots::uploader(&link_config);
    let (link, link_task) = link::spawn(link_config, link_tx, shutdown.child_token());
    let pair_replies = link.clone();
    if config.button.stdin {
        Box::new(StdinButton).start(press_tx.clone())?;
    }

    let missed_file = MissedRingFile::new(&config.state_dir);
    let door = Door::new(DoorSetup {
        timings: Timings {
            ring_timeout: Duration::from_secs(config.call.ring_timeout_secs),
            connect_timeout: Duration::from_secs(config.call.connect_timeout_secs),
            max_call: Duration::from_secs(config.call.max_call_secs),
        },
        id_prefix: format!("c-{:08x}", rand::random::<u32>()),
        door_name: config.door.name.clone(),
        missed_rings: missed_file.load(),
        voice_message_secs: config.call.voice_message_secs as u32,
        view: config.view.limits(),
    });
    let voice_counters = std::sync::Arc::new(crate::voice::VoiceCounters::default());
    let (status_tx, status_rx) = watch::channel(Status::default());
    let hardware = Hardware {
        gpio_backend: hw.backend,
        relay_pulse: gpio::ms(config.gpio.relay_pulse_ms),
        live_relay: Some(hw.strike.state()),
        voice: Some(voice_counters.clone()),
    };
    let ports = Ports {
        hub: Box::new(link),
        media: Box::new(GstMedia {
            plan: plan.clone(),
            local_addresses: config.media.ice_local_addresses.clone(),
            events: media_tx,
            session: None,
            previews: Default::default(),
            talking: None,
            adopted_by: None,
        }),
        led: hw.led,
        strike: Box::new(hw.strike),
        chime: Box::new(SpeakerChime {
            sink: plan.audio_sink.clone(),
            playing: None,
        }),
        missed: Box::new(missed_file),
        voice: Box::new(crate::voice::DoorVoice {
            uploader: uploader.clone(),
            plan: plan.clone(),
            kept: crate::voice::kept::KeptVoice::new(&config.state_dir),
            counters: voice_counters,
            stop: None,
        }),
        snapshots: Box::new(DoorSnapshots {
            uploader,
            store: MissedSnapshots::new(&config.state_dir),
            plan: plan.clone(),
        }),
    };
    // Dropped last on every exit path: the input pins' threads stop with it.
    let _inputs = hw.inputs;
    let mut shell = Shell::new(door, ports, hardware, status_tx);
    // From here on only pinned phone certificates get media and unlock.
    shell.handle(Event::PinsChanged(links.pins()));
    let control_task = tokio::spawn(control.serve(
        press_tx,
        command_tx,
        status_rx,
        pairing,
        links.clone(),
        shutdown.child_token(),
    ));

    let mut service = ServiceManager::from_env();
    service.status("connecting to the hub");
    let mut watchdog = service.ping_interval().map(|every| {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });

    loop {
        let deadline = shell.door().next_deadline();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(press) = presses.recv() => {
                tracing::info!(source = ?press.source, "button pressed");
                shell.handle(Event::ButtonPressed { unix_ms: missed::now_unix_ms() });
            }
            Some(event) = link_events.recv() => match event {
                // Pairing is not call state: answered here, the core only gets the new pins.
                LinkEvent::Message(HubToDoor::PairRequest(r)) => {
                    let (reply, pins) = links.answer(r.request_id, &r.code_id, &r.phone_id, &r.fingerprint, &r.proof);
                    pair_replies.send(reply);
                    if let Some(pins) = pins {
                        shell.handle(Event::PinsChanged(pins));
                    }
                }
                LinkEvent::Message(HubToDoor::InviteRequest(r)) => {
                    pair_replies.send(links.answer_invite(r.request_id, &r.phone_id, &r.code_id, r.access, &r.auth));
                }
                LinkEvent::Message(HubToDoor::Unpin { phone_id }) => {
                    if let Some(pins) = links.unpin(&phone_id) {
                        shell.handle(Event::PinsChanged(pins));
                    }
                }
                LinkEvent::Message(HubToDoor::RepinRequest(r)) => {
                    let (reply, pins) = links.answer_repin(&r);
                    pair_replies.send(reply);
                    if let Some(pins) = pins {
                        shell.handle(Event::PinsChanged(pins));
                    }
                }
                LinkEvent::Message(HubToDoor::GrantRequest(r)) => {
                    let (reply, pins) = links.answer_grant(r.request_id, &r.phone_id, &r.target, r.access, &r.auth);
                    pair_replies.send(reply);
                    if let Some(pins) = pins {
                        shell.handle(Event::PinsChanged(pins));
                    }
                }
                event => {
                    if let LinkEvent::Up { door_name, .. } = &event {
                        links.set_door_name(door_name);
                    }
                    let event = link_event(event, &mut service);
                    shell.handle(event);
                }
            },
            Some(event) = media_events.recv() => shell.handle(Event::Media(event)),
            Some(motion) = motions.recv() => {
                tracing::info!(
                    ago_ms = motion.at.elapsed().as_millis() as u64,
                    count = shell.door().status().motion_events + 1,
                    "motion"
                );
                shell.handle(Event::Motion);
            }
            Some(command) = commands.recv() => match command {
                ControlCommand::HangUp => shell.handle(Event::LocalHangUp),
            },
            _ = sleep_until(deadline), if deadline.is_some() => shell.handle(Event::Deadline),
            // Pinged from this loop, so a wedged loop stops the pings; a dead link or control
            // task means the door can no longer ring anyone or be pressed: let systemd restart.
            _ = next_tick(watchdog.as_mut()) => {
                service.watchdog(!link_task.is_finished() && !control_task.is_finished());
            }
        }
    }
    service.stopping();

    // Shutdown: end any call politely, then let the hang-up leave before the link closes.
    if shell.door().state().call_id().is_some() {
        shell.handle(Event::LocalHangUp);
        tokio::time::sleep(SHUTDOWN_FLUSH).await;
    }
    // The strike (inside the shell's ports) is de-energised when it is dropped.
    drop(shell);
    let _ = tokio::time::timeout(TASK_DRAIN, link_task).await;
    let _ = tokio::time::timeout(TASK_DRAIN, control_task).await;
    Ok(())
}

/// A link event as the core sees it; the log and systemd hear about it here.
fn link_event(event: LinkEvent, service: &mut ServiceManager) -> Event {
    match event {
        LinkEvent::Up {
            door_name,
            ice_servers,
        } => {
            println!("Door online: {door_name}");
            service.ready(&format!("online as {door_name:?}"));
            Event::HubUp {
                door_name,
                ice_servers,
            }
        }
        LinkEvent::Down { reason } => {
            tracing::warn!("hub link lost: {reason}");
            service.status("hub unreachable, reconnecting (rings chime locally)");
            Event::HubLost
        }
        LinkEvent::Refused { reason } => {
            tracing::error!("{reason}");
            service.status(reason.status());
            Event::HubLost
        }
        LinkEvent::Message(message) => Event::Hub(message),
    }
}

async fn next_tick(timer: Option<&mut tokio::time::Interval>) {
    match timer {
        Some(timer) => {
            timer.tick().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
