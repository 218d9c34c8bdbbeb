//! What changed in one transform instance's state between two barriers: the unit an
//! incremental checkpoint writes.

use std::ops::Range;

/// The changes of one namespace since its previous barrier, encoded as stored.
#[derive(Debug, Clone)]
pub struct Delta {
    /// The namespace's prefix.
    pub(crate) prefix: [u8; crate::encoding::PREFIX],
    /// The bytes of every key and value, one after the other (one allocation, not two per
    /// entry).
    bytes: Vec<u8>,
    /// Entries written: where their key and value are in `bytes`.
    puts: Vec<(Range<usize>, Range<usize>)>,
    /// Entries removed: where their key is in `bytes`.
    deletes: Vec<Range<usize>>,
    /// The namespace's number of entries at the barrier.
    pub(crate) len: u64,
    /// Entries ordered after the first time and at or before the second expired since the
    /// previous barrier: the commit removes them.
    pub(crate) expired: Option<(i64, i64)>,
    /// The time at or before which every entry has expired, at the barrier.
    pub(crate) expired_through: i64,
}

impl Delta {
    /// No change yet, for the namespace with `prefix`.
    pub(crate) fn new(
        prefix: [u8; crate::encoding::PREFIX],
        len: u64,
        expired_through: i64,
    ) -> Delta {
        Delta {
            prefix,
            bytes: Vec::new(),
            puts: Vec::new(),
            deletes: Vec::new(),
            len,
            expired: None,
            expired_through,
        }
    }

    /// The number of entries written or removed.
    pub fn changes(&self) -> usize {
        self.puts.len() + self.deletes.len()
    }

    /// The bytes it writes.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Appends `data` to the bytes; where it is.
    fn push(&mut self, data: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        start..self.bytes.len()
    }

    /// Entry `key` is now `value`.
    pub(crate) fn put(&mut self, key: &[u8], value: &[u8]) {
        let k = self.push(key);
        let v = self.push(value);
        self.puts.push((k, v));
    }

    /// Entry `key` is removed.
    pub(crate) fn delete(&mut self, key: &[u8]) {
        let k = self.push(key);
        self.deletes.push(k);
    }

    /// The entries written: key and value.
    pub(crate) fn puts(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.puts
            .iter()
            .map(|(k, v)| (&self.bytes[k.clone()], &self.bytes[v.clone()]))
    }

    /// The keys removed.
    pub(crate) fn deletes(&self) -> impl Iterator<Item = &[u8]> {
        self.deletes.iter().map(|k| &self.bytes[k.clone()])
    }
}
