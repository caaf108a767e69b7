//! The household store: roles, permissions, removals, the journal, old databases.

use super::*;
use crate::store::test_store as store;

fn pair(s: &Store, door: &DoorId, name: &str) -> (PhoneId, String) {
    let code = s.create_pairing_code(door).expect("code");
    let p = s
        .redeem_pairing_code(&code, None, Some(name), now_ms())
        .expect("pair");
    (p.phone_id, p.token)
}

#[test]
fn first_phone_owns_the_door_and_the_last_owner_stays() {
    let s = store();
    let (door, _) = s.add_door("Front").expect("door");
    let (anna, _) = pair(&s, &door, "Anna");
    let (ben, ben_token) = pair(&s, &door, "Ben");
    assert_eq!(s.access(&anna, &door).unwrap().unwrap().role, Role::Owner);
    assert_eq!(s.access(&ben, &door).unwrap().unwrap().role, Role::Member);
    let demote = MemberPatch {
        role: Some(Role::Member),
        ..Default::default()
    };
    assert!(matches!(
        s.update_member(&door, &anna, &demote),
        Err(StoreError::LastOwner)
    ));
    assert!(matches!(
        s.remove_member(&door, &anna),
        Err(StoreError::LastOwner)
    ));
    let before = s.last_access_change().unwrap();
    let no_unlock = MemberPatch {
        may_unlock: Some(false),
        name: Some("Ben's phone".into()),
        ..Default::default()
    };
    let access = s.update_member(&door, &ben, &no_unlock).expect("patch");
    assert!(!access.may_unlock);
    let sub = crate::store::NewSubscription {
        endpoint: "https://push.example/ben".into(),
        p256dh: "k".into(),
        auth: "a".into(),
        expires_at: None,
    };
    s.save_push_subscription(&ben, &sub, now_ms())
        .expect("subscribe");
    s.remove_member(&door, &ben).expect("remove");
    assert_eq!(s.authenticate_phone(&ben_token).unwrap(), None);
    let (_, targets) = s.push_targets(&door, now_ms()).unwrap().unwrap();
    assert!(targets.is_empty(), "its push subscriptions went with it");
    let changes = s.access_changes_since(before).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert_eq!(
        changes[1].1,
        AccessChange::PhoneRemoved {
            door_id: door.clone(),
            phone_id: ben,
            name: "Ben's phone".into()
        }
    );
    // Alone, the owner may leave; the phone is then gone.
    s.remove_member(&door, &anna).expect("leave");
    assert!(s.list_phones().unwrap().is_empty());
}

#[test]
fn a_database_from_before_roles_makes_each_doors_first_phone_its_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("hub.sqlite3");
    let (door, anna, ben) = {
        let s = Store::open(&path).expect("open");
        let (door, _) = s.add_door("Front").expect("door");
        let (anna, _) = pair(&s, &door, "Anna");
        let (ben, _) = pair(&s, &door, "Ben");
        s.conn().execute_batch(UNDO_MIGRATION).expect("undo");
        // And the migrations after it (quiet hours, quick replies).
        s.conn()
            .execute_batch("DROP TABLE quiet_hours; DROP TABLE quick_replies;")
            .expect("undo later migrations");
        s.conn()
            .execute_batch("PRAGMA user_version = 3;")
            .expect("downgrade");
        (door, anna, ben)
    };
    let s = Store::open(&path).expect("reopen");
    assert_eq!(s.access(&anna, &door).unwrap().unwrap().role, Role::Owner);
    let ben = s.access(&ben, &door).unwrap().unwrap();
    assert_eq!(
        (ben.role, ben.may_unlock, ben.may_view),
        (Role::Member, true, true)
    );
}

#[test]
fn guests_need_an_end_and_expire() {
    let s = store();
    let (door, _) = s.add_door("Front").expect("door");
    let (_owner, _) = pair(&s, &door, "Anna");
    let (guest, token) = pair(&s, &door, "Cleaner");
    let bad = MemberPatch {
        role: Some(Role::Guest),
        ..Default::default()
    };
    assert!(matches!(
        s.update_member(&door, &guest, &bad),
        Err(StoreError::InvalidAccess(_))
    ));
    let soon = MemberPatch {
        role: Some(Role::Guest),
        until_ms: Some(u64::try_from(now_ms()).unwrap() + 60_000),
        ..Default::default()
    };
    s.update_member(&door, &guest, &soon).expect("guest");
    assert!(s.authenticate_phone(&token).unwrap().is_some());
    // Its end passes (written directly: the API refuses an end in the past).
    s.conn()
        .execute(
            "UPDATE pairings SET until_ms = 1 WHERE phone_id = ?1",
            [guest.as_str()],
        )
        .unwrap();
    assert_eq!(s.authenticate_phone(&token).unwrap(), None);
}

#[test]
fn removing_a_phone_or_door_and_rotating_journal_it() {
    let s = store();
    let (door, secret) = s.add_door("Front").expect("door");
    let (anna, token) = pair(&s, &door, "Anna");
    let start = s.last_access_change().unwrap();
    let new_secret = s.rotate_door_secret(&door).expect("rotate");
    assert_eq!(s.authenticate_door(&door, &secret).unwrap(), None);
    assert!(s.authenticate_door(&door, &new_secret).unwrap().is_some());
    assert_eq!(
        s.remove_phone(anna.as_str()).expect("remove"),
        vec![door.clone()]
    );
    assert_eq!(s.authenticate_phone(&token).unwrap(), None);
    assert!(matches!(
        s.remove_phone(anna.as_str()),
        Err(StoreError::UnknownPhone(_))
    ));
    s.remove_door(&door).expect("remove door");
    assert!(s.list_doors().unwrap().is_empty());
    let kinds: Vec<_> = s
        .access_changes_since(start)
        .unwrap()
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    assert!(matches!(kinds[0], AccessChange::DoorRevoked { .. }));
    assert!(matches!(kinds[1], AccessChange::PhoneRemoved { .. }));
    assert!(matches!(kinds[2], AccessChange::DoorRevoked { .. }));
}
