//! The memory the keyed state of one process may use, shared by every transform instance.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A number of bytes the keyed states of a process share: each charges the entries it keeps
/// in memory, and evicts some of its own when the total is over the limit.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Charges `bytes`.
    pub fn charge(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Gives `bytes` back.
    pub fn release(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// True when more is charged than the limit.
    pub fn over(&self) -> bool {
        self.used() > self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_and_releases_add_up_and_never_go_below_zero() {
        let b = MemoryBudget::new(100);
        b.charge(60);
        assert!(!b.over());
        b.charge(60);
        assert!(b.over());
        b.release(30);
        assert_eq!(b.used(), 90);
        b.release(1_000);
        assert_eq!(b.used(), 0);
    }
}
