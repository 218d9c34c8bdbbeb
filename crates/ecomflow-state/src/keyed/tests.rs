use super::*;
use crate::StateDb;
use proptest::prelude::*;
use std::collections::BTreeMap;

type State = KeyedState<String, u64>;

fn attached(db: &Arc<StateDb>, budget: usize) -> State {
    let mut s = State::new();
    s.attach(
        db.namespace("t#0"),
        Arc::new(MemoryBudget::new(budget)),
        Tracking::Incremental,
    )
    .expect("attaches");
    s
}

fn checkpoint(db: &StateDb, s: &mut State) -> Delta {
    let delta = s.take_delta().expect("delta").expect("incremental");
    db.commit(std::slice::from_ref(&delta), b"{}")
        .expect("commits");
    assert_eq!(s.take_error(), None);
    delta
}

fn key(i: u64) -> String {
    format!("customer-{i}")
}

#[test]
fn in_memory_it_is_a_map_with_orders() {
    let mut s = State::new();
    let (v, made) = s.get_or_insert_with(Some(10), "a", || "a".into(), || 1);
    assert!(made);
    *v += 1;
    s.get_or_insert_with(Some(20), "b", || "b".into(), || 5);
    s.get_or_insert_with(None, "c", || "c".into(), || 7);
    assert_eq!(s.get(Some(10), "a"), Some(&2));
    assert_eq!(s.get(Some(20), "a"), None, "the order is part of the key");
    assert_eq!(s.len(), 3);
    assert_eq!(s.expire_through(15), 1);
    assert_eq!(s.get(Some(10), "a"), None);
    assert_eq!(s.remove(None, "c"), Some(7));
    assert_eq!(s.len(), 1);
    assert_eq!(s.expire_through(i64::MAX), 1);
    assert!(s.is_empty());
}

#[test]
fn memory_stays_within_the_budget_and_every_entry_reads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = StateDb::open(dir.path(), 1 << 20).expect("opens");
    let mut s = attached(&db, 200_000);
    for i in 0..20_000 {
        let (v, made) = s.get_or_insert_with(Some((i % 7) as i64), &key(i), || key(i), || 0);
        assert!(made);
        *v = i * 3;
    }
    let stats = s.stats();
    assert_eq!(stats.keys, 20_000);
    assert!(stats.memory_bytes <= 200_000 + 64 * 200, "{stats:?}");
    assert!(stats.cached < 20_000, "entries went to disk: {stats:?}");
    for i in 0..20_000 {
        assert_eq!(s.get(Some((i % 7) as i64), &key(i)), Some(&(i * 3)), "{i}");
    }
    assert_eq!(s.take_error(), None);
}

#[test]
fn a_checkpoint_writes_what_changed_and_a_restart_reads_it_back_lazily() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = StateDb::open(dir.path(), 1 << 20).expect("opens");
        let mut s = attached(&db, 100_000);
        for i in 0..5_000 {
            s.get_or_insert_with(None, &key(i), || key(i), || i);
        }
        assert_eq!(checkpoint(&db, &mut s).changes(), 5_000);
        for i in 0..10 {
            *s.get_mut(None, &key(i * 100)).expect("there") += 1_000_000;
        }
        s.remove(None, &key(1));
        let delta = checkpoint(&db, &mut s);
        assert_eq!(delta.changes(), 11, "only the changes are written");
        // Changed after the last checkpoint, then the process dies: lost on restart.
        *s.get_mut(None, &key(2)).expect("there") = 42;
        for i in 0..3_000 {
            s.get_or_insert_with(None, &key(10_000 + i), || key(10_000 + i), || 0);
        }
    }
    let db = StateDb::open(dir.path(), 1 << 20).expect("reopens");
    assert_eq!(db.document().expect("reads"), Some(b"{}".to_vec()));
    let mut s = attached(&db, 100_000);
    assert_eq!(s.len(), 4_999);
    assert_eq!(
        s.stats().cached,
        0,
        "nothing is loaded before it is asked for"
    );
    assert_eq!(s.get(None, &key(2)), Some(&2));
    assert_eq!(s.get(None, &key(1)), None);
    assert_eq!(s.get(None, &key(300)), Some(&1_000_300));
    assert_eq!(s.get(None, &key(10_001)), None);
    assert_eq!(s.take_error(), None);
}

#[test]
fn a_removal_that_leaves_memory_still_hides_the_value_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = StateDb::open(dir.path(), 1 << 20).expect("opens");
    let mut s = attached(&db, 20_000);
    let fill = |s: &mut State, from: u64| {
        for i in from..from + 2_000 {
            s.get_or_insert_with(None, &key(i), || key(i), || i);
        }
    };
    s.get_or_insert_with(None, "gone", || "gone".into(), || 1);
    checkpoint(&db, &mut s);
    fill(&mut s, 0);
    assert_eq!(s.remove(None, "gone"), Some(1), "read back from disk");
    fill(&mut s, 10_000);
    assert_eq!(s.get(None, "gone"), None, "the removal left memory with it");
    checkpoint(&db, &mut s);
    fill(&mut s, 20_000);
    assert_eq!(s.get(None, "gone"), None);
    assert_eq!(s.len(), 6_000);
}

