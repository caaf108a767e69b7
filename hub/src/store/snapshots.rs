//! The visitor's snapshots as rows (the JPEG files are kept by [`crate::snapshots`]), and the
//! retention that prunes events and snapshots by the `[history]` limits.

use doorbell_protocol::{DoorId, PhoneId};
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};
use crate::snapshots::{HistoryConfig, MediaKind, SnapshotKey};

/// A snapshot whose upload is younger than this is kept even if no event refers to it yet:
/// the door's upload can reach the hub before the recorder has written the ring.
const ORPHAN_GRACE_MS: i64 = 10 * 60 * 1000;

/// One stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredSnapshot {
    pub id: i64,
    pub door_id: DoorId,
    pub key: SnapshotKey,
    pub file: String,
}

fn snapshot_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_stored(
    kind: MediaKind,
    (id, door, key, file): (i64, String, String, String),
) -> Option<StoredSnapshot> {
    Some(StoredSnapshot {
        id,
        door_id: DoorId::new(door),
        key: kind.decode(&key)?,
        file,
    })
}

impl Store {
    /// Records (or replaces, for a retried upload) the snapshot of `key` at `door_id`, whose
    /// file is already written. Returns its id.
    #[cfg(test)]
    pub(crate) fn put_snapshot(
        &self,
        door_id: &DoorId,
        key: &SnapshotKey,
        file: &str,
        bytes: usize,
        at: i64,
    ) -> Result<i64, StoreError> {
        self.put_media(MediaKind::Snapshot, door_id, key, file, bytes, at)
    }

