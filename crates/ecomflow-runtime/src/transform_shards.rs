//! One transform's instances, one per shard: the whole shard's (built at load, restored from
//! the checkpoint), and one per source partition this process holds, built when the
//! partition is assigned (resumed from the state its checkpoint kept) and dropped when it is
//! revoked. Each instance has its own watermark, so one partition never closes another's
//! buckets, and a partition's state can move to another process with the partition.

use crate::pipeline::Rebuild;
use crate::state_store::StateStore;
use crate::watermarks::Watermarks;
use ecomflow_core::state::Delta;
use ecomflow_core::{PartitionId, Shard, Transform};
use std::collections::HashMap;
use std::sync::Arc;

/// One instance and the watermark of its inputs.
pub struct Instance {
    /// The transform, with its state.
    pub transform: Box<dyn Transform>,
    /// The combined watermark of its inputs, for this shard.
    pub watermarks: Watermarks,
    /// The inputs that have assigned its partition and not revoked it (partitions only).
    assigned: Vec<bool>,
}

/// Every instance of one transform.
pub struct Instances {
    /// The whole shard's instance (records that belong to no partition).
    pub whole: Instance,
    partitions: HashMap<Arc<PartitionId>, Instance>,
    rebuild: Option<Rebuild>,
    inputs: usize,
    /// Where keyed states are attached, and the transform's path.
    state: Option<(Arc<StateStore>, Arc<str>)>,
}

/// What a checkpoint takes of a transform's instances.
#[derive(Default)]
pub struct Snapshot {
    /// The whole shard's state.
    pub whole: Option<serde_json::Value>,
    /// Each partition's state.
    pub partitions: Vec<(Arc<PartitionId>, serde_json::Value)>,
    /// What changed in keyed states since the last barrier, by shard (`None`: the whole).
    pub deltas: Vec<(Option<Arc<PartitionId>>, Delta)>,
}

/// What an assignment did.
pub enum Assigned {
    /// A new instance holds the partition: tell the outputs.
    New,
    /// Another input had assigned it already.
    Known,
}

impl Instances {
    /// The whole shard's instance `whole`, watermarks over inputs `timed` (those fed by a
    /// source that reads event time), and how to build partitions' instances.
    pub fn new(whole: Box<dyn Transform>, timed: Vec<bool>, rebuild: Option<Rebuild>) -> Instances {
        Instances {
            inputs: timed.len(),
            whole: Instance {
                transform: whole,
                watermarks: Watermarks::new(timed),
                assigned: Vec::new(),
            },
            partitions: HashMap::new(),
            rebuild,
            state: None,
        }
    }

    /// Attaches the keyed states of partitions' instances to `state` (the whole shard's
    /// instance is attached by whoever built it), as transform `path`.
    pub fn with_state(mut self, state: Option<Arc<StateStore>>, path: Arc<str>) -> Instances {
        self.state = state.map(|s| (s, path));
        self
    }

    /// The instance of `shard`, if it has one.
    pub fn get(&mut self, shard: &Shard) -> Option<&mut Instance> {
        match shard {
            Shard::Whole => Some(&mut self.whole),
            Shard::Partition(p) => self.partitions.get_mut(p),
        }
    }

    /// Every instance with its shard.
    pub fn all(&mut self) -> impl Iterator<Item = (Shard, &mut Instance)> {
        std::iter::once((Shard::Whole, &mut self.whole)).chain(
            self.partitions
                .iter_mut()
                .map(|(p, i)| (Shard::Partition(p.clone()), i)),
        )
    }

    /// Input `input` assigns `partition`: its first assignment builds an instance resumed
    /// from `state` (what the checkpoint kept for this transform), and the input's
    /// watermark holds it back until the input reports one.
    pub fn assign(
        &mut self,
        input: usize,
        partition: &Arc<PartitionId>,
        state: Option<&serde_json::Value>,
    ) -> Result<Assigned, String> {
        let outcome = match self.partitions.get_mut(partition) {
            Some(_) => Assigned::Known,
            None => {
                let Some(rebuild) = &self.rebuild else {
                    return Err("this transform cannot keep a state per partition".into());
                };
                let mut transform = rebuild()?;
                if let Some((store, path)) = &self.state {
                    store.attach(&mut *transform, path, Some(partition))?;
                }
                if let Some(state) = state {
                    transform.restore(state.clone())?;
                }
                let instance = Instance {
                    transform,
                    watermarks: Watermarks::new(vec![false; self.inputs]),
                    assigned: vec![false; self.inputs],
                };
                self.partitions.insert(partition.clone(), instance);
                Assigned::New
            }
        };
        if let Some(instance) = self.partitions.get_mut(partition) {
            if let Some(a) = instance.assigned.get_mut(input) {
                *a = true;
            }
            instance.watermarks.hold(input);
        }
        Ok(outcome)
    }

    /// Input `input` revokes `partition`; returns true when no input holds it any more and
    /// its instance was dropped (with whatever it built since the last checkpoint).
    pub fn revoke(&mut self, input: usize, partition: &Arc<PartitionId>) -> bool {
        let Some(instance) = self.partitions.get_mut(partition) else {
            return false;
        };
        if let Some(a) = instance.assigned.get_mut(input) {
            *a = false;
        }
        if instance.assigned.iter().any(|a| *a) {
            return false;
        }
        self.partitions.remove(partition);
        true
    }