#[test]
fn expiry_removes_entries_on_disk_and_the_checkpoint_removes_them_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = StateDb::open(dir.path(), 1 << 20).expect("opens");
        let mut s = attached(&db, 50_000);
        for i in 0..4_000u64 {
            s.get_or_insert_with(Some((i % 4) as i64), &key(i), || key(i), || i);
        }
        checkpoint(&db, &mut s);
        for i in 4_000..6_000u64 {
            s.get_or_insert_with(Some((i % 4) as i64), &key(i), || key(i), || i);
        }
        assert_eq!(s.expire_through(1), 3_000);
        assert_eq!(s.len(), 3_000);
        assert_eq!(s.get(Some(0), &key(4)), None);
        assert_eq!(s.get(Some(2), &key(4_002)), Some(&4_002));
        checkpoint(&db, &mut s);
    }
    let db = StateDb::open(dir.path(), 1 << 20).expect("reopens");
    let s = attached(&db, 50_000);
    assert_eq!(s.len(), 3_000);
    let mut all = s.export();
    all.sort();
    assert_eq!(all.len(), 3_000);
    assert!(all.iter().all(|(o, _, _)| o.is_some_and(|o| o >= 2)));
}

#[test]
fn a_whole_copy_exports_and_imports_spilled_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = StateDb::open(dir.path(), 1 << 20).expect("opens");
    let mut s = KeyedState::<String, u64>::new();
    s.attach(
        db.namespace("full"),
        Arc::new(MemoryBudget::new(20_000)),
        Tracking::Full,
    )
    .expect("attaches");
    for i in 0..3_000 {
        s.get_or_insert_with(None, &key(i), || key(i), || i);
    }
    assert!(s.take_delta().expect("no delta").is_none());
    let mut copy = s.export();
    copy.sort();
    assert_eq!(copy.len(), 3_000);
    let mut back = State::new();
    back.import(copy.clone());
    let mut again = back.export();
    again.sort();
    assert_eq!(again, copy);
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u8, u64),
    Remove(u8, u8),
    Expire(u8),
    Checkpoint,
    Crash,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..4u8, 0..60u8, 0..1000u64).prop_map(|(o, k, v)| Op::Add(o, k, v)),
        2 => (0..4u8, 0..60u8).prop_map(|(o, k)| Op::Remove(o, k)),
        1 => (0..4u8).prop_map(Op::Expire),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the operations, evictions, checkpoints and crashes: the state is the model's,
    /// and after a crash it is the model as of the last checkpoint.
    #[test]
    fn the_state_is_the_model_through_evictions_checkpoints_and_crashes(
        ops in proptest::collection::vec(op(), 1..160),
        budget in 1_000usize..8_000,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut db = StateDb::open(dir.path(), 1 << 20).expect("opens");
        let mut s = attached(&db, budget);
        let mut model: BTreeMap<(i64, String), u64> = BTreeMap::new();
        let mut committed = model.clone();
        // Nothing is made at or before an expired time (callers check lateness first).
        let mut expired = -1i64;
        let mut expired_committed = expired;
        for op in ops {
            match op {
                Op::Add(o, _, _) if i64::from(o) <= expired => {}
                Op::Add(o, k, v) => {
                    let (o, k) = (i64::from(o), key(u64::from(k)));
                    let (slot, made) = s.get_or_insert_with(Some(o), &k, || k.clone(), || 0);
                    prop_assert_eq!(made, !model.contains_key(&(o, k.clone())));
                    *slot += v;
                    *model.entry((o, k)).or_default() += v;
                }
                Op::Remove(o, k) => {
                    let (o, k) = (i64::from(o), key(u64::from(k)));
                    prop_assert_eq!(s.remove(Some(o), &k), model.remove(&(o, k)));
                }
                Op::Expire(t) => {
                    let t = i64::from(t);
                    expired = expired.max(t);
                    let before = model.len();
                    model.retain(|(o, _), _| *o > t);
                    prop_assert_eq!(s.expire_through(t), (before - model.len()) as u64);
                }
                Op::Checkpoint => {
                    checkpoint(&db, &mut s);
                    committed = model.clone();
                    expired_committed = expired;
                }
                Op::Crash => {
                    drop(s);
                    drop(db);
                    db = StateDb::open(dir.path(), 1 << 20).expect("reopens");
                    s = attached(&db, budget);
                    model = committed.clone();
                    expired = expired_committed;
                }
            }
            prop_assert_eq!(s.len(), model.len() as u64);
            prop_assert_eq!(s.take_error(), None);
        }
        let mut all: Vec<((i64, String), u64)> = s
            .export()
            .into_iter()
            .map(|(o, k, v)| ((o.expect("ordered"), k), v))
            .collect();
        all.sort();
        prop_assert_eq!(all, model.into_iter().collect::<Vec<_>>());
    }
}
