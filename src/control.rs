//! The local control socket: `doorbelld press`, `doorbelld status`, `doorbelld hangup` talk to
//! the running daemon through a Unix socket that only the daemon's user can open (mode 0600).
//!
//! Protocol: the client writes one command line (`press`, `status`, `hangup`, `pair`,
//! `phones`, `phones remove <phone_id>`), the daemon answers one line: `ok`, `error: <why>`, for
//! `status` one JSON object, for `pair` a one-time pairing link, for `phones` a JSON array of
//! the embedded hub's phones.

use crate::gpio::{Press, PressSource};
use serde::Serialize;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A command line longer than this is not one of ours.
const MAX_COMMAND_BYTES: u64 = 256;
/// A client that connects and says nothing is dropped after this long.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("cannot create control socket {path}: {source}\n  fix: check that {dir} exists and is writable, or set control.socket")]
    Bind {
        path: PathBuf,
        dir: String,
        source: std::io::Error,
    },
    #[error("another doorbelld is already running (its control socket {0} answers)")]
    AlreadyRunning(PathBuf),
    #[error("cannot reach doorbelld at {path}: {source}\n  fix: is doorbelld running? (`systemctl status doorbelld`, or start `doorbelld --demo`); set control.socket if it uses another path")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("doorbelld did not answer: {0}")]
    Io(#[from] std::io::Error),
    #[error("doorbelld said: {0}")]
    Refused(String),
}

/// What the control socket asks of the embedded hub (only a door with one has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HubCommand {
    /// The paired phones, as one JSON line.
    Phones,
    /// Remove this phone from the door (its connections close, its token stops working).
    RemovePhone(String),
}

/// Runs a [`HubCommand`] against the embedded hub; the answer is the reply line.
pub type HubCommands = std::sync::Arc<dyn Fn(HubCommand) -> Result<String, String> + Send + Sync>;

/// Commands that need the call task (presses go straight into the button channel).
#[derive(Debug)]
pub enum ControlCommand {
    HangUp,
}

/// What `doorbelld status` prints. Published by the call task after every change.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Status {
    pub state: crate::core::CallPhase,
    pub call_id: Option<String>,
    pub hub_connected: bool,
    pub door_name: String,
    /// Phones the hub said are ringing for the current call.
    pub phones_ringing: u32,
    /// Call attempts that have ended since start-up.
    pub calls_ended: u64,
    pub current_call: Option<crate::media::SessionStats>,
    pub last_call: Option<CallSummary>,
    /// Which GPIO backend drives the button, LED and relay: `rppal` or `simulated`.
    pub gpio_backend: &'static str,
    /// Unlocks from the answering phone that pulsed the door strike, since start-up.
    pub unlocks: u64,
    /// The door strike right now: `on` (energised, door open) or `off`.
    pub relay: crate::core::Relay,
    /// Times the strike has been energised since start-up (read from the relay driver).
    pub relay_pulses: u64,
    /// PIR motion events since start-up (always 0 without `gpio.pir_enabled`).
    pub motion_events: u64,
    /// Presses while the hub was unreachable, waiting to be reported as `missed_ring`.
    pub missed_rings_pending: usize,
    /// Live views open now (phones watching without a ring).
    pub viewers: usize,
    /// The status LED's pattern (`idle`, `ringing`, `in_call`, `hub_unreachable`, `fault`,
    /// `viewing`); absent before the first.
    pub led: Option<crate::core::LedState>,
    /// Presses reported to the hub as `missed_ring` since start-up.
    pub missed_rings_reported: u64,
    /// Times the door played its own chime on its speaker (a press while the hub was
    /// unreachable) since start-up.
    pub local_chimes: u64,
    /// The running session's counters, read when `status` is asked (the call task only
    /// publishes on state changes, but frame counts move all the time).
    #[serde(skip)]
    pub live_counters: Option<std::sync::Arc<crate::media::Counters>>,
    /// The relay driver's state: a pulse ends on its own timer, not in the call task.
    #[serde(skip)]
    pub live_relay: Option<std::sync::Arc<crate::gpio::RelayState>>,
    /// Voice messages recorded since start-up (nobody answered, the visitor spoke).
    pub voice_messages_recorded: u64,
    /// Voice messages the hub took since start-up (kept ones included once uploaded).
    pub voice_messages_uploaded: u64,
    /// Decoded samples (48 kHz) of voice-message prompts that reached the speaker.
    pub voice_prompt_samples: u64,
    /// Quick replies from phones played on the speaker since start-up.
    pub quick_replies_played: u64,
    /// Decoded samples (48 kHz) of quick replies that reached the speaker.
    pub quick_reply_samples: u64,
    /// The voice-message tasks' counters, read when `status` is asked.
    #[serde(skip)]
    pub live_voice: Option<std::sync::Arc<crate::voice::VoiceCounters>>,
}

