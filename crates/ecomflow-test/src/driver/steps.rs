//! The steps a test takes on the driver: records sent, the watermark and the processing clock
//! moved, every source ended, and a restart from a checkpoint.

use super::*;

impl Driver {
    /// Sends `records` as source `id`'s next batch from `partition` (with `undecodable`, a
    /// line and why, going to the dead letters as the source would send them), then moves its
    /// watermark. Into a transform or sink, the records come in by its input `from` (needed
    /// when it has several); those with the event-time field of the one source with event
    /// time upstream of it are stamped by that source, whose watermark moves as if it had sent
    /// them.
    pub fn send(
        &mut self,
        id: &str,
        from: Option<&str>,
        partition: i32,
        mut records: Batch,
        undecodable: Vec<(String, Vec<u8>)>,
    ) -> Result<(), String> {
        let at = self.node(id)?;
        let into = match &self.nodes[at].role {
            Role::Source { .. } => None,
            _ => Some(self.input_of(at, from)?),
        };
        let stamping = match into {
            None => Some(at),
            Some(input) => {
                let upstream = self.nodes[at].inputs[input].component.clone();
                match self.timed_sources_of(&upstream).as_slice() {
                    [] => None,
                    [one] => Some(*one),
                    many => {
                        let names: Vec<&str> =
                            many.iter().map(|n| self.nodes[*n].id.as_str()).collect();
                        return Err(format!(
                            "the records could come from several sources with event time ({}): \
                             send them at one of those",
                            names.join(", ")
                        ));
                    }
                }
            }
        };
        let shard = match self.partitioned_source_of(id) {
            Some(source) => self.shard_of(source, partition),
            None => Shard::Whole,
        };
        let mut dead: Vec<(String, Payload)> = undecodable
            .into_iter()
            .map(|(reason, line)| (reason, Payload::Raw(line)))
            .collect();
        let mut watermark = None;
        let now = self.now();
        let slot = usize::try_from(partition).map_err(|_| "`partition` is 0 or more")?;
        if let Some(source) = stamping
            && let Role::Source {
                tracker: Some(tracker),
                partitioned,
                ..
            } = &mut self.nodes[source].role
        {
            if into.is_none() {
                tracker.stamp_at(slot, &mut records, &mut dead, now);
            } else {
                // Into a component's input: a record that has the source's event-time field
                // is stamped from it; one without goes in without an event time.
                let field = tracker.field();
                let mut stamped = Vec::with_capacity(records.len());
                for record in records {
                    let mut one = vec![record];
                    if one[0].get(field).is_some() {
                        tracker.stamp_at(slot, &mut one, &mut dead, now);
                    }
                    stamped.extend(one);
                }
                records = stamped;
            }
            // A partition of a partitioned source has a watermark of its own.
            watermark = match partitioned {
                true => tracker.advance_partition(slot),
                false => tracker.advance_at(now),
            };
        }
        let blamed = self.nodes[stamping.unwrap_or(at)].path.clone();
        self.dead_letters(&blamed, dead);
        match into {
            None => self.emit(at, None, &shard, records),
            Some(input) => {
                let batch = Arc::new(records);
                let shard = shard.clone();
                self.queue.push_back((
                    at,
                    Message::Batch {
                        input,
                        shard,
                        batch,
                    },
                ))
            }
        }
        if let (Some(source), Some(w)) = (stamping, watermark) {
            self.broadcast(source, |input| Message::Watermark {
                input,
                shard: shard.clone(),
                at: w,
            });
        }
        self.settle();
        Ok(())
    }

    /// Moves the watermark of source `id` (every source with event time when `None`) to
    /// `at` (microseconds since the epoch). For a source that keeps state per partition:
    /// of `partition`, or of every partition that has sent.
    pub fn watermark(
        &mut self,
        id: Option<&str>,
        partition: Option<i32>,
        at: i64,
    ) -> Result<(), String> {
        let sources: Vec<usize> = match id {
            Some(id) => vec![self.source(id)?],
            None => (0..self.nodes.len())
                .filter(|&n| {
                    matches!(
                        self.nodes[n].role,
                        Role::Source {
                            tracker: Some(_),
                            ..
                        }
                    )
                })
                .collect(),
        };
        if sources.is_empty() {
            return Err("no source of the pipeline reads event time".into());
        }
        for s in sources {
            let Role::Source {
                partitioned,
                assigned,
                ..
            } = &self.nodes[s].role
            else {
                continue;
            };
            let partitions = match (partitioned, partition) {
                (true, Some(p)) => vec![p],
                (true, None) => assigned.clone(),
                (false, None) => vec![0],
                (false, Some(_)) => {
                    return Err(format!(
                        "`{}` keeps no state per partition: it has one watermark, leave out \
                         `partition`",
                        self.nodes[s].id
                    ));
                }
            };
            for p in partitions {
                let shard = self.shard_of(s, p);
                self.broadcast(s, |input| Message::Watermark {
                    input,
                    shard: shard.clone(),
                    at,
                });
            }
        }
        self.settle();
        Ok(())
    }

