//! Command line: `doorbelld [--demo] [--listen ADDR] [--config FILE] [--set KEY=VALUE]...
//! [--check-config] [press|status|hangup|pair|phones [remove ID]|factory-reset --yes]`.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "doorbelld",
    version,
    about = "Video doorbell daemon: rings phones, streams the door's camera and microphone to the one who answers"
)]
pub struct Cli {
    /// Configuration file (default: /etc/doorbell/doorbell.toml if it exists).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override one configuration key, e.g. `--set media.camera=test`. Repeatable; wins over
    /// the file and DOORBELL__* environment variables.
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,

    /// Local-first mode: run the hub inside this process and print a pairing link for a phone.
    #[arg(long)]
    pub demo: bool,

    /// Where the embedded hub listens in --demo mode (port 0 picks a free port). A loopback
    /// address serves plain HTTP; any other address serves HTTPS with a self-signed certificate.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8080",
        requires = "demo"
    )]
    pub listen: SocketAddr,

    /// Print the effective configuration (secrets left out) and exit; exit code 2 on errors.
    #[arg(long)]
    pub check_config: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Press the call button of the running daemon.
    Press,
    /// Print the running daemon's state as JSON.
    Status,
    /// End the current call (or stop ringing) on the running daemon.
    Hangup,
    /// Print a one-time link that pairs a phone with this door (hub embedded in doorbelld).
    Pair,
    /// List the phones paired with the embedded hub (one JSON line), or remove one.
    Phones {
        #[command(subcommand)]
        action: Option<PhonesAction>,
    },
    /// Forget everything: identity, paired phones, call history; make a new identity.
    /// The daemon must be stopped.
    FactoryReset {
        /// Confirm: without it nothing is wiped.
        #[arg(long)]
        yes: bool,
    },
}

/// `doorbelld phones ...`.
#[derive(Debug, Subcommand)]
pub enum PhonesAction {
    /// Remove a phone: its connections close, its token stops working, it never rings again.
    Remove {
        /// The phone's id (`doorbelld phones` lists them).
        phone_id: String,
    },
}
