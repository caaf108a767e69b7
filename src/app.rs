//! What `doorbelld` does once its configuration is loaded: a subcommand against the running
//! daemon, or the daemon itself, dialing a remote hub or with the hub embedded
//! ([`crate::local_first`]). The one place a [`LinkConfig`] is built.

use crate::cli::{Cli, Command};
use crate::config::{Config, ConfigError};
use crate::control::{self, ControlError};
use crate::daemon::{self, DaemonError};
use crate::identity::{self, IdentityError};
use crate::link::{HubAddress, LinkConfig};
#[cfg(feature = "embedded-hub")]
use crate::local_first::{self, LocalFirstError};
use crate::media::{self, ProbeError};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Media(#[from] ProbeError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[cfg(feature = "embedded-hub")]
    #[error(transparent)]
    LocalFirst(#[from] LocalFirstError),
    #[error(transparent)]
    Control(#[from] ControlError),
    #[error(transparent)]
    Pins(#[from] crate::pairing::RosterError),
    #[error("door daemon stopped")]
    Daemon(#[from] DaemonError),
    #[error("factory-reset wipes this door's identity, paired phones and call history in {0}\n  fix: run `doorbelld factory-reset --yes` with the daemon stopped")]
    ResetNotConfirmed(String),
}

/// Where the embedded hub listens, if this door runs one: `--demo` (on `--listen`) or
/// `hub.listen`. `None`: the door dials `hub.url`.
pub fn embedded_listen(cli: &Cli, config: &Config) -> Option<SocketAddr> {
    if cli.demo {
        Some(cli.listen)
    } else {
        config.hub.listen
    }
}

/// Every check start-up makes on the configuration alone (`--check-config` runs it too).
pub fn check(cli: &Cli, config: &Config) -> Result<(), ConfigError> {
    match embedded_listen(cli, config) {
        None => config.validate_hub(),
        Some(_) if cfg!(feature = "embedded-hub") => Ok(()),
        Some(_) => Err(ConfigError::Invalid {
            key: "hub.listen",
            problem: "this doorbelld was built without the embedded hub (cargo feature `embedded-hub`), so it cannot run one (hub.listen, --demo)".into(),
            fix: "set hub.url, hub.door_id and hub.secret for a remote hub, or use a build with default features".into(),
        }),
    }
}

pub async fn run(cli: Cli, config: Config) -> Result<(), AppError> {
    if let Some(command) = cli.command {
        return run_command(command, &config).await;
    }
    check(&cli, &config)?;
    media::check_installation()?;
    let mut plan = media::plan(&config.media)?;
    tracing::info!(
        encoder = %plan.encoder,
        camera = %plan.video_source,
        microphone = %plan.audio_source,
        speaker = %plan.audio_sink,
        "media plan"
    );
    let identity = identity::load_or_create(&config.state_dir)?;
    plan.dtls = Some(identity.dtls.clone());

    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));

    // `_keep` holds the embedded TURN server, running until the daemon returns.
    let (link, pairing, hub_task, _keep, base_url): Started = match embedded_listen(&cli, &config) {
        #[cfg(feature = "embedded-hub")]
        Some(listen) => {
            let embedded = local_first::start(&config, &identity, listen, shutdown.clone()).await?;
            if let Some(fingerprint) = &embedded.fingerprint {
                println!("Hub certificate SHA-256: {fingerprint}");
                println!("  (self-signed: compare it with what the phone shows before accepting)");
            }
            let link = link_config(&config, embedded.hub, &identity.door_id, &identity.secret);
            let turn = embedded.turn.map(|t| Box::new(t) as Box<dyn Send>);
            (
                link,
                Some(embedded.pairing),
                Some(embedded.task),
                turn,
                embedded.base_url,
            )
        }
        // Without the embedded hub, `check` refused a listen address above.
        _ => {
            tracing::info!(
                "pair a phone: run `doorbelld pair` here and open its link on the phone"
            );
            let base_url = crate::pairing::base_url_of(&config.hub.url);
            let hub = HubAddress {
                url: config.hub.url.clone(),
                ca_file: config.hub.ca_file.clone(),
            };
            let link = link_config(&config, hub, &config.hub.door_id, &config.hub.secret);
            (link, None, None, None, base_url)
        }
    };
    let links = pair_links(&config, &identity, &link.door_id, &base_url)?;
    if embedded_listen(&cli, &config).is_some() {
        // A pairing link admits a phone: it goes only to the terminal of `--demo`, never
        // into a service's output, which the journal keeps and others may read.
        // `doorbelld pair` makes one on demand.
        match cli.demo {
            true => match links.new_link() {
                Ok(url) => println!("Phone: {url}"),
                Err(e) => tracing::error!("cannot make a pairing link: {e}"),
            },
            false => println!("Pair a phone: run `doorbelld pair` on this machine and open its link on the phone."),
        }
        if config.button.stdin {
            println!("Press Enter here (or run `doorbelld press`) to ring the door.");
        }
    }

    let setup = daemon::Setup {
        config,
        plan,
        link,
        pairing,
        links,
    };
    let result = daemon::run(setup, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(task) = hub_task {
        let _ = task.await;
    }
    Ok(result?)
}

/// What start-up made: the link to the hub, the embedded hub's commands and task, what must
/// live as long as the daemon (the embedded TURN server), and the URL phones open.
type Started = (
    LinkConfig,
    Option<crate::control::HubCommands>,
    Option<JoinHandle<()>>,
    Option<Box<dyn Send>>,
    String,
);

/// What `doorbelld pair` makes links with. The pinned phones are loaded once here and shared
/// by the control socket and the call task.
fn pair_links(
    config: &Config,
    identity: &identity::Identity,
    door_id: &str,
    base_url: &str,
) -> Result<crate::pairing::PairLinks, AppError> {
    Ok(crate::pairing::PairLinks {
        pairing: crate::pairing::Pairing::load(&config.state_dir, door_id)?.shared(),
        base_url: base_url.to_owned(),
        door_name: std::sync::Arc::new(std::sync::Mutex::new(config.door.name.clone())),
        door_id: door_id.to_owned(),
        door_fp: identity.dtls.sha256().to_owned(),
    })
}

/// How the door reaches `hub` as `door_id` with `secret`.
fn link_config(config: &Config, hub: HubAddress, door_id: &str, secret: &str) -> LinkConfig {
    LinkConfig {
        url: hub.url,
        door_id: door_id.to_owned(),
        secret: secret.to_owned(),
        software: crate::SOFTWARE.into(),
        ca_file: hub.ca_file,
        keepalive: Duration::from_secs(config.hub.keepalive_secs),
        backoff: Default::default(),
    }
}

/// The subcommands: talk to the running daemon, or reset this one.
async fn run_command(command: Command, config: &Config) -> Result<(), AppError> {
    let word = match command {
        Command::Press => "press",
        Command::Status => "status",
        Command::Hangup => "hangup",
        Command::Pair => "pair",
        Command::Phones { action: None } => "phones",
        Command::Phones {
            action: Some(crate::cli::PhonesAction::Remove { phone_id }),
        } => {
            let line = format!("phones remove {}", phone_id.trim());
            println!(
                "{}",
                control::request(&config.control_socket(), &line).await?
            );
            return Ok(());
        }
        Command::FactoryReset { yes: false } => {
            return Err(AppError::ResetNotConfirmed(
                config.state_dir.display().to_string(),
            ));
        }
        Command::FactoryReset { yes: true } => {
            let identity =
                identity::factory_reset(&config.state_dir, &config.control_socket()).await?;
            println!(
                "Factory reset done. New door id: {}. Phones must pair again.",
                identity.door_id
            );
            return Ok(());
        }
    };
    println!(
        "{}",
        control::request(&config.control_socket(), word).await?
    );
    Ok(())
}

/// SIGTERM or SIGINT starts a graceful shutdown; a second one exits at once.
async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::info!("shutting down");
    shutdown.cancel();
    tokio::select! { _ = term.recv() => {}, _ = int.recv() => {} }
    tracing::warn!("second signal: exiting now");
    std::process::exit(130);
}
