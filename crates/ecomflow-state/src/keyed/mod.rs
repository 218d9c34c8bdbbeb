//! [`KeyedState`]: a transform's entries by key, in memory while they fit, on disk after.
//!
//! Lookups go to the memory cache, then to the store (what was spilled in this run, then
//! what the last checkpoint committed). When the process's budget is spent, a clock sweep
//! evicts entries not used since its hand last passed: one whose value is on disk already
//! just leaves, the others are written to `spill` first. Entries changed since the last
//! barrier are remembered (in memory, and in `changed` for those evicted) so a checkpoint
//! writes only them. `memory.rs` holds the budget and the sweep, `checkpoint.rs` the
//! attachment to the store and the changes handed over at each barrier.

mod checkpoint;
mod memory;

use crate::budget::MemoryBudget;
use crate::database::Namespace;
use crate::delta::Delta;
use crate::encoding;
use crate::slot::{Entry, Lookup, Slot};
use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::hash::Hash;
use std::sync::Arc;

/// What a checkpoint needs of a keyed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tracking {
    /// Nothing: checkpoints keep no state (none are kept, or none are taken).
    None,
    /// The entries changed since the previous barrier ([`StateHandle::take_delta`]):
    /// checkpoints are committed to the local store.
    Incremental,
    /// Every entry, in the transform's snapshot: checkpoints go to a store that takes whole
    /// states (a shared database).
    Full,
}

/// Figures of a keyed state, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateStats {
    /// Entries held, in memory and on disk.
    pub keys: u64,
    /// Entries in memory.
    pub cached: usize,
    /// Bytes charged to the memory budget (an estimate).
    pub memory_bytes: usize,
}

/// What the runtime does with a transform's keyed state, whatever its types.
pub trait StateHandle: Send {
    /// Keeps entries in `namespace` when memory runs short (the budget shared by the
    /// process), resuming from what the last completed checkpoint committed there.
    fn attach(
        &mut self,
        namespace: Namespace,
        budget: Arc<MemoryBudget>,
        tracking: Tracking,
    ) -> Result<(), String>;

    /// What changed since the previous barrier (with [`Tracking::Incremental`]).
    fn take_delta(&mut self) -> Result<Option<Delta>, String>;

    /// The first disk error met since the last call, if any: the state cannot be trusted
    /// after one, and the run stops.
    fn take_error(&mut self) -> Option<String>;

    /// Its figures.
    fn stats(&self) -> StateStats;
}

struct Attached {
    namespace: Namespace,
    budget: Arc<MemoryBudget>,
    tracking: Tracking,
    /// The disk may hold entries of this namespace (committed ones, or spilled in this run).
    on_disk: bool,
}

/// A transform's entries: values of type `V` by key `K` and an optional order (an event
/// time, for [`KeyedState::expire_through`]). Without [`StateHandle::attach`] it is a plain
/// map in memory (unit tests, `ecomflow test`).
pub struct KeyedState<K, V> {
    cache: IndexMap<Entry<K>, Slot<V>, foldhash::fast::RandomState>,
    /// Entries that turned dirty since the last barrier (some may have left memory since).
    dirty: Vec<Entry<K>>,
    /// Cached entries holding a value, counted by order (those expired are not counted).
    live: BTreeMap<i64, usize>,
    /// Every entry ordered at or before this time has expired: lookups do not find it, the
    /// clock sweeps it out of memory, and the next commit removes it from disk.
    expired: i64,
    /// What the last delta told the commit had expired.
    expired_committed: i64,
    /// Cached entries that have expired (about: the clock sweeps some out on its way).
    expired_cached: usize,
    /// Barriers passed: entries evicted dirty are listed on disk under the current one.
    epoch: u64,
    attached: Option<Attached>,
    len: u64,
    hand: usize,
    /// Estimated bytes of one cached entry.
    entry_bytes: usize,
    charged: usize,
    /// Bytes and count of entries encoded so far, for the estimate.
    encoded: (usize, usize),
    /// The first disk error (a snapshot, which only reads, can meet one too).
    error: std::sync::OnceLock<String>,
}

impl<K, V> Default for KeyedState<K, V> {
    fn default() -> Self {
        KeyedState {
            cache: IndexMap::default(),
            dirty: Vec::new(),
            live: BTreeMap::new(),
            expired: i64::MIN,
            expired_committed: i64::MIN,
            expired_cached: 0,
            epoch: 0,
            attached: None,
            len: 0,
            hand: 0,
            entry_bytes: base_bytes::<K, V>() + 32,
            charged: 0,
            encoded: (0, 0),
            error: std::sync::OnceLock::new(),
        }
    }
}