impl Status {
    /// This status with `current_call` read from the live counters.
    pub fn now(&self) -> Status {
        let mut status = self.clone();
        if let Some(counters) = &self.live_counters {
            status.current_call = Some(counters.snapshot());
        }
        if let Some(relay) = &self.live_relay {
            use std::sync::atomic::Ordering;
            status.relay = if relay.energised.load(Ordering::Acquire) {
                crate::core::Relay::On
            } else {
                crate::core::Relay::Off
            };
            status.relay_pulses = relay.pulses.load(Ordering::Relaxed);
        }
        if let Some(voice) = &self.live_voice {
            use std::sync::atomic::Ordering;
            status.voice_messages_recorded = voice.recorded.load(Ordering::Relaxed);
            status.voice_messages_uploaded = voice.uploaded.load(Ordering::Relaxed);
            status.voice_prompt_samples = voice.prompt_samples.load(Ordering::Relaxed);
            status.quick_replies_played = voice.replies_played.load(Ordering::Relaxed);
            status.quick_reply_samples = voice.reply_samples.load(Ordering::Relaxed);
        }
        status
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CallSummary {
    pub call_id: String,
    pub outcome: crate::core::Outcome,
    pub stats: crate::media::SessionStats,
}

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlServer {
    pub async fn bind(path: &Path) -> Result<ControlServer, ControlError> {
        if path.exists() {
            // A socket file from a crashed run is stale; one that answers is a live daemon.
            if UnixStream::connect(path).await.is_ok() {
                return Err(ControlError::AlreadyRunning(path.to_owned()));
            }
            let _ = std::fs::remove_file(path);
        }
        let bind_error = |source| ControlError::Bind {
            path: path.to_owned(),
            dir: path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(bind_error)?;
        }
        let listener = UnixListener::bind(path).map_err(bind_error)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(bind_error)?;
        Ok(ControlServer {
            listener,
            path: path.to_owned(),
        })
    }

    pub async fn serve(
        self,
        presses: mpsc::Sender<Press>,
        commands: mpsc::Sender<ControlCommand>,
        status: watch::Receiver<Status>,
        pairing: Option<HubCommands>,
        links: crate::pairing::PairLinks,
        shutdown: CancellationToken,
    ) {
        loop {
            let stream = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!("control socket accept failed: {e}");
                        continue;
                    }
                },
            };
            let (presses, commands, status) = (presses.clone(), commands.clone(), status.clone());
            let (pairing, links) = (pairing.clone(), links.clone());
            tokio::spawn(async move {
                let handled = tokio::time::timeout(
                    CLIENT_TIMEOUT,
                    handle_client(stream, presses, commands, status, pairing, links),
                )
                .await;
                if let Ok(Err(e)) = handled {
                    tracing::debug!("control client: {e}");
                }
            });
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One line of the control socket, decoded (sans-IO, so the parser is tested and fuzzed alone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    Press,
    HangUp,
    Status,
    Pair,
    Phones,
    /// `phones remove <phone_id>`; the id follows the protocol's id rule.
    RemovePhone(String),
}

/// Decodes one control-socket line (its trailing newline and surrounding spaces ignored).
pub fn parse_request(line: &str) -> Result<ControlRequest, String> {
    Ok(match line.trim() {
        "press" => ControlRequest::Press,
        "hangup" => ControlRequest::HangUp,
        "status" => ControlRequest::Status,
        "pair" => ControlRequest::Pair,
        "phones" => ControlRequest::Phones,
        other => match other
            .strip_prefix("phones remove")
            .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
            .map(str::trim)
        {
            Some(id) => {
                doorbell_protocol::limits::check_id(id)
                    .map_err(|why| format!("phone id {:?}: {why}", doorbell_protocol::limits::printable(id)))?;
                ControlRequest::RemovePhone(id.to_owned())
            }
            None => {
                return Err(format!(
                    "unknown command {:?} (expected press, status, hangup, pair, phones or phones remove <phone_id>)",
                    doorbell_protocol::limits::printable(other)
                ))
            }
        },
    })
}

async fn handle_client(
    stream: UnixStream,
    presses: mpsc::Sender<Press>,
    commands: mpsc::Sender<ControlCommand>,
    status: watch::Receiver<Status>,
    pairing: Option<HubCommands>,
    links: crate::pairing::PairLinks,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    BufReader::new(read)
        .take(MAX_COMMAND_BYTES)
        .read_line(&mut line)
        .await?;
    let reply = match parse_request(&line) {
        Err(why) => format!("error: {why}"),
        Ok(ControlRequest::Press) => {
            let press = Press {
                at: Instant::now(),
                source: PressSource::ControlSocket,
            };
            match presses.try_send(press) {
                Ok(()) => "ok".to_owned(),
                Err(_) => "error: button queue full, try again".to_owned(),
            }
        }
        Ok(ControlRequest::HangUp) => match commands.try_send(ControlCommand::HangUp) {
            Ok(()) => "ok".to_owned(),
            Err(_) => "error: daemon busy, try again".to_owned(),
        },
        Ok(ControlRequest::Status) => serde_json::to_string(&status.borrow().now())
            .unwrap_or_else(|e| format!("error: cannot encode status: {e}")),
        // The door makes the code itself, in both modes: only it can admit a phone.
        Ok(ControlRequest::Pair) => match links.new_link() {
            Ok(link) => link,
            Err(e) => format!("error: {e}"),
        },
        Ok(ControlRequest::Phones) => hub_command(pairing, HubCommand::Phones).await,
        Ok(ControlRequest::RemovePhone(id)) => {
            hub_command(pairing, HubCommand::RemovePhone(id)).await
        }
    };
    write.write_all(reply.as_bytes()).await?;
    write.write_all(b"\n").await?;
    write.shutdown().await
}

/// Runs `command` on the embedded hub, if this door has one.
async fn hub_command(hub: Option<HubCommands>, command: HubCommand) -> String {
    let Some(run) = hub else {
        return "error: this door uses a remote hub; list and remove phones there (`doorbell-hub phones`) or in the app".to_owned();
    };
    // Small SQLite reads and writes: off the async threads.
    match tokio::task::spawn_blocking(move || run(command)).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) => format!("error: {e}"),
        Err(e) => format!("error: {e}"),
    }
}

