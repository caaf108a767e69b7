//! Writes call events and "last seen" marks to the database on a background thread, so the
//! router (which runs under a lock on the async runtime) never waits on SQLite.

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

use doorbell_protocol::{DoorId, PhoneId};
use tokio::sync::oneshot;

use crate::store::{CallEvent, Store};

/// Writes waiting for the database. Events come at human speed (a few per call); 1024 absorbs
/// a slow disk for minutes. When full, writes are dropped with a warning rather than stalling
/// call routing.
pub(crate) const RECORDER_QUEUE: usize = 1024;

enum Job {
    Event(CallEvent),
    DoorSeen {
        door_id: DoorId,
        software: String,
        at: i64,
    },
    PhoneSeen {
        phone_id: PhoneId,
        at: i64,
    },
    /// Answered once every job queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// Sending side; the thread ends when the last `Recorder` is dropped.
#[derive(Clone)]
pub(crate) struct Recorder {
    tx: SyncSender<Job>,
}

impl Recorder {
    /// Starts the writer thread.
    pub(crate) fn start(store: Store) -> std::io::Result<Recorder> {
        let (tx, rx) = sync_channel::<Job>(RECORDER_QUEUE);
        std::thread::Builder::new()
            .name("hub-recorder".into())
            .spawn(move || {
                for job in rx {
                    let result = match job {
                        Job::Event(e) => store.record_event(&e),
                        Job::DoorSeen {
                            door_id,
                            software,
                            at,
                        } => store.door_seen(&door_id, &software, at),
                        Job::PhoneSeen { phone_id, at } => store.phone_seen(&phone_id, at),
                        Job::Flush(done) => {
                            let _ = done.send(());
                            Ok(())
                        }
                    };
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "could not record to the database");
                    }
                }
            })?;
        Ok(Recorder { tx })
    }

    fn submit(&self, job: Job) {
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                tracing::warn!("database writes are backed up; dropping a history record")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("the recorder thread is gone; dropping a history record")
            }
        }
    }

    pub(crate) fn event(&self, event: CallEvent) {
        self.submit(Job::Event(event));
    }

    pub(crate) fn door_seen(&self, door_id: DoorId, software: String, at: i64) {
        self.submit(Job::DoorSeen {
            door_id,
            software,
            at,
        });
    }

    pub(crate) fn phone_seen(&self, phone_id: PhoneId, at: i64) {
        self.submit(Job::PhoneSeen { phone_id, at });
    }

    /// Waits until everything recorded so far is in the database (for readers of the history).
    pub(crate) async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        // Blocking send is fine here: the queue drains at disk speed and this is a reader's
        // request, not the router.
        let tx = self.tx.clone();
        let sent = tokio::task::spawn_blocking(move || tx.send(Job::Flush(done)).is_ok()).await;
        if matches!(sent, Ok(true)) {
            let _ = wait.await;
        }
    }
}
