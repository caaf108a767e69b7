//! The hub's database: doors, phones, pairings, one-time pairing codes, call events, settings.
//!
//! SQLite in WAL mode with a busy timeout, so `doorbell-hub phones remove` in one process can write while
//! `doorbell-hub serve` runs in another. Secrets, tokens and pairing codes are stored only as
//! SHA-256 digests (see [`crate::secrets`]). The schema is versioned with `PRAGMA user_version`
//! and migrated forward in [`Store::open`].
//!
//! All methods are synchronous and short; async callers go through [`Store::call`], which runs
//! them on the blocking pool.
//!
//! | module | tables |
//! |---|---|
//! | [`doors`] | doors |
//! | [`phones`] | pairing codes, phones, pairings |
//! | [`events`] | the call history ([`CallEvent`]), paging and deleting it |
//! | [`snapshots`] | the visitor's snapshots (rows; the files are [`crate::snapshots`]'s), retention |
//! | [`push_subscriptions`] | Web Push subscriptions (one per endpoint, a few per phone) |
//! | this one | schema, migrations, settings, errors |

mod doors;
mod events;
mod household;
mod phones;
mod push_subscriptions;
mod quiet;
mod replies;
mod snapshots;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorbell_protocol::{DoorId, PhoneId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::secrets::RandomError;

pub(crate) use events::{CallEvent, EventKind, HistoryEvent, HistoryPage};
pub(crate) use household::{active, check_access, AccessChange, Member, MemberPatch};
pub(crate) use push_subscriptions::{NewSubscription, PushTarget};
pub(crate) use quiet::RingPhone;
pub(crate) use replies::{NewReply, ReplyInfo, ReplyQuota};
pub(crate) use snapshots::StoredSnapshot;

/// How long hub-made pairing codes (invites of older apps) stay valid. Long enough to walk to the phone and scan,
/// short enough that a link leaked in a chat log is useless later.
pub const PAIRING_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a writer waits for another process's write lock before failing. The CLI and the
/// server share one file; their transactions are milliseconds, so 5 s means "something is wrong".
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Events kept in the history; older ones are pruned on insert so the file cannot grow forever
/// on a door that rings all day (100k rows is a few MB).
pub(crate) const MAX_EVENTS_KEPT: i64 = 100_000;
/// Longest door or phone name accepted; names end up on lock screens and in logs.
pub(crate) const MAX_NAME_CHARS: usize = 64;
/// Attempts to find an unused random id before giving up (32-bit ids; collisions are rare).
const ID_ATTEMPTS: usize = 8;

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
    CREATE TABLE doors (
        id            TEXT PRIMARY KEY,
        name          TEXT NOT NULL,
        secret_sha256 TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        last_seen     INTEGER,
        software      TEXT
    );
    CREATE TABLE phones (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL,
        token_sha256 TEXT NOT NULL UNIQUE,
        created_at   INTEGER NOT NULL,
        last_seen    INTEGER
    );
    CREATE TABLE pairings (
        phone_id   TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE,
        door_id    TEXT NOT NULL REFERENCES doors(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (phone_id, door_id)
    );
    CREATE TABLE pairing_codes (
        code_sha256 TEXT PRIMARY KEY,
        door_id     TEXT NOT NULL REFERENCES doors(id) ON DELETE CASCADE,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        used_at     INTEGER
    );
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,
        door_id     TEXT NOT NULL,
        call_id     TEXT NOT NULL,
        kind        TEXT NOT NULL,
        phone_id    TEXT,
        reason      TEXT,
        duration_ms INTEGER
    );
    CREATE INDEX events_by_door ON events(door_id, id);
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
"#,
    // Web Push subscriptions.
    push_subscriptions::MIGRATION,
    r#"
    CREATE TABLE snapshots (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        door_id TEXT NOT NULL,
        key     TEXT NOT NULL,
        at      INTEGER NOT NULL,
        bytes   INTEGER NOT NULL,
        file    TEXT NOT NULL,
        UNIQUE (door_id, key)
    );
    CREATE INDEX events_by_time ON events(at);
"#,
    // Roles, permissions, invites' grants, the change journal.
    household::MIGRATION,
    // Quiet hours per phone.
    quiet::MIGRATION,
    // Quick replies per door.
    replies::MIGRATION,
];

