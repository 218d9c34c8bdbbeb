//! The node's message handling: what each message gives, in order.

use super::*;
use crate::pipeline::Rebuild;
use ecomflow_core::{Record, Transform};

/// Counts its records (its state); emits one record per watermark and one at its flush.
#[derive(Default)]
struct Count(u64);

impl Transform for Count {
    fn process(&mut self, batch: Batch, out: &mut Emitter) {
        self.0 += batch.len() as u64;
        batch.into_iter().for_each(|r| out.emit(r));
    }
    fn snapshot(&self) -> Option<serde_json::Value> {
        Some(serde_json::json!(self.0))
    }
    fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        self.0 = state.as_u64().ok_or("not a count")?;
        Ok(())
    }
    fn on_watermark(&mut self, _at: i64, out: &mut Emitter) {
        out.emit(Record::default());
    }
    fn flush(&mut self, out: &mut Emitter) {
        out.emit(Record::default());
    }
    fn tick(&mut self, out: &mut Emitter) {
        out.emit(Record::default());
    }
}

fn node(inputs: usize) -> TransformNode {
    let rebuild: Rebuild = Arc::new(|| Ok(Box::new(Count::default()) as Box<dyn Transform>));
    let instances = Instances::new(
        Box::new(Count::default()),
        vec![true; inputs],
        Some(rebuild),
    );
    TransformNode::new("transforms.count".into(), instances)
}

fn partition(number: i32) -> Arc<PartitionId> {
    Arc::new(PartitionId {
        source: "sources.s".into(),
        topic: "t".into(),
        number,
    })
}

/// Each effect in short: `emitted 2` (records), `watermark 5`, `assign 0`, `revoke 0`,
/// `unowned 3`, `end`.
fn shown(effects: &mut Vec<Effect>) -> Vec<String> {
    effects
        .drain(..)
        .map(|e| match e {
            Effect::Emitted { records, .. } => format!("emitted {}", records.len()),
            Effect::Unowned(n) => format!("unowned {n}"),
            Effect::Watermark { at, .. } => format!("watermark {at}"),
            Effect::Assign { partition, .. } => format!("assign {}", partition.number),
            Effect::Revoke(p) => format!("revoke {}", p.number),
            Effect::End => "end".into(),
        })
        .collect()
}

fn batch(input: usize, shard: Shard, records: usize) -> Message {
    Message::Batch {
        input,
        shard,
        batch: Arc::new(vec![Record::default(); records]),
    }
}

#[test]
fn the_watermark_moves_when_every_input_has_passed_it_and_the_last_end_flushes_once() {
    let mut n = node(2);
    let mut e = Vec::new();
    n.handle(batch(0, Shard::Whole, 2), &mut e)
        .expect("handled");
    assert_eq!(shown(&mut e), ["emitted 2"]);
    let wm = |input, at| Message::Watermark {
        input,
        shard: Shard::Whole,
        at,
    };
    n.handle(wm(0, 10), &mut e).expect("handled");
    assert!(shown(&mut e).is_empty(), "input 1 holds it back");
    n.handle(wm(1, 7), &mut e).expect("handled");
    assert_eq!(shown(&mut e), ["emitted 1", "watermark 7"]);
    n.handle(Message::End { input: 1 }, &mut e)
        .expect("handled");
    assert_eq!(shown(&mut e), ["emitted 1", "watermark 10"]);
    assert!(!n.ended());
    n.handle(Message::End { input: 0 }, &mut e)
        .expect("handled");
    assert_eq!(
        shown(&mut e),
        ["emitted 1", "emitted 1", "end"],
        "past every time (no watermark: the end says it), then the flush, then the end"
    );
    assert!(n.ended());
    n.tick(&mut e);
    n.stop(&mut e);
    assert!(
        shown(&mut e).is_empty(),
        "no tick or second flush after the end"
    );
}

#[test]
fn a_stop_flushes_without_ending() {
    let mut n = node(1);
    let mut e = Vec::new();
    n.tick(&mut e);
    assert_eq!(shown(&mut e), ["emitted 1"]);
    n.stop(&mut e);
    assert_eq!(shown(&mut e), ["emitted 1"]);
    assert!(!n.ended());
}

#[test]
fn partitions_resume_their_state_and_their_records_go_with_them() {
    let mut n = node(1);
    let mut e = Vec::new();
    let p = partition(3);
    let states = Arc::new(BTreeMap::from([(
        "transforms.count".to_string(),
        serde_json::json!(40),
    )]));
    let assign = |states: &Arc<BTreeMap<String, serde_json::Value>>| Message::Assign {
        input: 0,
        partition: p.clone(),
        states: states.clone(),
    };
    n.handle(assign(&states), &mut e).expect("handled");
    assert_eq!(shown(&mut e), ["assign 3"]);
    n.handle(assign(&states), &mut e).expect("handled");
    assert!(shown(&mut e).is_empty(), "assigned once");
    let shard = Shard::Partition(p.clone());
    n.handle(batch(0, shard.clone(), 2), &mut e)
        .expect("handled");
    assert_eq!(shown(&mut e), ["emitted 2"]);
    let taken = n.instances.snapshot(true).expect("taken");
    let (whole, partitions) = (taken.whole, taken.partitions);
    assert_eq!(whole, Some(serde_json::json!(0)));
    assert_eq!(
        partitions[0].1,
        serde_json::json!(42),
        "resumed at 40, then 2"
    );
    let revoke = Message::Revoke {
        input: 0,
        partition: p.clone(),
    };
    n.handle(revoke, &mut e).expect("handled");
    assert_eq!(shown(&mut e), ["revoke 3"]);
    n.handle(batch(0, shard, 5), &mut e).expect("handled");
    assert_eq!(shown(&mut e), ["unowned 5"], "its records now go nowhere");
}

#[test]
fn a_state_that_does_not_resume_names_its_partition() {
    let mut n = node(1);
    let mut e = Vec::new();
    let states = Arc::new(BTreeMap::from([(
        "transforms.count".to_string(),
        serde_json::json!("x"),
    )]));
    let failed = n
        .handle(
            Message::Assign {
                input: 0,
                partition: partition(5),
                states,
            },
            &mut e,
        )
        .expect_err("cannot resume");
    assert_eq!(
        (failed.partition.number, failed.reason.as_str()),
        (5, "not a count")
    );
    assert!(e.is_empty());
}