    /// The state of the whole shard, and of each partition held, for a checkpoint: whole
    /// states (`keep`: checkpoints keep them) and the changes of keyed states.
    pub fn snapshot(&mut self, keep: bool) -> Result<Snapshot, String> {
        let mut out = Snapshot::default();
        if keep {
            out.whole = self.whole.transform.snapshot();
            out.partitions = self
                .partitions
                .iter()
                .filter_map(|(p, i)| Some((p.clone(), i.transform.snapshot()?)))
                .collect();
        }
        for state in self.whole.transform.keyed_states() {
            if let Some(delta) = state.take_delta()? {
                out.deltas.push((None, delta));
            }
        }
        for (p, i) in &mut self.partitions {
            for state in i.transform.keyed_states() {
                if let Some(delta) = state.take_delta()? {
                    out.deltas.push((Some(p.clone()), delta));
                }
            }
        }
        match self.state_error() {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The first disk error a keyed state met since the last call, if any.
    pub fn state_error(&mut self) -> Option<String> {
        let whole = self.whole.transform.keyed_states();
        let partitions = self
            .partitions
            .values_mut()
            .flat_map(|i| i.transform.keyed_states());
        whole
            .into_iter()
            .chain(partitions)
            .find_map(|s| s.take_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomflow_core::{Batch, Emitter};

    /// Counts the records it saw; its state is the count.
    #[derive(Default)]
    struct Count(u64);

    impl Transform for Count {
        fn process(&mut self, batch: Batch, _out: &mut Emitter) {
            self.0 += batch.len() as u64;
        }
        fn snapshot(&self) -> Option<serde_json::Value> {
            Some(serde_json::json!(self.0))
        }
        fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
            self.0 = state.as_u64().ok_or("not a count")?;
            Ok(())
        }
    }

    fn partition(number: i32) -> Arc<PartitionId> {
        Arc::new(PartitionId {
            source: "sources.s".into(),
            topic: "t".into(),
            number,
        })
    }

    fn instances(inputs: usize) -> Instances {
        let rebuild: Rebuild = Arc::new(|| Ok(Box::new(Count::default()) as Box<dyn Transform>));
        Instances::new(
            Box::new(Count::default()),
            vec![true; inputs],
            Some(rebuild),
        )
    }

    fn count(instances: &mut Instances, shard: &Shard) -> Option<serde_json::Value> {
        instances.get(shard)?.transform.snapshot()
    }

    #[test]
    fn each_partition_resumes_its_own_state_and_keeps_apart() {
        let mut i = instances(1);
        let (p0, p1) = (partition(0), partition(1));
        assert!(matches!(
            i.assign(0, &p0, Some(&serde_json::json!(7))),
            Ok(Assigned::New)
        ));
        assert!(matches!(i.assign(0, &p1, None), Ok(Assigned::New)));
        let (s0, s1) = (Shard::Partition(p0.clone()), Shard::Partition(p1.clone()));
        let mut out = Emitter::default();
        if let Some(instance) = i.get(&s1) {
            instance
                .transform
                .process(vec![Default::default(); 3], &mut out);
        }
        assert_eq!(count(&mut i, &s0), Some(serde_json::json!(7)), "restored");
        assert_eq!(
            count(&mut i, &s1),
            Some(serde_json::json!(3)),
            "its own records"
        );
        assert_eq!(count(&mut i, &Shard::Whole), Some(serde_json::json!(0)));
        let taken = i.snapshot(true).expect("taken");
        let (whole, partitions) = (taken.whole, taken.partitions);
        assert_eq!(whole, Some(serde_json::json!(0)));
        let mut partitions: Vec<(i32, serde_json::Value)> =
            partitions.into_iter().map(|(p, s)| (p.number, s)).collect();
        partitions.sort_by_key(|(n, _)| *n);
        assert_eq!(
            partitions,
            [(0, serde_json::json!(7)), (1, serde_json::json!(3))]
        );
        assert!(matches!(
            i.assign(0, &p0, Some(&serde_json::json!(99))),
            Ok(Assigned::Known)
        ));
        assert_eq!(
            count(&mut i, &s0),
            Some(serde_json::json!(7)),
            "not restored twice"
        );
    }

    #[test]
    fn a_partition_goes_once_every_input_that_assigned_it_revoked_it() {
        let mut i = instances(2);
        let p = partition(4);
        assert!(matches!(i.assign(0, &p, None), Ok(Assigned::New)));
        assert!(matches!(i.assign(1, &p, None), Ok(Assigned::Known)));
        assert!(!i.revoke(0, &p), "input 1 still holds it");
        assert!(i.get(&Shard::Partition(p.clone())).is_some());
        assert!(i.revoke(1, &p), "dropped with what it built");
        assert!(i.get(&Shard::Partition(p.clone())).is_none());
        assert!(!i.revoke(1, &p), "already gone");
    }

    #[test]
    fn a_state_that_does_not_restore_is_an_error() {
        let mut i = instances(1);
        let e = i.assign(0, &partition(0), Some(&serde_json::json!("x")));
        assert!(matches!(e, Err(ref m) if m == "not a count"));
        let mut fixed = Instances::new(Box::new(Count::default()), vec![true], None);
        assert!(
            fixed.assign(0, &partition(0), None).is_err(),
            "cannot rebuild"
        );
    }
}
