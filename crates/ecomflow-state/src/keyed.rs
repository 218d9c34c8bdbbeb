//! [`KeyedState`]: a transform's entries by key, in memory while they fit, on disk after.
//!
//! Lookups go to the memory cache, then to the store (what was spilled in this run, then
//! what the last checkpoint committed). When the process's budget is spent, a clock sweep
//! evicts entries not used since its hand last passed: one whose value is on disk already
//! just leaves, the others are written to `spill` first. Entries changed since the last
//! barrier are remembered (in memory, and in `changed` for those evicted) so a checkpoint
//! writes only them.

use crate::budget::MemoryBudget;
use crate::database::Namespace;
use crate::delta::Delta;
use crate::encoding;
use crate::slot::{Entry, Lookup, Slot};
use indexmap::IndexMap;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};
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
    /// Cached entries by order, counted.
    orders: BTreeMap<i64, usize>,
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
            orders: BTreeMap::new(),
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

    /// The value of `key` at `order`, to read.
    pub fn get<Q>(&mut self, order: Option<i64>, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
        let i = self.load(order, key)?;
        self.cache.get_index(i).and_then(|(_, s)| s.value.as_ref())
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
    /// `make_key`) when there is none; true when it was made.
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
        self.mark_dirty(i);
        Some(old)
    }

    /// Removes every entry ordered at or before `through`, in memory and on disk; returns
    /// how many there were. Only those are looked at.
    pub fn expire_through(&mut self, through: i64) -> u64 {
        let mut removed = 0;
        let mut spills = Vec::new();
        let mut changed = Vec::new();
        let incremental = self.tracking() == Tracking::Incremental;
        if let Some(a) = self.attached.as_ref().filter(|a| a.on_disk) {
            match a.namespace.through(through) {
                Ok(stored) => {
                    for (k, v) in stored {
                        let cached = match encoding::decode_key::<K>(&k) {
                            Ok((order, key)) => self.cache.contains_key(&Entry { order, key }),
                            Err(e) => {
                                self.fail(e);
                                return removed;
                            }
                        };
                        if cached {
                            continue;
                        }
                        if *v != encoding::DELETED {
                            removed += 1;
                            spills.push((k.clone(), encoding::DELETED.to_vec()));
                            if incremental {
                                changed.push(k);
                            }
                        }
                    }
                }
                Err(e) => self.fail(e),
            }
        }
        if self.orders.range(..=through).next().is_some() {
            let prefix = self.attached.as_ref().map(|a| a.namespace.prefix);
            let mut gone = 0;
            let mut failed = None;
            self.cache.retain(|entry, slot| {
                if entry.order.is_none_or(|t| t > through) {
                    return true;
                }
                gone += 1;
                if slot.value.is_some() {
                    removed += 1;
                }
                if let Some(prefix) = &prefix
                    && slot.stored
                {
                    match encoding::entry_key(prefix, entry.order, &entry.key) {
                        Ok(k) => {
                            spills.push((k.clone(), encoding::DELETED.to_vec()));
                            if incremental {
                                changed.push(k);
                            }
                        }
                        Err(e) => failed = Some(e),
                    }
                }
                false
            });
            if let Some(e) = failed {
                self.fail(e);
            }
            self.orders = self.orders.split_off(&through.saturating_add(1));
            if through == i64::MAX {
                self.orders.clear();
            }
            self.uncharge(gone);
            self.hand = 0;
        }
        if !spills.is_empty()
            && let Some(a) = &mut self.attached
        {
            a.on_disk = true;
            if let Err(e) = a.namespace.spill(spills, changed) {
                self.fail(e);
            }
        }
        self.len = self.len.saturating_sub(removed);
        removed
    }

    /// Every entry (memory and disk), for a whole copy of the state.
    pub fn export(&self) -> Vec<(Option<i64>, K, V)> {
        let mut out: Vec<(Option<i64>, K, V)> = self
            .cache
            .iter()
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

    /// The index of `key` in the cache, loaded from disk when it is there.
    fn load<Q>(&mut self, order: Option<i64>, key: &Q) -> Option<usize>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + Serialize + ?Sized,
    {
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
                let i = self.cache_new(Entry { order, key: owned });
                if let Some((_, s)) = self.cache.get_index_mut(i) {
                    s.value = value;
                    s.saved = true;
                    s.stored = true;
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

    /// Caches a new empty slot for `entry` (evicting others first when memory is short).
    fn cache_new(&mut self, entry: Entry<K>) -> usize {
        self.evict_if_over();
        if let Some(t) = entry.order {
            *self.orders.entry(t).or_default() += 1;
        }
        let (i, _) = self.cache.insert_full(
            entry,
            Slot {
                value: None,
                dirty: false,
                saved: false,
                stored: false,
                touched: true,
            },
        );
        self.charge(1);
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

    fn charge(&mut self, entries: usize) {
        let bytes = entries * self.entry_bytes;
        self.charged += bytes;
        if let Some(a) = &self.attached {
            a.budget.charge(bytes);
        }
    }

    fn uncharge(&mut self, entries: usize) {
        let bytes = (entries * self.entry_bytes).min(self.charged);
        self.charged -= bytes;
        if let Some(a) = &self.attached {
            a.budget.release(bytes);
        }
    }

    /// Evicts an eighth of the cache (at least 64 entries) when the budget is spent.
    fn evict_if_over(&mut self) {
        let Some(a) = &self.attached else { return };
        if !a.budget.over() || self.cache.is_empty() {
            return;
        }
        let incremental = a.tracking == Tracking::Incremental;
        let prefix = a.namespace.prefix;
        let target = (self.cache.len() / 8).max(64).min(self.cache.len());
        let mut spills = Vec::new();
        let mut changed = Vec::new();
        let mut evicted = 0;
        let mut bytes = 0;
        while evicted < target && !self.cache.is_empty() {
            if self.hand >= self.cache.len() {
                self.hand = 0;
            }
            let Some((_, slot)) = self.cache.get_index_mut(self.hand) else {
                break;
            };
            if slot.touched {
                slot.touched = false;
                self.hand += 1;
                continue;
            }
            let Some((entry, slot)) = self.cache.swap_remove_index(self.hand) else {
                break;
            };
            evicted += 1;
            if let Some(t) = entry.order
                && let Some(n) = self.orders.get_mut(&t)
            {
                *n -= 1;
                if *n == 0 {
                    self.orders.remove(&t);
                }
            }
            if slot.saved || (slot.value.is_none() && !slot.stored) {
                continue;
            }
            let encoded = encoding::entry_key(&prefix, entry.order, &entry.key).and_then(|k| {
                let v = match &slot.value {
                    Some(v) => encoding::value(v)?,
                    None => encoding::DELETED.to_vec(),
                };
                Ok((k, v))
            });
            match encoded {
                Ok((k, v)) => {
                    bytes += k.len() + v.len();
                    if slot.dirty && incremental {
                        changed.push(k.clone());
                    }
                    spills.push((k, v));
                }
                Err(e) => {
                    self.fail(e);
                    return;
                }
            }
        }
        self.encoded.0 += bytes;
        self.encoded.1 += spills.len();
        self.uncharge(evicted);
        self.reestimate();
        if let Some(a) = &mut self.attached
            && !spills.is_empty()
        {
            a.on_disk = true;
            if let Err(e) = a.namespace.spill(spills, changed) {
                self.fail(e);
            }
        }
    }

    /// Re-estimates the bytes of an entry from the sizes encoded so far (what keys and
    /// values hold on the heap is about twice their encoded size), and charges the
    /// difference.
    fn reestimate(&mut self) {
        let (bytes, n) = self.encoded;
        if n < 64 {
            return;
        }
        let estimate = base_bytes::<K, V>() + 2 * bytes / n;
        let now = self.cache.len() * estimate;
        if let Some(a) = &self.attached {
            if now > self.charged {
                a.budget.charge(now - self.charged);
            } else {
                a.budget.release(self.charged - now);
            }
        }
        self.charged = now;
        self.entry_bytes = estimate;
    }

    fn fail(&self, e: String) {
        let _ = self.error.set(e);
    }

    fn delta(&mut self) -> Result<Option<Delta>, String> {
        let Some(a) = &self.attached else {
            return Ok(None);
        };
        if a.tracking != Tracking::Incremental {
            return Ok(None);
        }
        let prefix = a.namespace.prefix;
        let mut delta = Delta {
            prefix,
            len: self.len,
            ..Delta::default()
        };
        let mut taken = HashSet::new();
        for entry in std::mem::take(&mut self.dirty) {
            let Some((_, e, slot)) = self.cache.get_full_mut(&entry) else {
                continue;
            };
            if !slot.dirty {
                continue;
            }
            slot.dirty = false;
            slot.stored = true;
            let k = encoding::entry_key(&prefix, e.order, &e.key)?;
            match &slot.value {
                Some(v) => delta.puts.push((k.clone(), encoding::value(v)?)),
                None => delta.deletes.push(k.clone()),
            }
            taken.insert(k);
        }
        if a.on_disk {
            for (k, v) in a.namespace.take_changed()? {
                if taken.contains(&k) {
                    continue;
                }
                if *v == encoding::DELETED {
                    delta.deletes.push(k);
                } else {
                    delta.puts.push((k, v.to_vec()));
                }
            }
        }
        Ok(Some(delta))
    }
}

impl<K, V> StateHandle for KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send,
    V: Serialize + DeserializeOwned + Clone + Send,
{
    fn attach(
        &mut self,
        namespace: Namespace,
        budget: Arc<MemoryBudget>,
        tracking: Tracking,
    ) -> Result<(), String> {
        namespace.forget_spilled()?;
        let committed = match tracking {
            Tracking::Incremental => namespace.committed_len()?,
            Tracking::None | Tracking::Full => 0,
        };
        if let Some(old) = self.attached.take() {
            old.budget.release(self.charged);
        }
        budget.charge(self.charged);
        self.len += committed;
        self.attached = Some(Attached {
            namespace,
            budget,
            tracking,
            on_disk: committed > 0,
        });
        // Entries made before (restored from a whole copy) are changes to write.
        if tracking == Tracking::Incremental {
            let dirty: Vec<usize> = (0..self.cache.len()).collect();
            for i in dirty {
                if let Some((_, s)) = self.cache.get_index_mut(i) {
                    s.dirty = false;
                }
                self.mark_dirty(i);
            }
        }
        Ok(())
    }

    fn take_delta(&mut self) -> Result<Option<Delta>, String> {
        self.delta()
    }

    fn take_error(&mut self) -> Option<String> {
        self.error.take()
    }

    fn stats(&self) -> StateStats {
        StateStats {
            keys: self.len,
            cached: self.cache.len(),
            memory_bytes: self.charged,
        }
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
#[path = "keyed_tests.rs"]
mod tests;
