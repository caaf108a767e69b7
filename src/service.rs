//! Telling systemd the truth (`Type=notify`, `WatchdogSec=`).
//!
//! - `READY=1` once the media probe has passed and the hub link is up for the first time
//!   (until then the unit stays "activating", and the door still works: it chimes locally).
//! - `STATUS=` says what the door is doing (`systemctl status doorbelld` shows it).
//! - `WATCHDOG=1` is sent from the call task's own loop, and only while the daemon is healthy:
//!   if that loop hangs, or a task it depends on has died, the pings stop and systemd restarts
//!   the service. A separate timer thread would keep pinging a wedged daemon.
//! - `STOPPING=1` when a graceful shutdown starts.
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use sd_notify::NotifyState;
use std::time::Duration;

/// systemd-facing state of this process.
#[derive(Debug)]
pub struct ServiceManager {
    /// Half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3) recommends; None without a watchdog.
    ping_interval: Option<Duration>,
    ready_sent: bool,
}

impl ServiceManager {
    /// Reads `WATCHDOG_USEC` / `WATCHDOG_PID` from the environment systemd gave us.
    pub fn from_env() -> ServiceManager {
        ServiceManager {
            ping_interval: sd_notify::watchdog_enabled().map(|timeout| timeout / 2),
            ready_sent: false,
        }
    }

    /// How often the main loop must call [`ServiceManager::watchdog`]; None: no watchdog.
    pub fn ping_interval(&self) -> Option<Duration> {
        self.ping_interval
    }

    /// `READY=1` (once) with a status line.
    pub fn ready(&mut self, status: &str) {
        if self.ready_sent {
            self.status(status);
            return;
        }
        self.ready_sent = true;
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    pub fn status(&self, status: &str) {
        send(&[NotifyState::Status(status)]);
    }

    /// One watchdog ping, if the caller found the daemon healthy.
    pub fn watchdog(&self, healthy: bool) {
        if healthy && self.ping_interval.is_some() {
            send(&[NotifyState::Watchdog]);
        }
    }

    pub fn stopping(&self) {
        send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
    }
}

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        // Not fatal: the worst case is a restart by the watchdog, which the log explains.
        tracing::warn!("cannot notify systemd: {e}");
    }
}
