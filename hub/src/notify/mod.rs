//! Ringing phones outside the WebSocket: Web Push ([`crate::push`]) to every subscribed
//! browser, and ntfy ([`ntfy`]) where configured.
//!
//! The switchboard hands every call event to a [`Notifier`], which only `try_send`s a
//! [`Notice`] into a bounded queue: ringing the open pages is never delayed by a push
//! service. One dispatcher task owns the queue and the rings in progress; each ring gets its
//! own tasks (a store lookup, then one task per subscription), so a slow push service delays
//! nobody else.

pub mod ntfy;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doorbell_protocol::{CallId, DoorId, PhoneId};
use tokio::sync::{mpsc, watch, Semaphore};

pub use ntfy::{NotifyConfig, NtfyConfig};

use crate::push::client::{self, PlainClient};
use crate::push::config::{NotifyConfigError, PushConfig};
use crate::push::fanout::{self, MAX_RING_LIFETIME};
use crate::push::send::PushContext;
use crate::push::vapid::{VapidError, VapidKey};
use crate::router::RouterEvent;
use crate::snapshots::{Capabilities, SnapshotKey};
use crate::store::{now_ms, EventKind, Store};

/// Call events waiting for the dispatcher. It only looks each one up and spawns tasks, so it
/// keeps up with anything a few doors produce; a full queue drops notices (logged) rather
/// than stalling the switchboard.
pub const NOTICE_QUEUE: usize = 256;
/// Push and ntfy requests in flight at once, across the hub: bounds sockets and memory when
/// many phones ring at once, while one ring to a household's few phones goes out in parallel.
pub const MAX_CONCURRENT_SENDS: usize = 16;

/// What the dispatcher is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    Ring {
        door_id: DoorId,
        call_id: CallId,
        at_ms: i64,
        /// Phones in quiet hours: no push for them.
        quiet: BTreeSet<PhoneId>,
    },
    /// The ring ended (`reason` in wire spelling: answered, declined, timeout, cancelled,
    /// door_offline).
    RingEnded {
        door_id: DoorId,
        call_id: CallId,
        reason: &'static str,
    },
    /// A visitor's voice message of the press `key` arrived; `path` is its capability path.
    VoiceMessage {
        door_id: DoorId,
        key: SnapshotKey,
        path: String,
    },
}

impl Notice {
    /// The notice for a call event, if it is one that phones hear about outside the page.
    fn from_event(e: &RouterEvent, at_ms: i64) -> Option<Notice> {
        // Only calls ring phones (a missed ring from an outage has no call id).
        let (door_id, call_id) = (e.door_id.clone(), e.call_id.clone()?);
        match e.kind {
            EventKind::Ring => Some(Notice::Ring {
                door_id,
                call_id,
                at_ms,
                quiet: e.quiet.clone(),
            }),
            EventKind::Answered => Some(Notice::RingEnded {
                door_id,
                call_id,
                reason: "answered",
            }),
            EventKind::Missed => Some(Notice::RingEnded {
                door_id,
                call_id,
                reason: e.reason.unwrap_or("cancelled"),
            }),
            EventKind::Ended | EventKind::MissedRing | EventKind::Unlocked | EventKind::View => {
                None
            }
        }
    }
}

pub use crate::push::RingInfo;

/// The switchboard's end of the notice queue. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Notice>>,
}

impl Notifier {
    /// A notifier that notifies nobody (a switchboard without a hub, in unit tests).
    pub fn disabled() -> Self {
        Notifier { tx: None }
    }

    /// Called for every call event the router emits; never blocks.
    pub(crate) fn call_event(&self, e: &RouterEvent) {
        let (Some(tx), Some(notice)) = (&self.tx, Notice::from_event(e, now_ms())) else {
            return;
        };
        if tx.try_send(notice).is_err() {
            tracing::warn!(door = %e.door_id, call = ?e.call_id, "push queue full or closed; this ring's pushes are skipped");
        }
    }

