//! The pool of WebSockets that have not said `hello` yet: small, bounded per address, and
//! when full the oldest waiter makes room for the newcomer. Sockets that never authenticate
//! therefore cost at most this pool, never the slots of doors and phones, and cannot keep a
//! real client from reaching its `hello` (each waiter also has the protocol's hello deadline).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::address::AddrKey;

#[derive(Debug)]
pub(crate) struct PendingPool {
    max: usize,
    max_per_address: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// Waiters by age (ids grow): the first is the one evicted when the pool is full.
    by_age: BTreeMap<u64, (AddrKey, CancellationToken)>,
    per_address: HashMap<AddrKey, usize>,
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<CancellationToken> {
        let (key, evict) = self.by_age.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_address.remove(&key);
            }
        }
        Some(evict)
    }
}

/// A place in the pool until `hello` is done (drop it then). `evicted` fires when a newer
/// waiter took the place: the connection should close.
#[derive(Debug)]
pub(crate) struct PendingTicket {
    pool: Arc<PendingPool>,
    id: u64,
    pub(crate) evicted: CancellationToken,
}

/// Why a waiter was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AddressFull;

/// What admitting a waiter did.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub(crate) ticket: PendingTicket,
    /// An older waiter was told to leave to make room.
    pub(crate) evicted_one: bool,
}

impl PendingPool {
    pub(crate) fn new(max: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(PendingPool {
            max: max.max(1),
            max_per_address: max_per_address.max(1),
            inner: Mutex::default(),
        })
    }

    /// Admits a waiter from `key`, evicting the oldest if the pool is full; refuses only if
    /// `key` itself already has its share of waiters.
    pub(crate) fn admit(self: &Arc<Self>, key: AddrKey) -> Result<Admitted, AddressFull> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if inner.per_address.get(&key).copied().unwrap_or(0) >= self.max_per_address {
            return Err(AddressFull);
        }
        let mut evicted_one = false;
        while inner.by_age.len() >= self.max {
            let Some(oldest) = inner.by_age.keys().next().copied() else {
                break;
            };
            if let Some(token) = inner.remove(oldest) {
                token.cancel();
                evicted_one = true;
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evicted = CancellationToken::new();
        inner.by_age.insert(id, (key, evicted.clone()));
        *inner.per_address.entry(key).or_insert(0) += 1;
        Ok(Admitted {
            ticket: PendingTicket {
                pool: self.clone(),
                id,
                evicted,
            },
            evicted_one,
        })
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().map(|i| i.by_age.len()).unwrap_or(0)
    }
}

impl Drop for PendingTicket {
    fn drop(&mut self) {
        let mut inner = self.pool.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last: u8) -> AddrKey {
        AddrKey::of([192, 0, 2, last].into())
    }

    #[test]
    fn a_full_pool_evicts_the_oldest_waiter() {
        let pool = PendingPool::new(2, 2);
        let first = pool.admit(key(1)).expect("first");
        let second = pool.admit(key(2)).expect("second");
        let third = pool.admit(key(3)).expect("third gets in");
        assert!(third.evicted_one);
        assert!(
            first.ticket.evicted.is_cancelled(),
            "the oldest was told to go"
        );
        assert!(!second.ticket.evicted.is_cancelled());
        assert_eq!(pool.len(), 2);
        drop(first);
        assert_eq!(
            pool.len(),
            2,
            "an evicted ticket's drop frees nothing twice"
        );
        drop(second);
        assert_eq!(pool.len(), 1);
    }

    #[test]
    fn one_address_has_a_bounded_share() {
        let pool = PendingPool::new(8, 2);
        let _a = pool.admit(key(1)).expect("a");
        let b = pool.admit(key(1)).expect("b");
        assert_eq!(pool.admit(key(1)).err(), Some(AddressFull));
        assert!(pool.admit(key(2)).is_ok(), "others still get in");
        drop(b);
        assert!(
            pool.admit(key(1)).is_ok(),
            "a finished hello frees the share"
        );
    }
}