/// Client side: send one command and return the daemon's answer.
pub async fn request(path: &Path, command: &str) -> Result<String, ControlError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|source| ControlError::Connect {
            path: path.to_owned(),
            source,
        })?;
    stream.write_all(format!("{command}\n").as_bytes()).await?;
    let mut reply = String::new();
    tokio::time::timeout(
        CLIENT_TIMEOUT,
        BufReader::new(stream).take(64 * 1024).read_line(&mut reply),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no reply in 5 s"))??;
    let reply = reply.trim().to_owned();
    match reply.strip_prefix("error: ") {
        Some(why) => Err(ControlError::Refused(why.to_owned())),
        None => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_decodes_and_anything_else_is_a_clear_error() {
        assert_eq!(parse_request("press\n"), Ok(ControlRequest::Press));
        assert_eq!(parse_request(" status "), Ok(ControlRequest::Status));
        assert_eq!(
            parse_request("phones remove p-1a2b\n"),
            Ok(ControlRequest::RemovePhone("p-1a2b".into()))
        );
        let err = parse_request("phones remove ").unwrap_err();
        assert!(err.contains("invalid id"), "{err}");
        let err = parse_request(&format!("phones remove {}", "p".repeat(65))).unwrap_err();
        assert!(err.contains("invalid id"), "{err}");
        let err = parse_request("reboot\u{1b}[2J").unwrap_err();
        assert!(err.contains("unknown command"), "{err}");
        assert!(
            !err.contains('\u{1b}'),
            "control characters are escaped: {err}"
        );
    }
}
