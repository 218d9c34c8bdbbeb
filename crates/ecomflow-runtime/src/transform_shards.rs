//! One transform's instances, one per shard: the whole shard's (built at load, restored from
//! the checkpoint), and one per source partition this process holds, built when the
//! partition is assigned (resumed from the state its checkpoint kept) and dropped when it is
//! revoked. Each instance has its own watermark, so one partition never closes another's
//! buckets, and a partition's state can move to another process with the partition.

use crate::watermarks::Watermarks;
use ecomflow_core::{PartitionId, Shard, Transform};
use std::collections::HashMap;
use std::sync::Arc;

/// Builds a fresh instance of the transform, from the options it was declared with.
pub type Rebuild = Arc<dyn Fn() -> Result<Box<dyn Transform>, String> + Send + Sync>;

/// One instance and the watermark of its inputs.
pub(crate) struct Instance {
    pub(crate) transform: Box<dyn Transform>,
    pub(crate) watermarks: Watermarks,
    /// The inputs that have assigned its partition and not revoked it (partitions only).
    assigned: Vec<bool>,
}

/// Every instance of one transform.
pub(crate) struct Instances {
    pub(crate) whole: Instance,
    partitions: HashMap<Arc<PartitionId>, Instance>,
    rebuild: Option<Rebuild>,
    inputs: usize,
}

/// What an assignment did.
pub(crate) enum Assigned {
    /// A new instance holds the partition: tell the outputs.
    New,
    /// Another input had assigned it already.
    Known,
}

impl Instances {
    /// The whole shard's instance `whole`, watermarks over inputs `timed` (those fed by a
    /// source that reads event time), and how to build partitions' instances.
    pub(crate) fn new(
        whole: Box<dyn Transform>,
        timed: Vec<bool>,
        rebuild: Option<Rebuild>,
    ) -> Instances {
        Instances {
            inputs: timed.len(),
            whole: Instance {
                transform: whole,
                watermarks: Watermarks::new(timed),
                assigned: Vec::new(),
            },
            partitions: HashMap::new(),
            rebuild,
        }
    }

    /// The instance of `shard`, if it has one.
    pub(crate) fn get(&mut self, shard: &Shard) -> Option<&mut Instance> {
        match shard {
            Shard::Whole => Some(&mut self.whole),
            Shard::Partition(p) => self.partitions.get_mut(p),
        }
    }

    /// Every instance with its shard.
    pub(crate) fn all(&mut self) -> impl Iterator<Item = (Shard, &mut Instance)> {
        std::iter::once((Shard::Whole, &mut self.whole)).chain(
            self.partitions
                .iter_mut()
                .map(|(p, i)| (Shard::Partition(p.clone()), i)),
        )
    }

    /// Input `input` assigns `partition`: its first assignment builds an instance resumed
    /// from `state` (what the checkpoint kept for this transform), and the input's
    /// watermark holds it back until the input reports one.
    pub(crate) fn assign(
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
    pub(crate) fn revoke(&mut self, input: usize, partition: &Arc<PartitionId>) -> bool {
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

    /// The state of the whole shard, and of each partition held, for a checkpoint.
    #[allow(clippy::type_complexity)]
    pub(crate) fn snapshot(
        &self,
    ) -> (
        Option<serde_json::Value>,
        Vec<(Arc<PartitionId>, serde_json::Value)>,
    ) {
        let partitions = self
            .partitions
            .iter()
            .filter_map(|(p, i)| Some((p.clone(), i.transform.snapshot()?)))
            .collect();
        (self.whole.transform.snapshot(), partitions)
    }
}
