//! `doorbell-hub`: command line for the signaling hub. The work happens in the library; this
//! file parses arguments, prints, and turns signals into a graceful shutdown.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use doorbell_hub::{
    now_ms, AcmeConfig, HistoryConfig, Hub, HubConfig, Store, TlsMode, TurnConfig, TurnDefaults,
};
use doorbell_protocol::limits::printable;
use doorbell_protocol::IceServer;

#[derive(Debug, Parser)]
#[command(
    name = "doorbell-hub",
    version,
    about = "Signaling hub for the doorbell: doors, phones, pairing, ring fan-out, the phone web app"
)]
struct Cli {
    /// SQLite database [default: $STATE_DIRECTORY/hub.sqlite3 under systemd, else ./doorbell-hub.sqlite3]
    #[arg(long, global = true, env = "DOORBELL_HUB_DB", value_name = "PATH")]
    db: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the phone app and the signaling WebSocket.
    Serve(Box<ServeArgs>),
    /// Register a door; prints its id and secret (once).
    AddDoor {
        /// A name shown on phones, e.g. "Front door".
        name: String,
        /// Print {"door_id","secret","name"} as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Refused: only the door admits a phone. Run `doorbelld pair` on the door.
    Pair {
        /// Door id or name.
        door: String,
        /// Base URL for the link [default: the one the last `serve` used].
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
    },
    /// List registered doors (or remove one, or replace its secret).
    Doors {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<DoorsAction>,
    },
    /// List paired phones (or remove one).
    Phones {
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<PhonesAction>,
    },
}

/// `doorbell-hub doors ...`. Each acts on a running hub too: it follows the database's
/// household journal and closes the door's connection within a second.
#[derive(Debug, Subcommand)]
enum DoorsAction {
    /// List registered doors (the default).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete a door: its pairings, pairing codes and history. Phones paired with no other
    /// door are deleted too.
    Remove {
        /// Door id or name.
        door: String,
    },
    /// Give a door a new secret (printed once); the old one stops working at once.
    RotateSecret {
        /// Door id or name.
        door: String,
        /// Print {"door_id","secret"} as one JSON line.
        #[arg(long)]
        json: bool,
    },
}

/// `doorbell-hub phones ...`.
#[derive(Debug, Subcommand)]
enum PhonesAction {
    /// List paired phones (the default).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove a lost phone from every door: its token stops working, its push subscriptions
    /// are deleted, and a running hub closes its connections within a second.
    Remove {
        /// The phone's id (`doorbell-hub phones` lists them).
        phone_id: String,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "0.0.0.0:8443", value_name = "ADDR")]
    listen: SocketAddr,
    /// Base URL phones use to reach the hub, for pairing links (e.g. https://doorbell.example).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// PEM certificate chain (with --tls-key).
    #[arg(long, value_name = "PEM", requires = "tls_key", conflicts_with_all = ["self_signed", "insecure_http"])]
    tls_cert: Option<PathBuf>,
    /// PEM private key (with --tls-cert).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Use a self-signed certificate, generated once next to the database (the default).
    #[arg(long, conflicts_with = "insecure_http")]
    self_signed: bool,
    /// Plain HTTP. Only on a loopback address (e.g. behind a TLS-terminating proxy).
    #[arg(long)]
    insecure_http: bool,
    /// Get a certificate phones trust from an ACME CA (Let's Encrypt) for this DNS name, and
    /// renew it while serving (repeatable). Port 443 of the name must reach this hub. See
    /// README "A certificate phones trust".
    #[arg(long = "acme-domain", value_name = "NAME", conflicts_with_all = ["tls_cert", "self_signed", "insecure_http"])]
    acme_domain: Vec<String>,
    /// Contact for the ACME account, a mailto: URL (repeatable).
    #[arg(long = "acme-contact", value_name = "URL", requires = "acme_domain")]
    acme_contact: Vec<String>,
    /// ACME directory URL [default: Let's Encrypt production,
    /// https://acme-v02.api.letsencrypt.org/directory].
    #[arg(long, value_name = "URL", requires = "acme_domain")]
    acme_directory: Option<String>,
    /// PEM root certificate(s) to trust for the connection to the ACME directory, instead of
    /// the built-in Mozilla roots (a test or private CA).
    #[arg(long, value_name = "PEM", requires = "acme_domain")]
    acme_ca_file: Option<PathBuf>,
    /// STUN server URL handed to doors and phones (repeatable), e.g. stun:stun.example.org:3478.
    #[arg(long = "stun", value_name = "URL")]
    stun: Vec<String>,
    /// TOML file with `[turn]` (embedded TURN server or external coturn; see README
    /// "TURN / NAT traversal"), `[push]`, `[notify.ntfy]`, `[history]` (retention) and
    /// `[limits]` (connections per client, proxies, hosts) tables.
    /// Without it, TURN is off and the history keeps its default limits.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// The file given to `serve --config`. Unknown tables and keys are errors.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    #[serde(default)]
    turn: TurnConfig,
    /// Retention of the call history and the visitor's snapshots.
    #[serde(default)]
    history: HistoryConfig,
    /// Web Push (`vapid_subject`, ...).
    #[serde(default)]
    push: doorbell_hub::PushConfig,
    /// `[notify.ntfy]`.
    #[serde(default)]
    notify: doorbell_hub::NotifyConfig,
    /// Connections per client, caps, timeouts, trusted proxies, allowed hosts and origins.
    #[serde(default)]
    limits: doorbell_hub::LimitsConfig,
}