    /// A voice message was stored; every phone of the door is told by push. Never blocks.
    pub(crate) fn voice_message(&self, door_id: &DoorId, key: &SnapshotKey, path: String) {
        let Some(tx) = &self.tx else { return };
        let notice = Notice::VoiceMessage {
            door_id: door_id.clone(),
            key: key.clone(),
            path,
        };
        if tx.try_send(notice).is_err() {
            tracing::warn!(door = %door_id, "push queue full or closed; a voice message's pushes are skipped");
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] NotifyConfigError),
    #[error(transparent)]
    Vapid(#[from] VapidError),
    #[error("cannot set up TLS for outgoing push requests: {0}")]
    Tls(#[from] rustls::Error),
}

/// Push and ntfy for one hub: made by [`crate::Hub::open`], started by the first `serve`.
pub struct Notify {
    push: Arc<PushContext>,
    ntfy: Option<(NtfyConfig, PlainClient)>,
    notifier: Notifier,
    /// Taken by the dispatcher when it starts.
    queue: Mutex<Option<mpsc::Receiver<Notice>>>,
}

impl std::fmt::Debug for Notify {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notify")
            .field("vapid", &self.push.vapid)
            .field("ntfy", &self.ntfy.as_ref().map(|(c, _)| c))
            .finish_non_exhaustive()
    }
}

impl Notify {
    /// Checks `[push]` and `[notify]`, loads (or makes) the VAPID key beside `db_path`.
    pub fn open(
        db_path: &Path,
        push: &PushConfig,
        notify: &NotifyConfig,
    ) -> Result<Notify, NotifyError> {
        push.validate()?;
        notify.validate()?;
        let vapid = VapidKey::load_or_create(db_path)?.with_subject(push.vapid_subject.clone());
        let ntfy = match &notify.ntfy {
            Some(config) => Some((config.clone(), client::plain_client()?)),
            None => None,
        };
        let (tx, rx) = mpsc::channel(NOTICE_QUEUE);
        Ok(Notify {
            push: Arc::new(PushContext {
                client: client::push_client(push)?,
                vapid,
                config: push.clone(),
            }),
            ntfy,
            notifier: Notifier { tx: Some(tx) },
            queue: Mutex::new(Some(rx)),
        })
    }

    /// The handle the switchboard feeds.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// `[push]` as configured.
    pub fn push_config(&self) -> &PushConfig {
        &self.push.config
    }

    /// The VAPID public key (base64url, uncompressed point) for `GET /api/push/key`.
    pub fn vapid_public_key(&self) -> &str {
        self.push.vapid.public_key()
    }

    /// Starts the dispatcher (once per hub; later calls do nothing). It runs until the hub is
    /// dropped. `app_url` is the hub's base URL, for links in ntfy messages; `local_only`: the
    /// hub is reachable from this machine only (no warning about a missing VAPID contact).
    /// `snapshots` mints each ring's snapshot URL (valid `snapshot_ttl`), at once: the
    /// picture follows within moments and a GET of the URL waits for it.
    pub fn start(
        &self,
        store: Store,
        app_url: String,
        local_only: bool,
        snapshots: (Capabilities, Duration),
    ) {
        let Some(queue) = self.queue.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        if self.push.config.vapid_subject.is_none() && !local_only {
            tracing::warn!("[push] vapid_subject is not set: Apple's push service refuses pushes without a contact, so iPhones will not ring in the background. Set it, e.g. vapid_subject = \"mailto:you@example.net\"");
        }
        let dispatcher = Dispatcher {
            push: self.push.clone(),
            ntfy: self.ntfy.clone().map(Arc::new),
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS)),
            store,
            app_url: Arc::from(app_url.trim_end_matches('/')),
            snapshots: Arc::new(snapshots),
            active: HashMap::new(),
        };
        tokio::spawn(dispatcher.run(queue));
    }
}

/// A ring in progress: when it started, and how its tasks learn that it ended.
struct ActiveRing {
    started: Instant,
    end: watch::Sender<Option<&'static str>>,
}

/// Owns the rings in progress (each one's end signal).
struct Dispatcher {
    push: Arc<PushContext>,
    ntfy: Option<Arc<(NtfyConfig, PlainClient)>>,
    permits: Arc<Semaphore>,
    store: Store,
    app_url: Arc<str>,
    /// Mints the capability URL of each ring's snapshot, and how long it works.
    snapshots: Arc<(Capabilities, Duration)>,
    active: HashMap<(DoorId, CallId), ActiveRing>,
}

impl Dispatcher {
    async fn run(mut self, mut queue: mpsc::Receiver<Notice>) {
        while let Some(notice) = queue.recv().await {
            match notice {
                Notice::Ring {
                    door_id,
                    call_id,
                    at_ms,
                    quiet,
                } => {
                    let now = Instant::now();
                    // Rings whose end never came (cannot happen unless a bug): let them go.
                    self.active
                        .retain(|_, ring| now.duration_since(ring.started) < MAX_RING_LIFETIME);
                    let (end, end_rx) = watch::channel(None);
                    self.active.insert(
                        (door_id.clone(), call_id.clone()),
                        ActiveRing { started: now, end },
                    );
                    tokio::spawn(self.ring(door_id, call_id, at_ms, quiet, end_rx));
                }
                Notice::RingEnded {
                    door_id,
                    call_id,
                    reason,
                } => {
                    if let Some(ring) = self.active.remove(&(door_id, call_id)) {
                        let _ = ring.end.send(Some(reason));
                    }
                }
                Notice::VoiceMessage { door_id, key, path } => {
                    tokio::spawn(self.voice_message(door_id, key, path));
                }
            }
        }
    }

