//! The roster of one ring: the door's paired phones from the store, each judged quiet or not
//! at the ring's instant.

use doorbell_protocol::DoorId;

use super::QuietSettings;
use crate::router::Roster;
use crate::store::{RingPhone, Store, StoreCallError};

/// Reads the door's phones and judges them at `now_ms`.
pub(crate) async fn load(
    store: &Store,
    door_id: &DoorId,
    now_ms: i64,
) -> Result<Roster, StoreCallError> {
    let door_id = door_id.clone();
    let phones = store.call(move |s| s.ring_phones(&door_id, now_ms)).await?;
    Ok(judge(phones, now_ms))
}

/// Sorts `phones` into quiet ones and ones push reaches. Stored settings that no longer parse
/// (written by another version) count as "not quiet": better a ring too many than a visitor
/// nobody hears.
pub(crate) fn judge(phones: Vec<RingPhone>, now_ms: i64) -> Roster {
    let mut roster = Roster::default();
    for phone in phones {
        let quiet = phone
            .quiet
            .as_deref()
            .and_then(|json| serde_json::from_str::<QuietSettings>(json).ok())
            .is_some_and(|s| s.is_quiet(now_ms));
        if quiet {
            roster.quiet.insert(phone.phone_id);
        } else if phone.pushable {
            roster.pushed.insert(phone.phone_id);
        }
    }
    roster
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::PhoneId;

    use super::*;

    #[test]
    fn quiet_phones_are_not_pushed_and_broken_settings_ring() {
        let phone = |id: &str, quiet: Option<&str>, pushable| RingPhone {
            phone_id: PhoneId::new(id),
            quiet: quiet.map(str::to_owned),
            pushable,
        };
        let dnd = r#"{"dnd_until_ms": 2000}"#;
        let roster = judge(
            vec![
                phone("p-quiet", Some(dnd), true),
                phone("p-push", None, true),
                phone("p-page", None, false),
                phone("p-broken", Some("{"), true),
            ],
            1000,
        );
        assert_eq!(
            roster.quiet.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["p-quiet"]
        );
        assert_eq!(
            roster.pushed.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
            ["p-broken", "p-push"]
        );
        // After the switch's end the phone rings again.
        assert!(judge(vec![phone("p-quiet", Some(dnd), true)], 2000)
            .quiet
            .is_empty());
    }
}
