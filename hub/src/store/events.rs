//! The call history: what the recorder writes and what `GET /api/events` reads back.

use doorbell_protocol::{CallId, DoorId, PhoneId};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{Store, StoreError, MAX_EVENTS_KEPT};

/// What happened in a call, for the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum EventKind {
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
    /// The door unlocked at the request of the phone in an answered call (`phone_id`).
    Unlocked,
    /// A phone watched the door without a ring (live view; `phone_id`, no call).
    View,
}

impl EventKind {
    fn as_str(self) -> &'static str {
        match self {
            EventKind::Ring => "ring",
            EventKind::Answered => "answered",
            EventKind::Missed => "missed",
            EventKind::Ended => "ended",
            EventKind::MissedRing => "missed_ring",
            EventKind::Unlocked => "unlocked",
            EventKind::View => "view",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ring" => EventKind::Ring,
            "answered" => EventKind::Answered,
            "missed" => EventKind::Missed,
            "ended" => EventKind::Ended,
            "missed_ring" => EventKind::MissedRing,
            "unlocked" => EventKind::Unlocked,
            "view" => EventKind::View,
            _ => return None,
        })
    }
}

/// One row of the call history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct CallEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub door_id: DoorId,
    /// `None` (left out of the JSON) for a `missed_ring`, which had no call. The database
    /// keeps the column `NOT NULL` and stores an empty string for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<CallId>,
    pub kind: EventKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_id: Option<PhoneId>,
    /// A `RingEndReason` or `HangUpReason` in its wire spelling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

/// A history row as `GET /api/events` returns it: the event, its id (for paging and
/// deleting) and, for a ring or missed ring, its snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HistoryEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: CallEvent,
    /// The name of the event's phone (who answered, who unlocked), if it is still paired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_name: Option<String>,
    /// For `GET /api/snapshots/<id>` with the phone's token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<i64>,
    /// A capability URL of the snapshot, filled in by the HTTP layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// The visitor's voice message left at this press, for `GET /api/voice/<id>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice_id: Option<i64>,
    /// A capability URL of the voice message (Ogg Opus), filled in by the HTTP layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
}

/// A page of the history and where the next one starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct HistoryPage {
    pub events: Vec<HistoryEvent>,
    /// `before` for the next (older) page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

impl Store {
    pub(crate) fn record_event(&self, event: &CallEvent) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO events (at, door_id, call_id, kind, phone_id, reason, duration_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                event.at,
                event.door_id.as_str(),
                event.call_id.as_ref().map_or("", CallId::as_str),
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
    pub(crate) fn events_for_phone(
        &self,
        phone_id: &PhoneId,
        limit: u32,
        missed_since: i64,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        self.query_history(
            "e.id IN (
                 SELECT n.id FROM events n
                 JOIN pairings p ON p.door_id = n.door_id AND p.phone_id = ?1
                 ORDER BY n.id DESC LIMIT ?2)
             OR e.id IN (
                 SELECT m.id FROM events m
                 JOIN pairings p ON p.door_id = m.door_id AND p.phone_id = ?1
                 WHERE m.kind = 'missed_ring' AND m.at >= ?3
                 ORDER BY m.id DESC LIMIT ?2)",
            params![phone_id.as_str(), limit, missed_since],
        )
    }

