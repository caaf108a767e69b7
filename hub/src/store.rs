//! The hub's database: doors, phones, pairings, one-time pairing codes, call events, settings.
//!
//! SQLite in WAL mode with a busy timeout, so `doorbell-hub pair` in one process can write while
//! `doorbell-hub serve` runs in another. Secrets, tokens and pairing codes are stored only as
//! SHA-256 digests (see [`crate::secrets`]). The schema is versioned with `PRAGMA user_version`
//! and migrated forward in [`Store::open`].
//!
//! All methods are synchronous and short; async callers run them on `spawn_blocking`.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use doorbell_protocol::{CallId, DoorId, PhoneId};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use crate::secrets::{self, RandomError};

/// How long `doorbell-hub pair` links stay valid. Long enough to walk to the phone and scan,
/// short enough that a link leaked in a chat log is useless later.
pub const PAIRING_CODE_TTL: Duration = Duration::from_secs(10 * 60);
/// How long a writer waits for another process's write lock before failing. The CLI and the
/// server share one file; their transactions are milliseconds, so 5 s means "something is wrong".
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Events kept in the history; older ones are pruned on insert so the file cannot grow forever
/// on a door that rings all day (100k rows is a few MB).
pub const MAX_EVENTS_KEPT: i64 = 100_000;
/// Longest door or phone name accepted; names end up on lock screens and in logs.
pub const MAX_NAME_CHARS: usize = 64;
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
    // Web Push subscriptions (hub/src/push/store.rs).
    crate::push::store::MIGRATION,
];

/// Settings key: the base URL the last `serve` used, so `pair` can print matching links.
pub const SETTING_BASE_URL: &str = "base_url";

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
pub struct PhoneAuth {
    pub phone_id: PhoneId,
    /// `(door id, door name)` for every paired door.
    pub doors: Vec<(DoorId, String)>,
}

/// Result of redeeming a pairing code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paired {
    pub phone_id: PhoneId,
    /// The phone's token: the one it sent, or a fresh one for a new phone.
    pub token: String,
    pub door_id: DoorId,
    pub door_name: String,
    /// Whether a new phone record was created (no or unknown token sent).
    pub new_phone: bool,
}

/// What happened in a call, for the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The door rang.
    Ring,
    /// A phone answered (`phone_id` says which).
    Answered,
    /// Ringing ended without an answer (`reason`: timeout, declined, cancelled, door_offline).
    Missed,
    /// An answered call ended (`reason` and `duration_ms` say how and how long).
    Ended,
    /// The button was pressed while the door could not reach the hub (reported by the door
    /// when it came back; `at` is the press). There was no call, so `call_id` is absent.
    MissedRing,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Ring => "ring",
            EventKind::Answered => "answered",
            EventKind::Missed => "missed",
            EventKind::Ended => "ended",
            EventKind::MissedRing => "missed_ring",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ring" => EventKind::Ring,
            "answered" => EventKind::Answered,
            "missed" => EventKind::Missed,
            "ended" => EventKind::Ended,
            "missed_ring" => EventKind::MissedRing,
            _ => return None,
        })
    }
}

/// One row of the call history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub door_id: DoorId,
    /// Empty (and left out of the JSON) for a `missed_ring`, which had no call.
    #[serde(skip_serializing_if = "no_call")]
    pub call_id: CallId,
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<PhoneId>,
    /// A `RingEndReason` or `HangUpReason` in its wire spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