fn read_serve_file(path: &std::path::Path) -> Result<ServeFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading --config {}", path.display()))?;
    toml::from_str(&text).with_context(|| {
        format!(
            "--config {}: fix the key named above (see README \"Configuration reference\")",
            path.display()
        )
    })
}

/// The ACME settings of `serve`, checked; `None` without `--acme-domain`.
fn acme_config(args: &ServeArgs) -> Result<Option<AcmeConfig>> {
    if args.acme_domain.is_empty() {
        return Ok(None);
    }
    // CAs compare names case-insensitively but issue them in lowercase.
    let domains = args
        .acme_domain
        .iter()
        .map(|d| d.to_ascii_lowercase())
        .collect();
    let defaults = AcmeConfig::new(domains);
    let config = AcmeConfig {
        contact: args.acme_contact.clone(),
        directory: args
            .acme_directory
            .clone()
            .unwrap_or(defaults.directory.clone()),
        ca_file: args.acme_ca_file.clone(),
        ..defaults
    };
    config.validate()?;
    if config.contact.is_empty() {
        tracing::warn!("no --acme-contact: the CA cannot reach you about your account");
    }
    Ok(Some(config))
}

fn default_db() -> PathBuf {
    // systemd's StateDirectory= may list several directories, separated by ':'.
    match std::env::var_os("STATE_DIRECTORY") {
        Some(dirs) if !dirs.is_empty() => {
            let dirs = dirs.to_string_lossy().into_owned();
            let first = dirs.split(':').next().unwrap_or(&dirs).to_owned();
            PathBuf::from(first).join("hub.sqlite3")
        }
        _ => PathBuf::from("doorbell-hub.sqlite3"),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let db = cli.db.unwrap_or_else(default_db);
    match cli.command {
        Command::Serve(args) => serve(db, *args).await,
        Command::AddDoor { name, json } => add_door(&open_store(&db)?, &name, json),
        Command::Pair { door, public_url } => pair(&open_store(&db)?, &door, public_url),
        Command::Doors { json, action } => {
            let store = open_store(&db)?;
            match action {
                None => doors(&store, json),
                Some(DoorsAction::List { json }) => doors(&store, json),
                Some(DoorsAction::Remove { door }) => remove_door(&store, &db, &door),
                Some(DoorsAction::RotateSecret { door, json }) => {
                    rotate_secret(&store, &door, json)
                }
            }
        }
        Command::Phones { json, action } => {
            let store = open_store(&db)?;
            match action {
                None => phones(&store, json),
                Some(PhonesAction::List { json }) => phones(&store, json),
                Some(PhonesAction::Remove { phone_id }) => {
                    let doors = store.remove_phone(phone_id.trim())?;
                    println!(
                        "Removed phone {phone_id} from {} door(s); a running hub disconnects it within a second.",
                        doors.len()
                    );
                    Ok(())
                }
            }
        }
    }
}

fn open_store(db: &std::path::Path) -> Result<Store> {
    Store::open(db).with_context(|| format!("opening the hub database {}", db.display()))
}

async fn serve(db: PathBuf, args: ServeArgs) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let acme = acme_config(&args)?;
    // Under ACME phones use the certificate's name; port 443 of it reaches the hub (the CA's
    // validation needs that too).
    let public_url = args.public_url.clone().or_else(|| {
        acme.as_ref()
            .and_then(|a| a.domains.first())
            .map(|d| format!("https://{d}"))
    });
    let tls = match (args.tls_cert, args.tls_key, args.insecure_http, acme) {
        (_, _, _, Some(acme)) => TlsMode::Acme(acme),
        (Some(cert), Some(key), _, _) => TlsMode::Files { cert, key },
        (_, _, true, _) => {
            if !args.listen.ip().is_loopback() {
                bail!(
                    "--insecure-http is only allowed on a loopback address (got {}); \
                     use --listen 127.0.0.1:PORT behind a TLS proxy, or drop --insecure-http to use a self-signed certificate",
                    args.listen
                );
            }
            TlsMode::Plain
        }
        _ => TlsMode::SelfSigned,
    };
    let self_signed = tls == TlsMode::SelfSigned;
    let file = match &args.config {
        Some(path) => read_serve_file(path)?,
        None => ServeFile::default(),
    };
    let resolved = file
        .turn
        .resolve(&TurnDefaults::standalone(&db))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let turn = doorbell_hub::start_turn(&resolved)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut ice_servers: Vec<IceServer> = args
        .stun
        .into_iter()
        .map(|url| IceServer {
            urls: vec![url],
            username: None,
            credential: None,
        })
        .collect();
    ice_servers.extend(turn.stun.iter().cloned());
    let hub = Hub::open(HubConfig {
        db_path: db.clone(),
        public_url,
        ice_servers,
        tls,
        turn: turn.issuer.clone(),
        history: file.history,
        push: file.push,
        notify: file.notify,
        limits: file.limits,
    })
    .with_context(|| format!("starting the hub with database {}", db.display()))?;

    // Signals are registered before listening so an early SIGTERM is not lost.
    let mut signals = Signals::new()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // Before "Listening on": a script that runs `pair` on seeing it must find the base URL.
    hub.remember_base_url(local)
        .await
        .context("remembering the base URL")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "Listening on {}", hub.local_url(local))?;
    if let (true, Some(fp)) = (self_signed, hub.tls_fingerprint()) {
        writeln!(stdout, "TLS certificate SHA-256 fingerprint: {fp}")?;
    }
    if let Some(embedded) = &turn.embedded {
        writeln!(stdout, "TURN/STUN on udp {}", embedded.local_addr())?;
    }
    stdout.flush()?;
    drop(stdout);
    tracing::info!(
        "phones open {}; pair one with `doorbelld pair` on its door",
        hub.base_url(local)
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received: draining connections (send it again to exit at once)");
        let _ = stop_tx.send(());
        signals.next().await;
        eprintln!("second signal: exiting now");
        std::process::exit(130);
    });
    hub.serve(listener, async {
        let _ = stop_rx.await;
    })
    .await?;
    if let Some(embedded) = turn.embedded {
        embedded.close().await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// SIGTERM and SIGINT as one stream.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

fn add_door(store: &Store, name: &str, json: bool) -> Result<()> {
    let (door_id, secret) = store.add_door(name)?;
    if json {
        let line = serde_json::json!({"door_id": door_id, "secret": secret, "name": name.trim()});
        println!("{line}");
    } else {
        println!("Registered door {:?}.", name.trim());
        println!("  door id: {door_id}");
        println!("  secret:  {secret}");
        println!();
        println!("The secret is shown only this once (the hub keeps only its hash).");
        println!("Put both into the door's /etc/doorbell/doorbell.toml:");
        println!();
        println!("  [hub]");
        println!("  door_id = \"{door_id}\"");
        println!("  secret = \"{secret}\"");
        println!();
        println!("Then pair a phone: run `doorbelld pair` on the door.");
    }
    Ok(())
}

fn pair(store: &Store, door: &str, _public_url: Option<String>) -> Result<()> {
    let Some((door_id, name)) = store.find_door(door)? else {
        bail!("no door with id or name {door:?}; `doorbell-hub doors` lists them, `doorbell-hub add-door NAME` adds one");
    };
    // A code the hub made would let the hub (or whoever controls it) admit phones; the door
    // refuses calls from phones it did not pin itself (docs/SECURITY-MODEL.md).
    bail!(
        "the hub cannot admit a phone: only the door can. On the door {name:?} ({door_id}) run `doorbelld pair` \
         and open its link on the phone (or ask an owner for an invite in the app)"
    )
}

fn known_door(store: &Store, door: &str) -> Result<(doorbell_protocol::DoorId, String)> {
    store.find_door(door)?.with_context(|| {
        format!("no door with id or name {door:?}; `doorbell-hub doors` lists them")
    })
}

fn remove_door(store: &Store, db: &std::path::Path, door: &str) -> Result<()> {
    let (door_id, name) = known_door(store, door)?;
    let files = store.remove_door(&door_id)?;
    doorbell_hub::remove_snapshot_files(db, &files)?;
    println!("Removed door {name:?} ({door_id}), its pairings and its history.");
    Ok(())
}

fn rotate_secret(store: &Store, door: &str, json: bool) -> Result<()> {
    let (door_id, name) = known_door(store, door)?;
    let secret = store.rotate_door_secret(&door_id)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"door_id": door_id, "secret": secret})
        );
    } else {
        println!("New secret for {name:?} ({door_id}): {secret}");
        println!("The old secret no longer works. Put the new one into the door's");
        println!("/etc/doorbell/doorbell.toml ([hub] secret) and restart doorbelld.");
    }
    Ok(())
}

