//! Layered configuration: built-in defaults -> `/etc/doorbell/doorbell.toml` (or `--config`)
//! -> `DOORBELL__SECTION__KEY` environment variables -> `--set section.key=value` on the CLI.
//!
//! Every key is documented in README.md ("Configuration reference"). A mistake names the key,
//! where the bad value came from when known, and what to write instead.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where the system-wide file lives on the appliance.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/doorbell/doorbell.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}\n  fix: check the key's spelling and type against README.md \"Configuration reference\"")]
    Load(#[from] config::ConfigError),
    #[error("configuration key `{key}`: {problem}\n  fix: {fix}")]
    Invalid {
        key: &'static str,
        problem: String,
        fix: String,
    },
    #[error("`--set {0}`: expected KEY=VALUE, e.g. `--set media.camera=test`")]
    BadOverride(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the door's identity, the embedded hub's database and the control socket.
    pub state_dir: PathBuf,
    pub door: DoorConfig,
    pub hub: HubConfig,
    pub media: MediaConfig,
    pub call: CallConfig,
    pub button: ButtonConfig,
    pub gpio: GpioConfig,
    pub control: ControlConfig,
    /// Live view: limits and whether viewers hear the door.
    pub view: ViewConfig,
    /// TURN/STUN for the embedded hub (`--demo` / `hub.listen`): the same `[turn]` table as
    /// `doorbell-hub serve --config` (see README "TURN / NAT traversal"). Here `mode` defaults
    /// to "embedded" and `listen` to the hub's listen IP with port 0.
    #[cfg(feature = "embedded-hub")]
    pub turn: doorbell_hub::TurnConfig,
    /// Retention of the embedded hub's call history and snapshots: the same `[history]` table
    /// as `doorbell-hub serve --config`.
    #[cfg(feature = "embedded-hub")]
    pub history: doorbell_hub::HistoryConfig,
    /// Web Push for the embedded hub: the same `[push]` table as `doorbell-hub serve --config`.
    #[cfg(feature = "embedded-hub")]
    pub push: doorbell_hub::PushConfig,
    /// ntfy for the embedded hub: the same `[notify.ntfy]` table as `doorbell-hub serve --config`.
    #[cfg(feature = "embedded-hub")]
    pub notify: doorbell_hub::NotifyConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DoorConfig {
    /// Shown on the phone's incoming-call screen.
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    /// WebSocket URL of the hub, `wss://host/ws` (or `ws://127.0.0.1:PORT/ws` on loopback).
    /// Ignored in `--demo`, where the hub runs inside this process.
    pub url: String,
    /// The door id printed by `doorbell-hub add-door`.
    pub door_id: String,
    /// The per-door secret printed by `doorbell-hub add-door`. Never logged.
    #[serde(skip_serializing)]
    pub secret: String,
    /// PEM certificate to trust for a hub with a self-signed certificate (empty: system roots).
    pub ca_file: Option<PathBuf>,
    /// Local-first mode: run the hub inside doorbelld, listening here (e.g. "0.0.0.0:8443";
    /// HTTPS with a self-signed certificate unless it is a loopback address). When set,
    /// url, door_id and secret are not used: the door makes its own identity.
    pub listen: Option<std::net::SocketAddr>,
    /// The door pings the hub this often and drops the link after three intervals without
    /// any frame back, then reconnects. Finds a silently dead route (a cut cable, a NAT that
    /// forgot the connection) that the socket itself never reports.
    pub keepalive_secs: u64,
    /// Local-first mode: more host names phones may open the embedded hub by (a router's DNS
    /// name like "doorbell.fritz.box"); its addresses, `localhost`, the machine's host name
    /// and `<host>.local` always work. Others get 421 (DNS rebinding protection).
    pub allowed_hosts: Vec<String>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            door_id: String::new(),
            secret: String::new(),
            ca_file: None,
            listen: None,
            keepalive_secs: crate::link::DEFAULT_KEEPALIVE.as_secs(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// A config enum written as a lowercase word. Parsed by hand so that a typo gets an error that
/// lists the valid words (serde's own message does not).
macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(word: String) -> Result<Self, String> {
                match word.trim().to_ascii_lowercase().as_str() {
                    $($word => Ok(Self::$variant),)+
                    _ => Err(format!(
                        "{word:?} is not one of: {}",
                        [$($word),+].join(", ")
                    )),
                }
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                match value { $($name::$variant => $word.to_owned()),+ }
            }
        }
    };
}

// After `choice!`, which they use.
mod bitrate;
mod gpio;
mod hub;
#[cfg(feature = "embedded-hub")]
mod turn;
mod view;
pub use bitrate::CongestionControl;
pub use gpio::{ButtonEdge, GpioBackend, GpioConfig, MAX_RELAY_PULSE_MS};
pub use view::ViewConfig;

choice!(CameraKind {
    /// First camera GStreamer's device monitor finds, else the test pattern.
    Auto = "auto",
    /// Raspberry Pi camera module through libcamera.
    Libcamera = "libcamera",
    /// A USB (UVC) camera through Video4Linux2.
    V4l2 = "v4l2",
    /// A moving test pattern (no hardware).
    Test = "test",
});

choice!(MicrophoneKind {
    Auto = "auto",
    Alsa = "alsa",
    Pulse = "pulse",
    /// A quiet test tone (no hardware).
    Test = "test",
});

choice!(SpeakerKind {
    Auto = "auto",
    Alsa = "alsa",
    Pulse = "pulse",
    /// Decode the phone's audio and discard it (headless tests, muted doors).
    None = "none",
});

choice!(EncoderKind {
    /// `v4l2h264enc` where a hardware encoder exists, then `x264enc`, then `openh264enc`.
    Auto = "auto",
    V4l2h264enc = "v4l2h264enc",
    X264enc = "x264enc",
    Openh264enc = "openh264enc",
});

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    pub camera: CameraKind,
    /// Device for `v4l2` (e.g. `/dev/video0`) or camera name for `libcamera`; empty = first.
    pub camera_device: String,
    pub microphone: MicrophoneKind,
    /// ALSA device (e.g. `hw:1,0`) or Pulse source name; empty = default.
    pub microphone_device: String,
    pub speaker: SpeakerKind,
    /// ALSA device or Pulse sink name; empty = default.
    pub speaker_device: String,
    pub encoder: EncoderKind,
    pub width: u32,
    pub height: u32,
    pub framerate: u32,
    /// The video bitrate: fixed with `congestion_control = "off"`, else where it starts.
    pub video_bitrate_kbps: u32,
    /// Congestion control: "gcc" (the video bitrate follows the phone's link) or "off".
    pub congestion_control: CongestionControl,
    /// The lowest and highest video bitrate congestion control may choose.
    pub video_min_kbps: u32,
    pub video_max_kbps: u32,
    /// The test camera's picture (`videotestsrc` pattern): "ball" by default; "snow" is
    /// incompressible, so the encoder really sends its bitrate (the network tests use it).
    pub test_pattern: String,
    /// Restrict ICE host candidates to these local addresses (empty: every interface).
    /// Tests use `["127.0.0.1"]` to keep calls on loopback.
    pub ice_local_addresses: Vec<String>,
    /// Acoustic echo cancellation on the door (`webrtcdsp` + `webrtcechoprobe`): the phone's
    /// voice from the door's speaker is removed from the door's microphone, so the person on
    /// the phone does not hear themselves. Off only for a headset-like setup or to compare.
    pub echo_cancel: bool,
    /// Offer VP8 besides H.264 (preferred) and encode it in software for a phone that
    /// decodes no H.264 (Firefox without its OpenH264 plugin), only while one watches.
    /// `false`: such a phone gets audio and Unlock without video.
    pub vp8: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallConfig {
    /// How long phones ring before the call counts as missed.
    pub ring_timeout_secs: u64,
    /// How long from Answer until media must flow before the call is given up.
    pub connect_timeout_secs: u64,
    /// Hard cap on a call's length, so a forgotten phone does not keep the camera streaming.
    pub max_call_secs: u64,
    /// When nobody answers (timeout, every phone declined or quiet), the door plays a prompt
    /// and records the visitor for up to this long, then uploads it as a voice message.
    /// 0 turns voice messages off. At most 60 (the hub refuses longer messages).
    pub voice_message_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ButtonConfig {
    /// Simulated button: Enter on standard input presses it.
    pub stdin: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Unix socket for `doorbelld press` / `doorbelld status` (empty: `<state_dir>/control.sock`).
    pub socket: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: default_state_dir(),
            door: DoorConfig::default(),
            hub: HubConfig::default(),
            media: MediaConfig::default(),
            call: CallConfig::default(),
            button: ButtonConfig::default(),
            gpio: GpioConfig::default(),
            control: ControlConfig::default(),
            view: ViewConfig::default(),
            #[cfg(feature = "embedded-hub")]
            turn: doorbell_hub::TurnConfig::default(),
            #[cfg(feature = "embedded-hub")]
            history: doorbell_hub::HistoryConfig::default(),
            #[cfg(feature = "embedded-hub")]
            push: Default::default(),
            #[cfg(feature = "embedded-hub")]
            notify: Default::default(),
        }
    }
}

