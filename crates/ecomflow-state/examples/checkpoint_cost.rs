//! What a checkpoint of the keyed state costs when few entries changed among many: N entries
//! (an aggregate's groups: a key of two strings, a few accumulators) held in a `KeyedState`
//! with a memory budget, committed; then rounds of C changed entries, each taken as a delta
//! and committed durably, timed from the barrier (taking the delta) to the end of the commit.
//!
//!   cargo run --release -p ecomflow-state --example checkpoint_cost -- N C ROUNDS MEMORY_MIB DIR

use ecomflow_state::{KeyedState, MemoryBudget, StateDb, StateHandle, Tracking};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An aggregate's group, as `aggregate` keeps it: a few sums and counts.
type Group = (f64, u64, Option<i64>, bool);

fn key(i: u64) -> (String, String) {
    (
        format!("{:016x}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        "2026-12-08".into(),
    )
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let number =
        |i: usize, default: u64| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, changes, rounds, memory) = (
        number(1, 1_000_000),
        number(2, 10_000),
        number(3, 30),
        number(4, 256),
    );
    let dir = args
        .get(5)
        .cloned()
        .unwrap_or_else(|| "/tmp/ecomflow-checkpoint-cost".into());
    let _ = std::fs::remove_dir_all(&dir);
    let budget = Arc::new(MemoryBudget::new((memory << 20) as usize));
    let db = StateDb::open(std::path::Path::new(&dir), memory << 18)?;
    let mut state: KeyedState<(String, String), Group> = KeyedState::new();
    state.attach(
        db.namespace("aggregate#0"),
        budget.clone(),
        Tracking::Incremental,
    )?;
    let started = Instant::now();
    for i in 0..n {
        let k = key(i);
        let (g, _) = state.get_or_insert_with(None, &k, || k.clone(), || (0.0, 0, None, false));
        g.0 += 1.5;
        g.1 += 1;
        if (i + 1) % 100_000 == 0 || i + 1 == n {
            let delta = state.take_delta()?.ok_or("incremental")?;
            db.commit(&[delta], b"{}")?;
        }
    }
    let load = started.elapsed();
    let mut times: Vec<Duration> = Vec::new();
    let mut bytes = Vec::new();
    let mut x = 7u64;
    for _ in 0..rounds {
        for _ in 0..changes {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = key((x >> 11) % n);
            if let Some(g) = state.get_mut(None, &k) {
                g.1 += 1;
            }
        }
        let t = Instant::now();
        let delta = state.take_delta()?.ok_or("incremental")?;
        bytes.push(delta.bytes());
        db.commit(&[delta], b"{}")?;
        times.push(t.elapsed());
    }
    if let Some(e) = state.take_error() {
        return Err(e);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let at = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .unwrap_or_default();
    println!(
        "entries={n} load={:.1}s ({:.0}/s) changes={changes} rounds={rounds} checkpoint median={:.1}ms p99={:.1}ms max={:.1}ms delta={:.2}MB memory_charged={}MB disk={}MB {}",
        load.as_secs_f64(),
        n as f64 / load.as_secs_f64(),
        ms(at(0.5)),
        ms(at(0.99)),
        ms(at(1.0)),
        bytes.iter().sum::<usize>() as f64 / bytes.len() as f64 / 1e6,
        budget.used() >> 20,
        db.disk_bytes() >> 20,
        rss.split_whitespace().collect::<Vec<_>>().join(" "),
    );
    Ok(())
}
