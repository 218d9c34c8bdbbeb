//! The embedded disk store of a process's keyed state (fjall, an LSM tree), and the
//! namespaces its transform instances keep their entries in.
//!
//! Four keyspaces: `committed` holds every namespace's entries as of the last completed
//! checkpoint (with the checkpoint's document in `meta`, written in the same durable batch);
//! `spill` holds entries evicted from memory since the process started, newer than
//! `committed`; `changed` lists the evicted entries changed since their instance's last
//! barrier. `spill` and `changed` are emptied when the store is opened: what they held came
//! after the last checkpoint, and a restart resumes from that.

use crate::delta::Delta;
use crate::encoding;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The key of the last completed checkpoint's document in `meta`.
const DOCUMENT: &[u8] = b"checkpoint";

/// A process's keyed-state store.
pub struct StateDb {
    db: Database,
    pub(crate) committed: Keyspace,
    pub(crate) spill: Keyspace,
    pub(crate) changed: Keyspace,
    meta: Keyspace,
    dir: PathBuf,
    /// Removed with the store (a store for a run that keeps no checkpoint).
    _temporary: Option<tempfile::TempDir>,
}

fn fail(dir: &Path, what: &str, e: impl std::fmt::Display) -> String {
    format!("the state store in {}: {what}: {e}", dir.display())
}

impl StateDb {
    /// Opens (or creates) the store in `dir`, with `cache` bytes for its block cache.
    pub fn open(dir: &Path, cache: u64) -> Result<Arc<StateDb>, String> {
        Self::open_in(dir.to_path_buf(), cache, None)
    }

    /// A store in a new temporary directory under `parent` (the system's when `None`),
    /// removed when the store is dropped: for runs that keep no checkpoint.
    pub fn temporary(parent: Option<&Path>, cache: u64) -> Result<Arc<StateDb>, String> {
        let tmp = match parent {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(|e| fail(p, "cannot create it", e))?;
                tempfile::Builder::new()
                    .prefix("ecomflow-state-")
                    .tempdir_in(p)
            }
            None => tempfile::Builder::new().prefix("ecomflow-state-").tempdir(),
        }
        .map_err(|e| format!("cannot make a temporary directory for the state store: {e}"))?;
        Self::open_in(tmp.path().to_path_buf(), cache, Some(tmp))
    }

    fn open_in(
        dir: PathBuf,
        cache: u64,
        temporary: Option<tempfile::TempDir>,
    ) -> Result<Arc<StateDb>, String> {
        #[allow(deprecated)] // fjall's only bound on memtables waiting to be flushed
        let db = Database::builder(&dir)
            .cache_size(cache)
            .max_write_buffer_size(Some((cache / 2).max(8 << 20)))
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => fail(
                    &dir,
                    "cannot open it",
                    "another process holds it (each process needs its own `checkpoint.dir` \
                     or `state.dir`; several processes of one pipeline share `checkpoint.url`)",
                ),
                e => fail(&dir, "cannot open it", e),
            })?;
        // Memtables are memory too: each keyspace's is at most a sixteenth of the cache (the
        // default is 64 MiB each).
        let memtable = (cache / 16).clamp(1 << 20, 64 << 20);
        let keyspace = |name: &str| {
            db.keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable)
            })
            .map_err(|e| fail(&dir, &format!("cannot open keyspace {name}"), e))
        };
        let committed = keyspace("committed")?;
        let spill = keyspace("spill")?;
        let changed = keyspace("changed")?;
        let meta = keyspace("meta")?;
        spill
            .clear()
            .map_err(|e| fail(&dir, "cannot empty spill", e))?;
        changed
            .clear()
            .map_err(|e| fail(&dir, "cannot empty changed", e))?;
        Ok(Arc::new(StateDb {
            db,
            committed,
            spill,
            changed,
            meta,
            dir,
            _temporary: temporary,
        }))
    }

    /// Where the store is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The namespace `name` (one transform instance's entries).
    pub fn namespace(self: &Arc<Self>, name: &str) -> Namespace {
        Namespace {
            db: self.clone(),
            prefix: encoding::prefix(name),
            name: name.into(),
        }
    }

    /// The document of the last completed checkpoint, if one was committed here.
    pub fn document(&self) -> Result<Option<Vec<u8>>, String> {
        self.meta
            .get(DOCUMENT)
            .map(|v| v.map(|v| v.to_vec()))
            .map_err(|e| self.fail("cannot read the checkpoint", e))
    }

    /// Commits a checkpoint: every delta of its instances, in order (a later one of the same
    /// entry wins), and its `document`, in one batch made durable before this returns.
    pub fn commit(&self, deltas: &[Delta], document: &[u8]) -> Result<(), String> {
        let mut batch = self.db.batch().durability(Some(PersistMode::SyncAll));
        for delta in deltas {
            if let Some((from, through)) = delta.expired {
                // Only the range expired since the last commit: earlier ones are gone.
                let (start, end) = encoding::between(&delta.prefix, from, through);
                for guard in self.committed.range(start..end) {
                    let key = guard.key().map_err(|e| self.fail("cannot read", e))?;
                    batch.remove(&self.committed, key);
                }
            }
            for (key, value) in delta.puts() {
                batch.insert(&self.committed, key, value);
            }
            for key in delta.deletes() {
                batch.remove(&self.committed, key);
            }
            batch.insert(
                &self.committed,
                encoding::meta_key(&delta.prefix),
                encoding::figures(delta.len, delta.expired_through).as_slice(),
            );
        }
        batch.insert(&self.meta, DOCUMENT, document);
        batch
            .commit()
            .map_err(|e| self.fail("cannot commit a checkpoint", e))?;
        // The batch's durability covers its journal; persist once more so that a store
        // whose journal was rotated meanwhile is synced too.
        self.db
            .persist(PersistMode::SyncAll)
            .map_err(|e| self.fail("cannot make a checkpoint durable", e))
    }

    /// Bytes the store takes on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    pub(crate) fn fail(&self, what: &str, e: impl std::fmt::Display) -> String {
        fail(&self.dir, what, e)
    }
}

