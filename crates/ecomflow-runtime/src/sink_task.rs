//! A sink's task and the dead-letter writer's: batches in, writes made durable at each
//! barrier, the end of input finishing them.

use crate::checkpoint::{Alignment, Step, ended};
use crate::inbox::{Inbox, Next};
use crate::pipeline::{Built, Component};
use crate::sinks_open::SinkStart;
use ecomflow_core::channel::InputReceiver;
use ecomflow_core::checkpoint::Report;
use ecomflow_core::component::{DeadLetterMessage, DeadLetterOutput};
use ecomflow_core::{
    Batch, ComponentError, ComponentTelemetry, Counters, DeadLetter, Incoming, Message, Sink,
    SinkContext,
};
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) async fn run_sink(
    mut sink: Box<dyn Sink>,
    rx: Option<InputReceiver<Message>>,
    cx: SinkContext,
    count: Arc<Counters>,
    mut alignment: Alignment,
    reports: Option<mpsc::UnboundedSender<Report>>,
    start: SinkStart,
) -> Result<(), ComponentError> {
    let component = start.component.clone();
    let opened = open(&mut sink, &cx).await;
    start.opened(&*sink, opened.is_ok());
    opened?;
    // Every input ended (not stopped for a restart).
    let mut finished = true;
    if let Some(rx) = rx {
        let mut ended_inputs = Vec::new();
        let mut inbox = Inbox::new(rx, sink.tick_interval());
        while let Some(next) = inbox.next().await {
            let message = match next {
                Next::Message(m) => m,
                Next::Tick => {
                    sink.tick(&cx).await?;
                    continue;
                }
            };
            match alignment.step(message) {
                Step::Aligned(id) => {
                    sink.checkpoint(&cx).await?;
                    // The rows the checkpoint's writes rejected are dead letters of it.
                    cx.dead_letter.send_barrier(id).await;
                    if let Some(r) = &reports {
                        let _ = r.send(Report::Sink {
                            id,
                            component: component.clone(),
                        });
                    }
                    inbox.replay(alignment.release());
                }
                Step::Handle(Message::Batch { batch, shard, .. }) => {
                    write(&mut sink, &cx, &count, Incoming::in_shard(shard, batch)).await?;
                }
                Step::Handle(Message::Revoke { partition, .. }) => sink.revoked(&partition),
                Step::Handle(Message::End { input }) => {
                    if !ended_inputs.contains(&input) {
                        ended_inputs.push(input);
                        if ended_inputs.len() == alignment.inputs() {
                            sink.inputs_ended();
                        }
                    }
                }
                Step::Handle(_) | Step::Wait => {}
            }
        }
        finished = ended_inputs.len() == alignment.inputs();
    }
    let result = sink.finish(&cx).await;
    cx.dead_letter.send_end().await;
    ended(&reports, component, finished);
    result
}

/// Runs the dead-letter sink: letters from `senders` components, each of which also sends
/// its checkpoint barriers and its end. A checkpoint's letters are durable, and reported like
/// any sink's, once its barrier has come from every component that has not ended.
pub(crate) async fn run_dead_letter(
    component: Component,
    mut rx: mpsc::Receiver<DeadLetterMessage>,
    telemetry: Arc<ComponentTelemetry>,
    senders: usize,
    reports: Option<mpsc::UnboundedSender<Report>>,
) -> Result<(), ComponentError> {
    let Built::Sink(mut sink) = component.built else {
        return Err(ComponentError::Other(
            "the dead-letter output must be a sink".into(),
        ));
    };
    // Dead letters of the dead-letter sink itself have nowhere else to go: they are counted.
    let (own_tx, _) = mpsc::channel(1);
    let count = telemetry.counters.clone();
    let cx = SinkContext {
        dead_letter: DeadLetterOutput::new(component.id.as_str().into(), 0, own_tx, count.clone()),
        telemetry,
    };
    open(&mut sink, &cx).await?;
    let component_id: Arc<str> = component.id.as_str().into();
    let mut barriers = vec![0u64; senders];
    let mut ended_senders = vec![false; senders];
    let mut durable = 0u64;
    while let Some(message) = rx.recv().await {
        match message {
            DeadLetterMessage::Letters(letters) => {
                write_letters(&mut sink, &cx, &count, letters).await?;
                continue;
            }
            DeadLetterMessage::Barrier { from, id } => {
                if let Some(b) = barriers.get_mut(from) {
                    *b = (*b).max(id);
                }
            }
            DeadLetterMessage::End { from } => {
                if let Some(e) = ended_senders.get_mut(from) {
                    *e = true;
                }
            }
        }
        // The newest checkpoint whose barrier every component still running has passed.
        let reached = barriers
            .iter()
            .zip(&ended_senders)
            .filter(|(_, ended)| !**ended)
            .map(|(b, _)| *b)
            .min();
        if let Some(id) = reached
            && id > durable
        {
            sink.checkpoint(&cx).await?;
            durable = id;
            if let Some(r) = &reports {
                let _ = r.send(Report::Sink {
                    id,
                    component: component_id.clone(),
                });
            }
        }
    }
    let result = sink.finish(&cx).await;
    // Every component sends its end to the dead-letter output, stopped or not.
    ended(&reports, component_id, true);
    result
}

async fn write_letters(
    sink: &mut Box<dyn Sink>,
    cx: &SinkContext,
    count: &Counters,
    letters: Vec<DeadLetter>,
) -> Result<(), ComponentError> {
    let batch: Batch = letters.iter().map(DeadLetter::to_record).collect();
    write(sink, cx, count, batch.into()).await
}

/// Opens `sink` (it connects): it is not ready until then.
async fn open(sink: &mut Box<dyn Sink>, cx: &SinkContext) -> Result<(), ComponentError> {
    cx.telemetry.set_ready(false);
    sink.open(cx).await?;
    cx.telemetry.set_ready(true);
    Ok(())
}

/// Writes one batch to `sink`, counted and timed.
async fn write(
    sink: &mut Box<dyn Sink>,
    cx: &SinkContext,
    count: &Counters,
    batch: Incoming,
) -> Result<(), ComponentError> {
    let n = batch.len();
    Counters::add(&count.received, n);
    let started = std::time::Instant::now();
    sink.write(batch, cx).await?;
    cx.telemetry.wrote_batch(started.elapsed());
    if !sink.counts_written() {
        Counters::add(&count.sent, n);
    }
    Ok(())
}