    /// One page of the history of the doors `phone_id` is paired with: the `limit` newest
    /// events with an id below `before` (all, without it), newest first.
    pub(crate) fn history_page(
        &self,
        phone_id: &PhoneId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        self.query_history(
            "e.id IN (
                 SELECT n.id FROM events n
                 JOIN pairings p ON p.door_id = n.door_id AND p.phone_id = ?1
                 WHERE n.id < ?2 ORDER BY n.id DESC LIMIT ?3)",
            params![phone_id.as_str(), before.unwrap_or(i64::MAX), limit],
        )
    }

    /// Events matching `filter` (over `events e`), with their snapshot, newest first.
    fn query_history(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<HistoryEvent>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT e.at, e.door_id, e.call_id, e.kind, e.phone_id, e.reason, e.duration_ms,
                    e.id, s.id, ph.name, v.id
             FROM events e
             LEFT JOIN phones ph ON ph.id = e.phone_id
             LEFT JOIN snapshots s ON s.door_id = e.door_id
                 AND s.key = CASE e.kind WHEN 'ring' THEN 'c:' || e.call_id
                                         WHEN 'missed_ring' THEN 'm:' || e.at END
             LEFT JOIN snapshots v ON v.door_id = e.door_id
                 AND v.key = CASE e.kind WHEN 'ring' THEN 'vc:' || e.call_id
                                         WHEN 'missed_ring' THEN 'vm:' || e.at END
             WHERE {filter}
             ORDER BY e.id DESC"
        ))?;
        let rows = stmt
            .query_map(params, |r| {
                let kind: String = r.get(3)?;
                Ok((
                    kind,
                    HistoryEvent {
                        id: r.get(7)?,
                        snapshot_id: r.get(8)?,
                        phone_name: r.get(9)?,
                        snapshot: None,
                        voice_id: r.get(10)?,
                        voice: None,
                        event: CallEvent {
                            at: r.get(0)?,
                            door_id: DoorId::new(r.get::<_, String>(1)?),
                            call_id: Some(r.get::<_, String>(2)?)
                                .filter(|id| !id.is_empty())
                                .map(CallId::new),
                            kind: EventKind::Ring,
                            phone_id: r.get::<_, Option<String>>(4)?.map(PhoneId::new),
                            reason: r.get(5)?,
                            duration_ms: r.get(6)?,
                        },
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        // Rows with a kind this build does not know (written by a newer one) are skipped.
        Ok(rows
            .into_iter()
            .filter_map(|(kind, mut e)| {
                e.event.kind = EventKind::parse(&kind)?;
                Some(e)
            })
            .collect())
    }

    /// Deletes event `id` if `phone_id` is paired with its door: for an event of a call, every
    /// event of that call; with the call's or the missed ring's snapshot. Returns the deleted
    /// snapshot files, or `None` if there was no such event for this phone.
    pub(crate) fn delete_event(
        &self,
        phone_id: &PhoneId,
        id: i64,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let row: Option<(String, String, String, i64)> = tx
            .query_row(
                "SELECT e.door_id, e.call_id, e.kind, e.at FROM events e
                 JOIN pairings p ON p.door_id = e.door_id AND p.phone_id = ?1
                 WHERE e.id = ?2",
                params![phone_id.as_str(), id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        let Some((door, call, kind, at)) = row else {
            return Ok(None);
        };
        let key = if call.is_empty() {
            tx.execute("DELETE FROM events WHERE id = ?1", [id])?;
            (kind == "missed_ring").then(|| format!("m:{at}"))
        } else {
            tx.execute(
                "DELETE FROM events WHERE door_id = ?1 AND call_id = ?2",
                [&door, &call],
            )?;
            Some(format!("c:{call}"))
        };
        let mut files = Vec::new();
        if let Some(key) = key {
            let mut stmt =
                // The press's snapshot and voice message (`v` + key).
                tx.prepare("DELETE FROM snapshots WHERE door_id = ?1 AND key IN (?2, 'v' || ?2) RETURNING file")?;
            for file in stmt.query_map([&door, &key], |r| r.get::<_, String>(0))? {
                files.push(file?);
            }
        }
        tx.commit()?;
        Ok(Some(files))
    }

    /// Deletes every event and snapshot of `door_id` if `phone_id` is paired with it. Returns
    /// the deleted snapshot files, or `None` if the phone is not paired with that door.
    pub(crate) fn delete_door_history(
        &self,
        phone_id: &PhoneId,
        door_id: &DoorId,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let paired: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM pairings WHERE phone_id = ?1 AND door_id = ?2)",
            [phone_id.as_str(), door_id.as_str()],
            |r| r.get(0),
        )?;
        if !paired {
            return Ok(None);
        }
        tx.execute("DELETE FROM events WHERE door_id = ?1", [door_id.as_str()])?;
        let mut files = Vec::new();
        {
            let mut stmt = tx.prepare("DELETE FROM snapshots WHERE door_id = ?1 RETURNING file")?;
            for file in stmt.query_map([door_id.as_str()], |r| r.get::<_, String>(0))? {
                files.push(file?);
            }
        }
        tx.commit()?;
        Ok(Some(files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now_ms;
    use crate::store::test_store as store;

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
                call_id: Some(CallId::new(format!("c{i}"))),
                kind,
                phone_id: None,
                reason: None,
                duration_ms: None,
            })
            .expect("record");
        }
        let events = s.events_for_phone(&phone.phone_id, 50, 0).expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event.kind, EventKind::Missed);
        assert_eq!(events[1].event.call_id, Some(CallId::new("c0")));
    }

    #[test]
    fn recent_missed_rings_stay_in_the_history_after_many_calls() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let code = s.create_pairing_code(&door).expect("code");
        let phone = s
            .redeem_pairing_code(&code, None, None, now_ms())
            .expect("pair");
        let event = |at: i64, kind: EventKind, call: Option<&str>| CallEvent {
            at,
            door_id: door.clone(),
            call_id: call.map(CallId::new),
            kind,
            phone_id: None,
            reason: None,
            duration_ms: None,
        };
        s.record_event(&event(1_000, EventKind::MissedRing, None))
            .expect("old missed ring");
        s.record_event(&event(5_000, EventKind::MissedRing, None))
            .expect("recent missed ring");
        for i in 0..10 {
            s.record_event(&event(6_000 + i, EventKind::Ring, Some(&format!("c{i}"))))
                .expect("ring");
        }
        let events = s
            .events_for_phone(&phone.phone_id, 3, 2_000)
            .expect("events");
        let kinds: Vec<(EventKind, i64)> =
            events.iter().map(|e| (e.event.kind, e.event.at)).collect();
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
    fn a_missed_ring_has_no_call_id_in_the_database_or_the_json() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let code = s.create_pairing_code(&door).expect("code");
        let phone = s
            .redeem_pairing_code(&code, None, None, now_ms())
            .expect("pair");
        let missed = CallEvent {
            at: 1_000,
            door_id: door.clone(),
            call_id: None,
            kind: EventKind::MissedRing,
            phone_id: None,
            reason: None,
            duration_ms: None,
        };
        s.record_event(&missed).expect("record");
        let events = s.events_for_phone(&phone.phone_id, 50, 0).expect("events");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].event, missed);
        let json = serde_json::to_value(&events[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"id": events[0].id, "at": 1_000, "door_id": door.as_str(), "kind": "missed_ring"})
        );
    }

    #[test]
    fn history_pages_follow_before_and_stay_within_paired_doors() {
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let (other, _) = s.add_door("Back").expect("add");
        let code = s.create_pairing_code(&door).expect("code");
        let phone = s
            .redeem_pairing_code(&code, None, None, now_ms())
            .expect("pair");
        for i in 0..5 {
            for d in [&door, &other] {
                s.record_event(&CallEvent {
                    at: i,
                    door_id: d.clone(),
                    call_id: Some(CallId::new(format!("c{i}"))),
                    kind: EventKind::Ring,
                    phone_id: None,
                    reason: None,
                    duration_ms: None,
                })
                .expect("record");
            }
        }
        let first = s.history_page(&phone.phone_id, None, 2).expect("page");
        let ats: Vec<i64> = first.iter().map(|e| e.event.at).collect();
        assert_eq!(ats, vec![4, 3]);
        assert!(first.iter().all(|e| e.event.door_id == door));
        let before = first.last().map(|e| e.id);
        let second = s.history_page(&phone.phone_id, before, 10).expect("page");
        let ats: Vec<i64> = second.iter().map(|e| e.event.at).collect();
        assert_eq!(ats, vec![2, 1, 0]);
    }

    #[test]
    fn deleting_a_call_deletes_all_its_events_and_its_snapshot_for_paired_phones_only() {
        use crate::snapshots::SnapshotKey;
        let s = store();
        let (door, _) = s.add_door("Front").expect("add");
        let (other, _) = s.add_door("Back").expect("add");
        let pair = |d: &DoorId| {
            let code = s.create_pairing_code(d).expect("code");
            s.redeem_pairing_code(&code, None, None, now_ms())
                .expect("pair")
                .phone_id
        };
        let (mine, stranger) = (pair(&door), pair(&other));
        for kind in [EventKind::Ring, EventKind::Answered, EventKind::Ended] {
            s.record_event(&CallEvent {
                at: 1,
                door_id: door.clone(),
                call_id: Some(CallId::new("c1")),
                kind,
                phone_id: None,
                reason: None,
                duration_ms: None,
            })
            .expect("record");
        }
        let key = SnapshotKey::Call(CallId::new("c1"));
        let snap = s.put_snapshot(&door, &key, "c1.jpg", 5, 1).expect("put");
        let events = s.history_page(&mine, None, 10).expect("page");
        assert_eq!(events.len(), 3);
        let ring = events
            .iter()
            .find(|e| e.event.kind == EventKind::Ring)
            .expect("ring");
        assert_eq!(ring.snapshot_id, Some(snap));
        assert_eq!(s.delete_event(&stranger, ring.id).expect("delete"), None);
        assert_eq!(
            s.delete_door_history(&stranger, &door).expect("delete"),
            None
        );
        assert_eq!(
            s.delete_event(&mine, ring.id).expect("delete"),
            Some(vec!["c1.jpg".to_owned()])
        );
        assert!(s.history_page(&mine, None, 10).expect("page").is_empty());
        assert_eq!(s.snapshot_by_key(&door, &key).expect("get"), None);
    }
}
