//! Quick replies: the household's recorded clips, per door (every phone paired with the door
//! sees and uses them), under a per-door quota checked in the same transaction as the insert.

use doorbell_protocol::{DoorId, PhoneId};
use rusqlite::{params, OptionalExtension, TransactionBehavior};
use serde::Serialize;

use super::{Store, StoreError};

/// Appended to the store's migrations.
pub(crate) const MIGRATION: &str = r#"
    CREATE TABLE quick_replies (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        door_id      TEXT NOT NULL REFERENCES doors(id) ON DELETE CASCADE,
        label        TEXT NOT NULL,
        content_type TEXT NOT NULL,
        duration_ms  INTEGER NOT NULL,
        bytes        INTEGER NOT NULL,
        file         TEXT NOT NULL,
        created_at   INTEGER NOT NULL
    );
    CREATE INDEX quick_replies_by_door ON quick_replies(door_id);
"#;

/// A stored reply as the phone lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ReplyInfo {
    pub reply_id: i64,
    pub label: String,
    pub content_type: String,
    pub duration_ms: i64,
}

/// A new reply, its file already named (not yet written).
#[derive(Debug, Clone)]
pub(crate) struct NewReply {
    pub door_id: DoorId,
    pub label: String,
    pub content_type: &'static str,
    pub duration_ms: u64,
    pub bytes: usize,
    pub file: String,
}

/// A door's replies may not grow past these.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReplyQuota {
    pub max_count: usize,
    pub max_bytes: usize,
}

impl Store {
    /// Records `reply` if `phone_id` is paired with its door and the door's quota has room.
    /// `Ok(Err(()))`: over quota, nothing stored; `Ok(Ok(None))`: not this phone's door.
    pub(crate) fn add_reply(
        &self,
        phone_id: &PhoneId,
        reply: &NewReply,
        quota: ReplyQuota,
        now: i64,
    ) -> Result<Result<Option<i64>, ()>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let paired: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pairings WHERE phone_id = ?1 AND door_id = ?2)",
            [phone_id.as_str(), reply.door_id.as_str()],
            |r| r.get(0),
        )?;
        if !paired {
            return Ok(Ok(None));
        }
        let (count, bytes): (i64, i64) = tx.query_row(
            "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM quick_replies WHERE door_id = ?1",
            [reply.door_id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let over =
            count as usize >= quota.max_count || bytes as usize + reply.bytes > quota.max_bytes;
        if over {
            return Ok(Err(()));
        }
        let id = tx.query_row(
            "INSERT INTO quick_replies
                 (door_id, label, content_type, duration_ms, bytes, file, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![
                reply.door_id.as_str(),
                reply.label,
                reply.content_type,
                reply.duration_ms as i64,
                reply.bytes as i64,
                reply.file,
                now
            ],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(Ok(Some(id)))
    }

    /// The replies of `door_id`, oldest first, if `phone_id` is paired with it.
    pub(crate) fn replies_for_phone(
        &self,
        phone_id: &PhoneId,
        door_id: &DoorId,
    ) -> Result<Option<Vec<ReplyInfo>>, StoreError> {
        let conn = self.conn();
        let paired: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM pairings WHERE phone_id = ?1 AND door_id = ?2)",
            [phone_id.as_str(), door_id.as_str()],
            |r| r.get(0),
        )?;
        if !paired {
            return Ok(None);
        }
        let mut stmt = conn.prepare(
            "SELECT id, label, content_type, duration_ms FROM quick_replies
             WHERE door_id = ?1 ORDER BY id",
        )?;
        let rows = stmt
            .query_map([door_id.as_str()], |r| {
                Ok(ReplyInfo {
                    reply_id: r.get(0)?,
                    label: r.get(1)?,
                    content_type: r.get(2)?,
                    duration_ms: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some(rows))
    }

    /// Reply `id`'s (file, content type), if it belongs to `door_id`.
    pub(crate) fn reply_of_door(
        &self,
        door_id: &DoorId,
        id: i64,
    ) -> Result<Option<(String, String)>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT file, content_type FROM quick_replies WHERE id = ?1 AND door_id = ?2",
                params![id, door_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Reply `id`'s door, if `phone_id` is paired with it.
    pub(crate) fn reply_door_for_phone(
        &self,
        phone_id: &PhoneId,
        id: i64,
    ) -> Result<Option<DoorId>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT q.door_id FROM quick_replies q
                 JOIN pairings p ON p.door_id = q.door_id AND p.phone_id = ?1
                 WHERE q.id = ?2",
                params![phone_id.as_str(), id],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(DoorId::new))
    }

    /// Deletes reply `id` if `phone_id` is paired with its door; its file, for the caller.
    pub(crate) fn delete_reply(
        &self,
        phone_id: &PhoneId,
        id: i64,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "DELETE FROM quick_replies WHERE id = ?1 AND door_id IN
                     (SELECT door_id FROM pairings WHERE phone_id = ?2)
                 RETURNING file",
                params![id, phone_id.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }
}
