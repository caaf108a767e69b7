use anyhow::Context;
use clap::Parser;
use doorbelld::cli::{Cli, Command};
use doorbelld::config::{Config, Sources};
use doorbelld::link::LinkConfig;
use doorbelld::{control, daemon, demo, media};
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
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
        let word = match command {
            Command::Press => "press",
            Command::Status => "status",
            Command::Hangup => "hangup",
        };
        println!(
            "{}",
            control::request(&config.control_socket(), word).await?
        );
        return Ok(());
    }

    media::check_installation()?;
    let plan = media::plan(&config.media)?;
    tracing::info!(
        encoder = %plan.encoder,
        camera = %plan.video_source,
        microphone = %plan.audio_source,
        speaker = %plan.audio_sink,
        "media plan"
    );

    let shutdown = CancellationToken::new();
    tokio::spawn(watch_signals(shutdown.clone()));

    let (link, hub_task) = if cli.demo {
        let embedded = demo::start(&config, cli.listen, shutdown.clone()).await?;
        if let Some(fingerprint) = &embedded.fingerprint {
            println!("Hub certificate SHA-256: {fingerprint}");
            println!("  (self-signed: compare it with what the phone shows before accepting)");
        }
        println!("Phone: {}", embedded.phone_url);
        if config.button.stdin {
            println!("Press Enter here (or run `doorbelld press`) to ring the door.");
        }
        (embedded.link, Some(embedded.task))
    } else {
        config.validate_hub()?;
        let link = LinkConfig {
            url: config.hub.url.clone(),
            door_id: config.hub.door_id.clone(),
            secret: config.hub.secret.clone(),
            software: doorbelld::SOFTWARE.into(),
            ca_file: config.hub.ca_file.clone(),
        };
        (link, None::<tokio::task::JoinHandle<()>>)
    };

    let result = daemon::run(config, plan, link, shutdown.clone())
        .await
        .context("door daemon stopped");
    shutdown.cancel();
    if let Some(task) = hub_task {
        let _ = task.await;
    }
    result
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
