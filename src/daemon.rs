//! The call task: the one owner of call state.
//!
//! Everything that happens (button presses, hub messages, GStreamer events, control commands,
//! deadlines) arrives as a typed message on a bounded channel, is turned into an
//! [`Input`](crate::call::Input) for the state machine, and the machine's actions are executed
//! here: talk to the hub, start or drop the media session, set the LED, publish status.
//!
//! The call task also owns the door's hardware ([`Hardware`]): the LED follows `SetLed`, and
//! the door strike is pulsed only here, only for an unlock that [`crate::unlock`] authorised.

use crate::call::LedState;
use crate::call::{Action, CallError, CallMachine, Input, Outcome, Timings};
use crate::chime;
use crate::config::Config;
use crate::control::{CallSummary, ControlCommand, ControlServer, PairingLinks, Status};
use crate::gpio::{
    self, Button, Hardware, Motion, Press, PulseOutcome, StdinButton, MOTION_QUEUE, PRESS_QUEUE,
};
use crate::link::{self, LinkConfig, LinkEvent, LinkHandle};
use crate::media::{self, IceSettings, MediaEvent, MediaEventKind, MediaPlan, Session};
use crate::missed::{self, MissedRings};
use crate::missed_snapshots::MissedSnapshots;
use crate::service::ServiceManager;
use crate::snapshot_upload::SnapshotUploader;
use crate::snapshots;
use crate::unlock::{self, Decision};
use doorbell_protocol::{CallId, DoorToHub, ErrorCode, HubToDoor, IceCandidate};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Link events waiting for the call task; a call's signaling is a few dozen messages.
const LINK_EVENT_QUEUE: usize = 64;
/// Control commands waiting; a person types them.
const CONTROL_QUEUE: usize = 4;
/// On shutdown, how long the hang-up message gets to leave before the link is closed.
const SHUTDOWN_FLUSH: Duration = Duration::from_millis(300);

/// One call's media plus the signaling gate in front of it: the offer and local candidates
/// are produced while the phones ring, and only released once a phone has answered.
struct CallMedia {
    session: Session,
    offer: Option<String>,
    answered: bool,
    offer_sent: bool,
    pending_candidates: Vec<IceCandidate>,
    /// The hub link dropped during this call. The call goes on peer to peer, but a restarted
    /// hub knows nothing about it and cannot relay the phone's `hang_up`: the phone closing
    /// its peer connection (the data channel ends) is then the hang-up.
    hub_lost: bool,
    /// STUN/TURN servers for this call (TURN credentials minted for it), from `ringing` or,
    /// from an older hub, `answered`; `None` until one of them arrives.
    call_ice_servers: Option<Vec<doorbell_protocol::IceServer>>,
    /// The offer is the local description: ICE is gathering (with `call_ice_servers`).
    ice_started: bool,
}

pub struct Daemon {
    config: Config,
    plan: MediaPlan,
    machine: CallMachine,
    link: LinkHandle,
    media: Option<CallMedia>,
    media_events: mpsc::Sender<MediaEvent>,
    ice_servers: Vec<doorbell_protocol::IceServer>,
    /// Button inputs, LED and door strike. Dropped last thing on every exit path, which
    /// de-energises the strike (see `gpio::strike`).
    hw: Hardware,
    /// The last media session failed to start (camera or pipeline broken): the LED shows
    /// `Fault` instead of `Idle` until a session starts again.
    fault: bool,
    /// Presses while the hub was unreachable, reported when it accepts us again.
    missed: MissedRings,
    /// The door's own chime while it plays: a second press during it does not overlap it.
    chime: Option<tokio::task::JoinHandle<Result<std::time::Duration, chime::ChimeError>>>,
    /// The ring in progress: when it was pressed (Unix ms) and whether the hub confirmed it
    /// (`ringing`). A ring the hub never confirmed that ends unanswered because the link died
    /// or nobody could hear it is kept as a missed ring too: a silently dead link (not yet
    /// noticed by the keepalive) swallows the `ring` itself.
    ring: Option<(CallId, u64, bool)>,
    status: Status,
    status_tx: watch::Sender<Status>,
    service: ServiceManager,
    /// Uploads the visitor's snapshot of each ring; `None` if the hub URL cannot take one.
    snapshots: Option<SnapshotUploader>,
    /// Snapshots of presses the hub has not heard yet, uploaded once it is back.
    missed_snapshots: MissedSnapshots,
}

