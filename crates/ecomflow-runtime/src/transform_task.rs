//! One transform's task: its batches, watermarks and barriers in, its records, named outputs
//! and dead letters out, its state into checkpoints. What a message does is the node's
//! (`transform_node.rs`, which `ecomflow test` runs too); the task aligns barriers, counts,
//! and sends what the node gives.

use crate::checkpoint::{Alignment, Step, ended};
use crate::inbox::{Inbox, Next};
use crate::transform_node::{Effect, TransformNode};
use crate::transform_shards::Instances;
use ecomflow_core::channel::InputReceiver;
use ecomflow_core::checkpoint::Report;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{
    Batch, ComponentError, ComponentTelemetry, Counters, Message, Output, Payload, Shard,
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
    instances: Instances,
    rx: Option<InputReceiver<Message>>,
    mut io: TransformIo,
) -> Result<(), ComponentError> {
    let Some(rx) = rx else {
        io.dead_letter.send_end().await;
        ended(&io.reports, io.component.clone(), true);
        return Ok(());
    };
    let mut inbox = Inbox::new(rx, instances.whole.transform.tick_interval());
    let mut node = TransformNode::new(io.component.clone(), instances);
    let mut effects = Vec::new();
    while let Some(next) = inbox.next().await {
        let message = match next {
            Next::Message(m) => m,
            Next::Tick => {
                node.tick(&mut effects);
                if let Some(e) = node.instances.state_error() {
                    return Err(ComponentError::Other(e));
                }
                tell(&mut effects, &io).await;
                continue;
            }
        };
        match io.alignment.step(message) {
            Step::Wait => {}
            Step::Aligned(id) => {
                if let Some(r) = &io.reports {
                    let taken = node
                        .instances
                        .snapshot(io.keep_state)
                        .map_err(ComponentError::Other)?;
                    let _ = r.send(Report::Transform {
                        id,
                        component: io.component.clone(),
                        state: taken.whole,
                        partitions: taken.partitions,
                        deltas: taken.deltas,
                    });
                }
                io.out.send_barrier(id).await;
                for (_, o) in &io.named {
                    o.send_barrier(id).await;
                }
                io.dead_letter.send_barrier(id).await;
                inbox.replay(io.alignment.release());
            }
            Step::Handle(message) => {
                match &message {
                    Message::Batch { batch, .. } => Counters::add(&io.count.received, batch.len()),
                    Message::Revoke { partition, .. } => {
                        io.telemetry.forget_watermark(&partition.key())
                    }
                    _ => {}
                }
                if let Err(e) = node.handle(message, &mut effects) {
                    return Err(ComponentError::Other(format!(
                        "cannot resume the state the last checkpoint kept for {}: {}. \
                         To start this component afresh (its state is lost, the others \
                         resume), run again with `--reset-state {}`",
                        Shard::Partition(e.partition),
                        e.reason,
                        io.component
                    )));
                }
                tell(&mut effects, &io).await;
            }
        }
    }
    node.stop(&mut effects);
    if let Some(e) = node.instances.state_error() {
        return Err(ComponentError::Other(e));
    }
    // Every input ended on its own (the node has told the outputs), or the run keeps no
    // state: the outputs end too. Inputs stopped for a restart did not end, and neither do
    // the outputs.
    let finished = node.ended();
    if !finished && io.reports.is_none() {
        effects.push(Effect::End);
    }
    tell(&mut effects, &io).await;
    io.dead_letter.send_end().await;
    ended(
        &io.reports,
        io.component.clone(),
        finished || io.reports.is_none(),
    );
    Ok(())
}

/// Tells the outputs what handling a message gave, in order.
async fn tell(effects: &mut Vec<Effect>, io: &TransformIo) {
    for effect in effects.drain(..) {
        match effect {
            Effect::Emitted {
                shard,
                records,
                named,
                dead,
                dropped,
            } => {
                io.count.dropped.fetch_add(dropped, Ordering::Relaxed);
                forward(io, &shard, records, named, dead).await;
            }
            Effect::Unowned(n) => Counters::add(&io.count.dropped, n),
            Effect::Watermark { shard, at } => send_watermark(io, &shard, at).await,
            Effect::Assign { partition, states } => {
                io.out.send_assign(&partition, &states).await;
                for (_, o) in &io.named {
                    o.send_assign(&partition, &states).await;
                }
            }
            Effect::Revoke(partition) => {
                io.out.send_revoke(&partition).await;
                for (_, o) in &io.named {
                    o.send_revoke(&partition).await;
                }
            }
            Effect::End => {
                io.out.send_end().await;
                for (_, o) in &io.named {
                    o.send_end().await;
                }
            }
        }
    }
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

async fn forward(
    io: &TransformIo,
    shard: &Shard,
    records: Batch,
    ports: Vec<(&'static str, Batch)>,
    dead: Vec<(String, Payload)>,
) {
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
