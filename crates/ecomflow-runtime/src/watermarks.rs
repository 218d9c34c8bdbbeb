//! The watermark of a component with several inputs: the lowest of its inputs'. An input fed
//! by a source that reads event time holds everything back from the start, before it has sent
//! anything, so another input's watermark never closes the buckets its backlog belongs to; an
//! input that carries no event time never holds anything back.

use crate::pipeline::{Built, Component};
use std::collections::HashSet;

/// The combined watermark of one component's inputs.
pub struct Watermarks {
    inputs: Vec<Option<i64>>,
    ended: Vec<bool>,
    /// The combined watermark passed on last.
    pub current: Option<i64>,
}

impl Watermarks {
    /// Watermarks over inputs that carry event time (`true`: it holds back until it reports)
    /// or not.
    pub fn new(timed: Vec<bool>) -> Watermarks {
        Watermarks {
            ended: vec![false; timed.len()],
            inputs: timed.into_iter().map(|t| t.then_some(i64::MIN)).collect(),
            current: None,
        }
    }

    /// Records that input `input` has ended: it holds nothing back any more. Returns the
    /// combined watermark if it moved forward.
    pub fn end(&mut self, input: usize) -> Option<i64> {
        if let Some(e) = self.ended.get_mut(input) {
            *e = true;
        }
        self.update(input, i64::MAX)
    }

    /// Makes input `input` hold the watermark back until it reports one (it now carries
    /// event time of this shard).
    pub fn hold(&mut self, input: usize) {
        if let Some(slot @ None) = self.inputs.get_mut(input) {
            *slot = Some(i64::MIN);
        }
    }

    /// Whether every input has ended.
    pub fn all_ended(&self) -> bool {
        self.ended.iter().all(|e| *e)
    }

    /// Records input `input`'s watermark; returns the combined one if it moved forward.
    pub fn update(&mut self, input: usize, at: i64) -> Option<i64> {
        let slot = self.inputs.get_mut(input)?;
        *slot = Some(slot.map_or(at, |old| old.max(at)));
        let lowest = self.inputs.iter().flatten().min().copied()?;
        // An input that ended must not close everything while another has not reported yet.
        if lowest == i64::MAX && self.inputs.iter().any(Option::is_none) {
            return None;
        }
        if lowest == i64::MIN || self.current.is_some_and(|c| c >= lowest) {
            return None;
        }
        self.current = Some(lowest);
        self.current
    }
}

/// The ids of the components whose outputs carry event time: sources with `event_time`, and
/// every component that reads one of them, directly or not.
pub fn carrying_event_time(components: &[Component]) -> HashSet<String> {
    let mut timed: HashSet<String> = components
        .iter()
        .filter(|c| matches!(c.built, Built::Source(_)) && c.event_time.is_some())
        .map(|c| c.id.clone())
        .collect();
    // The graph has no cycles: at most one pass per component.
    loop {
        let more: Vec<String> = components
            .iter()
            .filter(|c| !timed.contains(&c.id))
            .filter(|c| c.inputs.iter().any(|i| timed.contains(&i.component)))
            .map(|c| c.id.clone())
            .collect();
        if more.is_empty() {
            return timed;
        }
        timed.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use super::Watermarks;

    #[test]
    fn the_lowest_input_wins_and_never_goes_back() {
        let mut w = Watermarks::new(vec![false, false]);
        assert_eq!(w.update(0, 10), Some(10), "only input 0 has reported");
        assert_eq!(
            w.update(1, 5),
            None,
            "the combined watermark never goes back"
        );
        assert_eq!(w.update(1, 20), None, "input 1 still holds it at 10");
        assert_eq!(w.update(0, 8), None, "an input never goes back");
        assert_eq!(w.update(0, 30), Some(20));
    }

    #[test]
    fn an_input_with_event_time_holds_everything_back_until_it_reports() {
        let mut w = Watermarks::new(vec![true, true]);
        assert_eq!(
            w.update(0, 1_000),
            None,
            "input 1 has not sent anything yet"
        );
        assert_eq!(w.end(0), None, "nor when input 0 ends");
        assert_eq!(w.update(1, 7), Some(7));
        assert!(!w.all_ended());
        assert_eq!(w.end(1), Some(i64::MAX));
        assert!(w.all_ended());
    }

    #[test]
    fn an_ended_input_does_not_close_everything_before_the_others_report() {
        let mut w = Watermarks::new(vec![false, false]);
        assert_eq!(w.end(0), None, "input 1 has not reported yet");
        assert_eq!(w.update(1, 7), Some(7));
        assert_eq!(w.end(1), Some(i64::MAX));
    }
}
