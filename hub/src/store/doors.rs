//! Doors: registering (`doorbell-hub add-door`, the embedded hub's own door), finding,
//! authenticating and listing them.

use doorbell_protocol::DoorId;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{check_name, now_ms, DoorRecord, Store, StoreError, ID_ATTEMPTS};
use crate::secrets;

impl Store {
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
    pub(crate) fn authenticate_door(
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
    pub(crate) fn door_seen(
        &self,
        door_id: &DoorId,
        software: &str,
        at: i64,
    ) -> Result<(), StoreError> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store as store;

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
}
