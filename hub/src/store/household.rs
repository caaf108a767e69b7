//! A door's household: each pairing's role and permissions, owners' changes to them, removing
//! phones and doors, rotating a door's secret, and the journal of those changes that a running
//! hub follows (`access_changes`).
//!
//! The journal is how a change made by another process (`doorbell-hub phones remove` while
//! `serve` runs, in its own process on the same file) reaches the hub's open connections: every
//! change appends a row, and the hub polls for rows newer than the last it acted on
//! (`crate::household`). A point query on an integer primary key costs microseconds, so polling
//! it a few times a second is cheaper than any notification channel between processes.

use doorbell_protocol::{Access, DoorId, PhoneId, Role};
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};
use serde::Serialize;

use super::{check_name, now_ms, Store, StoreError};
use crate::secrets;

/// Schema migration: roles and permissions on pairings and on pairing codes (what an invite
/// grants), and the change journal. The first phone paired with each door becomes its owner.
pub(super) const MIGRATION: &str = r#"
    ALTER TABLE pairings ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
    ALTER TABLE pairings ADD COLUMN may_unlock INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE pairings ADD COLUMN may_view INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE pairings ADD COLUMN until_ms INTEGER;
    UPDATE pairings SET role = 'owner' WHERE rowid IN (
        SELECT (SELECT q.rowid FROM pairings q WHERE q.door_id = d.door_id
                ORDER BY q.created_at, q.rowid LIMIT 1)
        FROM (SELECT DISTINCT door_id FROM pairings) d);
    ALTER TABLE pairing_codes ADD COLUMN role TEXT NOT NULL DEFAULT 'member';
    ALTER TABLE pairing_codes ADD COLUMN may_unlock INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE pairing_codes ADD COLUMN may_view INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE pairing_codes ADD COLUMN until_ms INTEGER;
    CREATE TABLE access_changes (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        at       INTEGER NOT NULL,
        kind     TEXT NOT NULL,
        door_id  TEXT NOT NULL,
        phone_id TEXT,
        name     TEXT
    );
"#;

/// Undoes [`MIGRATION`], for tests that turn a database back into an older schema version.
#[cfg(test)]
pub(super) const UNDO_MIGRATION: &str = r#"
    ALTER TABLE pairings DROP COLUMN role;
    ALTER TABLE pairings DROP COLUMN may_unlock;
    ALTER TABLE pairings DROP COLUMN may_view;
    ALTER TABLE pairings DROP COLUMN until_ms;
    ALTER TABLE pairing_codes DROP COLUMN role;
    ALTER TABLE pairing_codes DROP COLUMN may_unlock;
    ALTER TABLE pairing_codes DROP COLUMN may_view;
    ALTER TABLE pairing_codes DROP COLUMN until_ms;
    DROP TABLE access_changes;
"#;

/// Journal rows older than this are deleted: a hub that was not running when they were
/// written has nothing to act on (it had no connections), it only needs the newest id.
const JOURNAL_KEEP_MS: i64 = 24 * 3600 * 1000;

/// One phone of a door, as an owner's household screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Member {
    pub phone_id: PhoneId,
    pub name: String,
    #[serde(flatten)]
    pub access: Access,
    /// Unix ms of pairing with this door.
    pub paired_at: i64,
    pub last_seen: Option<i64>,
}

/// What an owner changes about a phone (`PATCH`); absent fields stay.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MemberPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub may_unlock: Option<bool>,
    pub may_view: Option<bool>,
    /// A guest's end (Unix ms); required when making a phone a guest.
    pub until_ms: Option<u64>,
}

/// A change the running hub must apply to its open connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccessChange {
    /// The phone no longer belongs to the door (left, removed, or the phone was deleted).
    PhoneRemoved {
        door_id: DoorId,
        phone_id: PhoneId,
        name: String,
    },
    /// The phone's role or permissions at the door changed.
    AccessChanged { door_id: DoorId, phone_id: PhoneId },
    /// The door was deleted, or its secret replaced: its connection must end.
    DoorRevoked { door_id: DoorId },
}

