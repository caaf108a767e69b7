use anyhow::Context;
use clap::Parser;
use doorbelld::cli::{Cli, Command};
use doorbelld::config::{Config, Sources};
use doorbelld::link::LinkConfig;
use doorbelld::{control, daemon, demo, identity, media};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    doorbelld::limit_malloc_arenas();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let config = match Config::load(&Sources {
        file: cli.config.as_deref(),
        overrides: &cli.overrides,
    }) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("doorbelld: {e}");
            return ExitCode::from(2);
        }
    };
    if cli.check_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("doorbelld: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doorbelld: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Some(command) = cli.command {
        return run_command(command, &config).await;
    }

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

    // --demo (or hub.listen) embeds the hub; otherwise the door dials the configured one.
    let embedded_listen = if cli.demo {
        Some(cli.listen)
    } else {
        config.hub.listen
    };
    // `_turn` keeps the embedded TURN server running until the daemon returns.
    let (link, pairing, hub_task, _turn) = if let Some(listen) = embedded_listen {
        let embedded = demo::start(&config, &identity, listen, shutdown.clone()).await?;
        if let Some(fingerprint) = &embedded.fingerprint {
            println!("Hub certificate SHA-256: {fingerprint}");
            println!("  (self-signed: compare it with what the phone shows before accepting)");
        }
        println!("Phone: {}", embedded.phone_url);
        if config.button.stdin {
            println!("Press Enter here (or run `doorbelld press`) to ring the door.");
        }
        (
            embedded.link,
            Some(embedded.pairing),
            Some(embedded.task),
            embedded.turn,
        )
    } else {
        config.validate_hub()?;
        tracing::info!(
            "pair phones on the hub: `doorbell-hub pair {}`",
            config.hub.door_id
        );
        let link = LinkConfig {
            url: config.hub.url.clone(),
            door_id: config.hub.door_id.clone(),
            secret: config.hub.secret.clone(),
            software: doorbelld::SOFTWARE.into(),
            ca_file: config.hub.ca_file.clone(),
            keepalive: std::time::Duration::from_secs(config.hub.keepalive_secs),
            backoff: Default::default(),
        };
        (link, None, None, None)
    };

    let setup = daemon::Setup {
        config,
        plan,
        link,
        pairing,
    };
    let result = daemon::run(setup, shutdown.clone())
        .await
        .context("door daemon stopped");
    shutdown.cancel();
    if let Some(task) = hub_task {
        let _ = task.await;
    }
    result
}

/// The subcommands: talk to the running daemon, or reset this one.
async fn run_command(command: Command, config: &Config) -> anyhow::Result<()> {
    let word = match command {
        Command::Press => "press",
        Command::Status => "status",
        Command::Hangup => "hangup",
        Command::Pair => "pair",
        Command::FactoryReset { yes: false } => {
            anyhow::bail!(
                "factory-reset wipes this door's identity, paired phones and call history in {}\n  fix: run `doorbelld factory-reset --yes` with the daemon stopped",
                config.state_dir.display()
            );
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