    /// [`Store::put_snapshot`] for either kind of a press's media.
    pub(crate) fn put_media(
        &self,
        kind: MediaKind,
        door_id: &DoorId,
        key: &SnapshotKey,
        file: &str,
        bytes: usize,
        at: i64,
    ) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "INSERT INTO snapshots (door_id, key, at, bytes, file) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (door_id, key) DO UPDATE SET at = excluded.at, bytes = excluded.bytes,
                 file = excluded.file
             RETURNING id",
            params![
                door_id.as_str(),
                kind.stored_key(key),
                at,
                bytes as i64,
                file
            ],
            |r| r.get(0),
        )?)
    }

    #[cfg(test)]
    /// The snapshot of `key` at `door_id`, if uploaded.
    pub(crate) fn snapshot_by_key(
        &self,
        door_id: &DoorId,
        key: &SnapshotKey,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        self.media_by_key(MediaKind::Snapshot, door_id, key)
    }

    /// [`Store::snapshot_by_key`] for either kind.
    pub(crate) fn media_by_key(
        &self,
        kind: MediaKind,
        door_id: &DoorId,
        key: &SnapshotKey,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT id, door_id, key, file FROM snapshots WHERE door_id = ?1 AND key = ?2",
                params![door_id.as_str(), kind.stored_key(key)],
                snapshot_row,
            )
            .optional()?;
        Ok(row.and_then(|r| to_stored(kind, r)))
    }

    /// Snapshot (or voice message, by `kind`) `id`, only if `phone_id` is paired with its
    /// door (`None` for an id of the other kind).
    pub(crate) fn media_for_phone(
        &self,
        kind: MediaKind,
        phone_id: &PhoneId,
        id: i64,
    ) -> Result<Option<StoredSnapshot>, StoreError> {
        let row = self
            .conn()
            .query_row(
                "SELECT s.id, s.door_id, s.key, s.file FROM snapshots s
                 JOIN pairings p ON p.door_id = s.door_id AND p.phone_id = ?1
                 WHERE s.id = ?2",
                params![phone_id.as_str(), id],
                snapshot_row,
            )
            .optional()?;
        Ok(row.and_then(|r| to_stored(kind, r)))
    }

    /// Deletes what the `[history]` limits no longer allow at `now_ms`: events older than
    /// `max_days` or beyond the newest `max_events`, snapshots older than `max_days`, snapshots
    /// whose event is gone, and the oldest snapshots past `max_bytes`. Returns the files of the
    /// deleted snapshots, for the caller to delete.
    pub(crate) fn prune(
        &self,
        limits: &HistoryConfig,
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let cutoff = now_ms.saturating_sub(limits.max_age_ms());
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM events WHERE at < ?1", [cutoff])?;
        tx.execute(
            "DELETE FROM events WHERE id < (
                 SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?1)",
            [i64::from(limits.max_events.max(1)) - 1],
        )?;
        let mut files = Vec::new();
        {
            let mut delete = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<(), StoreError> {
                let mut stmt = tx.prepare(sql)?;
                let deleted = stmt.query_map(p, |r| r.get::<_, String>(0))?;
                for file in deleted {
                    files.push(file?);
                }
                Ok(())
            };
            delete(
                "DELETE FROM snapshots WHERE at < ?1 RETURNING file",
                &[&cutoff],
            )?;
            delete(
                "DELETE FROM snapshots WHERE at < ?1 AND NOT EXISTS (
                     SELECT 1 FROM events e WHERE e.door_id = snapshots.door_id
                     AND CASE WHEN snapshots.key LIKE 'v%' THEN substr(snapshots.key, 2)
                              ELSE snapshots.key END
                         = CASE e.kind WHEN 'ring' THEN 'c:' || e.call_id
                                       WHEN 'missed_ring' THEN 'm:' || e.at END)
                 RETURNING file",
                &[&now_ms.saturating_sub(ORPHAN_GRACE_MS)],
            )?;
            let max_bytes = i64::try_from(limits.max_bytes).unwrap_or(i64::MAX);
            delete(
                "DELETE FROM snapshots WHERE id IN (
                     SELECT id FROM (SELECT id, SUM(bytes) OVER (ORDER BY id DESC) AS total
                                     FROM snapshots) WHERE total > ?1)
                 RETURNING file",
                &[&max_bytes],
            )?;
        }
        tx.commit()?;
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::CallId;

    use super::*;
    use crate::store::test_store as store;
    use crate::store::{CallEvent, EventKind};

    const DAY: i64 = 86_400_000;

    fn ring(s: &Store, door: &DoorId, call: &str, at: i64) {
        s.record_event(&CallEvent {
            at,
            door_id: door.clone(),
            call_id: Some(CallId::new(call)),
            kind: EventKind::Ring,
            phone_id: None,
            reason: None,
            duration_ms: None,
        })
        .expect("record");
    }

    fn call_key(call: &str) -> SnapshotKey {
        SnapshotKey::Call(CallId::new(call))
    }

    fn count(s: &Store, table: &str) -> i64 {
        s.conn()
            .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    #[test]
    fn retention_by_age_drops_events_and_snapshots() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let now = 100 * DAY;
        ring(&s, &door, "old", now - 31 * DAY);
        ring(&s, &door, "new", now - DAY);
        s.put_snapshot(&door, &call_key("old"), "old.jpg", 10, now - 31 * DAY)
            .expect("put");
        s.put_snapshot(&door, &call_key("new"), "new.jpg", 10, now - DAY)
            .expect("put");
        let files = s.prune(&HistoryConfig::default(), now).expect("prune");
        assert_eq!(files, vec!["old.jpg".to_owned()]);
        assert_eq!((count(&s, "events"), count(&s, "snapshots")), (1, 1));
    }

    #[test]
    fn retention_by_count_drops_the_oldest_events_and_their_snapshots() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let now = 100 * DAY;
        for i in 0..5 {
            ring(&s, &door, &format!("c{i}"), now - 3 * DAY + i);
            s.put_snapshot(
                &door,
                &call_key(&format!("c{i}")),
                &format!("{i}.jpg"),
                1,
                now - 3 * DAY + i,
            )
            .expect("put");
        }
        let limits = HistoryConfig {
            max_events: 2,
            ..HistoryConfig::default()
        };
        let mut files = s.prune(&limits, now).expect("prune");
        files.sort();
        assert_eq!(files, vec!["0.jpg", "1.jpg", "2.jpg"]);
        assert_eq!((count(&s, "events"), count(&s, "snapshots")), (2, 2));
    }

    #[test]
    fn retention_by_bytes_keeps_the_newest_that_fit() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let now = 100 * DAY;
        for i in 0..4 {
            ring(&s, &door, &format!("c{i}"), now - i);
            s.put_snapshot(
                &door,
                &call_key(&format!("c{i}")),
                &format!("{i}.jpg"),
                100,
                now,
            )
            .expect("put");
        }
        let limits = HistoryConfig {
            max_bytes: 250,
            ..HistoryConfig::default()
        };
        let mut files = s.prune(&limits, now).expect("prune");
        files.sort();
        assert_eq!(files, vec!["0.jpg", "1.jpg"]);
        assert_eq!(count(&s, "events"), 4, "bytes limit snapshots only");
    }

    #[test]
    fn a_fresh_snapshot_waits_for_its_event_but_an_old_orphan_goes() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let now = 100 * DAY;
        s.put_snapshot(&door, &call_key("fresh"), "fresh.jpg", 1, now)
            .expect("put");
        s.put_snapshot(
            &door,
            &SnapshotKey::MissedRing(5),
            "orphan.jpg",
            1,
            now - 2 * ORPHAN_GRACE_MS,
        )
        .expect("put");
        assert_eq!(
            s.prune(&HistoryConfig::default(), now).expect("prune"),
            vec!["orphan.jpg"]
        );
    }

    #[test]
    fn a_database_from_before_snapshots_gains_the_table_and_keeps_its_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hub.sqlite3");
        let door = {
            let s = Store::open(&path).expect("open");
            let (door, _) = s.add_door("Front").expect("add");
            ring(&s, &door, "c1", 1);
            s.conn()
                .execute_batch(super::super::household::UNDO_MIGRATION)
                .expect("undo later migrations");
            s.conn()
                .execute_batch(
                    "DROP TABLE snapshots; DROP TABLE quiet_hours; DROP TABLE quick_replies;
                     DROP INDEX events_by_time;
                     PRAGMA user_version = 2;",
                )
                .expect("downgrade");
            door
        };
        let s = Store::open(&path).expect("reopen");
        assert_eq!(count(&s, "events"), 1);
        s.put_snapshot(&door, &call_key("c1"), "f.jpg", 1, 1)
            .expect("the table exists again");
    }

    #[test]
    fn a_retried_upload_replaces_the_row() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let a = s
            .put_snapshot(&door, &call_key("c"), "f.jpg", 1, 1)
            .expect("put");
        let b = s
            .put_snapshot(&door, &call_key("c"), "f.jpg", 2, 2)
            .expect("put");
        assert_eq!(a, b);
        assert_eq!(count(&s, "snapshots"), 1);
        let got = s
            .snapshot_by_key(&door, &call_key("c"))
            .expect("get")
            .expect("some");
        assert_eq!(got.file, "f.jpg");
    }
}
