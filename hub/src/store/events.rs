//! The call history: what the recorder writes and what `GET /api/events` reads back.

use doorbell_protocol::{CallId, DoorId, PhoneId};
use rusqlite::params;
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
                        call_id: Some(r.get::<_, String>(2)?)
                            .filter(|id| !id.is_empty())
                            .map(CallId::new),
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
        assert_eq!(events[0].kind, EventKind::Missed);
        assert_eq!(events[1].call_id, Some(CallId::new("c0")));
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
        assert_eq!(events, vec![missed]);
        let json = serde_json::to_value(&events[0]).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"at": 1_000, "door_id": door.as_str(), "kind": "missed_ring"})
        );
    }
}
