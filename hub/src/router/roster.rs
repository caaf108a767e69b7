//! [`Roster`]: what the router is told, at a ring, about the door's phones that have no open
//! connection or must not ring. The router knows only connections; who else was reached and who
//! is quiet comes from the store ([`crate::quiet::roster`]), looked up before the ring is routed.

use std::collections::BTreeSet;

use doorbell_protocol::PhoneId;

/// The door's paired phones at the instant of a ring, beyond what the router sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Roster {
    /// In quiet hours or do-not-disturb: neither rung on their open pages nor pushed.
    pub(crate) quiet: BTreeSet<PhoneId>,
    /// Not quiet, with at least one Web Push subscription: rung by push even with no open
    /// page, so the ring waits for their answer or decline like for an open page's.
    pub(crate) pushed: BTreeSet<PhoneId>,
}
