//! The groups an aggregate changed since their last row, indexed by the end of their bucket:
//! a watermark looks only at the groups whose bucket it passed, however many groups are
//! still open, and rows come out in the order the groups changed.

use crate::aggregation::GroupKey;
use std::collections::BTreeMap;

/// Changed groups by bucket end (groups without a bucket under `None`), each with the
/// number of the change that made it dirty.
#[derive(Default)]
pub(super) struct Dirty {
    by_end: BTreeMap<Option<i64>, Vec<(u64, GroupKey)>>,
    changes: u64,
}

impl Dirty {
    /// Group `key`, whose bucket ends at `end` (`None`: it has no bucket), changed.
    pub(super) fn push(&mut self, end: Option<i64>, key: GroupKey) {
        self.changes += 1;
        self.by_end
            .entry(end)
            .or_default()
            .push((self.changes, key));
    }

    /// Takes the groups whose bucket ended at or before `watermark`, in the order they
    /// changed.
    pub(super) fn take_ended(&mut self, watermark: i64) -> Vec<GroupKey> {
        let open = match watermark.checked_add(1) {
            Some(after) => self.by_end.split_off(&Some(after)),
            None => BTreeMap::new(),
        };
        let mut ended = std::mem::replace(&mut self.by_end, open);
        // `None` sorts first: groups without a bucket never end.
        if let Some(unbucketed) = ended.remove(&None) {
            self.by_end.insert(None, unbucketed);
        }
        in_change_order(ended)
    }

    /// Takes every group, in the order they changed.
    pub(super) fn take_all(&mut self) -> Vec<GroupKey> {
        in_change_order(std::mem::take(&mut self.by_end))
    }
}

fn in_change_order(groups: BTreeMap<Option<i64>, Vec<(u64, GroupKey)>>) -> Vec<GroupKey> {
    let mut all: Vec<(u64, GroupKey)> = groups.into_values().flatten().collect();
    all.sort_unstable_by_key(|(change, _)| *change);
    all.into_iter().map(|(_, key)| key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::KeyPart;

    fn key(n: i64) -> GroupKey {
        vec![KeyPart::Int(n)].into_boxed_slice()
    }

    #[test]
    fn a_watermark_takes_the_ended_buckets_in_the_order_they_changed() {
        let mut d = Dirty::default();
        d.push(Some(20), key(1));
        d.push(Some(10), key(2));
        d.push(None, key(3));
        d.push(Some(30), key(4));
        d.push(Some(10), key(5));
        assert_eq!(d.take_ended(9), Vec::<GroupKey>::new());
        assert_eq!(d.take_ended(20), [key(1), key(2), key(5)]);
        assert_eq!(
            d.take_ended(i64::MAX),
            [key(4)],
            "a bucketless group never ends"
        );
        assert_eq!(d.take_all(), [key(3)]);
        assert!(d.take_all().is_empty());
    }
}