    /// The task for one ring: look up the door's subscriptions, then fan out.
    fn ring(
        &self,
        door_id: DoorId,
        call_id: CallId,
        at_ms: i64,
        quiet: BTreeSet<PhoneId>,
        end: fanout::EndSignal,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (push, ntfy, permits, store) = (
            self.push.clone(),
            self.ntfy.clone(),
            self.permits.clone(),
            self.store.clone(),
        );
        let app_url = self.app_url.clone();
        let snapshots = self.snapshots.clone();
        async move {
            let lookup = {
                let door_id = door_id.clone();
                store
                    .call(move |s| s.push_targets(&door_id, now_ms()))
                    .await
            };
            let (door_name, mut targets) = match lookup {
                Ok(Some(found)) => found,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "reading push subscriptions failed");
                    return;
                }
            };
            targets.retain(|t| !quiet.contains(&t.phone_id));
            let (capabilities, ttl) = &*snapshots;
            let expires =
                now_ms().saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
            let path = capabilities.url(&door_id, &SnapshotKey::Call(call_id.clone()), expires);
            let ring = Arc::new(RingInfo {
                door_id,
                door_name,
                call_id,
                at_ms,
                snapshot: Some(format!("{app_url}{path}")),
            });
            if let Some(ntfy) = ntfy {
                let (ring, permits) = (ring.clone(), permits.clone());
                tokio::spawn(async move {
                    let Ok(_permit) = permits.acquire().await else {
                        return;
                    };
                    ntfy::post(&ntfy.0, &ntfy.1, &app_url, &ring).await;
                });
            }
            fanout::ring_all(&push, &permits, &store, &ring, targets, &end);
        }
    }
}

impl Dispatcher {
    /// The task for one voice message: look up the door's subscriptions, push to each.
    fn voice_message(
        &self,
        door_id: DoorId,
        key: SnapshotKey,
        path: String,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let (push, permits, store) = (self.push.clone(), self.permits.clone(), self.store.clone());
        let url = format!("{}{path}", self.app_url);
        async move {
            let lookup = {
                let door_id = door_id.clone();
                store
                    .call(move |s| s.push_targets(&door_id, now_ms()))
                    .await
            };
            let (door_name, targets) = match lookup {
                Ok(Some(found)) => found,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "reading push subscriptions failed");
                    return;
                }
            };
            let (call_id, at_ms) = match &key {
                SnapshotKey::Call(call) => (Some(call.as_str()), now_ms()),
                SnapshotKey::MissedRing(at) => (None, *at),
            };
            let payload = fanout::voice_payload(&door_id, &door_name, call_id, at_ms, &url);
            fanout::voice_all(&push, &permits, &store, payload, &door_id, targets);
        }
    }
}

/// What a link into the app does with the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallAction {
    /// Open the app and answer (`#answer=ID`, as the service worker's notifications do).
    Answer,
    /// Decline without answering (`#decline=ID`).
    Decline,
}

/// The link that opens the app on a call: `BASE/#answer=ID` or `BASE/#decline=ID` (see
/// `docs/PROTOCOL.md`). The id is percent-encoded, so the link is one token in any header.
pub fn call_link(app_url: &str, ring: &RingInfo, action: CallAction) -> String {
    let verb = match action {
        CallAction::Answer => "answer",
        CallAction::Decline => "decline",
    };
    format!(
        "{}/#{verb}={}",
        app_url.trim_end_matches('/'),
        percent_encode(ring.call_id.as_str())
    )
}

/// RFC 3986 percent-encoding of everything but the unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, reason: Option<&'static str>) -> RouterEvent {
        RouterEvent {
            door_id: DoorId::new("d-1"),
            call_id: Some(CallId::new("c1")),
            kind,
            phone_id: None,
            reason,
            duration: None,
            quiet: Default::default(),
        }
    }

    #[test]
    fn call_events_become_ring_and_ring_ended() {
        assert!(matches!(
            Notice::from_event(&event(EventKind::Ring, None), 5),
            Some(Notice::Ring { at_ms: 5, .. })
        ));
        for (kind, reason, expected) in [
            (EventKind::Answered, None, "answered"),
            (EventKind::Missed, Some("timeout"), "timeout"),
            (EventKind::Missed, Some("declined"), "declined"),
            (EventKind::Missed, Some("door_offline"), "door_offline"),
        ] {
            match Notice::from_event(&event(kind, reason), 0) {
                Some(Notice::RingEnded { reason, .. }) => assert_eq!(reason, expected),
                other => panic!("{kind:?}: {other:?}"),
            }
        }
        assert_eq!(
            Notice::from_event(&event(EventKind::Ended, Some("normal")), 0),
            None
        );
        assert_eq!(
            Notice::from_event(&event(EventKind::MissedRing, None), 0),
            None
        );
    }

    #[test]
    fn call_links_encode_ids() {
        let ring = RingInfo {
            door_id: DoorId::new("d-1"),
            door_name: "Front".into(),
            call_id: CallId::new("a b,c;d&e"),
            at_ms: 0,
            snapshot: None,
        };
        assert_eq!(
            call_link("https://hub.example/", &ring, CallAction::Answer),
            "https://hub.example/#answer=a%20b%2Cc%3Bd%26e"
        );
    }
}
