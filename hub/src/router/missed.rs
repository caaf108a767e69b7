//! `missed_ring`: a press the door could not deliver while the hub was unreachable, reported
//! when it came back. Checked against the hub's clock, recorded in the history at its own
//! time and shown on every online phone of the door.

use std::time::Duration;

use doorbell_protocol::{DoorId, ErrorCode, HubToDoor, HubToPhone};

use super::{ConnId, Out, Router, RouterEvent};

/// How far in the future (by the hub's clock) a `missed_ring` may be: doors and hubs run NTP,
/// but a Pi without a real-time clock can be a little ahead after a reboot.
pub(crate) const MISSED_RING_MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// The oldest `missed_ring` accepted. A door keeps its queue across restarts, so a press from
/// a week-long outage is still news; anything older is more likely an unset clock (1970, or a
/// fake-hwclock date from the image build) than a real press.
pub(crate) const MISSED_RING_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);

/// `at_ms` as a Unix millisecond time if it is plausible by the hub's clock `wall_ms`, or
/// the door's error message saying what is wrong with it.
fn check_time(at_ms: u64, wall_ms: i64) -> Result<i64, String> {
    let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let latest = wall_ms.saturating_add(millis(MISSED_RING_MAX_SKEW));
    let earliest = wall_ms.saturating_sub(millis(MISSED_RING_MAX_AGE));
    match i64::try_from(at_ms) {
        Ok(at) if (earliest..=latest).contains(&at) => Ok(at),
        _ => {
            let problem = if i64::try_from(at_ms).is_ok_and(|at| at < earliest) {
                "more than 30 days ago"
            } else {
                "in the future"
            };
            Err(format!(
                "missed_ring.at_ms {at_ms} is {problem} by the hub's clock ({wall_ms}); is the door's clock set?"
            ))
        }
    }
}

impl Router {
    /// `missed_ring{at_ms}` from the door on `conn`; `wall_ms` is the hub's clock (Unix ms).
    pub(super) fn missed_ring(
        &mut self,
        conn: ConnId,
        door_id: &DoorId,
        at_ms: u64,
        wall_ms: i64,
        out: &mut Vec<Out>,
    ) {
        let at = match check_time(at_ms, wall_ms) {
            Ok(at) => at,
            Err(message) => {
                out.push(Out::Door(
                    conn,
                    HubToDoor::error(ErrorCode::InvalidTimestamp, message, None),
                ));
                return;
            }
        };
        let Some(slot) = self.doors.get(door_id) else {
            return;
        };
        let door_name = slot.name.clone();
        for phone in self.phone_conns_of(door_id) {
            out.push(Out::Phone(
                phone,
                HubToPhone::MissedRing {
                    door_id: door_id.clone(),
                    door_name: door_name.clone(),
                    at_ms,
                },
            ));
        }
        out.push(Out::PastEvent(RouterEvent::missed_ring(door_id), at));
    }
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::DoorToHub;

    use super::*;
    use crate::router::test_support::{error_code, now_at, setup, to, A, B, DOOR, NOW_MS, OTHER};
    use crate::store::EventKind;

    #[test]
    fn missed_ring_is_recorded_at_its_time_and_told_to_paired_phones() {
        let mut r = setup();
        let at = NOW_MS - 90_000;
        let out = r.door_message(
            now_at(NOW_MS),
            DOOR,
            DoorToHub::MissedRing { at_ms: at as u64 },
        );
        let told = |conn| {
            to(&out, conn)
                .iter()
                .any(|m| m.starts_with("MissedRing") && m.contains("Front"))
        };
        assert!(told(A) && told(B), "{out:?}");
        assert!(!told(OTHER), "a phone of another door heard about it");
        assert!(out.iter().any(|o| matches!(
            o,
            Out::PastEvent(RouterEvent { kind: EventKind::MissedRing, .. }, t) if *t == at
        )));
        assert_eq!(error_code(&out), None);
    }

    #[test]
    fn missed_ring_with_a_bad_clock_is_a_typed_error_and_records_nothing() {
        let day = 24 * 3600 * 1000;
        for at_ms in [
            0,
            (NOW_MS + 10 * 60 * 1000) as u64,
            (NOW_MS - 31 * day) as u64,
            u64::MAX,
            i64::MAX as u64,
        ] {
            let mut r = setup();
            let out = r.door_message(now_at(NOW_MS), DOOR, DoorToHub::MissedRing { at_ms });
            assert_eq!(
                error_code(&out),
                Some(ErrorCode::InvalidTimestamp),
                "{at_ms}"
            );
            assert_eq!(out.len(), 1, "{out:?}");
        }
        // A little skew ahead is fine.
        let mut r = setup();
        let out = r.door_message(
            now_at(NOW_MS),
            DOOR,
            DoorToHub::MissedRing {
                at_ms: (NOW_MS + 60_000) as u64,
            },
        );
        assert_eq!(error_code(&out), None);
    }
}