/// Settings key: the base URL the last `serve` used, so `pair` can print matching links.
pub(crate) const SETTING_BASE_URL: &str = "base_url";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        path: String,
        source: std::io::Error,
    },
    #[error("the database was written by a newer doorbell-hub (schema {found}, this build knows {known}); upgrade doorbell-hub")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("a door named {0:?} already exists; pick another name or use its id")]
    DuplicateDoorName(String),
    #[error("door {0} already exists with a different secret; remove it from the hub or use the secret it was registered with")]
    DoorSecretMismatch(DoorId),
    #[error("no door with id or name {0:?}; `doorbell-hub doors` lists them")]
    UnknownDoor(String),
    #[error("more than one door is named {0:?}; use the door id instead")]
    AmbiguousDoorName(String),
    #[error("invalid name: {0}")]
    InvalidName(&'static str),
    #[error("could not find an unused random id after {ID_ATTEMPTS} attempts")]
    IdSpaceExhausted,
    #[error("unknown pairing code")]
    PairingCodeUnknown,
    #[error("this pairing code was already used; ask for a new link")]
    PairingCodeUsed,
    #[error("this pairing code has expired; ask for a new link")]
    PairingCodeExpired,
    #[error("no phone with id {0:?}; `doorbell-hub phones` lists them")]
    UnknownPhone(String),
    #[error("that phone is not paired with that door")]
    NotPaired,
    #[error("this is the door's last owner: make another phone an owner first")]
    LastOwner,
    #[error("invalid role or permissions: {0}")]
    InvalidAccess(&'static str),
}

/// A door, as the CLI lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DoorRecord {
    pub door_id: DoorId,
    pub name: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last successful `hello`, if any.
    pub last_seen: Option<i64>,
    /// The `software` string of the last `hello`.
    pub software: Option<String>,
    /// How many phones are paired with it.
    pub phones: u32,
}

/// A phone, as the CLI lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhoneRecord {
    pub phone_id: PhoneId,
    pub name: String,
    pub created_at: i64,
    pub last_seen: Option<i64>,
    pub doors: Vec<DoorId>,
}

/// A phone that presented a valid token, with the doors it may hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PhoneAuth {
    pub phone_id: PhoneId,
    /// `(door id, door name)` for every paired door whose access has not ended.
    pub doors: Vec<(DoorId, String)>,
    /// The phone's role and permissions at each of `doors`.
    pub access: std::collections::BTreeMap<DoorId, doorbell_protocol::Access>,
}

/// Result of redeeming a pairing code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Paired {
    pub phone_id: PhoneId,
    /// The phone's token: the one it sent, or a fresh one for a new phone.
    pub token: String,
    pub door_id: DoorId,
    pub door_name: String,
    /// Whether a new phone record was created (no or unknown token sent).
    pub new_phone: bool,
    /// The phone's name, for telling the door's other phones who joined.
    pub phone_name: String,
    /// Whether this pairing is new (not a phone redeeming a code for a door it already had).
    pub joined: bool,
    /// The role and permissions the pairing grants (for a pairing that existed: what the
    /// code said, which the existing pairing kept).
    pub access: doorbell_protocol::Access,
}

/// Handle to the database. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Store {
    /// One connection behind a mutex: SQLite serialises writers anyway, and every statement
    /// here is a point lookup or a small insert.
    conn: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// Current wall-clock time in Unix milliseconds.
pub fn now_ms() -> i64 {
    unix_ms(SystemTime::now())
}

/// `t` in Unix milliseconds (0 before 1970).
pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn check_name(name: &str) -> Result<String, StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::InvalidName("the name is empty"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(StoreError::InvalidName(
            "the name is longer than 64 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::InvalidName(
            "the name contains control characters",
        ));
    }
    Ok(name.to_owned())
}

impl Store {
    /// Opens (creating if needed) the database at `path`, enables WAL and runs migrations.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory database, for unit tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Store, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // `journal_mode` returns a row, so it cannot go through `execute`.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")?;
        let known = MIGRATIONS.len() as i64;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > known {
            return Err(StoreError::SchemaTooNew {
                found: version,
                known,
            });
        }
        for migration in MIGRATIONS.iter().skip(version.max(0) as usize) {
            tx.execute_batch(migration)?;
        }
        tx.execute_batch(&format!("PRAGMA user_version = {known}"))?;
        tx.commit()?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (open transactions
        // roll back on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- settings ----------------------------------------------------------------------

    /// The URL `doorbell-hub serve` last served on ([`crate::Hub::remember_base_url`]), which
    /// hub-made invite links use.
    pub fn base_url(&self) -> Result<Option<String>, StoreError> {
        self.setting(SETTING_BASE_URL)
    }

    pub(crate) fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub(crate) fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

impl Store {
    /// Runs `f` on the blocking pool (SQLite calls block), for async callers.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, StoreCallError>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.clone();
        Ok(tokio::task::spawn_blocking(move || f(&store)).await??)
    }
}

/// Why a [`Store::call`] failed: the database said no, or the task never finished.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreCallError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task panicked (a bug) or was cancelled (the runtime is shutting down).
    #[error("the database task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl StoreCallError {
    /// What to tell a client: retrying helps with a busy database, less so with a fault.
    pub(crate) fn client_message(&self) -> &'static str {
        match self {
            StoreCallError::Store(_) => "hub database error; retry",
            StoreCallError::Task(_) => "hub fault; retry",
        }
    }
}

/// A fresh in-memory store, for unit tests.
#[cfg(test)]
pub(crate) fn test_store() -> Store {
    Store::open_in_memory().expect("open")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store as store;

    #[test]
    fn settings_roundtrip() {
        let s = store();
        assert_eq!(s.setting(SETTING_BASE_URL).expect("get"), None);
        s.set_setting(SETTING_BASE_URL, "https://a").expect("set");
        s.set_setting(SETTING_BASE_URL, "https://b").expect("set");
        assert_eq!(
            s.setting(SETTING_BASE_URL).expect("get"),
            Some("https://b".into())
        );
    }
}