fn no_call(id: &CallId) -> bool {
    id.as_str().is_empty()
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
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
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

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite half-written (open transactions
        // roll back on drop), so a poisoned lock is still safe to use.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- doors -------------------------------------------------------------------------

    /// Registers a new door with a random id and a random 128-bit secret. Returns the secret;
    /// only its hash is stored, so this is the only time anyone sees it.
    pub fn add_door(&self, name: &str) -> Result<(DoorId, String), StoreError> {
        let name = check_name(name)?;
        let secret = secrets::random_hex(secrets::DOOR_SECRET_BYTES)?;
        let conn = self.conn();
        let taken: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM doors WHERE name = ?1)",
            [&name],
            |r| r.get(0),
        )?;
        if taken {
            return Err(StoreError::DuplicateDoorName(name));
        }
        for _ in 0..ID_ATTEMPTS {
            let id = DoorId::new(format!("d-{}", secrets::random_hex(secrets::ID_BYTES)?));
            let inserted = conn.execute(
                "INSERT OR IGNORE INTO doors (id, name, secret_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id.as_str(), name, secrets::sha256_hex(secret.as_bytes()), now_ms()],
            )?;
            if inserted == 1 {
                return Ok((id, secret));
            }
        }
        Err(StoreError::IdSpaceExhausted)
    }

    /// Registers a door with an id and secret chosen by the door itself (local-first mode).
    /// Idempotent when the id and secret match (the name is updated); an error when the id
    /// exists with another secret.
    pub fn ensure_door(
        &self,
        door_id: &DoorId,
        name: &str,
        secret: &str,
    ) -> Result<(), StoreError> {
        let name = check_name(name)?;
        if door_id.as_str().is_empty() || secret.is_empty() {
            return Err(StoreError::InvalidName(
                "door id and secret must not be empty",
            ));
        }
        let hash = secrets::sha256_hex(secret.as_bytes());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing: Option<String> = tx
            .query_row(
                "SELECT secret_sha256 FROM doors WHERE id = ?1",
                [door_id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(stored) if secrets::digests_equal(&stored, &hash) => {
                tx.execute(
                    "UPDATE doors SET name = ?2 WHERE id = ?1",
                    params![door_id.as_str(), name],
                )?;
            }
            Some(_) => return Err(StoreError::DoorSecretMismatch(door_id.clone())),
            None => {
                tx.execute(
                    "INSERT INTO doors (id, name, secret_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![door_id.as_str(), name, hash, now_ms()],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Looks a door up by id, or else by exact name.
    pub fn find_door(&self, id_or_name: &str) -> Result<Option<(DoorId, String)>, StoreError> {
        let conn = self.conn();
        let by_id: Option<(String, String)> = conn
            .query_row(
                "SELECT id, name FROM doors WHERE id = ?1",
                [id_or_name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, name)) = by_id {
            return Ok(Some((DoorId::new(id), name)));
        }
        let mut stmt = conn.prepare("SELECT id, name FROM doors WHERE name = ?1 LIMIT 2")?;
        let rows: Vec<(String, String)> = stmt
            .query_map([id_or_name.trim()], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        match rows.len() {
            0 => Ok(None),
            1 => Ok(rows
                .into_iter()
                .next()
                .map(|(id, name)| (DoorId::new(id), name))),
            _ => Err(StoreError::AmbiguousDoorName(id_or_name.to_owned())),
        }
    }

    /// The door's name if `secret` is its secret; `None` for an unknown door or a wrong secret.
    pub fn authenticate_door(
        &self,
        door_id: &DoorId,
        secret: &str,
    ) -> Result<Option<String>, StoreError> {
        let row: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT name, secret_sha256 FROM doors WHERE id = ?1",
                [door_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let hash = secrets::sha256_hex(secret.as_bytes());
        Ok(row.and_then(|(name, stored)| secrets::digests_equal(&stored, &hash).then_some(name)))
    }

    /// Notes a door's successful `hello`.
    pub fn door_seen(&self, door_id: &DoorId, software: &str, at: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE doors SET last_seen = ?2, software = ?3 WHERE id = ?1",
            params![door_id.as_str(), at, software],
        )?;
        Ok(())
    }

    pub fn list_doors(&self) -> Result<Vec<DoorRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT d.id, d.name, d.created_at, d.last_seen, d.software,
                    (SELECT COUNT(*) FROM pairings p WHERE p.door_id = d.id)
             FROM doors d ORDER BY d.created_at, d.id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(DoorRecord {
                    door_id: DoorId::new(r.get::<_, String>(0)?),
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen: r.get(3)?,
                    software: r.get(4)?,
                    phones: r.get(5)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    // ---- pairing -----------------------------------------------------------------------

    /// Creates a one-time pairing code for `door_id`, valid for [`PAIRING_CODE_TTL`].
    pub fn create_pairing_code(&self, door_id: &DoorId) -> Result<String, StoreError> {
        let now = now_ms();
        self.create_pairing_code_at(door_id, now, now + PAIRING_CODE_TTL.as_millis() as i64)
    }

    /// Like [`Store::create_pairing_code`] with explicit times (tests use an expiry in the past).
    pub fn create_pairing_code_at(
        &self,
        door_id: &DoorId,
        now: i64,
        expires_at: i64,
    ) -> Result<String, StoreError> {
        let code = secrets::random_hex(secrets::PAIRING_CODE_BYTES)?;
        let conn = self.conn();
        let known: bool = conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM doors WHERE id = ?1)",
            [door_id.as_str()],
            |r| r.get(0),
        )?;
        if !known {
            return Err(StoreError::UnknownDoor(door_id.to_string()));
        }
        // Housekeeping: codes a day past expiry are only clutter.
        conn.execute(
            "DELETE FROM pairing_codes WHERE expires_at < ?1",
            [now - 24 * 3600 * 1000],
        )?;
        conn.execute(
            "INSERT INTO pairing_codes (code_sha256, door_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![secrets::sha256_hex(code.as_bytes()), door_id.as_str(), now, expires_at],
        )?;
        Ok(code)
    }

    /// Redeems a pairing code: pairs its door with the phone owning `token` (if that token is
    /// valid) or with a new phone, and marks the code used. All in one transaction.
    pub fn redeem_pairing_code(
        &self,
        code: &str,
        token: Option<&str>,
        phone_name: Option<&str>,
        now: i64,
    ) -> Result<Paired, StoreError> {
        let code_hash = secrets::sha256_hex(code.trim().as_bytes());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, i64, Option<i64>)> = tx
            .query_row(
                "SELECT door_id, expires_at, used_at FROM pairing_codes WHERE code_sha256 = ?1",
                [&code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let (door_id, expires_at, used_at) = row.ok_or(StoreError::PairingCodeUnknown)?;
        if used_at.is_some() {
            return Err(StoreError::PairingCodeUsed);
        }
        if now >= expires_at {
            return Err(StoreError::PairingCodeExpired);
        }
        let door_name: String =
            tx.query_row("SELECT name FROM doors WHERE id = ?1", [&door_id], |r| {
                r.get(0)
            })?;

        let existing: Option<String> = match token {
            Some(token) if !token.is_empty() => tx
                .query_row(
                    "SELECT id FROM phones WHERE token_sha256 = ?1",
                    [secrets::sha256_hex(token.as_bytes())],
                    |r| r.get(0),
                )
                .optional()?,
            _ => None,
        };
        let (phone_id, token, new_phone) = match (existing, token) {
            (Some(id), Some(token)) => (id, token.to_owned(), false),
            _ => {
                let token = secrets::random_hex(secrets::PHONE_TOKEN_BYTES)?;
                let name = match phone_name.map(check_name) {
                    Some(Ok(name)) => name,
                    _ => "Phone".to_owned(),
                };
                let mut new_id = None;
                for _ in 0..ID_ATTEMPTS {
                    let id = format!("p-{}", secrets::random_hex(secrets::ID_BYTES)?);
                    let inserted = tx.execute(
                        "INSERT OR IGNORE INTO phones (id, name, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![id, name, secrets::sha256_hex(token.as_bytes()), now],
                    )?;
                    if inserted == 1 {
                        new_id = Some(id);
                        break;
                    }
                }
                (new_id.ok_or(StoreError::IdSpaceExhausted)?, token, true)
            }
        };
        tx.execute(
            "INSERT OR IGNORE INTO pairings (phone_id, door_id, created_at) VALUES (?1, ?2, ?3)",
            params![phone_id, door_id, now],
        )?;
        tx.execute(
            "UPDATE pairing_codes SET used_at = ?2 WHERE code_sha256 = ?1",
            params![code_hash, now],
        )?;
        tx.commit()?;
        Ok(Paired {
            phone_id: PhoneId::new(phone_id),
            token,
            door_id: DoorId::new(door_id),
            door_name,
            new_phone,
        })
    }

    // ---- phones ------------------------------------------------------------------------

    /// The phone owning `token` and its paired doors; `None` for an unknown token.
    pub fn authenticate_phone(&self, token: &str) -> Result<Option<PhoneAuth>, StoreError> {
        let conn = self.conn();
        let phone: Option<String> = conn
            .query_row(
                "SELECT id FROM phones WHERE token_sha256 = ?1",
                [secrets::sha256_hex(token.as_bytes())],
                |r| r.get(0),
            )
            .optional()?;
        let Some(phone_id) = phone else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT d.id, d.name FROM pairings p JOIN doors d ON d.id = p.door_id
             WHERE p.phone_id = ?1 ORDER BY d.name, d.id",
        )?;
        let doors = stmt
            .query_map([&phone_id], |r| {
                Ok((DoorId::new(r.get::<_, String>(0)?), r.get::<_, String>(1)?))
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(PhoneAuth {
            phone_id: PhoneId::new(phone_id),
            doors,
        }))
    }

    /// Notes a phone's successful `hello`.
    pub fn phone_seen(&self, phone_id: &PhoneId, at: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE phones SET last_seen = ?2 WHERE id = ?1",
            params![phone_id.as_str(), at],
        )?;
        Ok(())
    }

    pub fn list_phones(&self) -> Result<Vec<PhoneRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, name, created_at, last_seen FROM phones ORDER BY created_at, id",
        )?;
        let mut phones: Vec<PhoneRecord> = stmt
            .query_map([], |r| {
                Ok(PhoneRecord {
                    phone_id: PhoneId::new(r.get::<_, String>(0)?),
                    name: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen: r.get(3)?,
                    doors: Vec::new(),
                })
            })?
            .collect::<Result<_, _>>()?;
        let mut stmt =
            conn.prepare("SELECT door_id FROM pairings WHERE phone_id = ?1 ORDER BY door_id")?;
        for phone in &mut phones {
            phone.doors = stmt
                .query_map([phone.phone_id.as_str()], |r| {
                    Ok(DoorId::new(r.get::<_, String>(0)?))
                })?
                .collect::<Result<_, _>>()?;
        }
        Ok(phones)
    }

    // ---- events ------------------------------------------------------------------------

    pub fn record_event(&self, event: &CallEvent) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO events (at, door_id, call_id, kind, phone_id, reason, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                event.at,
                event.door_id.as_str(),
                event.call_id.as_str(),
                event.kind.as_str(),
                event.phone_id.as_ref().map(PhoneId::as_str),
                event.reason,
                event.duration_ms,
            ],
        )?;
        let id = conn.last_insert_rowid();
        if id % 1000 == 0 {
            conn.execute("DELETE FROM events WHERE id <= ?1", [id - MAX_EVENTS_KEPT])?;
        }
        Ok(())
    }

    /// The newest `limit` events of the doors `phone_id` is paired with, plus (up to `limit`
    /// more) their missed rings at or after `missed_since` (Unix ms), newest first. A missed
    /// ring is what a phone that was offline most needs to see, and a few calls' worth of
    /// other events would otherwise push it out of a short history.
    pub fn events_for_phone(
        &self,
        phone_id: &PhoneId,
        limit: u32,
        missed_since: i64,
    ) -> Result<Vec<CallEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT e.at, e.door_id, e.call_id, e.kind, e.phone_id, e.reason, e.duration_ms
             FROM events e
             WHERE e.id IN (
                 SELECT n.id FROM events n
                 JOIN pairings p ON p.door_id = n.door_id AND p.phone_id = ?1
                 ORDER BY n.id DESC LIMIT ?2)
             OR e.id IN (
                 SELECT m.id FROM events m
                 JOIN pairings p ON p.door_id = m.door_id AND p.phone_id = ?1
                 WHERE m.kind = 'missed_ring' AND m.at >= ?3
                 ORDER BY m.id DESC LIMIT ?2)
             ORDER BY e.id DESC",
        )?;
        let rows = stmt
            .query_map(params![phone_id.as_str(), limit, missed_since], |r| {
                let kind: String = r.get(3)?;
                Ok((
                    kind,
                    CallEvent {
                        at: r.get(0)?,
                        door_id: DoorId::new(r.get::<_, String>(1)?),
                        call_id: CallId::new(r.get::<_, String>(2)?),
                        kind: EventKind::Ring,
                        phone_id: r.get::<_, Option<String>>(4)?.map(PhoneId::new),
                        reason: r.get(5)?,
                        duration_ms: r.get(6)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // Rows with a kind this build does not know (written by a newer one) are skipped.
        Ok(rows
            .into_iter()
            .filter_map(|(kind, mut e)| {
                e.kind = EventKind::parse(&kind)?;
                Some(e)
            })
            .collect())
    }

    // ---- settings ----------------------------------------------------------------------

    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Store {
        Store::open_in_memory().expect("open")
    }

    #[test]
    fn door_secret_is_checked_and_only_hash_stored() {
        let s = store();
        let (id, secret) = s.add_door("Front door").expect("add");
        assert!(id.as_str().starts_with("d-") && id.as_str().len() == 10);
        assert_eq!(secret.len(), 32);
        assert_eq!(
            s.authenticate_door(&id, &secret).expect("auth"),
            Some("Front door".into())
        );
        assert_eq!(s.authenticate_door(&id, "nope").expect("auth"), None);
        let stored: String = s
            .conn()
            .query_row("SELECT secret_sha256 FROM doors", [], |r| r.get(0))
            .expect("row");
        assert_ne!(stored, secret);
        assert!(matches!(
            s.add_door("Front door"),
            Err(StoreError::DuplicateDoorName(_))
        ));
        assert_eq!(
            s.find_door("Front door").expect("find"),
            Some((id.clone(), "Front door".into()))
        );
        assert_eq!(
            s.find_door(id.as_str()).expect("find").map(|d| d.0),
            Some(id)
        );
        assert_eq!(s.find_door("Back door").expect("find"), None);
    }

    #[test]
    fn ensure_door_is_idempotent_and_refuses_other_secret() {
        let s = store();
        let id = DoorId::new("d-local");
        s.ensure_door(&id, "Gate", "s3cret-s3cret").expect("first");
        s.ensure_door(&id, "Gate 2", "s3cret-s3cret")
            .expect("again");
        assert_eq!(
            s.find_door("d-local").expect("find").map(|d| d.1),
            Some("Gate 2".into())
        );
        assert!(matches!(
            s.ensure_door(&id, "Gate", "other"),
            Err(StoreError::DoorSecretMismatch(_))
        ));
    }

    #[test]
    fn pairing_code_works_once_and_expires() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let (door2, _) = s.add_door("Back").expect("add");
        let code = s.create_pairing_code(&door).expect("code");
        let now = now_ms();
        let paired = s
            .redeem_pairing_code(&code, None, Some("Anna"), now)
            .expect("pair");
        assert!(paired.new_phone);
        assert!(matches!(
            s.redeem_pairing_code(&code, None, None, now),
            Err(StoreError::PairingCodeUsed)
        ));
        assert!(matches!(
            s.redeem_pairing_code("bogus", None, None, now),
            Err(StoreError::PairingCodeUnknown)
        ));
        let expired = s
            .create_pairing_code_at(&door2, now - 10, now - 1)
            .expect("code");
        assert!(matches!(
            s.redeem_pairing_code(&expired, None, None, now),
            Err(StoreError::PairingCodeExpired)
        ));
        // Second door onto the same phone with its token.
        let code2 = s.create_pairing_code(&door2).expect("code");
        let again = s
            .redeem_pairing_code(&code2, Some(&paired.token), None, now)
            .expect("pair");
        assert_eq!(again.phone_id, paired.phone_id);
        assert_eq!(again.token, paired.token);
        let auth = s
            .authenticate_phone(&paired.token)
            .expect("auth")
            .expect("known");
        assert_eq!(auth.doors.len(), 2);
        assert_eq!(s.authenticate_phone("wrong").expect("auth"), None);
        let phones = s.list_phones().expect("list");
        assert_eq!(phones.len(), 1);
        assert_eq!(phones[0].name, "Anna");
        assert_eq!(s.list_doors().expect("doors")[0].phones, 1);
    }

    #[test]
    fn events_are_listed_for_paired_doors_only_newest_first() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let (other, _) = s.add_door("Back").expect("add");
        let code = s.create_pairing_code(&door).expect("code");
        let phone = s
            .redeem_pairing_code(&code, None, None, now_ms())
            .expect("pair");
        for (i, (d, kind)) in [
            (&door, EventKind::Ring),
            (&other, EventKind::Ring),
            (&door, EventKind::Missed),
        ]
        .into_iter()
        .enumerate()
        {
            s.record_event(&CallEvent {
                at: i as i64,
                door_id: d.clone(),
                call_id: CallId::new(format!("c{i}")),
                kind,
                phone_id: None,
                reason: None,
                duration_ms: None,
            })
            .expect("record");
        }
        let events = s.events_for_phone(&phone.phone_id, 50, 0).expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, EventKind::Missed);
        assert_eq!(events[1].call_id.as_str(), "c0");
    }

    #[test]
    fn recent_missed_rings_stay_in_the_history_after_many_calls() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let code = s.create_pairing_code(&door).expect("code");
        let phone = s
            .redeem_pairing_code(&code, None, None, now_ms())
            .expect("pair");
        let event = |at: i64, kind: EventKind, call: &str| CallEvent {
            at,
            door_id: door.clone(),
            call_id: CallId::new(call),
            kind,
            phone_id: None,
            reason: None,
            duration_ms: None,
        };
        s.record_event(&event(1_000, EventKind::MissedRing, ""))
            .expect("old missed ring");
        s.record_event(&event(5_000, EventKind::MissedRing, ""))
            .expect("recent missed ring");
        for i in 0..10 {
            s.record_event(&event(6_000 + i, EventKind::Ring, &format!("c{i}")))
                .expect("ring");
        }
        let events = s
            .events_for_phone(&phone.phone_id, 3, 2_000)
            .expect("events");
        let kinds: Vec<(EventKind, i64)> = events.iter().map(|e| (e.kind, e.at)).collect();
        assert_eq!(
            kinds,
            vec![
                (EventKind::Ring, 6_009),
                (EventKind::Ring, 6_008),
                (EventKind::Ring, 6_007),
                (EventKind::MissedRing, 5_000),
            ],
            "the newest events, then the missed ring since 2 s, not the older one"
        );
    }

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