    /// Moves the processing clock by `by`: each transform's timer fires once for every
    /// interval of it that ends in that time (at most [`MAX_TICKS`] times a step).
    pub fn advance(&mut self, by: Duration) -> Result<(), String> {
        let from = self.clock - self.timers_from;
        let to = self
            .clock
            .checked_add(by)
            .filter(|t| self.start.checked_add(*t).is_some())
            .ok_or("the processing clock cannot go that far")?;
        self.clock = to;
        let to = to - self.timers_from;
        for at in 0..self.nodes.len() {
            let Role::Transform { node } = &mut self.nodes[at].role else {
                continue;
            };
            let Some(every) = node
                .instances
                .whole
                .transform
                .tick_interval()
                .filter(|d| !d.is_zero())
            else {
                continue;
            };
            let fired = to.as_nanos() / every.as_nanos() - from.as_nanos() / every.as_nanos();
            if fired > MAX_TICKS {
                return Err(format!(
                    "`{}`'s timer would fire {fired} times: move the clock in steps of at most \
                     {MAX_TICKS} of its intervals",
                    self.nodes[at].id
                ));
            }
            for _ in 0..fired {
                self.tick(at);
            }
        }
        Ok(())
    }

    /// Every source ends: the watermark passes everything, transforms flush, and the real
    /// sinks finish (an error of theirs belongs to this step).
    pub fn end(&mut self) -> Result<(), String> {
        for at in 0..self.nodes.len() {
            if matches!(self.nodes[at].role, Role::Source { .. }) {
                self.broadcast(at, |input| Message::End { input });
            }
        }
        self.settle();
        self.each_real_sink(RealSink::finish);
        self.ended = true;
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Stops at a checkpoint and starts again from it: each transform's state (the whole
    /// shard's and each partition's) goes through the checkpoint's JSON into the same
    /// transform of `fresh` (the pipeline built again), the partitions that had sent are
    /// assigned again, and watermarks start afresh, as after a restart.
    pub fn restart(&mut self, fresh: Pipeline, real: &[String]) -> Result<(), String> {
        self.each_real_sink(RealSink::checkpoint);
        if let Some(e) = self.failure() {
            return Err(e);
        }
        let mut next = Driver::new(fresh, real)?;
        for (old, new) in self.nodes.iter_mut().zip(next.nodes.iter_mut()) {
            // Partitions are assigned again below, each transform resuming its state.
            if let (Role::Transform { node: kept }, Role::Transform { node }) =
                (&mut old.role, &mut new.role)
            {
                // Keyed states are not attached here: the snapshot holds them whole.
                let taken = kept.instances.snapshot(true)?;
                let (whole, partitions) = (taken.whole, taken.partitions);
                if let Some(state) = whole {
                    let state = through_json(&old.path, state)?;
                    restore(node.instances.whole.transform.as_mut(), state, &old.path)?;
                }
                for (partition, state) in partitions {
                    let state = through_json(&old.path, state)?;
                    next.restored
                        .insert((old.path.to_string(), partition.number), state);
                }
            }
        }
        let assigned: Vec<(usize, Vec<i32>)> = self
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(at, n)| match &n.role {
                Role::Source {
                    partitioned: true,
                    assigned,
                    ..
                } => Some((at, assigned.clone())),
                _ => None,
            })
            .collect();
        next.emitted = std::mem::take(&mut self.emitted);
        next.clock = self.clock;
        next.start = self.start;
        next.timers_from = self.clock;
        *self = next;
        for (at, partitions) in assigned {
            for p in partitions {
                self.shard_of(at, p);
            }
        }
        self.settle();
        match self.failure() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A state through the checkpoint's JSON text and back, as a restart reads it.
fn through_json(path: &str, state: serde_json::Value) -> Result<serde_json::Value, String> {
    let text = serde_json::to_string(&state)
        .map_err(|e| format!("{path}: its state cannot be kept: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: its state cannot be read back: {e}"))
}

fn restore(
    transform: &mut dyn Transform,
    state: serde_json::Value,
    path: &str,
) -> Result<(), String> {
    transform
        .restore(state)
        .map_err(|e| format!("{path}: cannot restore its state: {e}"))
}