/// One transform instance's part of the store.
#[derive(Clone)]
pub struct Namespace {
    pub(crate) db: Arc<StateDb>,
    pub(crate) prefix: [u8; encoding::PREFIX],
    name: Arc<str>,
}

impl Namespace {
    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The newest stored value of `key`: spilled since the start, else committed.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<fjall::UserValue>, String> {
        let db = &self.db;
        if let Some(v) = db.spill.get(key).map_err(|e| db.fail("cannot read", e))? {
            return Ok(Some(v));
        }
        db.committed.get(key).map_err(|e| db.fail("cannot read", e))
    }

    /// The figures the last completed checkpoint kept here: the number of entries, and the
    /// time at or before which they had expired.
    pub(crate) fn committed_figures(&self) -> Result<(u64, i64), String> {
        let db = &self.db;
        let v = db
            .committed
            .get(encoding::meta_key(&self.prefix))
            .map_err(|e| db.fail("cannot read", e))?;
        Ok(encoding::read_figures(v.as_deref()))
    }

    /// The key in `changed` of entry `key` changed in `epoch` (barriers counted).
    fn changed_key(&self, epoch: u64, key: &[u8]) -> Vec<u8> {
        let mut k = Vec::with_capacity(16 + key.len());
        k.extend_from_slice(&self.prefix);
        k.extend_from_slice(&epoch.to_be_bytes());
        k.extend_from_slice(key);
        k
    }

    /// Writes evicted entries to `spill` (not durable: a restart empties it); those that
    /// changed in `epoch` (since the last barrier) go to `changed` too, so the barrier reads
    /// them in one scan.
    pub(crate) fn spill(
        &self,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        changed: Vec<usize>,
        epoch: u64,
    ) -> Result<(), String> {
        let db = &self.db;
        let mut batch = db.db.batch();
        for i in changed {
            if let Some((k, v)) = entries.get(i) {
                batch.insert(&db.changed, self.changed_key(epoch, k), v.as_slice());
            }
        }
        for (k, v) in entries {
            batch.insert(&db.spill, k, v);
        }
        batch.commit().map_err(|e| db.fail("cannot spill", e))
    }

