//! Follows the household journal (`access_changes`, see `store::household`) and applies each
//! change to the open connections: a removed phone is cut off, a revoked door's connection
//! closed, a phone whose permissions changed told. Changes come from this process's HTTP API
//! (which wakes the follower at once) and from other processes on the same database
//! (`doorbell-hub phones remove` beside a running `serve`), which it notices by polling.
//! It also cuts off guests whose end has passed.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::state::HubState;
use crate::store::AccessChange;

/// How often the journal is polled for changes made by another process. A removal takes
/// effect within this (the brief: "within a second"); the query is an integer-key lookup
/// that costs microseconds.
pub(crate) const POLL: Duration = Duration::from_millis(250);

/// Runs until `stop` is cancelled.
pub(crate) async fn follow(hub: Arc<HubState>, stop: CancellationToken) {
    let mut last = match hub.store.call(|s| s.last_access_change()).await {
        Ok(id) => id,
        Err(e) => {
            tracing::error!("cannot read the household journal; removals made by the CLI take effect at the next restart: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = hub.household_wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
        hub.switchboard.expire_guests();
        let changes = match hub.store.call(move |s| s.access_changes_since(last)).await {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!("reading the household journal failed (retrying): {e}");
                continue;
            }
        };
        for (id, change) in changes {
            last = id;
            let access = match &change {
                AccessChange::AccessChanged { door_id, phone_id } => {
                    let (door_id, phone_id) = (door_id.clone(), phone_id.clone());
                    hub.store
                        .call(move |s| s.access(&phone_id, &door_id))
                        .await
                        .ok()
                        .flatten()
                }
                _ => None,
            };
            tracing::info!(?change, "household change");
            // The door forgets the phone's certificate too (if it is online now).
            if let AccessChange::PhoneRemoved {
                door_id, phone_id, ..
            } = &change
            {
                hub.door_pairing.tell(
                    door_id,
                    &doorbell_protocol::HubToDoor::Unpin {
                        phone_id: phone_id.clone(),
                    },
                );
            }
            hub.switchboard.access_change(&change, access);
        }
    }
}
