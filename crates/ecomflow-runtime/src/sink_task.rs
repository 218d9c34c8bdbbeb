//! A sink's task, the dead-letter sink's among them: batches in, writes made durable at each
//! barrier, the end of input finishing them.

use crate::checkpoint::{Alignment, Step, ended};
use crate::inbox::{Inbox, Next};
use crate::pipeline::{Built, Component};
use crate::sinks_open::SinkStart;
use ecomflow_core::channel::InputReceiver;
use ecomflow_core::checkpoint::Report;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{
    ComponentError, ComponentTelemetry, Counters, Incoming, Message, Sink, SinkContext,
};
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) async fn run_sink(
    mut sink: Box<dyn Sink>,
    rx: Option<InputReceiver<Message>>,
    cx: SinkContext,
    count: Arc<Counters>,
    alignment: Alignment,
    reports: Option<mpsc::UnboundedSender<Report>>,
    start: SinkStart,
) -> Result<(), ComponentError> {
    let opened = open(&mut sink, &cx).await;
    start.opened(&*sink, opened.is_ok());
    opened?;
    drive(sink, rx, cx, count, alignment, reports, start.component).await
}

/// Runs the dead-letter sink: an ordinary sink whose input number `from` is the pipeline's
/// component number `from` (every component sends its letters, its checkpoint barriers and its
/// end there). It opens on its own, before and apart from the other sinks.
pub(crate) async fn run_dead_letter(
    component: Component,
    rx: InputReceiver<Message>,
    telemetry: Arc<ComponentTelemetry>,
    senders: usize,
    reports: Option<mpsc::UnboundedSender<Report>>,
) -> Result<(), ComponentError> {
    let Built::Sink(mut sink) = component.built else {
        return Err(ComponentError::Other(
            "the dead-letter output must be a sink".into(),
        ));
    };
    let path: Arc<str> = component.id.as_str().into();
    let count = telemetry.counters.clone();
    // Dead letters of the dead-letter sink itself have nowhere else to go: they are counted.
    let (dead_letter, _) = DeadLetterOutput::collected(path.clone(), count.clone());
    let cx = SinkContext {
        dead_letter,
        telemetry,
    };
    open(&mut sink, &cx).await?;
    let alignment = Alignment::new(senders);
    drive(sink, Some(rx), cx, count, alignment, reports, path).await
}

/// A sink's loop, once open: batches written, writes made durable when a barrier has come
/// from every input, the end of every input finishing them.
async fn drive(
    mut sink: Box<dyn Sink>,
    rx: Option<InputReceiver<Message>>,
    cx: SinkContext,
    count: Arc<Counters>,
    mut alignment: Alignment,
    reports: Option<mpsc::UnboundedSender<Report>>,
    component: Arc<str>,
) -> Result<(), ComponentError> {
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
                Step::Handle(Message::Revoke { partition, .. }) => {
                    if let Some(writes) = sink.in_checkpoint() {
                        writes.revoked(&partition);
                    }
                }
                Step::Handle(Message::End { input }) => {
                    if !ended_inputs.contains(&input) {
                        ended_inputs.push(input);
                        if ended_inputs.len() == alignment.inputs()
                            && let Some(writes) = sink.in_checkpoint()
                        {
                            writes.inputs_ended();
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
