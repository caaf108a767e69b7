//! `doorbelld`: parse the command line, load the configuration, start the app
//! ([`doorbelld::app`]).

use clap::Parser;
use doorbelld::cli::Cli;
use doorbelld::config::{Config, Sources};
use std::process::ExitCode;

fn main() -> ExitCode {
    doorbelld::limit_malloc_arenas();
    doorbelld::skip_openssl_exit_cleanup();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let sources = Sources {
        file: cli.config.as_deref(),
        overrides: &cli.overrides,
    };
    let config = match Config::load(&sources) {
        Ok(config) if cli.check_config => {
            // Every check start-up makes, then the effective configuration.
            if let Err(e) = doorbelld::app::check(&cli, &config) {
                eprintln!("doorbelld: {e}");
                return ExitCode::from(2);
            }
            print!("{}", config.to_toml());
            return ExitCode::SUCCESS;
        }
        Ok(config) => config,
        Err(e) => {
            eprintln!("doorbelld: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("doorbelld: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(doorbelld::app::run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("doorbelld: {:#}", anyhow::Error::from(e));
            ExitCode::FAILURE
        }
    }
}
