//! What a transform or sink task reads next: messages held back by a checkpoint's alignment
//! first, then its input channel, interleaved with the component's timer when it has one.

use ecomflow_core::Message;
use ecomflow_core::channel::InputReceiver;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Interval;

/// The next thing a task handles.
pub(crate) enum Next {
    /// A message from an input (or one held back and now replayed).
    Message(Message),
    /// The component's timer ticked.
    Tick,
}

/// A task's input: its channel, the messages to replay, and its timer.
pub(crate) struct Inbox {
    rx: InputReceiver<Message>,
    replay: VecDeque<Message>,
    ticker: Option<Interval>,
}

impl Inbox {
    /// Reads `rx`, with a tick every `tick` when the component asks for one.
    pub(crate) fn new(rx: InputReceiver<Message>, tick: Option<Duration>) -> Inbox {
        Inbox {
            rx,
            replay: VecDeque::new(),
            ticker: tick.map(crate::ticker::every),
        }
    }

    /// The next message (replayed ones first) or tick; `None` once every input has gone.
    pub(crate) async fn next(&mut self) -> Option<Next> {
        if let Some(m) = self.replay.pop_front() {
            return Some(Next::Message(m));
        }
        match self.ticker.as_mut() {
            Some(t) => tokio::select! {
                m = self.rx.recv() => m.map(Next::Message),
                _ = t.tick() => Some(Next::Tick),
            },
            None => self.rx.recv().await.map(Next::Message),
        }
    }

    /// Messages an alignment held back: handled next, before what was waiting to be replayed.
    pub(crate) fn replay(&mut self, mut held: VecDeque<Message>) {
        held.extend(self.replay.drain(..));
        self.replay = held;
    }
}
