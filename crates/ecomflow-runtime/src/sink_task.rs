//! A sink's task and the dead-letter writer's: batches in, writes made durable at each
//! barrier, the end of input finishing them.

use crate::checkpoint::{Alignment, Step, ended};
use crate::pipeline::{Built, Component};
use ecomflow_core::checkpoint::Report;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::{Batch, ComponentError, Counters, DeadLetter, Message, Sink, SinkContext};
use std::sync::Arc;
use tokio::sync::mpsc;

pub(crate) async fn run_sink(
    mut sink: Box<dyn Sink>,
    rx: Option<mpsc::Receiver<Message>>,
    cx: SinkContext,
    count: Arc<Counters>,
    mut alignment: Alignment,
    reports: Option<mpsc::UnboundedSender<Report>>,
    component: Arc<str>,
) -> Result<(), ComponentError> {
    let mut ticker = sink.tick_interval().map(|d| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + d, d);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    if let Some(mut rx) = rx {
        let mut replay = std::collections::VecDeque::new();
        loop {
            let message = if let Some(m) = replay.pop_front() {
                Some(m)
            } else {
                match ticker.as_mut() {
                    Some(t) => tokio::select! {
                        m = rx.recv() => m,
                        _ = t.tick() => {
                            sink.tick(&cx).await?;
                            continue;
                        }
                    },
                    None => rx.recv().await,
                }
            };
            let Some(message) = message else { break };
            match alignment.step(message) {
                Step::Aligned(id) => {
                    sink.checkpoint(&cx).await?;
                    if let Some(r) = &reports {
                        let _ = r.send(Report::Sink {
                            id,
                            component: component.clone(),
                        });
                    }
                    let mut held = alignment.release();
                    held.extend(replay.drain(..));
                    replay = held;
                }
                Step::Handle(Message::Batch { batch, .. }) => {
                    let n = batch.len();
                    Counters::add(&count.received, n);
                    sink.write(batch.into(), &cx).await?;
                    Counters::add(&count.sent, n);
                }
                Step::Handle(_) | Step::Wait => {}
            }
        }
    }
    let result = sink.finish(&cx).await;
    ended(&reports, component);
    result
}

pub(crate) async fn run_dead_letter(
    component: Component,
    mut rx: mpsc::Receiver<Vec<DeadLetter>>,
    count: Arc<Counters>,
    mut markers: mpsc::UnboundedReceiver<u64>,
    reports: Option<mpsc::UnboundedSender<Report>>,
) -> Result<(), ComponentError> {
    let Built::Sink(mut sink) = component.built else {
        return Err(ComponentError::Other(
            "the dead-letter output must be a sink".into(),
        ));
    };
    // Dead letters of the dead-letter sink itself have nowhere else to go: they are counted.
    let (own_tx, _) = mpsc::channel(1);
    let cx = SinkContext {
        dead_letter: DeadLetterOutput::new(component.id.as_str().into(), own_tx, count.clone()),
    };
    let component_id: Arc<str> = component.id.as_str().into();
    let mut markers_open = true;
    loop {
        tokio::select! {
            letters = rx.recv() => {
                let Some(letters) = letters else { break };
                write_letters(&mut sink, &cx, &count, letters).await?;
            }
            marker = markers.recv(), if markers_open => {
                let Some(id) = marker else {
                    markers_open = false;
                    continue;
                };
                // Every letter sent before the checkpoint's barriers is queued by now.
                while let Ok(letters) = rx.try_recv() {
                    write_letters(&mut sink, &cx, &count, letters).await?;
                }
                sink.checkpoint(&cx).await?;
                if let Some(r) = &reports {
                    let _ = r.send(Report::Sink { id, component: component_id.clone() });
                }
            }
        }
    }
    sink.finish(&cx).await
}

async fn write_letters(
    sink: &mut Box<dyn Sink>,
    cx: &SinkContext,
    count: &Counters,
    letters: Vec<DeadLetter>,
) -> Result<(), ComponentError> {
    let batch: Batch = letters.iter().map(DeadLetter::to_record).collect();
    let n = batch.len();
    Counters::add(&count.received, n);
    sink.write(batch.into(), cx).await?;
    Counters::add(&count.sent, n);
    Ok(())
}
