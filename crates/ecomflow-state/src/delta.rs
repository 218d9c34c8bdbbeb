//! What changed in one transform instance's state between two barriers: the unit an
//! incremental checkpoint writes.

/// The changes of one namespace since its previous barrier, encoded as stored.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// The namespace's prefix.
    pub(crate) prefix: [u8; crate::encoding::PREFIX],
    /// Entries written: disk key and value.
    pub(crate) puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Entries removed: disk keys.
    pub(crate) deletes: Vec<Vec<u8>>,
    /// The namespace's number of entries at the barrier.
    pub(crate) len: u64,
}

impl Delta {
    /// The number of entries written or removed.
    pub fn changes(&self) -> usize {
        self.puts.len() + self.deletes.len()
    }

    /// The bytes it writes.
    pub fn bytes(&self) -> usize {
        self.puts
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
            + self.deletes.iter().map(Vec::len).sum::<usize>()
    }
}