    /// Takes the entries listed in `changed` for `epoch`, with their values. Each epoch is
    /// a range of its own, so the removals of earlier ones are never read again.
    pub(crate) fn take_changed(
        &self,
        epoch: u64,
    ) -> Result<Vec<(Vec<u8>, fjall::UserValue)>, String> {
        let db = &self.db;
        let mut out = Vec::new();
        let mut batch = db.db.batch();
        let mut prefix = self.prefix.to_vec();
        prefix.extend_from_slice(&epoch.to_be_bytes());
        for guard in db.changed.prefix(&prefix) {
            let (listed, value) = guard.into_inner().map_err(|e| db.fail("cannot read", e))?;
            out.push((listed[prefix.len()..].to_vec(), value));
            batch.remove(&db.changed, listed);
        }
        batch.commit().map_err(|e| db.fail("cannot write", e))?;
        Ok(out)
    }

    /// The keys of entries stored (spilled or committed, deletions included) ordered after
    /// `from` and at or before `through`, with their newest value.
    pub(crate) fn between(
        &self,
        from: i64,
        through: i64,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, fjall::UserValue>, String> {
        let db = &self.db;
        let (start, end) = encoding::between(&self.prefix, from, through);
        let mut out = std::collections::BTreeMap::new();
        for guard in db.spill.range(start.clone()..end.clone()) {
            let (k, v) = guard.into_inner().map_err(|e| db.fail("cannot read", e))?;
            out.insert(k.to_vec(), v);
        }
        for guard in db.committed.range(start..end) {
            let (k, v) = guard.into_inner().map_err(|e| db.fail("cannot read", e))?;
            out.entry(k.to_vec()).or_insert(v);
        }
        Ok(out)
    }

    /// Every entry stored here (spilled or committed), newest value first: for a full copy.
    pub(crate) fn all(
        &self,
    ) -> Result<std::collections::BTreeMap<Vec<u8>, fjall::UserValue>, String> {
        let db = &self.db;
        let mut out = std::collections::BTreeMap::new();
        for (keyspace, spilled) in [(&db.spill, true), (&db.committed, false)] {
            for guard in keyspace.prefix(self.prefix) {
                let (k, v) = guard.into_inner().map_err(|e| db.fail("cannot read", e))?;
                if !encoding::is_entry(&k) {
                    continue;
                }
                if spilled {
                    out.insert(k.to_vec(), v);
                } else {
                    out.entry(k.to_vec()).or_insert(v);
                }
            }
        }
        Ok(out)
    }

    /// Removes what the last checkpoint committed here, at once and durably (the component
    /// starts afresh: `--reset-state`).
    pub fn clear_committed(&self) -> Result<(), String> {
        let db = &self.db;
        let mut batch = db.db.batch().durability(Some(PersistMode::SyncAll));
        for guard in db.committed.prefix(self.prefix) {
            let key = guard.key().map_err(|e| db.fail("cannot read", e))?;
            batch.remove(&db.committed, key);
        }
        batch.commit().map_err(|e| db.fail("cannot write", e))
    }

    /// Forgets what an earlier instance of this namespace spilled in this process (a
    /// partition that comes back resumes from its checkpoint).
    pub(crate) fn forget_spilled(&self) -> Result<(), String> {
        let db = &self.db;
        let mut batch = db.db.batch();
        for keyspace in [&db.spill, &db.changed] {
            for guard in keyspace.prefix(self.prefix) {
                let key = guard.key().map_err(|e| db.fail("cannot read", e))?;
                batch.remove(keyspace, key);
            }
        }
        batch.commit().map_err(|e| db.fail("cannot write", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_another_holder_has_open_is_refused_saying_so() {
        let dir = tempfile::tempdir().expect("tempdir");
        let _held = StateDb::open(dir.path(), 1 << 20).expect("opens");
        let e = StateDb::open(dir.path(), 1 << 20).err().expect("refused");
        assert!(e.contains("another process holds it"), "{e}");
        assert!(e.contains(&dir.path().display().to_string()), "{e}");
    }
}
