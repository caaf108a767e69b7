//! File descriptors: the hub raises its soft `RLIMIT_NOFILE` to the hard limit at start and
//! derives its connection caps from what it got, so a server hub is limited by the machine
//! (and by `LimitNOFILE=` in its unit), not by a constant.

use super::LimitsConfig;

/// Descriptors kept for everything that is not a client connection: the database and its
/// journal, snapshot and voice files being written, TURN relay sockets, outgoing Web Push and
/// ntfy connections, the listener, logs.
pub(crate) const FD_RESERVE: u64 = 256;
/// The floor of the derived connection cap, should the limit be tiny.
pub(crate) const MIN_CONNECTIONS: usize = 64;
/// Connections one address (IPv6: one /64) may hold by default: a household behind one NAT
/// has a few doors and phones; a carrier-grade NAT shares an address among many households.
pub(crate) const DEFAULT_MAX_PER_ADDRESS: usize = 256;
/// WebSockets waiting for `hello`, at most (default). A real client says hello within a
/// round trip of the upgrade, so a few hundred waiters serve any burst of reconnects.
pub(crate) const DEFAULT_MAX_PENDING: usize = 256;
/// WebSockets waiting for `hello` from one address (default).
pub(crate) const DEFAULT_MAX_PENDING_PER_ADDRESS: usize = 16;
/// Above this the soft limit is not raised further (Linux's default `nr_open`): a hard limit
/// of "infinity" would otherwise make the derived caps meaningless.
const NOFILE_CEILING: u64 = 1 << 20;

/// The hub's connection caps, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// Open TCP connections (HTTP and WebSocket).
    pub(crate) connections: usize,
    /// Open WebSockets; the rest of `connections` stays free for page loads and pairing.
    pub(crate) websockets: usize,
    /// TCP connections per address.
    pub(crate) per_address: usize,
    /// WebSockets waiting for `hello`.
    pub(crate) pending: usize,
    /// WebSockets waiting for `hello`, per address.
    pub(crate) pending_per_address: usize,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (bounded by [`NOFILE_CEILING`]) and
/// returns the soft limit now in force.
pub(crate) fn raise_nofile() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let hard = limit.maximum.unwrap_or(NOFILE_CEILING).min(NOFILE_CEILING);
    let soft = limit.current.unwrap_or(NOFILE_CEILING);
    if soft < hard {
        let raised = Rlimit {
            current: Some(hard),
            maximum: limit.maximum,
        };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => return hard,
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open-files limit")
            }
        }
    }
    soft
}

/// The caps for a process allowed `nofile` descriptors, with the `[limits]` overrides.
pub(crate) fn caps(nofile: u64, config: &LimitsConfig) -> Caps {
    let from_fds = usize::try_from(nofile.saturating_sub(FD_RESERVE))
        .unwrap_or(usize::MAX)
        .max(MIN_CONNECTIONS);
    let connections = match config.max_connections {
        Some(n) if n > from_fds => {
            tracing::warn!(
                configured = n,
                open_files = nofile,
                "limits.max_connections is above what the open-files limit allows; raise LimitNOFILE="
            );
            n
        }
        Some(n) => n.max(1),
        None => from_fds,
    };
    let websockets = config
        .max_websockets
        .unwrap_or(connections - connections / 8)
        .clamp(1, connections);
    Caps {
        connections,
        websockets,
        per_address: config
            .max_per_address
            .unwrap_or(DEFAULT_MAX_PER_ADDRESS)
            .max(1),
        pending: config
            .max_pending_websockets
            .unwrap_or((websockets / 4).clamp(1, DEFAULT_MAX_PENDING))
            .max(1),
        pending_per_address: config
            .max_pending_per_address
            .unwrap_or(DEFAULT_MAX_PENDING_PER_ADDRESS)
            .max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_follow_the_descriptor_limit_unless_configured() {
        let derived = caps(65_536, &LimitsConfig::default());
        assert_eq!(derived.connections, 65_536 - 256);
        assert_eq!(
            derived.websockets,
            derived.connections - derived.connections / 8
        );
        assert_eq!(derived.pending, DEFAULT_MAX_PENDING);
        assert_eq!(
            caps(100, &LimitsConfig::default()).connections,
            MIN_CONNECTIONS
        );
        let configured = caps(
            65_536,
            &LimitsConfig {
                max_connections: Some(10),
                max_websockets: Some(50),
                ..LimitsConfig::default()
            },
        );
        assert_eq!((configured.connections, configured.websockets), (10, 10));
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let now = raise_nofile();
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        assert!(limit.current.is_none_or(|c| c >= now), "{limit:?} vs {now}");
    }
}