impl AccessChange {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Option<(i64, AccessChange)>> {
        let id: i64 = r.get(0)?;
        let kind: String = r.get(1)?;
        let door_id = DoorId::new(r.get::<_, String>(2)?);
        let phone_id = r.get::<_, Option<String>>(3)?.map(PhoneId::new);
        let name = r.get::<_, Option<String>>(4)?.unwrap_or_default();
        let change = match (kind.as_str(), phone_id) {
            ("phone_removed", Some(phone_id)) => AccessChange::PhoneRemoved {
                door_id,
                phone_id,
                name,
            },
            ("access_changed", Some(phone_id)) => AccessChange::AccessChanged { door_id, phone_id },
            ("door_revoked", _) => AccessChange::DoorRevoked { door_id },
            // Written by a newer build: nothing this one knows how to apply.
            _ => return Ok(None),
        };
        Ok(Some((id, change)))
    }
}

pub(super) fn role_str(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Member => "member",
        Role::Guest => "guest",
    }
}

fn parse_role(text: &str) -> Role {
    match text {
        "owner" => Role::Owner,
        "guest" => Role::Guest,
        // Unknown roles (a newer build's) get the least surprising one.
        _ => Role::Member,
    }
}

/// `role, may_unlock, may_view, until_ms` from columns `first..first+4` of `r`.
pub(super) fn access_from(r: &Row<'_>, first: usize) -> rusqlite::Result<Access> {
    Ok(Access {
        role: parse_role(&r.get::<_, String>(first)?),
        may_unlock: r.get(first + 1)?,
        may_view: r.get(first + 2)?,
        until_ms: r
            .get::<_, Option<i64>>(first + 3)?
            .map(|ms| u64::try_from(ms).unwrap_or(0)),
    })
}

/// Whether `access` is still valid at `now` (a guest's end not reached).
pub(crate) fn active(access: &Access, now: i64) -> bool {
    access
        .until_ms
        .is_none_or(|until| i64::try_from(until).unwrap_or(i64::MAX) > now)
}

/// Checks what an invite or an owner's change asks for: a guest needs an end in the future.
pub(crate) fn check_access(access: &Access, now: i64) -> Result<(), StoreError> {
    match (access.role, access.until_ms) {
        (Role::Guest, None) => Err(StoreError::InvalidAccess(
            "a guest needs until_ms (the end of its access)",
        )),
        (Role::Guest, Some(_)) if !active(access, now) => {
            Err(StoreError::InvalidAccess("until_ms is in the past"))
        }
        _ => Ok(()),
    }
}

fn journal(
    tx: &rusqlite::Transaction<'_>,
    kind: &str,
    door_id: &str,
    phone_id: Option<&str>,
    name: Option<&str>,
) -> Result<(), StoreError> {
    let now = now_ms();
    tx.execute(
        "INSERT INTO access_changes (at, kind, door_id, phone_id, name) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![now, kind, door_id, phone_id, name],
    )?;
    tx.execute(
        "DELETE FROM access_changes WHERE at < ?1",
        [now - JOURNAL_KEEP_MS],
    )?;
    Ok(())
}

/// Removes the pairing of `phone_id` with `door_id` inside `tx`, journals it, and deletes the
/// phone (its token, its push subscriptions) once it belongs to no door.
fn unpair(
    tx: &rusqlite::Transaction<'_>,
    phone_id: &str,
    door_id: &str,
    name: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM pairings WHERE phone_id = ?1 AND door_id = ?2",
        params![phone_id, door_id],
    )?;
    journal(tx, "phone_removed", door_id, Some(phone_id), Some(name))?;
    tx.execute(
        "DELETE FROM phones WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM pairings WHERE phone_id = ?1)",
        [phone_id],
    )?;
    Ok(())
}

