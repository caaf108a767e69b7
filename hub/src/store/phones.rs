//! Phones: one-time pairing codes, redeeming them for a phone token, authenticating and
//! listing phones.

use doorbell_protocol::{Access, DoorId, PhoneId, Role};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::household::{access_from, active, check_access, role_str};
use super::{
    check_name, now_ms, Paired, PhoneAuth, PhoneRecord, Store, StoreError, ID_ATTEMPTS,
    PAIRING_CODE_TTL,
};

/// What a hub-made code (`create_pairing_code`, tests and tools) grants: a member who may do
/// everything (or the owner, when it is the door's first phone).
const MEMBER: Access = Access {
    role: Role::Member,
    may_unlock: true,
    may_view: true,
    until_ms: None,
};
use crate::secrets;

impl Store {
    // ---- pairing ---------------------------------------------------------------------

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
        self.insert_code(door_id, now, expires_at, &MEMBER)
    }

    /// An owner's invite: a one-time code, valid for [`PAIRING_CODE_TTL`], that pairs a phone
    /// with `door_id` with the role and permissions `access`. Returns the code and its expiry.
    pub(crate) fn create_invite(
        &self,
        door_id: &DoorId,
        access: &Access,
        now: i64,
    ) -> Result<(String, i64), StoreError> {
        check_access(access, now)?;
        let expires_at = now + PAIRING_CODE_TTL.as_millis() as i64;
        Ok((
            self.insert_code(door_id, now, expires_at, access)?,
            expires_at,
        ))
    }

    fn insert_code(
        &self,
        door_id: &DoorId,
        now: i64,
        expires_at: i64,
        access: &Access,
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
            "INSERT INTO pairing_codes (code_sha256, door_id, created_at, expires_at, role, may_unlock, may_view, until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                secrets::sha256_hex(code.as_bytes()),
                door_id.as_str(),
                now,
                expires_at,
                role_str(access.role),
                access.may_unlock,
                access.may_view,
                access.until_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            ],
        )?;
        Ok(code)
    }

    /// Redeems a pairing code: pairs its door with the phone owning `token` (if that token is
    /// valid) or with a new phone, and marks the code used. All in one transaction.
    pub(crate) fn redeem_pairing_code(
        &self,
        code: &str,
        token: Option<&str>,
        phone_name: Option<&str>,
        now: i64,
    ) -> Result<Paired, StoreError> {
        let code_hash = secrets::sha256_hex(code.trim().as_bytes());
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row: Option<(String, i64, Option<i64>, Access)> = tx
            .query_row(
                "SELECT door_id, expires_at, used_at, role, may_unlock, may_view, until_ms
                 FROM pairing_codes WHERE code_sha256 = ?1",
                [&code_hash],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, access_from(r, 3)?)),
            )
            .optional()?;
        let (door_id, expires_at, used_at, access) = row.ok_or(StoreError::PairingCodeUnknown)?;
        if used_at.is_some() {
            return Err(StoreError::PairingCodeUsed);
        }
        if now >= expires_at {
            return Err(StoreError::PairingCodeExpired);
        }
        tx.execute(
            "UPDATE pairing_codes SET used_at = ?2 WHERE code_sha256 = ?1",
            params![code_hash, now],
        )?;
        let paired = pair_in(&tx, &door_id, access, token, phone_name, None, now)?;
        tx.commit()?;
        Ok(paired)
    }

    /// Pairs `door_id` with a phone the DOOR accepted (`pair_accepted`, crate::pairing): the
    /// phone owning `token` (if valid) or a new phone with id `new_id`, with the role and
    /// permissions the door pinned (the door's first phone owns it, here as at the door).
    pub(crate) fn pair_door_approved(
        &self,
        door_id: &DoorId,
        access: Access,
        token: Option<&str>,
        phone_name: Option<&str>,
        new_id: &PhoneId,
        now: i64,
    ) -> Result<Paired, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let paired = pair_in(
            &tx,
            door_id.as_str(),
            access,
            token,
            phone_name,
            Some(new_id.as_str()),
            now,
        )?;
        tx.commit()?;
        Ok(paired)
    }

    /// The id of the phone owning `token`, if any: the id a door pins when that phone pairs
    /// one more door.
    pub(crate) fn phone_of_token(&self, token: &str) -> Result<Option<PhoneId>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM phones WHERE token_sha256 = ?1",
                [secrets::sha256_hex(token.as_bytes())],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(PhoneId::new))
    }
    /// The phone owning `token` and its paired doors; `None` for an unknown token.
    pub(crate) fn authenticate_phone(&self, token: &str) -> Result<Option<PhoneAuth>, StoreError> {
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
            "SELECT d.id, d.name, p.role, p.may_unlock, p.may_view, p.until_ms
             FROM pairings p JOIN doors d ON d.id = p.door_id
             WHERE p.phone_id = ?1 ORDER BY d.name, d.id",
        )?;
        let rows: Vec<(DoorId, String, Access)> = stmt
            .query_map([&phone_id], |r| {
                Ok((
                    DoorId::new(r.get::<_, String>(0)?),
                    r.get::<_, String>(1)?,
                    access_from(r, 2)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        // A guest whose end has passed is refused at that door; a phone with no door left
        // is refused altogether (401), exactly like an unknown token.
        let now = now_ms();
        let rows: Vec<_> = rows.into_iter().filter(|r| active(&r.2, now)).collect();
        if rows.is_empty() {
            return Ok(None);
        }
        let access = rows.iter().map(|(d, _, a)| (d.clone(), *a)).collect();
        Ok(Some(PhoneAuth {
            phone_id: PhoneId::new(phone_id),
            doors: rows.into_iter().map(|(d, name, _)| (d, name)).collect(),
            access,
        }))
    }

    /// Notes a phone's successful `hello`.
    pub(crate) fn phone_seen(&self, phone_id: &PhoneId, at: i64) -> Result<(), StoreError> {
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
}

/// The pairing itself, inside the caller's transaction: finds or makes the phone, pairs it
/// with `door_id` (the first phone of a door owns it) and returns what the caller reports.
fn pair_in(
    tx: &rusqlite::Transaction<'_>,
    door_id: &str,
    mut access: Access,
    token: Option<&str>,
    phone_name: Option<&str>,
    new_id: Option<&str>,
    now: i64,
) -> Result<Paired, StoreError> {
    let door_name: String =
        tx.query_row("SELECT name FROM doors WHERE id = ?1", [door_id], |r| {
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
            let mut made = None;
            for _ in 0..ID_ATTEMPTS {
                // The id the door pinned, or (a hub-made code) a fresh one.
                let id = match new_id {
                    Some(id) => id.to_owned(),
                    None => format!("p-{}", secrets::random_hex(secrets::ID_BYTES)?),
                };
                let inserted = tx.execute(
                        "INSERT OR IGNORE INTO phones (id, name, token_sha256, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![id, name, secrets::sha256_hex(token.as_bytes()), now],
                    )?;
                if inserted == 1 {
                    made = Some(id);
                    break;
                }
                if new_id.is_some() {
                    break;
                }
            }
            (made.ok_or(StoreError::IdSpaceExhausted)?, token, true)
        }
    };
    // The door's first phone owns it, whatever the code said.
    let first: bool = tx.query_row(
        "SELECT NOT EXISTS(SELECT 1 FROM pairings WHERE door_id = ?1)",
        [door_id],
        |r| r.get(0),
    )?;
    if first {
        access = Access {
            role: Role::Owner,
            ..MEMBER
        };
    }
    let joined = tx.execute(
            "INSERT OR IGNORE INTO pairings (phone_id, door_id, created_at, role, may_unlock, may_view, until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                phone_id,
                door_id,
                now,
                role_str(access.role),
                access.may_unlock,
                access.may_view,
                access.until_ms.map(|ms| i64::try_from(ms).unwrap_or(i64::MAX)),
            ],
        )? == 1;
    let phone_name: String =
        tx.query_row("SELECT name FROM phones WHERE id = ?1", [&phone_id], |r| {
            r.get(0)
        })?;
    Ok(Paired {
        phone_id: PhoneId::new(phone_id),
        token,
        door_id: DoorId::new(door_id),
        door_name,
        new_phone,
        phone_name,
        joined,
        access,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store as store;

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
}