impl Default for DoorConfig {
    fn default() -> Self {
        Self {
            name: "Front door".into(),
        }
    }
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            camera: CameraKind::Auto,
            camera_device: String::new(),
            microphone: MicrophoneKind::Auto,
            microphone_device: String::new(),
            speaker: SpeakerKind::Auto,
            speaker_device: String::new(),
            encoder: EncoderKind::Auto,
            width: 640,
            height: 480,
            framerate: 30,
            video_bitrate_kbps: 1200,
            congestion_control: CongestionControl::Gcc,
            video_min_kbps: 150,
            video_max_kbps: 2500,
            test_pattern: "ball".into(),
            ice_local_addresses: Vec::new(),
            echo_cancel: true,
            vp8: true,
        }
    }
}

impl Default for CallConfig {
    fn default() -> Self {
        Self {
            ring_timeout_secs: 30,
            connect_timeout_secs: 20,
            max_call_secs: 600,
            voice_message_secs: 20,
        }
    }
}

impl Default for ButtonConfig {
    fn default() -> Self {
        Self { stdin: true }
    }
}

/// `$STATE_DIRECTORY` (systemd's `StateDirectory=`), else `/var/lib/doorbell` for root, else
/// `$XDG_STATE_HOME/doorbell` or `~/.local/state/doorbell`.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several colon-separated directories; ours is the first.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return PathBuf::from("/var/lib/doorbell");
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("doorbell");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/doorbell"),
        None => PathBuf::from("/var/lib/doorbell"),
    }
}

