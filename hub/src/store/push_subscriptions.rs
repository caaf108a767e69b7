//! Push subscriptions in the hub's database: one row per browser endpoint, owned by a phone.
//!
//! An endpoint is unique: the same browser subscribing again (even after pairing afresh as
//! another phone) replaces its row rather than ringing twice. A phone keeps at most
//! [`MAX_SUBSCRIPTIONS_PER_PHONE`]; a new one past that replaces its oldest.

use doorbell_protocol::{DoorId, PhoneId};
use rusqlite::{params, TransactionBehavior};

use super::{Store, StoreError};

/// A Web Push subscription that passed every check of `push::subscription`, keys in canonical unpadded base64url.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscription {
    pub endpoint: String,
    pub p256dh: String,
    pub auth: String,
    /// `expirationTime` (Unix ms), when the browser gave one.
    pub expires_at: Option<i64>,
}

/// Subscriptions kept per phone: one per browser the person uses with the same token (a
/// phone's browser plus its installed app, a tablet sharing the pairing...). More would only
/// be stale ones, each costing a request per ring.
pub(crate) const MAX_SUBSCRIPTIONS_PER_PHONE: i64 = 4;

/// Schema migration adding the subscriptions table (appended to the store's migrations, so
/// existing databases gain it on their next start).
pub(super) const MIGRATION: &str = r#"
    CREATE TABLE push_subscriptions (
        endpoint   TEXT PRIMARY KEY,
        phone_id   TEXT NOT NULL REFERENCES phones(id) ON DELETE CASCADE,
        p256dh     TEXT NOT NULL,
        auth       TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX push_subscriptions_by_phone ON push_subscriptions(phone_id);
"#;

/// A subscription to push a door's ring to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PushTarget {
    pub endpoint: String,
    pub phone_id: PhoneId,
    /// Unpadded base64url, as stored.
    pub p256dh: String,
    pub auth: String,
}

impl Store {
    /// Saves `sub` for `phone_id` (replacing any row with the same endpoint) and drops the
    /// phone's oldest subscriptions beyond the limit. Returns how many were dropped.
    pub(crate) fn save_push_subscription(
        &self,
        phone_id: &PhoneId,
        sub: &NewSubscription,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // REPLACE deletes and re-inserts, so the row gets the highest rowid: rowid order is
        // the order subscriptions were last saved in, even within one millisecond.
        tx.execute(
            "INSERT OR REPLACE INTO push_subscriptions
                 (endpoint, phone_id, p256dh, auth, expires_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                sub.endpoint,
                phone_id.as_str(),
                sub.p256dh,
                sub.auth,
                sub.expires_at,
                now
            ],
        )?;
        let dropped = tx.execute(
            "DELETE FROM push_subscriptions WHERE phone_id = ?1 AND rowid NOT IN
                 (SELECT rowid FROM push_subscriptions WHERE phone_id = ?1
                  ORDER BY rowid DESC LIMIT ?2)",
            params![phone_id.as_str(), MAX_SUBSCRIPTIONS_PER_PHONE],
        )?;
        tx.commit()?;
        Ok(dropped)
    }

