//! How messages move through the pipeline under test: records, watermarks, partition
//! assignments and ends, each in its shard, handled in the order they were sent. A transform
//! handles them with the runtime's own node (`ecomflow_runtime::transform_node`); this file
//! only routes what it gives to the readers.

use super::{DEAD_LETTER, Driver, Role};
use ecomflow_core::{Batch, DeadLetter, Message, Payload, Record, Shard};
use ecomflow_runtime::transform_node::Effect;
use std::sync::Arc;

pub(super) fn output_name(id: &str, port: Option<&str>) -> String {
    match port {
        Some(p) => format!("{id}.{p}"),
        None => id.to_string(),
    }
}

impl Driver {
    pub(super) fn dead_letters(&mut self, component: &Arc<str>, dead: Vec<(String, Payload)>) {
        let letters = dead.into_iter().map(|(reason, payload)| DeadLetter {
            component: component.clone(),
            reason,
            payload,
        });
        self.keep_letters(letters.collect());
    }

    pub(super) fn keep_letters(&mut self, letters: Vec<DeadLetter>) {
        if let Some((kept, _)) = self.emitted.get_mut(DEAD_LETTER) {
            kept.extend(letters.iter().map(|l| (0, l.to_record())));
        }
    }

    /// Keeps `records` as output `port` of node `at` (in `shard`) and sends them to its
    /// readers.
    pub(super) fn emit(&mut self, at: usize, port: Option<&str>, shard: &Shard, records: Batch) {
        let name = output_name(&self.nodes[at].id, port);
        if let Some((kept, _)) = self.emitted.get_mut(&name) {
            let number = shard.number();
            kept.extend(records.iter().map(|r| (number, r.clone())));
        }
        let batch = Arc::new(records);
        if let Some(readers) = self.readers.get(&name) {
            for &(reader, input) in readers {
                let message = Message::Batch {
                    input,
                    shard: shard.clone(),
                    batch: batch.clone(),
                };
                self.queue.push_back((reader, message));
            }
        }
    }

    /// Sends a watermark, an assignment or an end to the readers of every output of node
    /// `at`, each as `message` makes it for the reader's input.
    pub(super) fn broadcast(&mut self, at: usize, message: impl Fn(usize) -> Message) {
        let node = &self.nodes[at];
        let names = std::iter::once(output_name(&node.id, None))
            .chain(node.ports.iter().map(|p| output_name(&node.id, Some(p))));
        let readers: Vec<(usize, usize)> = names
            .filter_map(|n| self.readers.get(&n))
            .flatten()
            .copied()
            .collect();
        for (reader, input) in readers {
            self.queue.push_back((reader, message(input)));
        }
    }

    /// Handles every message under way, in the order they were sent.
    pub(super) fn settle(&mut self) {
        while let Some((at, message)) = self.queue.pop_front() {
            match &self.nodes[at].role {
                Role::Sink { .. } => self.deliver_to_sink(at, message),
                Role::Transform { .. } => self.deliver_to_transform(at, message),
                Role::Source { .. } => {}
            }
        }
    }

    /// A sink keeps its records; a real one writes them and makes them durable at once, so
    /// its dead letters show at the step that sent the records.
    fn deliver_to_sink(&mut self, at: usize, message: Message) {
        let Message::Batch { shard, batch, .. } = message else {
            return;
        };
        let records = Arc::unwrap_or_clone(batch);
        let mut letters = Vec::new();
        if let (
            Role::Sink {
                real: Some(real), ..
            },
            Some(rt),
        ) = (&mut self.nodes[at].role, &self.runtime)
        {
            let written = real
                .write(rt, shard.clone(), records.clone())
                .and_then(|mut l| {
                    l.extend(real.checkpoint(rt)?);
                    Ok(l)
                });
            match written {
                Ok(l) => letters = l,
                Err(e) => {
                    self.failure.get_or_insert(e);
                }
            }
        }
        self.keep_letters(letters);
        let id = self.nodes[at].id.clone();
        if let Some((kept, _)) = self.emitted.get_mut(&id) {
            let number = shard.number();
            kept.extend(records.into_iter().map(|r| (number, r)));
        }
    }

    /// A transform handles a message with the runtime's node; what it gives goes on to the
    /// readers.
    fn deliver_to_transform(&mut self, at: usize, message: Message) {
        let Role::Transform { node } = &mut self.nodes[at].role else {
            return;
        };
        let mut effects = Vec::new();
        if let Err(e) = node.handle(message, &mut effects) {
            let failure = format!(
                "{}, partition {}: {}",
                self.nodes[at].path, e.partition.number, e.reason
            );
            self.failure.get_or_insert(failure);
        }
        self.tell(at, effects);
    }

    /// Every instance of transform `at` fires its timer once.
    pub(super) fn tick(&mut self, at: usize) {
        let Role::Transform { node } = &mut self.nodes[at].role else {
            return;
        };
        let mut effects = Vec::new();
        node.tick(&mut effects);
        self.tell(at, effects);
        self.settle();
    }

    /// Sends what transform `at` gave to its readers (and keeps its outputs).
    fn tell(&mut self, at: usize, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Emitted {
                    shard,
                    records,
                    named,
                    dead,
                    ..
                } => {
                    let path = self.nodes[at].path.clone();
                    self.dead_letters(&path, dead);
                    self.emit(at, None, &shard, records);
                    for (port, records) in named {
                        self.emit(at, Some(port), &shard, records);
                    }
                }
                Effect::Unowned(_) => {}
                Effect::Watermark { shard, at: w } => {
                    self.broadcast(at, |input| Message::Watermark {
                        input,
                        shard: shard.clone(),
                        at: w,
                    })
                }
                Effect::Assign { partition, states } => {
                    self.broadcast(at, |input| Message::Assign {
                        input,
                        partition: partition.clone(),
                        states: states.clone(),
                    })
                }
                Effect::Revoke(partition) => self.broadcast(at, |input| Message::Revoke {
                    input,
                    partition: partition.clone(),
                }),
                Effect::End => self.broadcast(at, |input| Message::End { input }),
            }
        }
    }

    /// The records kept for `output` from `seen` on.
    pub(super) fn records_from(kept: &[(i32, Record)], seen: usize) -> Vec<Record> {
        kept[seen..].iter().map(|(_, r)| r.clone()).collect()
    }
}