fn ago(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "never".into();
    };
    let secs = (now_ms() - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs} s ago"),
        60..3600 => format!("{} min ago", secs / 60),
        3600..86400 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

fn doors(store: &Store, json: bool) -> Result<()> {
    let doors = store.list_doors()?;
    if json {
        println!("{}", serde_json::to_string(&doors)?);
        return Ok(());
    }
    if doors.is_empty() {
        println!("No doors yet: doorbell-hub add-door \"Front door\"");
    }
    for d in doors {
        println!(
            "{}  {:<24}  phones: {:<3} last seen: {}{}",
            d.door_id,
            printable(&d.name),
            d.phones,
            ago(d.last_seen),
            // Stored by older hubs without the protocol's text rules: never let a door's
            // string drive the operator's terminal.
            d.software
                .map(|s| format!(" ({})", printable(&s)))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn phones(store: &Store, json: bool) -> Result<()> {
    let phones = store.list_phones()?;
    if json {
        println!("{}", serde_json::to_string(&phones)?);
        return Ok(());
    }
    if phones.is_empty() {
        println!("No phones yet: run `doorbelld pair` on the door");
    }
    for p in phones {
        let doors: Vec<String> = p.doors.iter().map(ToString::to_string).collect();
        println!(
            "{}  {:<24}  last seen: {:<14} doors: {}",
            p.phone_id,
            printable(&p.name),
            ago(p.last_seen),
            doors.join(", ")
        );
    }
    Ok(())
}