/// Where a setting may come from, lowest priority first.
pub struct Sources<'a> {
    /// `--config PATH`; when absent, `/etc/doorbell/doorbell.toml` is read if it exists.
    pub file: Option<&'a Path>,
    /// `--set key=value` pairs from the command line, highest priority.
    pub overrides: &'a [String],
}

impl Config {
    pub fn load(sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let defaults = config::Config::try_from(&Config::default())?;
        let mut builder = config::Config::builder().add_source(defaults);
        builder = match sources.file {
            Some(path) => builder.add_source(config::File::from(path).required(true)),
            None => {
                builder.add_source(config::File::with_name(DEFAULT_CONFIG_FILE).required(false))
            }
        };
        builder = builder.add_source(
            config::Environment::with_prefix("DOORBELL")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("media.ice_local_addresses")
                .with_list_parse_key("hub.allowed_hosts"),
        );
        for item in sources.overrides {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| ConfigError::BadOverride(item.clone()))?;
            builder = if matches!(
                key.trim(),
                "media.ice_local_addresses" | "hub.allowed_hosts"
            ) {
                let list: Vec<String> = value.split(',').map(|s| s.trim().to_owned()).collect();
                builder.set_override(key.trim(), list)?
            } else {
                builder.set_override(key.trim(), value)?
            };
        }
        let config: Config = builder.build()?.try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// A configuration from TOML text alone (defaults, then `text`; no environment, no
    /// overrides), checked like [`Config::load`]: for tests and the fuzz targets.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let defaults = config::Config::try_from(&Config::default())?;
        let config: Config = config::Config::builder()
            .add_source(defaults)
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    /// Checks that serde cannot express: ranges and cross-key rules.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: String, fix: &str| ConfigError::Invalid {
            key,
            problem,
            fix: fix.to_owned(),
        };
        if self.door.name.trim().is_empty() || self.door.name.len() > 64 {
            return Err(invalid(
                "door.name",
                format!("{:?} must be 1-64 characters", self.door.name),
                "set door.name = \"Front door\" (it is shown on the phone)",
            ));
        }
        let m = &self.media;
        if !(160..=1920).contains(&m.width) || !m.width.is_multiple_of(2) {
            return Err(invalid(
                "media.width",
                format!("{} is not an even number between 160 and 1920", m.width),
                "use 640 (or 1280 on a Pi 4 with a camera module)",
            ));
        }
        if !(120..=1080).contains(&m.height) || !m.height.is_multiple_of(2) {
            return Err(invalid(
                "media.height",
                format!("{} is not an even number between 120 and 1080", m.height),
                "use 480 (or 720)",
            ));
        }
        if !(1..=60).contains(&m.framerate) {
            return Err(invalid(
                "media.framerate",
                format!("{} is outside 1-60", m.framerate),
                "use 30 (or 15 on a Pi Zero 2 W)",
            ));
        }
        m.validate_bitrates()?;
        for addr in &m.ice_local_addresses {
            if addr.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(
                    "media.ice_local_addresses",
                    format!("{addr:?} is not an IP address"),
                    "list IP addresses, e.g. [\"192.168.1.20\"], or leave it empty for all interfaces",
                ));
            }
        }
        let c = &self.call;
        for (key, value, range) in [
            ("hub.keepalive_secs", self.hub.keepalive_secs, 1..=300),
            ("call.ring_timeout_secs", c.ring_timeout_secs, 5..=300),
            ("call.connect_timeout_secs", c.connect_timeout_secs, 3..=120),
            ("call.max_call_secs", c.max_call_secs, 10..=7200),
            ("call.voice_message_secs", c.voice_message_secs, 0..=60),
            ("view.max_secs", self.view.max_secs, 10..=3600),
        ] {
            if !range.contains(&value) {
                return Err(invalid(
                    key,
                    format!("{value} is outside {}-{}", range.start(), range.end()),
                    "pick a value in that range (seconds)",
                ));
            }
        }
        if !(1..=8).contains(&self.view.max_viewers) {
            return Err(invalid(
                "view.max_viewers",
                format!("{} is outside 1-8", self.view.max_viewers),
                "use 4 (each viewer costs the door uplink; a Pi Zero 2 W manages about 4)",
            ));
        }
        #[cfg(feature = "embedded-hub")]
        {
            self.validate_turn()?;
            for checked in [self.push.validate(), self.notify.validate()] {
                checked.map_err(|e| invalid(e.key, e.problem, e.fix))?;
            }
        }
        self.gpio.validate()
    }

    pub fn control_socket(&self) -> PathBuf {
        self.control
            .socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("control.sock"))
    }

    /// The effective configuration as TOML, secrets left out.
    /// The effective configuration as TOML, with derived values (the control socket) filled
    /// in and the secret left out.
    pub fn to_toml(&self) -> String {
        let mut effective = self.clone();
        effective.control.socket = Some(self.control_socket());
        let mut text = toml::to_string_pretty(&effective)
            .unwrap_or_else(|e| format!("# cannot render: {e}\n"));
        if !text.ends_with('\n') {
            text.push('\n');
        }
        let secret = if self.hub.secret.is_empty() {
            "not set"
        } else {
            "set (not shown)"
        };
        text.push_str(&format!("# hub.secret: {secret}\n"));
        text
    }
}

#[cfg(test)]
mod tests;
