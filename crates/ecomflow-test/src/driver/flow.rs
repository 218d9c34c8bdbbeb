//! How messages move through the pipeline under test: records, watermarks, partition
//! assignments and ends, each in its shard, handled in the order they were sent, with one
//! transform instance per shard as the runtime keeps them (`transform_shards.rs`).

use super::{DEAD_LETTER, Driver, Role};
use ecomflow_core::{Batch, DeadLetter, Emitter, PartitionId, Payload, Record, Shard};
use ecomflow_runtime::transform_shards::Assigned;
use std::sync::Arc;

/// What moves between components.
pub(super) enum Message {
    /// Records of a shard.
    Batch(Shard, Batch),
    /// No earlier record will come in this shard.
    Watermark(Shard, i64),
    /// A partition's records follow: each transform builds (or resumes) its instance.
    Assign(Arc<PartitionId>),
    /// The input has ended.
    End,
}

impl Message {
    fn copy(&self) -> Message {
        match self {
            Message::Batch(s, b) => Message::Batch(s.clone(), b.clone()),
            Message::Watermark(s, w) => Message::Watermark(s.clone(), *w),
            Message::Assign(p) => Message::Assign(p.clone()),
            Message::End => Message::End,
        }
    }
}

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
        if let Some(readers) = self.readers.get(&name) {
            for &(reader, input) in readers {
                self.queue.push_back((
                    reader,
                    input,
                    Message::Batch(shard.clone(), records.clone()),
                ));
            }
        }
        if let Some((kept, _)) = self.emitted.get_mut(&name) {
            let number = shard.number();
            kept.extend(records.into_iter().map(|r| (number, r)));
        }
    }

    /// Sends a watermark, an assignment or an end to the readers of every output of node
    /// `at`.
    pub(super) fn broadcast(&mut self, at: usize, message: Message) {
        let node = &self.nodes[at];
        let names = std::iter::once(output_name(&node.id, None))
            .chain(node.ports.iter().map(|p| output_name(&node.id, Some(p))));
        let readers: Vec<(usize, usize)> = names
            .filter_map(|n| self.readers.get(&n))
            .flatten()
            .copied()
            .collect();
        for (reader, input) in readers {
            self.queue.push_back((reader, input, message.copy()));
        }
    }

    pub(super) fn forward(&mut self, at: usize, shard: &Shard, mut out: Emitter) {
        let (records, named, dead) = out.take();
        let path = self.nodes[at].path.clone();
        self.dead_letters(&path, dead);
        self.emit(at, None, shard, records);
        for (port, records) in named {
            self.emit(at, Some(port), shard, records);
        }
    }

    /// Handles every message under way, in the order they were sent.
    pub(super) fn settle(&mut self) {
        while let Some((at, input, message)) = self.queue.pop_front() {
            match &self.nodes[at].role {
                Role::Sink { .. } => self.deliver_to_sink(at, message),
                Role::Transform { .. } => self.deliver_to_transform(at, input, message),
                Role::Source { .. } => {}
            }
        }
    }

    /// A sink keeps its records; a real one writes them and makes them durable at once, so
    /// its dead letters show at the step that sent the records.
    fn deliver_to_sink(&mut self, at: usize, message: Message) {
        let Message::Batch(shard, records) = message else {
            return;
        };
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

    /// A transform handles a message as the runtime's transform task does
    /// (`transform_task.rs`).
    fn deliver_to_transform(&mut self, at: usize, input: usize, message: Message) {
        let component = self.nodes[at].path.clone();
        let Role::Transform { instances } = &mut self.nodes[at].role else {
            return;
        };
        // What to forward, and what to tell the readers, once the instances are let go.
        let mut outs: Vec<(Shard, Emitter)> = Vec::new();
        let mut tell: Vec<Message> = Vec::new();
        match message {
            Message::Batch(shard, records) => {
                // A shard without an instance (a revoked partition) drops its records.
                if let Some(instance) = instances.get(&shard) {
                    let mut out = Emitter::default();
                    instance.transform.process(records, &mut out);
                    outs.push((shard, out));
                }
            }
            Message::Watermark(shard, w) => {
                if let Some(instance) = instances.get(&shard)
                    && let Some(w) = instance.watermarks.update(input, w)
                {
                    let mut out = Emitter::default();
                    instance.transform.on_watermark(w, &mut out);
                    outs.push((shard.clone(), out));
                    tell.push(Message::Watermark(shard, w));
                }
            }
            Message::Assign(partition) => {
                let state = self
                    .restored
                    .get(&(component.to_string(), partition.number));
                match instances.assign(input, &partition, state) {
                    Ok(Assigned::New) => tell.push(Message::Assign(partition)),
                    Ok(Assigned::Known) => {}
                    Err(e) => {
                        self.failure.get_or_insert(format!(
                            "{component}, partition {}: {e}",
                            partition.number
                        ));
                    }
                }
            }
            Message::End => {
                for (shard, instance) in instances.all() {
                    if let Some(w) = instance.watermarks.end(input) {
                        let mut out = Emitter::default();
                        instance.transform.on_watermark(w, &mut out);
                        outs.push((shard.clone(), out));
                        // Past every time only when every input ended: the end says it.
                        if w < i64::MAX {
                            tell.push(Message::Watermark(shard, w));
                        }
                    }
                }
                if instances.whole.watermarks.all_ended() {
                    for (shard, instance) in instances.all() {
                        let mut out = Emitter::default();
                        instance.transform.flush(&mut out);
                        outs.push((shard, out));
                    }
                    tell.push(Message::End);
                }
            }
        }
        for (shard, out) in outs {
            self.forward(at, &shard, out);
        }
        for message in tell {
            self.broadcast(at, message);
        }
    }

    /// Every instance of transform `at` fires its timer once.
    pub(super) fn tick(&mut self, at: usize) {
        let Role::Transform { instances } = &mut self.nodes[at].role else {
            return;
        };
        let mut outs = Vec::new();
        for (shard, instance) in instances.all() {
            let mut out = Emitter::default();
            instance.transform.tick(&mut out);
            outs.push((shard, out));
        }
        for (shard, out) in outs {
            self.forward(at, &shard, out);
        }
        self.settle();
    }

    /// The records kept for `output` from `seen` on.
    pub(super) fn records_from(kept: &[(i32, Record)], seen: usize) -> Vec<Record> {
        kept[seen..].iter().map(|(_, r)| r.clone()).collect()
    }
}