/// What the daemon is started with.
pub struct Setup {
    pub config: Config,
    /// Which camera, microphone, speaker and encoder (probed at start).
    pub plan: MediaPlan,
    /// Where the hub is and how to authenticate.
    pub link: LinkConfig,
    /// `doorbelld pair`: present when the hub is embedded in this process.
    pub pairing: Option<PairingLinks>,
}

/// Run the door until `shutdown` is cancelled.
pub async fn run(setup: Setup, shutdown: CancellationToken) -> anyhow::Result<()> {
    let Setup {
        config,
        plan,
        link: link_config,
        pairing,
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
    let snapshots = snapshots::uploader(&link_config);
    let (link, link_task) = link::spawn(link_config, link_tx, shutdown.child_token());
    if config.button.stdin {
        Box::new(StdinButton).start(press_tx.clone())?;
    }

    let timings = Timings {
        ring_timeout: Duration::from_secs(config.call.ring_timeout_secs),
        connect_timeout: Duration::from_secs(config.call.connect_timeout_secs),
        max_call: Duration::from_secs(config.call.max_call_secs),
    };
    let id_prefix = format!("c-{:08x}", rand::random::<u32>());
    let missed = MissedRings::load(&config.state_dir);
    let missed_snapshots = MissedSnapshots::new(&config.state_dir);
    let initial = Status {
        missed_rings_pending: missed.len(),
        state: "idle",
        door_name: config.door.name.clone(),
        gpio_backend: hw.backend,
        relay: "off",
        live_relay: Some(hw.strike.state()),
        ..Status::default()
    };
    let (status_tx, status_rx) = watch::channel(initial.clone());
    let control_task = tokio::spawn(control.serve(
        press_tx,
        command_tx,
        status_rx,
        pairing,
        shutdown.child_token(),
    ));

    let mut daemon = Daemon {
        config,
        plan,
        machine: CallMachine::new(timings, id_prefix),
        link,
        media: None,
        media_events: media_tx,
        ice_servers: Vec::new(),
        hw,
        fault: false,
        missed,
        chime: None,
        ring: None,
        status: initial,
        status_tx,
        service: ServiceManager::from_env(),
        snapshots,
        missed_snapshots,
    };
    daemon.execute_actions();
    daemon.service.status("connecting to the hub");
    let mut watchdog = daemon.service.ping_interval().map(|every| {
        let mut timer = tokio::time::interval(every);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        timer
    });

    loop {
        let deadline = daemon.machine.next_deadline();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(press) = presses.recv() => {
                tracing::info!(source = ?press.source, "button pressed");
                daemon.input(Input::ButtonPressed);
            }
            Some(event) = link_events.recv() => daemon.on_link_event(event),
            Some(event) = media_events.recv() => daemon.on_media_event(event),
            Some(motion) = motions.recv() => daemon.on_motion(motion),
            Some(command) = commands.recv() => match command {
                ControlCommand::HangUp => daemon.input(Input::LocalHangUp),
            },
            _ = sleep_until(deadline), if deadline.is_some() => {
                daemon.machine.handle_timeout(Instant::now());
                daemon.execute_actions();
            }
            // Pinged from this loop, so a wedged loop stops the pings; a dead link or control
            // task means the door can no longer ring anyone or be pressed: let systemd restart.
            _ = next_tick(watchdog.as_mut()) => {
                daemon.service.watchdog(!link_task.is_finished() && !control_task.is_finished());
            }
        }
    }
    daemon.service.stopping();

    // Shutdown: end any call politely, then let the hang-up leave before the link closes.
    if daemon.machine.state().call_id().is_some() {
        daemon.input(Input::LocalHangUp);
        tokio::time::sleep(SHUTDOWN_FLUSH).await;
    }
    drop(daemon);
    let _ = tokio::time::timeout(Duration::from_secs(2), link_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), control_task).await;
    Ok(())
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

