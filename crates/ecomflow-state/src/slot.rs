//! An entry of the memory cache: its key (an order and the transform's key), and its slot
//! (the value, and what the cache knows about it).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

/// A cached entry's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<K> {
    pub order: Option<i64>,
    pub key: K,
}

impl<K: Hash> Hash for Entry<K> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.order.hash(h);
        self.key.hash(h);
    }
}

/// A key to look an entry up by, borrowed (the transform's key as it built it).
pub(crate) struct Lookup<'a, Q: ?Sized> {
    pub order: Option<i64>,
    pub key: &'a Q,
}

impl<Q: Hash + ?Sized> Hash for Lookup<'_, Q> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.order.hash(h);
        self.key.hash(h);
    }
}

impl<K: Borrow<Q>, Q: Eq + ?Sized> indexmap::Equivalent<Entry<K>> for Lookup<'_, Q> {
    fn equivalent(&self, e: &Entry<K>) -> bool {
        self.order == e.order && e.key.borrow() == self.key
    }
}

/// A cached value and its bookkeeping.
pub(crate) struct Slot<V> {
    /// `None`: removed (the removal is not on disk yet, or the disk holds a removal).
    pub value: Option<V>,
    /// Changed since its instance's last barrier.
    pub dirty: bool,
    /// The disk (spilled or committed) holds this very value: it can leave memory as is.
    pub saved: bool,
    /// The disk may hold some value of it (spilled, committed, or in a checkpoint under way):
    /// a removal must be written.
    pub stored: bool,
    /// Used since the clock hand last passed it.
    pub touched: bool,
}
