//! Quiet-hours settings per phone (one JSON row per phone, validated before it is stored), and
//! the per-ring lookup of a door's phones that [`crate::quiet::roster`] turns into a roster.

use doorbell_protocol::{DoorId, PhoneId};
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// Appended to the store's migrations.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE quiet_hours (
        phone_id   TEXT PRIMARY KEY REFERENCES phones(id) ON DELETE CASCADE,
        settings   TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
"#;

/// One paired phone of a door, as a ring needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RingPhone {
    pub(crate) phone_id: PhoneId,
    /// The stored quiet-hours JSON, if the phone set any.
    pub(crate) quiet: Option<String>,
    /// Whether it has a push subscription that has not expired.
    pub(crate) pushable: bool,
}

impl Store {
    /// The phone's quiet-hours JSON, if it stored any.
    pub(crate) fn quiet_settings(&self, phone_id: &PhoneId) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT settings FROM quiet_hours WHERE phone_id = ?1",
                [phone_id.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Replaces the phone's quiet-hours JSON (already validated by the caller).
    pub(crate) fn set_quiet_settings(
        &self,
        phone_id: &PhoneId,
        settings: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO quiet_hours (phone_id, settings, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(phone_id) DO UPDATE SET settings = excluded.settings,
                                                 updated_at = excluded.updated_at",
            params![phone_id.as_str(), settings, now],
        )?;
        Ok(())
    }

    /// Every phone paired with `door_id` (a guest only until its end), with its quiet settings
    /// and whether push reaches it.
    pub(crate) fn ring_phones(
        &self,
        door_id: &DoorId,
        now: i64,
    ) -> Result<Vec<RingPhone>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT p.phone_id, q.settings,
                    EXISTS (SELECT 1 FROM push_subscriptions s
                            WHERE s.phone_id = p.phone_id
                              AND (s.expires_at IS NULL OR s.expires_at > ?2))
             FROM pairings p LEFT JOIN quiet_hours q ON q.phone_id = p.phone_id
             WHERE p.door_id = ?1 AND (p.until_ms IS NULL OR p.until_ms > ?2)
             ORDER BY p.phone_id",
        )?;
        let rows = stmt
            .query_map(params![door_id.as_str(), now], |r| {
                Ok(RingPhone {
                    phone_id: PhoneId::new(r.get::<_, String>(0)?),
                    quiet: r.get(1)?,
                    pushable: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
