//! Barrier alignment: a component with several inputs holds back what an input sends after
//! its barrier until the barrier has come from every input that has not ended.

use ecomflow_core::Message;
use std::collections::VecDeque;

/// Barrier alignment for one component with several inputs: what an input sends after its
/// barrier is held back until the barrier has come from every input.
pub struct Alignment {
    barrier: Vec<u64>,
    ended: Vec<bool>,
    target: Option<u64>,
    held: VecDeque<Message>,
}

/// What to do with a message.
pub enum Step {
    /// Handle it now.
    Handle(Message),
    /// Barrier `id` has come from every input: take part in checkpoint `id`, then handle the
    /// held-back messages (from [`Alignment::release`]).
    Aligned(u64),
    /// Nothing to do now (held back, or a barrier still waiting for other inputs).
    Wait,
}

impl Alignment {
    /// Alignment over `inputs` inputs.
    pub fn new(inputs: usize) -> Alignment {
        Alignment {
            barrier: vec![0; inputs],
            ended: vec![false; inputs],
            target: None,
            held: VecDeque::new(),
        }
    }

    /// How many inputs it aligns.
    pub fn inputs(&self) -> usize {
        self.barrier.len()
    }

    fn input_of(m: &Message) -> Option<usize> {
        match m {
            Message::Batch { input, .. }
            | Message::Barrier { input, .. }
            | Message::Watermark { input, .. }
            | Message::Assign { input, .. }
            | Message::Revoke { input, .. }
            | Message::End { input } => Some(*input),
        }
    }

    fn aligned(&self, id: u64) -> bool {
        self.barrier
            .iter()
            .zip(&self.ended)
            .all(|(b, ended)| *ended || *b >= id)
    }

    /// Decides about one incoming message.
    pub fn step(&mut self, m: Message) -> Step {
        if let (Some(target), Some(input)) = (self.target, Alignment::input_of(&m))
            && self.barrier.get(input).is_some_and(|b| *b >= target)
        {
            self.held.push_back(m);
            return Step::Wait;
        }
        match m {
            Message::Barrier { input, id } => {
                if let Some(b) = self.barrier.get_mut(input) {
                    *b = (*b).max(id);
                }
                let target = *self.target.get_or_insert(id);
                if self.aligned(target) {
                    self.target = None;
                    Step::Aligned(target)
                } else {
                    Step::Wait
                }
            }
            Message::End { input } => {
                if let Some(e) = self.ended.get_mut(input) {
                    *e = true;
                }
                // An ended input takes part in no barrier: the others may be aligned now.
                self.held.push_front(Message::End { input });
                match self.target {
                    Some(target) if self.aligned(target) => {
                        self.target = None;
                        Step::Aligned(target)
                    }
                    _ => Step::Handle(self.held.pop_front().unwrap_or(Message::End { input })),
                }
            }
            other => Step::Handle(other),
        }
    }

    /// The messages held back during the last alignment, in arrival order.
    pub fn release(&mut self) -> VecDeque<Message> {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn batch(input: usize) -> Message {
        Message::Batch {
            input,
            shard: ecomflow_core::Shard::Whole,
            batch: Arc::new(Vec::new()),
        }
    }

    fn kind(s: &Step) -> String {
        match s {
            Step::Handle(Message::Batch { input, .. }) => format!("batch {input}"),
            Step::Handle(Message::Watermark { input, .. }) => format!("watermark {input}"),
            Step::Handle(Message::End { input }) => format!("end {input}"),
            Step::Handle(Message::Assign { input, .. }) => format!("assign {input}"),
            Step::Handle(Message::Revoke { input, .. }) => format!("revoke {input}"),
            Step::Handle(Message::Barrier { .. }) => "barrier".into(),
            Step::Aligned(id) => format!("aligned {id}"),
            Step::Wait => "wait".into(),
        }
    }

    #[test]
    fn what_follows_a_barrier_waits_for_the_other_inputs() {
        let mut a = Alignment::new(2);
        assert_eq!(kind(&a.step(batch(0))), "batch 0");
        assert_eq!(kind(&a.step(Message::Barrier { input: 0, id: 1 })), "wait");
        assert_eq!(kind(&a.step(batch(0))), "wait", "after its barrier: held");
        assert_eq!(
            kind(&a.step(batch(1))),
            "batch 1",
            "before its barrier: handled"
        );
        assert_eq!(
            kind(&a.step(Message::Barrier { input: 1, id: 1 })),
            "aligned 1"
        );
        let held: Vec<String> = a
            .release()
            .into_iter()
            .map(|m| kind(&Step::Handle(m)))
            .collect();
        assert_eq!(held, ["batch 0"]);
        assert_eq!(
            kind(&a.step(batch(0))),
            "batch 0",
            "no checkpoint pending any more"
        );
    }

    #[test]
    fn an_ended_input_does_not_block_a_checkpoint() {
        let mut a = Alignment::new(2);
        assert_eq!(kind(&a.step(Message::Barrier { input: 0, id: 3 })), "wait");
        assert_eq!(kind(&a.step(Message::End { input: 1 })), "aligned 3");
        let held: Vec<String> = a
            .release()
            .into_iter()
            .map(|m| kind(&Step::Handle(m)))
            .collect();
        assert_eq!(held, ["end 1"], "the end of input 1 is still handled");
    }

    #[test]
    fn a_single_input_aligns_at_once() {
        let mut a = Alignment::new(1);
        assert_eq!(
            kind(&a.step(Message::Barrier { input: 0, id: 1 })),
            "aligned 1"
        );
        assert!(a.release().is_empty());
    }
}