    /// Deletes `endpoint` if `phone_id` owns it; whether a row went.
    pub(crate) fn delete_push_subscription(
        &self,
        phone_id: &PhoneId,
        endpoint: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ?1 AND phone_id = ?2",
            params![endpoint, phone_id.as_str()],
        )?;
        Ok(n > 0)
    }

    /// Forgets an endpoint the push service called gone (404/410).
    pub(crate) fn forget_push_endpoint(&self, endpoint: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM push_subscriptions WHERE endpoint = ?1",
            [endpoint],
        )?;
        Ok(())
    }

    /// The door's name and the unexpired subscriptions of every phone paired with it.
    /// `None` for an unknown door.
    pub(crate) fn push_targets(
        &self,
        door_id: &DoorId,
        now: i64,
    ) -> Result<Option<(String, Vec<PushTarget>)>, StoreError> {
        use rusqlite::OptionalExtension;
        let conn = self.conn();
        let Some(name) = conn
            .query_row(
                "SELECT name FROM doors WHERE id = ?1",
                [door_id.as_str()],
                |r| r.get::<_, String>(0),
            )
            .optional()?
        else {
            return Ok(None);
        };
        let mut stmt = conn.prepare(
            "SELECT s.endpoint, s.phone_id, s.p256dh, s.auth
             FROM push_subscriptions s JOIN pairings p ON p.phone_id = s.phone_id
             WHERE p.door_id = ?1 AND (s.expires_at IS NULL OR s.expires_at > ?2)
               AND (p.until_ms IS NULL OR p.until_ms > ?2)
             ORDER BY s.rowid",
        )?;
        let targets = stmt
            .query_map(params![door_id.as_str(), now], |r| {
                Ok(PushTarget {
                    endpoint: r.get(0)?,
                    phone_id: PhoneId::new(r.get::<_, String>(1)?),
                    p256dh: r.get(2)?,
                    auth: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(Some((name, targets)))
    }

    /// The endpoints `phone_id` has subscribed, oldest first (for `doorbell-hub` and tests).
    pub fn push_endpoints(&self, phone_id: &PhoneId) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT endpoint FROM push_subscriptions WHERE phone_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([phone_id.as_str()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now_ms;

    fn sub(endpoint: &str) -> NewSubscription {
        NewSubscription {
            endpoint: endpoint.into(),
            p256dh: "k".into(),
            auth: "a".into(),
            expires_at: None,
        }
    }

    /// A store with doors "Front" and "Back" and one phone paired with each.
    fn setup() -> (Store, DoorId, PhoneId, DoorId, PhoneId) {
        let store = Store::open_in_memory().unwrap();
        let pair = |door: &str| {
            let (door_id, _) = store.add_door(door).unwrap();
            let code = store.create_pairing_code(&door_id).unwrap();
            let phone = store
                .redeem_pairing_code(&code, None, None, now_ms())
                .unwrap();
            (door_id, phone.phone_id)
        };
        let (front, a) = pair("Front");
        let (back, b) = pair("Back");
        (store, front, a, back, b)
    }

    #[test]
    fn same_endpoint_replaces_and_the_oldest_goes_past_the_limit() {
        let (store, front, a, _, b) = setup();
        for i in 0..4 {
            assert_eq!(
                store
                    .save_push_subscription(&a, &sub(&format!("e{i}")), 1)
                    .unwrap(),
                0
            );
        }
        // Re-saving e0 makes it the newest; a fifth then pushes out e1, the oldest now.
        store.save_push_subscription(&a, &sub("e0"), 2).unwrap();
        assert_eq!(store.save_push_subscription(&a, &sub("e4"), 3).unwrap(), 1);
        assert_eq!(store.push_endpoints(&a).unwrap(), ["e2", "e3", "e0", "e4"]);
        // The same endpoint saved by another phone moves there.
        store.save_push_subscription(&b, &sub("e4"), 4).unwrap();
        assert_eq!(store.push_endpoints(&b).unwrap(), ["e4"]);
        assert!(
            !store.delete_push_subscription(&a, "e4").unwrap(),
            "not a's any more"
        );
        assert!(store.delete_push_subscription(&a, "e2").unwrap());
        let (name, targets) = store.push_targets(&front, 0).unwrap().unwrap();
        assert_eq!(name, "Front");
        let endpoints: Vec<_> = targets.iter().map(|t| t.endpoint.as_str()).collect();
        assert_eq!(endpoints, ["e3", "e0"]);
        store.forget_push_endpoint("e3").unwrap();
        assert_eq!(store.push_endpoints(&a).unwrap(), ["e0"]);
    }

    #[test]
    fn targets_are_the_doors_own_phones_and_unexpired() {
        let (store, front, a, back, b) = setup();
        store
            .save_push_subscription(&a, &sub("front-phone"), 1)
            .unwrap();
        let mut expiring = sub("back-old");
        expiring.expires_at = Some(100);
        store.save_push_subscription(&b, &expiring, 1).unwrap();
        store
            .save_push_subscription(&b, &sub("back-phone"), 1)
            .unwrap();
        let of = |door: &DoorId, now| -> Vec<String> {
            let (_, t) = store.push_targets(door, now).unwrap().unwrap();
            t.into_iter().map(|t| t.endpoint).collect()
        };
        assert_eq!(of(&front, 50), ["front-phone"]);
        assert_eq!(of(&back, 50), ["back-old", "back-phone"]);
        assert_eq!(of(&back, 100), ["back-phone"]);
        assert!(store
            .push_targets(&DoorId::new("d-none"), 0)
            .unwrap()
            .is_none());
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    #[test]
    fn a_database_from_before_push_gains_the_table_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.sqlite3");
        let door = {
            let store = Store::open(&path).unwrap();
            let (door, _) = store.add_door("Front").unwrap();
            // Turn it back into a database of the previous schema version.
            store
                .conn()
                .execute_batch(super::super::household::UNDO_MIGRATION)
                .unwrap();
            store
                .conn()
                .execute_batch(
                    "DROP TABLE push_subscriptions;
                     DROP TABLE snapshots;
                     DROP TABLE quiet_hours;
                     DROP TABLE quick_replies;
                     DROP INDEX events_by_time;
                     PRAGMA user_version = 1;",
                )
                .unwrap();
            door
        };
        let store = Store::open(&path).unwrap();
        let (name, targets) = store.push_targets(&door, 0).unwrap().unwrap();
        assert_eq!((name.as_str(), targets.len()), ("Front", 0));
    }
}
