//! The groups an aggregate changed since their last row, indexed by the end of their bucket:
//! a watermark looks only at the groups whose bucket it passed, however many groups are
//! still open. Rows come out bucket by bucket, oldest first, and within a bucket in the order
//! its groups changed.

use crate::aggregation::SharedKey;
use std::collections::BTreeMap;

/// Changed groups by bucket end; groups without a bucket under `None`.
#[derive(Default)]
pub(super) struct Dirty {
    by_end: BTreeMap<Option<i64>, Vec<SharedKey>>,
}

impl Dirty {
    /// Group `key`, whose bucket ends at `end` (`None`: it has no bucket), changed.
    pub(super) fn push(&mut self, end: Option<i64>, key: SharedKey) {
        self.by_end.entry(end).or_default().push(key);
    }

    /// Takes the groups whose bucket ended at or before `watermark`, with their bucket's end.
    pub(super) fn take_ended(
        &mut self,
        watermark: i64,
    ) -> impl Iterator<Item = (Option<i64>, SharedKey)> + use<> {
        let open = match watermark.checked_add(1) {
            Some(after) => self.by_end.split_off(&Some(after)),
            None => BTreeMap::new(),
        };
        let mut ended = std::mem::replace(&mut self.by_end, open);
        // `None` sorts first: groups without a bucket never end.
        if let Some(unbucketed) = ended.remove(&None) {
            self.by_end.insert(None, unbucketed);
        }
        flatten(ended)
    }

    /// Takes every group, with its bucket's end.
    pub(super) fn take_all(&mut self) -> impl Iterator<Item = (Option<i64>, SharedKey)> + use<> {
        flatten(std::mem::take(&mut self.by_end))
    }

    /// Every group, with its bucket's end, oldest bucket first.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Option<i64>, &SharedKey)> {
        self.by_end
            .iter()
            .flat_map(|(end, keys)| keys.iter().map(move |k| (*end, k)))
    }
}

fn flatten(
    by_end: BTreeMap<Option<i64>, Vec<SharedKey>>,
) -> impl Iterator<Item = (Option<i64>, SharedKey)> {
    by_end
        .into_iter()
        .flat_map(|(end, keys)| keys.into_iter().map(move |k| (end, k)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregation::KeyPart;

    fn key(n: i64) -> SharedKey {
        vec![KeyPart::Int(n)].into()
    }

    #[test]
    fn a_watermark_takes_the_ended_buckets_oldest_first() {
        let mut d = Dirty::default();
        d.push(Some(20), key(1));
        d.push(Some(10), key(2));
        d.push(None, key(3));
        d.push(Some(30), key(4));
        d.push(Some(10), key(5));
        assert_eq!(d.take_ended(9).count(), 0);
        assert_eq!(
            d.take_ended(20).collect::<Vec<_>>(),
            [(Some(10), key(2)), (Some(10), key(5)), (Some(20), key(1))]
        );
        let last: Vec<_> = d.take_ended(i64::MAX).collect();
        assert_eq!(last, [(Some(30), key(4))], "a bucketless group never ends");
        assert_eq!(d.iter().count(), 1);
        assert_eq!(d.take_all().collect::<Vec<_>>(), [(None, key(3))]);
        assert_eq!(d.take_all().count(), 0);
    }
}
