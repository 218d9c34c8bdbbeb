//! The memory budget of a keyed state: what its cached entries are charged, and the clock
//! sweep that evicts entries (writing those the disk does not hold yet) when the process's
//! budget is spent.

use super::{KeyedState, Tracking, base_bytes};
use crate::encoding;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::hash::Hash;

impl<K, V> KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send,
    V: Serialize + DeserializeOwned + Clone + Send,
{
    pub(super) fn charge(&mut self, entries: usize) {
        let bytes = entries * self.entry_bytes;
        self.charged += bytes;
        if let Some(a) = &self.attached {
            a.budget.charge(bytes);
        }
    }

    pub(super) fn uncharge(&mut self, entries: usize) {
        let bytes = (entries * self.entry_bytes).min(self.charged);
        self.charged -= bytes;
        if let Some(a) = &self.attached {
            a.budget.release(bytes);
        }
    }

    /// Evicts an eighth of the cache (at least 64 entries) when the budget is spent.
    pub(super) fn evict_if_over(&mut self) {
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
            let expired = self.expired;
            let Some((entry, slot)) = self.cache.get_index_mut(self.hand) else {
                break;
            };
            // Expired entries go first, whatever their use.
            if slot.touched && entry.order.is_none_or(|t| t > expired) {
                slot.touched = false;
                self.hand += 1;
                continue;
            }
            let Some((entry, slot)) = self.cache.swap_remove_index(self.hand) else {
                break;
            };
            evicted += 1;
            if self.is_expired(entry.order) {
                // The commit removes it from the disk; spilled copies are never read.
                self.expired_cached = self.expired_cached.saturating_sub(1);
                continue;
            }
            if slot.value.is_some() {
                self.count(entry.order, false);
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
                        changed.push(spills.len());
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
        let epoch = self.epoch;
        if let Some(a) = &mut self.attached
            && !spills.is_empty()
        {
            a.on_disk = true;
            if let Err(e) = a.namespace.spill(spills, changed, epoch) {
                self.fail(e);
            }
        }
    }

    /// Re-estimates the bytes of an entry from the sizes encoded so far (what keys and
    /// values hold on the heap is about twice their encoded size), and charges the
    /// difference.
    pub(super) fn reestimate(&mut self) {
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
}