impl Daemon {
    fn input(&mut self, input: Input) {
        match self.machine.handle(Instant::now(), input) {
            Ok(()) => {}
            Err(CallError::StaleCall(id)) => tracing::debug!(%id, "ignoring event for an old call"),
            Err(e) => tracing::info!("{e}"),
        }
        self.execute_actions();
    }

    fn on_link_event(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Up {
                door_name,
                ice_servers,
            } => {
                println!("Door online: {door_name}");
                self.service.ready(&format!("online as {door_name:?}"));
                self.status.door_name = door_name;
                self.status.hub_connected = true;
                self.ice_servers = ice_servers;
                self.report_missed_rings();
                self.input(Input::HubUp);
            }
            LinkEvent::Down { reason } => {
                tracing::warn!("hub link lost: {reason}");
                if let Some(media) = self.media.as_mut() {
                    media.hub_lost = true;
                }
                self.service
                    .status("hub unreachable, reconnecting (rings chime locally)");
                self.status.hub_connected = false;
                self.input(Input::HubDown);
            }
            LinkEvent::Refused { reason } => {
                if let Some(media) = self.media.as_mut() {
                    media.hub_lost = true;
                }
                tracing::error!("{reason}\n  fix: check hub.door_id and hub.secret against `doorbell-hub doors`");
                self.service
                    .status("the hub refused this door: check hub.door_id and hub.secret");
                self.status.hub_connected = false;
                self.input(Input::HubDown);
            }
            LinkEvent::Message(message) => self.on_hub_message(message),
        }
    }

    /// The hub accepted us again: tell it about every press it missed, oldest first.
    fn report_missed_rings(&mut self) {
        let rings = self.missed.take_all();
        if rings.is_empty() {
            return;
        }
        tracing::info!(
            count = rings.len(),
            "reporting rings missed while the hub was unreachable"
        );
        for at_ms in rings {
            self.link.send(DoorToHub::MissedRing { at_ms });
            self.status.missed_rings_reported += 1;
        }
        self.status.missed_rings_pending = 0;
        if let Some(uploader) = &self.snapshots {
            snapshots::upload_missed(uploader.clone(), self.missed_snapshots.clone());
        }
    }

    fn on_hub_message(&mut self, message: HubToDoor) {
        match message {
            HubToDoor::Welcome { .. } => tracing::warn!("unexpected second welcome from the hub"),
            HubToDoor::Ringing {
                call_id,
                phones,
                ice_servers,
            } => {
                if let (Some(media), Some(servers)) = (self.current_media(&call_id), ice_servers) {
                    media.call_ice_servers.get_or_insert(servers);
                    self.start_ice();
                }
                if self.is_current(&call_id) {
                    if let Some((ring, _, confirmed)) = self.ring.as_mut() {
                        *confirmed |= *ring == call_id;
                    }
                    tracing::info!(%call_id, phones, "phones ringing");
                    self.status.phones_ringing = phones;
                    self.publish();
                }
            }
            HubToDoor::Answered {
                call_id,
                phone_id,
                ice_servers,
            } => {
                tracing::info!(%call_id, %phone_id, "answered");
                if let Some(media) = self.current_media(&call_id) {
                    media.call_ice_servers.get_or_insert(ice_servers);
                }
                self.input(Input::Answered(call_id));
            }
            HubToDoor::RingEnded { call_id, reason } => {
                self.input(Input::RingEnded(call_id, reason))
            }
            HubToDoor::SdpAnswer { call_id, sdp } => {
                let Some(media) = self.current_media(&call_id) else {
                    return;
                };
                if let Err(e) = media.session.set_answer(&sdp) {
                    tracing::warn!(%call_id, "{e}");
                    self.input(Input::MediaFailed(call_id));
                }
            }
            HubToDoor::Ice { call_id, candidate } => {
                if let Some(media) = self.current_media(&call_id) {
                    media
                        .session
                        .add_remote_candidate(candidate.sdp_m_line_index, &candidate.candidate);
                }
            }
            HubToDoor::HangUp { call_id, reason } => {
                tracing::info!(%call_id, ?reason, "phone hung up");
                self.input(Input::RemoteHangUp(call_id));
            }
            HubToDoor::Error(body) => {
                tracing::warn!(code = ?body.code, call_id = ?body.call_id, "hub error: {}", body.message);
                // A refused ring leaves nothing to wait for.
                let refused_ring = matches!(
                    body.code,
                    ErrorCode::Busy | ErrorCode::UnknownCall | ErrorCode::InvalidState
                );
                if let (true, Some(call_id)) = (refused_ring, body.call_id) {
                    if matches!(self.machine.state(), crate::call::State::Ringing { call_id: c, .. } if *c == call_id)
                    {
                        self.input(Input::RingRefused(call_id));
                    }
                }
            }
        }
    }

    fn on_media_event(&mut self, event: MediaEvent) {
        let MediaEvent { call_id, kind } = event;
        match kind {
            MediaEventKind::OfferReady(sdp) => {
                let Some(media) = self.current_media(&call_id) else {
                    return;
                };
                tracing::debug!(%call_id, "offer ready");
                media.offer = Some(sdp);
                self.start_ice();
                self.release_offer();
            }
            MediaEventKind::LocalCandidate { mline, candidate } => {
                let Some(media) = self.current_media(&call_id) else {
                    return;
                };
                let candidate = IceCandidate {
                    candidate,
                    sdp_m_line_index: mline,
                };
                if media.offer_sent {
                    self.link.send(DoorToHub::Ice { call_id, candidate });
                } else {
                    media.pending_candidates.push(candidate);
                }
            }
            MediaEventKind::Connected => {
                tracing::info!(%call_id, "media connected");
                self.input(Input::MediaConnected(call_id));
            }
            MediaEventKind::ControlMessage(text) => self.on_control_message(call_id, &text),
            MediaEventKind::ControlClosed => {
                // With a hub that followed the call, its `hang_up` ends the call (and races
                // this event). Without one, nothing else would tell us the phone left.
                if self.current_media(&call_id).is_some_and(|m| m.hub_lost) {
                    tracing::info!(%call_id, "the phone closed the call while the hub did not know it: ending it");
                    self.input(Input::RemoteHangUp(call_id));
                }
            }
            MediaEventKind::Failed(why) => {
                if self.is_current(&call_id) {
                    tracing::warn!(%call_id, "media failed: {why}");
                    self.input(Input::MediaFailed(call_id));
                }
            }
        }
    }

    /// Make the offer the local description, which starts ICE gathering, once both the offer
    /// and this call's ICE servers exist (whichever comes last). With a current hub that is
    /// while the phones ring, so the TURN allocation is done before anyone answers.
    fn start_ice(&mut self) {
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if media.ice_started {
            return;
        }
        let (Some(sdp), Some(servers)) = (&media.offer, &media.call_ice_servers) else {
            return;
        };
        media.ice_started = true;
        if let Err(e) = media.session.start_ice(sdp, servers) {
            // Reported like any media failure, through the owner's own queue.
            let _ = self.media_events.try_send(MediaEvent {
                call_id: media.session.call_id().clone(),
                kind: MediaEventKind::Failed(format!("cannot start ICE: {e}")),
            });
        }
    }

    /// Send the offer and the candidates gathered so far, once both a phone has answered and
    /// ICE has started (whichever comes last).
    fn release_offer(&mut self) {
        self.start_ice();
        let Some(media) = self.media.as_mut() else {
            return;
        };
        if !media.answered || media.offer_sent || !media.ice_started {
            return;
        }
        let Some(sdp) = media.offer.clone() else {
            return;
        };
        let call_id = media.session.call_id().clone();
        media.offer_sent = true;
        let pending = std::mem::take(&mut media.pending_candidates);
        self.link.send(DoorToHub::SdpOffer {
            call_id: call_id.clone(),
            sdp,
        });
        for candidate in pending {
            self.link.send(DoorToHub::Ice {
                call_id: call_id.clone(),
                candidate,
            });
        }
    }

    fn execute_actions(&mut self) {
        while let Some(action) = self.machine.poll_action() {
            self.execute(action);
        }
        self.publish();
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::SendRing(call_id) => {
                self.ring = Some((call_id.clone(), missed::now_unix_ms(), false));
                self.link.send(DoorToHub::Ring { call_id })
            }
            Action::SendCancelRing(call_id, reason) => {
                self.link.send(DoorToHub::CancelRing { call_id, reason })
            }
            Action::SendHangUp(call_id, reason) => {
                self.link.send(DoorToHub::HangUp { call_id, reason })
            }
            Action::PrepareMedia(call_id) => self.start_media(call_id),
            Action::StartOffer(call_id) => {
                if let Some(media) = self.current_media(&call_id) {
                    media.answered = true;
                }
                self.release_offer();
            }
            Action::RequestKeyframe(call_id) => {
                if let Some(media) = self.current_media(&call_id) {
                    media.session.request_keyframe();
                }
            }
            Action::TearDownMedia(call_id) => {
                if let Some(media) = self.media.take() {
                    if *media.session.call_id() == call_id {
                        self.status.current_call = Some(media.session.stats());
                    }
                    // Dropping the session is the guard: the pipeline goes to NULL here.
                }
            }
            Action::SetLed(state) => {
                let state = match state {
                    LedState::Idle if self.fault => LedState::Fault,
                    other => other,
                };
                self.hw.led.show(state);
            }
            Action::ChimeLocally => {
                let at_ms = missed::now_unix_ms();
                self.missed.push(at_ms);
                self.status.missed_rings_pending = self.missed.len();
                tracing::warn!(
                    at_ms,
                    pending = self.missed.len(),
                    "button pressed but the hub is unreachable: chiming at the door only; \
                     the ring is reported once the hub is back"
                );
                self.play_chime();
                snapshots::keep_missed(&self.plan, self.missed_snapshots.clone(), at_ms);
            }
            Action::CallEnded { call_id, outcome } => {
                tracing::info!(%call_id, ?outcome, "call ended");
                if let Some((ring, at_ms, confirmed)) = self.ring.take() {
                    let unheard = matches!(outcome, Outcome::HubLost | Outcome::Missed);
                    if ring == call_id && unheard && !confirmed {
                        tracing::warn!(%call_id, at_ms, "the hub never confirmed this ring; keeping it as a missed ring");
                        self.missed.push(at_ms);
                        self.status.missed_rings_pending = self.missed.len();
                    }
                }
                self.status.calls_ended += 1;
                let stats = self.status.current_call.take().unwrap_or_default();
                self.status.last_call = Some(CallSummary {
                    call_id: call_id.to_string(),
                    outcome,
                    stats,
                });
                self.status.phones_ringing = 0;
            }
        }
    }

    /// The door's own ding-dong on its speaker, unless one is still playing.
    fn play_chime(&mut self) {
        if self.chime.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        match chime::play(&self.plan.audio_sink) {
            Ok(task) => {
                self.chime = Some(task);
                self.status.local_chimes += 1;
            }
            Err(e) => tracing::warn!("the door's chime did not play: {e}"),
        }
    }

    fn start_media(&mut self, call_id: CallId) {
        // A previous session still here would be a bug in the machine; the guard cleans it.
        self.media = None;
        let ice = IceSettings {
            servers: self.ice_servers.clone(),
            local_addresses: self.config.media.ice_local_addresses.clone(),
        };
        match Session::start(call_id.clone(), &self.plan, &ice, self.media_events.clone()) {
            Ok(session) => {
                self.fault = false;
                if let Some(uploader) = &self.snapshots {
                    snapshots::upload_for_call(uploader.clone(), &call_id, &session);
                }
                self.media = Some(CallMedia {
                    session,
                    offer: None,
                    answered: false,
                    offer_sent: false,
                    pending_candidates: Vec::new(),
                    hub_lost: false,
                    call_ice_servers: None,
                    ice_started: false,
                })
            }
            Err(e) => {
                tracing::error!(%call_id, "{e}");
                self.fault = true;
                // Feed the failure back; execute_actions' loop runs the resulting actions.
                if let Err(e) = self
                    .machine
                    .handle(Instant::now(), Input::MediaFailed(call_id))
                {
                    tracing::debug!("{e}");
                }
            }
        }
    }

    /// A message on a call's `control` data channel: maybe an unlock. Every decision is
    /// logged, and every message gets a reply.
    fn on_control_message(&mut self, call_id: CallId, text: &str) {
        if self.current_media(&call_id).is_none() {
            tracing::warn!(%call_id, "data-channel message for a call that is over; ignored");
            return;
        }
        let reply = match unlock::decide(self.machine.state(), &call_id, text) {
            Decision::Unlock { request_id } => {
                let asked = gpio::ms(self.config.gpio.relay_pulse_ms);
                match self.hw.strike.pulse(asked) {
                    PulseOutcome::Started(pulse) => {
                        self.status.unlocks += 1;
                        tracing::info!(
                            %call_id,
                            request_id,
                            pulse_ms = pulse.as_millis() as u64,
                            unlocks = self.status.unlocks,
                            "door unlocked by the answering phone"
                        );
                        self.publish();
                        // For the hub's history: which call (so which phone) let someone in.
                        self.link.send(DoorToHub::Unlocked {
                            call_id: call_id.clone(),
                        });
                        unlock::unlocked(request_id, pulse)
                    }
                    PulseOutcome::AlreadyOpen => {
                        tracing::info!(%call_id, request_id, "unlock while the strike is already energised; not extended");
                        unlock::unlocked(request_id, asked)
                    }
                }
            }
            Decision::Refuse(reply) => {
                tracing::warn!(%call_id, ?reply, "unlock request refused");
                reply
            }
        };
        let Some(media) = self.current_media(&call_id) else {
            return;
        };
        let sent = serde_json::to_string(&reply)
            .map_err(|e| e.to_string())
            .and_then(|text| media.session.send_control(&text).map_err(|e| e.to_string()));
        if let Err(e) = sent {
            tracing::warn!(%call_id, "cannot reply on the data channel: {e}");
        }
    }

    fn on_motion(&mut self, motion: Motion) {
        self.status.motion_events += 1;
        tracing::info!(
            ago_ms = motion.at.elapsed().as_millis() as u64,
            count = self.status.motion_events,
            "motion"
        );
        self.publish();
    }

    fn is_current(&self, call_id: &CallId) -> bool {
        self.machine.state().call_id() == Some(call_id)
    }

    fn current_media(&mut self, call_id: &CallId) -> Option<&mut CallMedia> {
        self.media
            .as_mut()
            .filter(|m| m.session.call_id() == call_id)
    }

    fn publish(&mut self) {
        let state = self.machine.state();
        self.status.state = state.name();
        self.status.call_id = state.call_id().map(|c| c.to_string());
        if let Some(media) = &self.media {
            self.status.current_call = Some(media.session.stats());
        }
        self.status.live_counters = self.media.as_ref().map(|m| m.session.counters());
        self.status_tx.send_replace(self.status.clone());
    }
}