impl Store {
    /// The role and permissions of `phone_id` at `door_id` (expired guests included); `None`
    /// when not paired.
    pub(crate) fn access(
        &self,
        phone_id: &PhoneId,
        door_id: &DoorId,
    ) -> Result<Option<Access>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT role, may_unlock, may_view, until_ms FROM pairings
                 WHERE phone_id = ?1 AND door_id = ?2",
                params![phone_id.as_str(), door_id.as_str()],
                |r| access_from(r, 0),
            )
            .optional()?)
    }

    /// Every phone of `door_id`, owners first, then by pairing time.
    pub(crate) fn members(&self, door_id: &DoorId) -> Result<Vec<Member>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT p.role, p.may_unlock, p.may_view, p.until_ms, ph.id, ph.name, p.created_at, ph.last_seen
             FROM pairings p JOIN phones ph ON ph.id = p.phone_id
             WHERE p.door_id = ?1
             ORDER BY p.role <> 'owner', p.created_at, ph.id",
        )?;
        let rows = stmt
            .query_map([door_id.as_str()], |r| {
                Ok(Member {
                    access: access_from(r, 0)?,
                    phone_id: PhoneId::new(r.get::<_, String>(4)?),
                    name: r.get(5)?,
                    paired_at: r.get(6)?,
                    last_seen: r.get(7)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// Applies an owner's `patch` to `phone_id` at `door_id`; returns its access afterwards.
    /// The last owner cannot be demoted (the door would have nobody to manage it).
    pub(crate) fn update_member(
        &self,
        door_id: &DoorId,
        phone_id: &PhoneId,
        patch: &MemberPatch,
    ) -> Result<Access, StoreError> {
        let name = patch.name.as_deref().map(check_name).transpose()?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let current = tx
            .query_row(
                "SELECT role, may_unlock, may_view, until_ms FROM pairings
                 WHERE phone_id = ?1 AND door_id = ?2",
                params![phone_id.as_str(), door_id.as_str()],
                |r| access_from(r, 0),
            )
            .optional()?
            .ok_or(StoreError::NotPaired)?;
        let role = patch.role.unwrap_or(current.role);
        let next = Access {
            role,
            may_unlock: patch.may_unlock.unwrap_or(current.may_unlock),
            may_view: patch.may_view.unwrap_or(current.may_view),
            // Only a guest has an end.
            until_ms: match role {
                Role::Guest => patch.until_ms.or(current.until_ms),
                _ => None,
            },
        };
        check_access(&next, now_ms())?;
        if current.role == Role::Owner && next.role != Role::Owner {
            let owners: i64 = tx.query_row(
                "SELECT COUNT(*) FROM pairings WHERE door_id = ?1 AND role = 'owner'",
                [door_id.as_str()],
                |r| r.get(0),
            )?;
            if owners <= 1 {
                return Err(StoreError::LastOwner);
            }
        }
        tx.execute(
            "UPDATE pairings SET role = ?3, may_unlock = ?4, may_view = ?5, until_ms = ?6
             WHERE phone_id = ?1 AND door_id = ?2",
            params![
                phone_id.as_str(),
                door_id.as_str(),
                role_str(next.role),
                next.may_unlock,
                next.may_view,
                next.until_ms
                    .map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            ],
        )?;
        if let Some(name) = name {
            tx.execute(
                "UPDATE phones SET name = ?2 WHERE id = ?1",
                params![phone_id.as_str(), name],
            )?;
        }
        if next != current {
            journal(
                &tx,
                "access_changed",
                door_id.as_str(),
                Some(phone_id.as_str()),
                None,
            )?;
        }
        tx.commit()?;
        Ok(next)
    }

    /// Takes `phone_id` out of `door_id`'s household (an owner removed it, or it left). A phone
    /// left with no door is deleted with its token and push subscriptions. The last owner may
    /// not leave while other phones remain: they would have nobody to manage the door.
    pub(crate) fn remove_member(
        &self,
        door_id: &DoorId,
        phone_id: &PhoneId,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, String)> = tx
            .query_row(
                "SELECT p.role, ph.name FROM pairings p JOIN phones ph ON ph.id = p.phone_id
                 WHERE p.phone_id = ?1 AND p.door_id = ?2",
                params![phone_id.as_str(), door_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (role, name) = row.ok_or(StoreError::NotPaired)?;
        if role == "owner" {
            let (owners, phones): (i64, i64) = tx.query_row(
                "SELECT SUM(role = 'owner'), COUNT(*) FROM pairings WHERE door_id = ?1",
                [door_id.as_str()],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            if owners <= 1 && phones > 1 {
                return Err(StoreError::LastOwner);
            }
        }
        unpair(&tx, phone_id.as_str(), door_id.as_str(), &name)?;
        tx.commit()?;
        Ok(())
    }

    /// `doorbell-hub phones remove`: the phone leaves every door and is deleted. Returns the
    /// doors it was paired with.
    pub fn remove_phone(&self, phone_id: &str) -> Result<Vec<DoorId>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let name: String = tx
            .query_row("SELECT name FROM phones WHERE id = ?1", [phone_id], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| StoreError::UnknownPhone(phone_id.to_owned()))?;
        let doors: Vec<String> = {
            let mut stmt = tx.prepare("SELECT door_id FROM pairings WHERE phone_id = ?1")?;
            let rows = stmt
                .query_map([phone_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            rows
        };
        for door in &doors {
            unpair(&tx, phone_id, door, &name)?;
        }
        tx.execute("DELETE FROM phones WHERE id = ?1", [phone_id])?;
        tx.commit()?;
        Ok(doors.into_iter().map(DoorId::new).collect())
    }

    /// `doorbell-hub doors remove`: deletes the door, its pairings, codes, history and snapshot
    /// rows; phones left with no door are deleted too. Returns the snapshot files to delete
    /// ([`crate::remove_snapshot_files`]).
    pub fn remove_door(&self, door_id: &DoorId) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let phones: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT ph.id, ph.name FROM pairings p JOIN phones ph ON ph.id = p.phone_id
                 WHERE p.door_id = ?1",
            )?;
            let rows = stmt
                .query_map([door_id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            rows
        };
        for (phone_id, name) in &phones {
            unpair(&tx, phone_id, door_id.as_str(), name)?;
        }
        let deleted = tx.execute("DELETE FROM doors WHERE id = ?1", [door_id.as_str()])?;
        if deleted == 0 {
            return Err(StoreError::UnknownDoor(door_id.to_string()));
        }
        tx.execute("DELETE FROM events WHERE door_id = ?1", [door_id.as_str()])?;
        let files = {
            let mut stmt = tx.prepare("DELETE FROM snapshots WHERE door_id = ?1 RETURNING file")?;
            let files = stmt
                .query_map([door_id.as_str()], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            files
        };
        journal(&tx, "door_revoked", door_id.as_str(), None, None)?;
        tx.commit()?;
        Ok(files)
    }

    /// `doorbell-hub doors rotate-secret`: a new secret for the door (returned, stored only as
    /// its hash); the door's connection with the old one is closed.
    pub fn rotate_door_secret(&self, door_id: &DoorId) -> Result<String, StoreError> {
        let secret = secrets::random_hex(secrets::DOOR_SECRET_BYTES)?;
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let updated = tx.execute(
            "UPDATE doors SET secret_sha256 = ?2 WHERE id = ?1",
            params![door_id.as_str(), secrets::sha256_hex(secret.as_bytes())],
        )?;
        if updated == 0 {
            return Err(StoreError::UnknownDoor(door_id.to_string()));
        }
        journal(&tx, "door_revoked", door_id.as_str(), None, None)?;
        tx.commit()?;
        Ok(secret)
    }

    /// The newest journal id (0 when empty): where a starting hub begins following.
    pub(crate) fn last_access_change(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT COALESCE(MAX(id), 0) FROM access_changes", [], |r| {
                r.get(0)
            })?)
    }

    /// Journal rows after `after`, oldest first, with their ids.
    pub(crate) fn access_changes_since(
        &self,
        after: i64,
    ) -> Result<Vec<(i64, AccessChange)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, kind, door_id, phone_id, name FROM access_changes WHERE id > ?1 ORDER BY id",
        )?;
        let rows: Vec<Option<(i64, AccessChange)>> = stmt
            .query_map([after], AccessChange::from_row)?
            .collect::<Result<_, _>>()?;
        Ok(rows.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests;
