//! A keyed state's part in checkpoints: attached to its namespace of the store, and the
//! changes it hands over at each barrier.

use super::{Attached, KeyedState, StateHandle, StateStats, Tracking};
use crate::MemoryBudget;
use crate::database::Namespace;
use crate::delta::Delta;
use crate::encoding;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

impl<K, V> KeyedState<K, V>
where
    K: Hash + Eq + Clone + Serialize + DeserializeOwned + Send,
    V: Serialize + DeserializeOwned + Clone + Send,
{
    pub(super) fn delta(&mut self) -> Result<Option<Delta>, String> {
        let Some(a) = &self.attached else {
            return Ok(None);
        };
        if a.tracking != Tracking::Incremental {
            return Ok(None);
        }
        let prefix = a.namespace.prefix;
        let mut delta = Delta::new(prefix, self.len, self.expired);
        if self.expired > self.expired_committed {
            delta.expired = Some((self.expired_committed, self.expired));
            self.expired_committed = self.expired;
        }
        // Entries evicted since they changed: their newest value is spilled, unless memory
        // holds a newer one (below). Usually few or none.
        let epoch = self.epoch;
        self.epoch += 1;
        let mut evicted: HashMap<Vec<u8>, fjall::UserValue, foldhash::fast::RandomState> =
            HashMap::default();
        if a.on_disk {
            for (k, v) in a.namespace.take_changed(epoch)? {
                if !self.is_expired(encoding::order_of(&k)) {
                    evicted.insert(k, v);
                }
            }
        }
        let mut key = Vec::new();
        let mut value = Vec::new();
        for entry in std::mem::take(&mut self.dirty) {
            if self.is_expired(entry.order) {
                continue;
            }
            let Some((_, e, slot)) = self.cache.get_full_mut(&entry) else {
                continue;
            };
            if !slot.dirty {
                continue;
            }
            slot.dirty = false;
            slot.stored = true;
            encoding::entry_key_into(&prefix, e.order, &e.key, &mut key)?;
            if !evicted.is_empty() {
                evicted.remove(&key);
            }
            match &slot.value {
                Some(v) => {
                    encoding::value_into(v, &mut value)?;
                    delta.put(&key, &value);
                }
                None => delta.delete(&key),
            }
        }
        for (k, v) in evicted {
            if *v == encoding::DELETED {
                delta.delete(&k);
            } else {
                delta.put(&k, &v);
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
        let (committed, expired) = match tracking {
            Tracking::Incremental => namespace.committed_figures()?,
            Tracking::None | Tracking::Full => (0, i64::MIN),
        };
        if expired > self.expired {
            self.expired = expired;
        }
        self.expired_committed = self.expired_committed.max(expired);
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
