//! [`Hub`]: the embeddable entry point tying the store, the switchboard and the server together.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::config::{HubConfig, Timings};
use crate::error::HubError;
use crate::limits::Limits;
use crate::recorder::Recorder;
use crate::router::Router;
use crate::snapshots::Snapshots;
use crate::state::HubState;
use crate::store::{Store, StoreCallError, SETTING_BASE_URL};
use crate::switchboard::Switchboard;
use crate::tls;

/// The signaling hub. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<HubState>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("db_path", &self.inner.config.db_path)
            .finish_non_exhaustive()
    }
}

/// The host part of an `http(s)://host[:port]/...` URL.
fn url_host(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    (!host.is_empty()).then_some(host)
}

/// `scheme://authority` of an `http(s)://` URL (the origin a browser page loaded from it
/// sends), lowercased.
fn url_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "https" | "http") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}").to_ascii_lowercase())
}

/// The address this machine would use to reach the network (no packet is sent: connecting a
/// UDP socket only picks a route). Used to print a pairing link a phone can open when the hub
/// listens on all interfaces.
pub fn outbound_ip(v6: bool) -> Option<IpAddr> {
    let (bind, probe): (SocketAddr, SocketAddr) = if v6 {
        (
            (Ipv6Addr::UNSPECIFIED, 0).into(),
            "[2001:db8::1]:9".parse().ok()?,
        )
    } else {
        (
            (Ipv4Addr::UNSPECIFIED, 0).into(),
            "192.0.2.1:9".parse().ok()?,
        )
    };
    let socket = UdpSocket::bind(bind).ok()?;
    socket.connect(probe).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// This machine's host name (and its mDNS `.local` name) and the addresses it reaches the
/// LAN with: what a phone on the LAN types or is given, so a self-signed certificate made
/// for them is accepted once instead of failing on every new address.
fn machine_names() -> Vec<String> {
    let mut names = Vec::new();
    let uname = rustix::system::uname();
    let host = uname
        .nodename()
        .to_string_lossy()
        .trim()
        .to_ascii_lowercase();
    if !host.is_empty() && host != "localhost" && host != "(none)" {
        let short = host.split('.').next().unwrap_or(&host).to_owned();
        names.push(format!("{short}.local"));
        names.push(host);
    }
    for v6 in [false, true] {
        if let Some(ip) = outbound_ip(v6).filter(|ip| !ip.is_loopback()) {
            names.push(ip.to_string());
        }
    }
    names.dedup();
    names
}

impl Hub {
    /// Opens (or creates) the database, runs migrations, and prepares TLS.
    pub fn open(config: HubConfig) -> Result<Hub, HubError> {
        Self::open_with_timings(config, Timings::default())
    }

    /// [`Hub::open`] with other protocol timings (tests use a short handshake timeout).
    pub fn open_with_timings(config: HubConfig, timings: Timings) -> Result<Hub, HubError> {
        let hostname = match &config.public_url {
            Some(url) => Some(url_host(url).ok_or_else(|| HubError::BadPublicUrl(url.clone()))?),
            None => None,
        };
        let store = Store::open(&config.db_path)?;
        let machine = machine_names();
        let mut extra_names: Vec<String> = hostname.map(str::to_owned).into_iter().collect();
        if config.tls == crate::TlsMode::SelfSigned {
            extra_names.extend(machine.iter().cloned());
        }
        let tls = tls::setup(&config.tls, &config.db_path, &extra_names)?;
        // The machine's own names are served even when an older certificate lacks them (it is
        // never regenerated): a phone that opened the hub as `<host>.local` keeps working.
        let own_names = tls
            .iter()
            .flat_map(|t| t.names.iter().map(String::as_str))
            .chain(machine.iter().map(String::as_str))
            .chain(hostname);
        let mut limits_config = config.limits.clone();
        // Behind a reverse proxy the page's origin is the public URL, whatever `Host` the
        // proxy forwards.
        if let Some(origin) = config.public_url.as_deref().and_then(url_origin) {
            limits_config.allowed_origins.push(origin);
        }
        let limits = Limits::new(&limits_config, own_names);
        let snapshots = Snapshots::open(&config.db_path)?;
        let recorder = Recorder::start(store.clone()).map_err(HubError::Recorder)?;
        let notify = crate::notify::Notify::open(&config.db_path, &config.push, &config.notify)?;
        let switchboard = Switchboard::new(
            Router::new(config.ice_servers.clone()).with_turn(config.turn.clone()),
            recorder,
        )
        .with_notifier(notify.notifier());
        Ok(Hub {
            inner: Arc::new(HubState::new(
                config,
                timings,
                store,
                switchboard,
                tls,
                snapshots,
                notify,
                limits,
            )),
        })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The capability path (from the hub's root) of the snapshot of `call_id` at `door_id`,
    /// valid until `expires_ms`; what a ring notification carries. Minted before the snapshot
    /// exists: a GET of it waits briefly for the upload. For the push code and tests.
    #[doc(hidden)]
    pub fn snapshot_capability(
        &self,
        door_id: &doorbell_protocol::DoorId,
        call_id: &doorbell_protocol::CallId,
        expires_ms: i64,
    ) -> String {
        self.inner.snapshots.capabilities.url(
            door_id,
            &crate::snapshots::SnapshotKey::Call(call_id.clone()),
            expires_ms,
        )
    }

    /// SHA-256 fingerprint ("AA:BB:…") of the TLS certificate, if TLS is on.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.inner
            .tls
            .as_ref()
            .and_then(|t| t.fingerprint.as_deref())
    }

    /// Under ACME ([`crate::TlsMode::Acme`]): follows the certificate's renewals and failures.
    pub fn acme_status(&self) -> Option<tokio::sync::watch::Receiver<crate::acme::AcmeStatus>> {
        let acme = self.inner.tls.as_ref()?.acme.as_ref()?;
        Some(acme.status())
    }

    fn scheme(&self) -> &'static str {
        if self.inner.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Serves HTTP(S)+WS on `listener` until `shutdown` resolves, then drains: stops accepting,
    /// sends every peer a Close (1001 going away), waits up to a bounded time for connections to finish.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), HubError> {
        let local = listener.local_addr().map_err(HubError::LocalAddr)?;
        if self.inner.tls.is_none() && !local.ip().is_loopback() {
            return Err(HubError::PlainHttpNotLoopback(local));
        }
        self.remember_base_url(local).await?;
        // Behind a proxy the listener is on loopback but phones come from anywhere.
        let local_only = local.ip().is_loopback() && self.inner.config.public_url.is_none();
        self.inner.notify.start(
            self.inner.store.clone(),
            self.base_url(local),
            local_only,
            (
                self.inner.snapshots.capabilities.clone(),
                self.inner.timings.snapshot_url_ttl,
            ),
        );
        tracing::info!(address = %local, tls = self.inner.tls.is_some(), "hub serving");
        // Under ACME the certificate is obtained and renewed while the hub serves (the CA's
        // validation connects to this very listener); the task stops with the server.
        let acme_stop = tokio_util::sync::CancellationToken::new();
        if let Some(acme) = self.inner.tls.as_ref().and_then(|t| t.acme.clone()) {
            tokio::spawn(acme.run(acme_stop.clone()));
        }
        let _stop_acme = acme_stop.drop_guard();
        let household_stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(crate::household::follow(
            self.inner.clone(),
            household_stop.clone(),
        ));
        let _stop_household = household_stop.drop_guard();
        crate::server::run(self.inner.clone(), listener, shutdown).await;
        Ok(())
    }

    /// Stores the base URL for a listener on `local`, which app invites (hub-made codes) use for their
    /// links. [`Hub::serve`] does it too; call it first to have it stored before announcing
    /// the listener, so a `pair` started on that announcement finds it.
    pub async fn remember_base_url(&self, local: SocketAddr) -> Result<(), HubError> {
        let base_url = self.base_url(local);
        let saved = self
            .inner
            .store
            .call(move |store| store.set_setting(SETTING_BASE_URL, &base_url))
            .await;
        match saved {
            Ok(()) => Ok(()),
            Err(StoreCallError::Store(e)) => Err(e.into()),
            Err(e @ StoreCallError::Task(_)) => {
                tracing::warn!(error = %e, "could not remember the base URL");
                Ok(())
            }
        }
    }

    /// The URL a phone should open, e.g. "http://127.0.0.1:8080" (after binding; scheme per TLS mode) - or public_url.
    ///
    /// For a listener on all interfaces (0.0.0.0 / ::) this is the machine's outbound address,
    /// since that is what a phone on the LAN can reach.
    pub fn base_url(&self, local_addr: SocketAddr) -> String {
        if let Some(url) = &self.inner.config.public_url {
            return url.trim_end_matches('/').to_owned();
        }
        let ip = if local_addr.ip().is_unspecified() {
            outbound_ip(local_addr.is_ipv6()).unwrap_or(if local_addr.is_ipv6() {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            } else {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            })
        } else {
            local_addr.ip()
        };
        format!(
            "{}://{}",
            self.scheme(),
            SocketAddr::new(ip, local_addr.port())
        )
    }

    /// The URL of this hub on this machine ("http://127.0.0.1:PORT" for a listener on all
    /// interfaces), for logs and for local clients.
    pub fn local_url(&self, local_addr: SocketAddr) -> String {
        let ip = match local_addr.ip() {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!(
            "{}://{}",
            self.scheme(),
            SocketAddr::new(ip, local_addr.port())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            url_host("https://doorbell.local:8443/x"),
            Some("doorbell.local")
        );
        assert_eq!(url_host("http://[::1]:80"), Some("::1"));
        assert_eq!(url_host("ftp://x"), None);
        assert_eq!(url_host("https://"), None);
    }
}
