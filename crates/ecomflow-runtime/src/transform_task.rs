//! One transform's task: its batches, watermarks and barriers in, its records, named outputs
//! and dead letters out, its state into checkpoints. It keeps one instance of the transform
//! per shard (see `transform_shards.rs`).

use crate::checkpoint::{Alignment, Step, ended};
use crate::inbox::{Inbox, Next};
use crate::transform_shards::{Assigned, Instances};
use ecomflow_core::channel::InputReceiver;
use ecomflow_core::checkpoint::Report;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{
    ComponentError, ComponentTelemetry, Counters, Emitter, Message, Output, Shard,
};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;

/// Where a transform's results go and its checkpoint duties.
pub(crate) struct TransformIo {
    pub(crate) out: Output,
    pub(crate) named: Vec<(&'static str, Output)>,
    pub(crate) dead_letter: DeadLetterOutput,
    pub(crate) count: Arc<Counters>,
    pub(crate) alignment: Alignment,
    pub(crate) reports: Option<mpsc::UnboundedSender<Report>>,
    pub(crate) component: Arc<str>,
    /// Checkpoints keep state (a `[checkpoint]` table), rather than only acknowledge.
    pub(crate) keep_state: bool,
    /// What the transform shows while it runs.
    pub(crate) telemetry: Arc<ComponentTelemetry>,
}

pub(crate) async fn run_transform(
    mut instances: Instances,
    rx: Option<InputReceiver<Message>>,
    mut io: TransformIo,
) -> Result<(), ComponentError> {
    let Some(rx) = rx else {
        io.dead_letter.send_end().await;
        ended(&io.reports, io.component.clone(), true);
        return Ok(());
    };
    let mut emitter = Emitter::default();
    let mut inbox = Inbox::new(rx, instances.whole.transform.tick_interval());
    while let Some(next) = inbox.next().await {
        let message = match next {
            Next::Message(m) => m,
            Next::Tick => {
                for (shard, instance) in instances.all() {
                    instance.transform.tick(&mut emitter);
                    forward(&mut emitter, &io, &shard).await;
                }
                continue;
            }
        };
        match io.alignment.step(message) {
            Step::Wait => {}
            Step::Aligned(id) => {
                if let Some(r) = &io.reports {
                    let (state, partitions) = if io.keep_state {
                        instances.snapshot()
                    } else {
                        (None, Vec::new())
                    };
                    let _ = r.send(Report::Transform {
                        id,
                        component: io.component.clone(),
                        state,
                        partitions,
                    });
                }
                io.out.send_barrier(id).await;
                for (_, o) in &io.named {
                    o.send_barrier(id).await;
                }
                io.dead_letter.send_barrier(id).await;
                inbox.replay(io.alignment.release());
            }
            Step::Handle(Message::Batch { batch, shard, .. }) => {
                Counters::add(&io.count.received, batch.len());
                let Some(instance) = instances.get(&shard) else {
                    // A partition revoked on every input: what it sent last is dropped
                    // with what it built (its new owner reads it again).
                    Counters::add(&io.count.dropped, batch.len());
                    continue;
                };
                match Arc::try_unwrap(batch) {
                    Ok(owned) => instance.transform.process(owned, &mut emitter),
                    Err(shared) => instance.transform.process_shared(&shared, &mut emitter),
                }
                forward(&mut emitter, &io, &shard).await;
            }
            Step::Handle(Message::Watermark { input, shard, at }) => {
                let Some(instance) = instances.get(&shard) else {
                    continue;
                };
                if let Some(at) = instance.watermarks.update(input, at) {
                    instance.transform.on_watermark(at, &mut emitter);
                    forward(&mut emitter, &io, &shard).await;
                    send_watermark(&io, &shard, at).await;
                }
            }
            Step::Handle(Message::End { input }) => {
                for (shard, instance) in instances.all() {
                    if let Some(at) = instance.watermarks.end(input) {
                        instance.transform.on_watermark(at, &mut emitter);
                        forward(&mut emitter, &io, &shard).await;
                        // Past every time only when every input ended: the outputs' end
                        // says it.
                        if at < i64::MAX {
                            send_watermark(&io, &shard, at).await;
                        }
                    }
                }
            }
            Step::Handle(Message::Assign {
                input,
                partition,
                states,
            }) => {
                let state = states.get(&*io.component);
                match instances.assign(input, &partition, state) {
                    Ok(Assigned::New) => {
                        io.out.send_assign(&partition, &states).await;
                        for (_, o) in &io.named {
                            o.send_assign(&partition, &states).await;
                        }
                    }
                    Ok(Assigned::Known) => {}
                    Err(e) => {
                        return Err(ComponentError::Other(format!(
                            "cannot resume the state the last checkpoint kept for {}: {e}. \
                             To start this component afresh (its state is lost, the others \
                             resume), run again with `--reset-state {}`",
                            Shard::Partition(partition),
                            io.component
                        )));
                    }
                }
            }
            Step::Handle(Message::Revoke { input, partition }) => {
                io.telemetry.forget_watermark(&partition.key());
                if instances.revoke(input, &partition) {
                    io.out.send_revoke(&partition).await;
                    for (_, o) in &io.named {
                        o.send_revoke(&partition).await;
                    }
                }
            }
            Step::Handle(Message::Barrier { .. }) => {}
        }
    }
    for (shard, instance) in instances.all() {
        instance.transform.flush(&mut emitter);
        forward(&mut emitter, &io, &shard).await;
    }
    // Every input ended on its own, or the run keeps no state: the outputs end too. Inputs
    // stopped for a restart did not end, and neither do the outputs.
    let finished = instances.whole.watermarks.all_ended() || io.reports.is_none();
    if finished {
        io.out.send_end().await;
        for (_, o) in &io.named {
            o.send_end().await;
        }
    }
    io.dead_letter.send_end().await;
    ended(&io.reports, io.component.clone(), finished);
    Ok(())
}

async fn send_watermark(io: &TransformIo, shard: &Shard, at: i64) {
    match shard {
        Shard::Whole => io.telemetry.set_watermark(at),
        Shard::Partition(p) => io
            .telemetry
            .update_partition(&p.key(), |p| p.watermark = Some(at)),
    }
    io.out.send_watermark_in(shard, at).await;
    for (_, o) in &io.named {
        o.send_watermark_in(shard, at).await;
    }
}

async fn forward(emitter: &mut Emitter, io: &TransformIo, shard: &Shard) {
    let (records, ports, dead) = emitter.take();
    io.count
        .dropped
        .fetch_add(emitter.take_dropped(), Ordering::Relaxed);
    // A closed output means its readers failed; the run is already stopping with their error.
    Counters::add(&io.count.sent, records.len());
    io.telemetry.tap.offer(&records);
    let _ = io.out.send_in(shard, records).await;
    for (port, batch) in ports {
        match io.named.iter().find(|(p, _)| *p == port) {
            // Nothing reads this output: its records are dropped, and counted.
            Some((_, o)) if o.is_unconnected() => Counters::add(&io.count.dropped, batch.len()),
            Some((_, o)) => {
                Counters::add(&io.count.sent, batch.len());
                let _ = o.send_in(shard, batch).await;
            }
            None => Counters::add(&io.count.dropped, batch.len()),
        }
    }
    io.dead_letter.send(dead).await;
}
