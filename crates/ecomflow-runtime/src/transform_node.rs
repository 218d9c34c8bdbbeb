//! How a transform handles what reaches it, synchronously: a message on an input (records,
//! a watermark, a partition assigned or revoked, an input's end) or a timer tick in, and what
//! its readers are to be told out, in order. The runtime's transform task
//! (`transform_task.rs`) and `ecomflow test`'s driver both run it, so the two cannot differ.
//! Checkpoint barriers are the caller's: they are aligned before a message gets here.

use crate::transform_shards::{Assigned, Instances};
use ecomflow_core::{Batch, Emitter, Message, PartitionId, Payload, Shard};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What the transform's readers are to be told, in the order it happened.
pub enum Effect {
    /// What the instance of `shard` emitted.
    Emitted {
        /// The shard the instance belongs to.
        shard: Shard,
        /// Records for the default output.
        records: Batch,
        /// Records for named outputs.
        named: Vec<(&'static str, Batch)>,
        /// Dead letters: reason and payload.
        dead: Vec<(String, Payload)>,
        /// Records the transform dropped on purpose.
        dropped: u64,
    },
    /// Records of a shard this process no longer holds (a revoked partition): dropped, as
    /// what it built was (its new owner reads them again).
    Unowned(usize),
    /// The watermark of `shard` moved to `at`.
    Watermark {
        /// The shard.
        shard: Shard,
        /// The new watermark.
        at: i64,
    },
    /// A partition's first assignment: its records follow.
    Assign {
        /// The partition.
        partition: Arc<PartitionId>,
        /// The states the checkpoint kept for it, by component path.
        states: Arc<BTreeMap<String, serde_json::Value>>,
    },
    /// No input holds the partition any more: its instance is gone.
    Revoke(Arc<PartitionId>),
    /// Every input has ended, and the instances have flushed: the outputs end.
    End,
}

/// A partition's instance could not resume from the state its checkpoint kept.
#[derive(Debug)]
pub struct ResumeFailed {
    /// The partition.
    pub partition: Arc<PartitionId>,
    /// Why.
    pub reason: String,
}

/// One transform, all of its instances, and what handling a message gives.
pub struct TransformNode {
    /// The instances, one per shard.
    pub instances: Instances,
    /// The transform's path, such as `transforms.paid` (what assigned states are keyed by).
    component: Arc<str>,
    emitter: Emitter,
    flushed: bool,
}

impl TransformNode {
    /// The node of transform `component` over `instances`.
    pub fn new(component: Arc<str>, instances: Instances) -> TransformNode {
        TransformNode {
            instances,
            component,
            emitter: Emitter::default(),
            flushed: false,
        }
    }

    /// Handles one message (barriers excepted), adding what it gives to `effects`.
    pub fn handle(
        &mut self,
        message: Message,
        effects: &mut Vec<Effect>,
    ) -> Result<(), ResumeFailed> {
        match message {
            Message::Batch { batch, shard, .. } => {
                let Some(instance) = self.instances.get(&shard) else {
                    effects.push(Effect::Unowned(batch.len()));
                    return Ok(());
                };
                match Arc::try_unwrap(batch) {
                    Ok(owned) => instance.transform.process(owned, &mut self.emitter),
                    Err(shared) => instance
                        .transform
                        .process_shared(&shared, &mut self.emitter),
                }
                effects.push(emitted(&mut self.emitter, shard));
            }
            Message::Watermark { input, shard, at } => {
                let Some(instance) = self.instances.get(&shard) else {
                    return Ok(());
                };
                if let Some(at) = instance.watermarks.update(input, at) {
                    instance.transform.on_watermark(at, &mut self.emitter);
                    effects.push(emitted(&mut self.emitter, shard.clone()));
                    effects.push(Effect::Watermark { shard, at });
                }
            }
            Message::End { input } => {
                for (shard, instance) in self.instances.all() {
                    if let Some(at) = instance.watermarks.end(input) {
                        instance.transform.on_watermark(at, &mut self.emitter);
                        effects.push(emitted(&mut self.emitter, shard.clone()));
                        // Past every time only when every input ended: the end says it.
                        if at < i64::MAX {
                            effects.push(Effect::Watermark { shard, at });
                        }
                    }
                }
                if self.ended() {
                    self.flush(effects);
                    effects.push(Effect::End);
                }
            }
            Message::Assign {
                input,
                partition,
                states,
            } => {
                let state = states.get(&*self.component);
                match self.instances.assign(input, &partition, state) {
                    Ok(Assigned::New) => effects.push(Effect::Assign { partition, states }),
                    Ok(Assigned::Known) => {}
                    Err(reason) => return Err(ResumeFailed { partition, reason }),
                }
            }
            Message::Revoke { input, partition } => {
                if self.instances.revoke(input, &partition) {
                    effects.push(Effect::Revoke(partition));
                }
            }
            Message::Barrier { .. } => {}
        }
        Ok(())
    }

    /// Every instance's timer fires once (not after the instances have flushed).
    pub fn tick(&mut self, effects: &mut Vec<Effect>) {
        if self.flushed {
            return;
        }
        for (shard, instance) in self.instances.all() {
            instance.transform.tick(&mut self.emitter);
            effects.push(emitted(&mut self.emitter, shard));
        }
    }

    /// The inputs are gone without every one ending (the run is stopping): each instance
    /// emits what it holds, once.
    pub fn stop(&mut self, effects: &mut Vec<Effect>) {
        self.flush(effects);
    }

    /// Every input has ended on its own.
    pub fn ended(&self) -> bool {
        self.instances.whole.watermarks.all_ended()
    }

    fn flush(&mut self, effects: &mut Vec<Effect>) {
        if std::mem::replace(&mut self.flushed, true) {
            return;
        }
        for (shard, instance) in self.instances.all() {
            instance.transform.flush(&mut self.emitter);
            effects.push(emitted(&mut self.emitter, shard));
        }
    }
}

fn emitted(emitter: &mut Emitter, shard: Shard) -> Effect {
    let (records, named, dead) = emitter.take();
    Effect::Emitted {
        shard,
        records,
        named,
        dead,
        dropped: emitter.take_dropped(),
    }
}

#[cfg(test)]
#[path = "transform_node_tests.rs"]
mod tests;
