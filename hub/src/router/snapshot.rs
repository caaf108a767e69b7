//! `snapshot`: the visitor's snapshot of a call reached the hub; every online phone of the
//! door hears about it (the ringing screen shows it as soon as it arrives).

use doorbell_protocol::{CallId, DoorId, HubToPhone};

use super::{Out, Router};

impl Router {
    /// The snapshot of `call_id` at `door_id` is stored and served at `url`.
    pub(crate) fn snapshot_ready(
        &self,
        door_id: &DoorId,
        call_id: CallId,
        url: String,
    ) -> Vec<Out> {
        self.phone_conns_of(door_id)
            .map(|phone| {
                Out::Phone(
                    phone,
                    HubToPhone::Snapshot {
                        call_id: call_id.clone(),
                        url: url.clone(),
                    },
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use doorbell_protocol::CallId;

    use crate::router::test_support::{door_id, setup, to, A, B, OTHER};

    #[test]
    fn only_the_doors_phones_hear_of_a_snapshot() {
        let r = setup();
        let out = r.snapshot_ready(&door_id(), CallId::new("c1"), "/cap".into());
        let told = |conn| to(&out, conn).iter().any(|m| m.starts_with("Snapshot"));
        assert!(told(A) && told(B), "{out:?}");
        assert!(!told(OTHER), "a phone of another door heard of it");
    }
}
