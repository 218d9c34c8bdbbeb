//! Measures embedded key-value stores on the keyed-state workload of ecomflow's state store:
//! a load of N keys committed 10,000 at a time (as checkpoints would), then checkpoints of
//! 10,000 changed keys among the N, then random point reads with a 64 MiB cache.
//!
//! `state-candidates <redb|fjall|sqlite> <keys> <dir>`; build with the feature of the store.

use std::time::{Duration, Instant};

const BATCH: u64 = 10_000;
const VALUE: usize = 64;
const CACHE: usize = 64 << 20;

/// One candidate: durable batched writes and point reads.
trait Store {
    fn commit(&mut self, batch: &[([u8; 16], [u8; VALUE])]);
    fn get(&mut self, key: &[u8; 16]) -> Option<Vec<u8>>;
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&mix(i).to_be_bytes());
    k[8..].copy_from_slice(&mix(i ^ 0xABCD).to_be_bytes());
    k
}

fn value(i: u64, round: u64) -> [u8; VALUE] {
    let mut v = [0u8; VALUE];
    for (n, chunk) in v.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&mix(i + round + n as u64).to_le_bytes());
    }
    v
}

#[cfg(feature = "redb")]
mod redb_store {
    use super::*;
    use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
    const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("state");
    pub struct S(Database);
    pub fn open(dir: &std::path::Path) -> S {
        let db = redb::Builder::new()
            .set_cache_size(CACHE)
            .create(dir.join("state.redb"))
            .expect("open redb");
        S(db)
    }
    impl Store for S {
        fn commit(&mut self, batch: &[([u8; 16], [u8; VALUE])]) {
            let mut tx = self.0.begin_write().expect("tx");
            tx.set_durability(Durability::Immediate);
            {
                let mut t = tx.open_table(T).expect("table");
                for (k, v) in batch {
                    t.insert(&k[..], &v[..]).expect("insert");
                }
            }
            tx.commit().expect("commit");
        }
        fn get(&mut self, key: &[u8; 16]) -> Option<Vec<u8>> {
            let tx = self.0.begin_read().expect("read");
            let t = tx.open_table(T).expect("table");
            t.get(&key[..]).expect("get").map(|v| v.value().to_vec())
        }
    }
}

#[cfg(feature = "fjall")]
mod fjall_store {
    use super::*;
    use fjall::{Database, KeyspaceCreateOptions, PersistMode};
    pub struct S(Database, fjall::Keyspace);
    pub fn open(dir: &std::path::Path) -> S {
        let db = Database::builder(dir.join("state.fjall"))
            .cache_size(CACHE as u64)
            .open()
            .expect("open fjall");
        let ks = db
            .keyspace("state", KeyspaceCreateOptions::default)
            .expect("keyspace");
        S(db, ks)
    }
    impl Store for S {
        fn commit(&mut self, batch: &[([u8; 16], [u8; VALUE])]) {
            let mut b = self.0.batch();
            for (k, v) in batch {
                b.insert(&self.1, &k[..], &v[..]);
            }
            b.commit().expect("commit");
            self.0.persist(PersistMode::SyncAll).expect("persist");
        }
        fn get(&mut self, key: &[u8; 16]) -> Option<Vec<u8>> {
            self.1.get(&key[..]).expect("get").map(|v| v.to_vec())
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite_store {
    use super::*;
    pub struct S(rusqlite::Connection);
    pub fn open(dir: &std::path::Path) -> S {
        let c = rusqlite::Connection::open(dir.join("state.sqlite")).expect("open sqlite");
        c.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-{};
             CREATE TABLE IF NOT EXISTS state (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;",
            CACHE / 1024
        ))
        .expect("setup");
        S(c)
    }
    impl Store for S {
        fn commit(&mut self, batch: &[([u8; 16], [u8; VALUE])]) {
            let tx = self.0.transaction().expect("tx");
            {
                let mut st = tx
                    .prepare_cached("INSERT OR REPLACE INTO state (k, v) VALUES (?1, ?2)")
                    .expect("prepare");
                for (k, v) in batch {
                    st.execute((&k[..], &v[..])).expect("insert");
                }
            }
            tx.commit().expect("commit");
        }
        fn get(&mut self, key: &[u8; 16]) -> Option<Vec<u8>> {
            let mut st = self
                .0
                .prepare_cached("SELECT v FROM state WHERE k = ?1")
                .expect("prepare");
            st.query_row([&key[..]], |r| r.get::<_, Vec<u8>>(0)).ok()
        }
    }
}

fn written_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("write_bytes: ").map(|n| n.trim().parse().ok()))
                .flatten()
        })
        .unwrap_or(0)
}

fn dir_size(p: &std::path::Path) -> u64 {
    let mut n = 0;
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let m = e.metadata().expect("metadata");
            n += if m.is_dir() { dir_size(&e.path()) } else { m.len() };
        }
    }
    n
}

fn peak_rss_mb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|n| n.trim().trim_end_matches(" kB").trim().parse::<u64>().ok()))
                .flatten()
        })
        .unwrap_or(0)
        / 1024
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (name, keys, dir) = (&args[1], args[2].parse::<u64>().expect("keys"), std::path::PathBuf::from(&args[3]));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut store: Box<dyn Store> = match name.as_str() {
        #[cfg(feature = "redb")]
        "redb" => Box::new(redb_store::open(&dir)),
        #[cfg(feature = "fjall")]
        "fjall" => Box::new(fjall_store::open(&dir)),
        #[cfg(feature = "sqlite")]
        "sqlite" => Box::new(sqlite_store::open(&dir)),
        other => panic!("{other} is not built in"),
    };
    let w0 = written_bytes();
    let start = Instant::now();
    let mut batch = Vec::with_capacity(BATCH as usize);
    let mut i = 0;
    while i < keys {
        batch.clear();
        for j in i..(i + BATCH).min(keys) {
            batch.push((key(j), value(j, 0)));
        }
        store.commit(&batch);
        i += BATCH;
    }
    let load = start.elapsed();
    let w_load = written_bytes() - w0;
    // Checkpoints: 10,000 changed keys among `keys`, 50 times.
    let mut times = Vec::new();
    let w1 = written_bytes();
    for round in 1..=50u64 {
        batch.clear();
        for j in 0..BATCH {
            let k = mix(round * 1_000_003 + j) % keys;
            batch.push((key(k), value(k, round)));
        }
        let t = Instant::now();
        store.commit(&batch);
        times.push(t.elapsed());
    }
    let w_ckpt = written_bytes() - w1;
    let reads = 200_000u64;
    let t = Instant::now();
    let mut found = 0u64;
    for j in 0..reads {
        let k = mix(j ^ 0x5555) % keys;
        if store.get(&key(k)).is_some() {
            found += 1;
        }
    }
    let read = t.elapsed();
    assert_eq!(found, reads, "every key written is found");
    let logical = keys * (16 + VALUE as u64);
    println!(
        "{name} keys={keys} load={:.0}/s ({:.1} s) write_amp_load={:.2} ckpt10k_median={:.1}ms p99={:.1}ms ckpt_bytes={:.1}MB/ckpt reads={:.0}/s disk={}MB peak_rss={}MB",
        keys as f64 / load.as_secs_f64(),
        load.as_secs_f64(),
        w_load as f64 / logical as f64,
        pct(&mut times.clone(), 0.5),
        pct(&mut times, 0.99),
        w_ckpt as f64 / 50.0 / 1e6,
        reads as f64 / read.as_secs_f64(),
        dir_size(&dir) / 1_000_000,
        peak_rss_mb(),
    );
}