/// Bytes of a cached entry before what its key and value hold on the heap.
fn base_bytes<K, V>() -> usize {
    // The map's entry and its index (a hash and a position).
    std::mem::size_of::<(Entry<K>, Slot<V>)>() + 16
}

impl<K, V> KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send,
    V: Serialize + DeserializeOwned + Clone + Send,
{
    /// An empty state in memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// What checkpoints need of it.
    pub fn tracking(&self) -> Tracking {
        self.attached
            .as_ref()
            .map_or(Tracking::None, |a| a.tracking)
    }

    fn is_expired(&self, order: Option<i64>) -> bool {
        order.is_some_and(|t| t <= self.expired)
    }

    /// The value of `key` at `order`, to read.
    pub fn get<Q>(&mut self, order: Option<i64>, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
        let i = self.load(order, key)?;
        self.cache.get_index(i).and_then(|(_, s)| s.value.as_ref())
    }

    /// The key as memory holds it, if `key` at `order` is cached (as it is right after a
    /// call that found or made it): a transform that indexes its entries shares it.
    pub fn cached_key<Q>(&self, order: Option<i64>, key: &Q) -> Option<&K>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.cache
            .get_key_value(&Lookup { order, key })
            .map(|(e, _)| &e.key)
    }

    /// The value of `key` at `order`, to change.
    pub fn get_mut<Q>(&mut self, order: Option<i64>, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
        let i = self.load(order, key)?;
        let live = self
            .cache
            .get_index(i)
            .is_some_and(|(_, s)| s.value.is_some());
        if !live {
            return None;
        }
        self.mark_dirty(i);
        self.cache
            .get_index_mut(i)
            .and_then(|(_, s)| s.value.as_mut())
    }

    /// The value of `key` at `order` to change, made with `make` (its owned key with
    /// `make_key`) when there is none; true when it was made. An entry is not made at or
    /// before a time already expired (it would not be kept): callers check their own
    /// lateness first.
    pub fn get_or_insert_with<Q>(
        &mut self,
        order: Option<i64>,
        key: &Q,
        make_key: impl FnOnce() -> K,
        make: impl FnOnce() -> V,
    ) -> (&mut V, bool)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
        debug_assert!(!self.is_expired(order), "made at an expired time");
        let i = match self.load(order, key) {
            Some(i) => i,
            None => self.cache_new(Entry {
                order,
                key: make_key(),
            }),
        };
        let made = match self.cache.get_index_mut(i) {
            Some((_, slot)) if slot.value.is_none() => {
                slot.value = Some(make());
                true
            }
            _ => false,
        };
        if made {
            self.len += 1;
            self.count(order, true);
        }
        self.mark_dirty(i);
        let value = self
            .cache
            .get_index_mut(i)
            .and_then(|(_, s)| s.value.as_mut());
        match value {
            Some(v) => (v, made),
            None => unreachable!("the slot was just filled"),
        }
    }

    /// Removes `key` at `order`; returns its value.
    pub fn remove<Q>(&mut self, order: Option<i64>, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
        let i = self.load(order, key)?;
        let old = self.cache.get_index_mut(i)?.1.value.take()?;
        self.len -= 1;
        self.count(order, false);
        self.mark_dirty(i);
        Some(old)
    }

    /// Removes every entry ordered at or before `through`; returns how many there were.
    /// Only those are looked at, and those on disk only once: they stay where they are
    /// until the clock sweeps them out of memory and the next commit out of the disk.
    pub fn expire_through(&mut self, through: i64) -> u64 {
        if through <= self.expired {
            return 0;
        }
        let mut removed: u64 = 0;
        // The entries on disk newly expired, unless memory holds them (counted below).
        if let Some(a) = self.attached.as_ref().filter(|a| a.on_disk) {
            match a.namespace.between(self.expired, through) {
                Ok(stored) => {
                    for (k, v) in stored {
                        if *v == encoding::DELETED {
                            continue;
                        }
                        match encoding::decode_key::<K>(&k) {
                            Ok((order, key)) => {
                                if !self.cache.contains_key(&Entry { order, key }) {
                                    removed += 1;
                                }
                            }
                            Err(e) => self.fail(e),
                        }
                    }
                }
                Err(e) => self.fail(e),
            }
        }
        let kept = self.live.split_off(&through.saturating_add(1));
        let gone = std::mem::replace(&mut self.live, kept);
        let cached: usize = gone.values().sum();
        removed += cached as u64;
        if through == i64::MAX {
            self.live.clear();
        }
        self.expired = through;
        self.len = self.len.saturating_sub(removed);
        self.expired_cached += cached;
        // Once an eighth of memory has expired, it goes at once (each entry is looked at
        // once per eighth of the cache that expires, whatever the number of expiries).
        if self.expired_cached > 0 && self.expired_cached >= self.cache.len() / 8 {
            let before = self.cache.len();
            let expired = self.expired;
            self.cache
                .retain(|e, _| e.order.is_none_or(|t| t > expired));
            self.uncharge(before - self.cache.len());
            self.expired_cached = 0;
            self.hand = 0;
        }
        removed
    }

    /// Every entry (memory and disk), for a whole copy of the state.
    pub fn export(&self) -> Vec<(Option<i64>, K, V)> {
        let mut out: Vec<(Option<i64>, K, V)> = self
            .cache
            .iter()
            .filter(|(e, _)| !self.is_expired(e.order))
            .filter_map(|(e, s)| Some((e.order, e.key.clone(), s.value.clone()?)))
            .collect();
        let Some(a) = self.attached.as_ref().filter(|a| a.on_disk) else {
            return out;
        };
        let stored = match a.namespace.all() {
            Ok(stored) => stored,
            Err(e) => {
                self.fail(e);
                return out;
            }
        };
        for (k, v) in stored {
            if self.is_expired(encoding::order_of(&k)) {
                continue;
            }
            let decoded = encoding::decode_key::<K>(&k)
                .and_then(|(order, key)| Ok((order, key, encoding::decode_value::<V>(&v)?)));
            match decoded {
                Ok((order, key, value)) => {
                    let entry = Entry { order, key };
                    if self.cache.contains_key(&entry) {
                        continue;
                    }
                    if let Some(value) = value {
                        out.push((entry.order, entry.key, value));
                    }
                }
                Err(e) => {
                    self.fail(e);
                    return out;
                }
            }
        }
        out
    }

    /// Puts back entries of a whole copy ([`KeyedState::export`]).
    pub fn import(&mut self, entries: impl IntoIterator<Item = (Option<i64>, K, V)>) {
        for (order, key, value) in entries {
            let (slot, _) = self.get_or_insert_with(order, &key, || key.clone(), || value.clone());
            *slot = value;
        }
    }

    /// Counts a cached entry of `order` that gained (`true`) or lost its value.
    fn count(&mut self, order: Option<i64>, gained: bool) {
        let Some(t) = order.filter(|t| *t > self.expired) else {
            return;
        };
        if gained {
            *self.live.entry(t).or_default() += 1;
        } else if let Some(n) = self.live.get_mut(&t) {
            *n -= 1;
            if *n == 0 {
                self.live.remove(&t);
            }
        }
    }

    /// The index of `key` in the cache, loaded from disk when it is there.
    fn load<Q>(&mut self, order: Option<i64>, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
        if self.is_expired(order) {
            return None;
        }
        if let Some(i) = self.cache.get_index_of(&Lookup { order, key }) {
            if let Some((_, s)) = self.cache.get_index_mut(i) {
                s.touched = true;
            }
            return Some(i);
        }
        let a = self.attached.as_ref().filter(|a| a.on_disk)?;
        let found = encoding::entry_key(&a.namespace.prefix, order, key).and_then(|k| {
            let Some(v) = a.namespace.get(&k)? else {
                return Ok(None);
            };
            let (_, owned) = encoding::decode_key::<K>(&k)?;
            Ok(Some((owned, encoding::decode_value::<V>(&v)?)))
        });
        match found {
            Ok(Some((owned, value))) => {
                let live = value.is_some();
                let i = self.cache_new(Entry { order, key: owned });
                if let Some((_, s)) = self.cache.get_index_mut(i) {
                    s.value = value;
                    s.saved = true;
                    s.stored = true;
                }
                if live {
                    self.count(order, true);
                }
                Some(i)
            }
            Ok(None) => None,
            Err(e) => {
                self.fail(e);
                None
            }
        }
    }

    /// Caches an empty slot for `entry` (evicting others first when memory is short). An
    /// expired slot of the same key is replaced.
    fn cache_new(&mut self, entry: Entry<K>) -> usize {
        self.evict_if_over();
        let (i, old) = self.cache.insert_full(
            entry,
            Slot {
                value: None,
                dirty: false,
                saved: false,
                stored: false,
                touched: true,
            },
        );
        if old.is_none() {
            self.charge(1);
        }
        i
    }

    fn mark_dirty(&mut self, i: usize) {
        let tracking = self.tracking();
        let Some((entry, slot)) = self.cache.get_index_mut(i) else {
            return;
        };
        slot.saved = false;
        if !slot.dirty {
            slot.dirty = true;
            if tracking == Tracking::Incremental {
                self.dirty.push(entry.clone());
            }
        }
    }

    fn fail(&self, e: String) {
        let _ = self.error.set(e);
    }
}

impl<K, V> Drop for KeyedState<K, V> {
    fn drop(&mut self) {
        if let Some(a) = &self.attached {
            a.budget.release(self.charged);
        }
    }
}

#[cfg(test)]
mod tests;
