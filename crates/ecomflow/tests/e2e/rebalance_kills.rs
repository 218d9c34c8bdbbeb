//! Crashes while the consumer group rebalances, on the real stack (Kafka, PostgreSQL,
//! Elasticsearch from `scripts/services.sh`).
//!
//! A topic of 3 partitions is written whole by `generate.toml` before any consumer starts.
//! The flagship with the `real-stack.toml` overlay (`stop_at_end`, checkpoints every second)
//! is then killed with SIGKILL once it has joined the group and taken a checkpoint, started
//! again and killed with SIGKILL while it is still joining (the group waits for the first,
//! dead, member), and started a third time with the same state directory, as a user would
//! restart it. The dead members stay in the group until their sessions time out, and the
//! group can give the third run one or two partitions while a dead member holds the rest.
//!
//! What this proves: the third run does not take "every partition I hold is at its end" for
//! the end of the topic. It exits 0 only once every partition is read, and its PostgreSQL
//! tables, views and partial tables then equal those of a run that was never interrupted
//! (no partition missing, none counted twice); no record is dead-lettered as late that the
//! uninterrupted run did not dead-letter (each partition keeps its own watermark), and the
//! group's offsets are committed to the end.
//!
//! Whether the group hands a dead member partitions beside the live one depends on which
//! member the coordinator makes the leader when the first dead member times out: the first
//! of the two others in its hash map of member ids (random ids, so about one try in two). A
//! dead leader assigns nothing, and the live run then gets every partition once the dead ones
//! time out. So the crashes are tried [`AT_ONCE`] times side by side, each try in its own
//! group with its own state and database; a try the group does not lead there is cut short;
//! every try that gets there is checked; if none does, the round starts again, up to
//! [`ROUNDS`] rounds. Without the servers this test fails.

#![cfg(unix)]

use common::stack::{
    assert_committed_to_the_end, ecomflow, elasticsearch, es_count, kafka, pipeline, postgres_dump,
    postgres_dump_tables, run, topic_end,
};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common;

/// Good transactions the generator writes: enough that one partition takes seconds to read,
/// few enough for the test to take about a minute.
const GOOD: u64 = 40000;
/// Partitions of the topic.
const PARTITIONS: i32 = 3;
/// The consumer's session timeout: how long a killed member stays in the group.
const SESSION: Duration = Duration::from_secs(6);
/// Tries of the crashes side by side, each in its own group.
const AT_ONCE: usize = 3;
/// Rounds of tries before the test gives up on reproducing the rebalance (a round that does
/// not costs about 17 s; all fail about once in 2,000 runs).
const ROUNDS: u32 = 4;
/// How long the group may wait for its leader's assignment before the leader is taken for
/// dead (a live one sends it within milliseconds).
const DEAD_LEADER: Duration = Duration::from_secs(2);

/// The tables behind the views of migrations/scale-out: compared too, each partition's
/// partial rows must equal the uninterrupted run's.
const PARTIALS: [&str; 4] = [
    "sales_per_category_partials",
    "sales_per_day_partials",
    "sales_per_month_partials",
    "failures_per_minute_partials",
];

/// Writes the [`GOOD`] transactions (and the generator's bad ones) to `topic`, to the end.
fn write_topic(topic: &str, dir: &Path) {
    run(
        &[
            "run".to_string(),
            pipeline("generate.toml"),
            "--set".into(),
            format!("sinks.kafka.topic=\"{topic}\""),
            "--set".into(),
            format!("sources.transactions.count={GOOD}"),
        ],
        &[
            ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
            (
                "ECOMFLOW_DEAD_LETTER",
                dir.join("generate.dead.jsonl").display().to_string(),
            ),
        ],
        dir,
    );
}

/// Where one flagship (or one flagship restarted) reads and writes.
struct Target {
    topic: String,
    group: String,
    index: String,
    database: String,
    state: PathBuf,
}

impl Target {
    /// The flagship on the real stack, reading the topic to its end.
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "run".to_string(),
            pipeline("ecommerce.toml"),
            pipeline("real-stack.toml"),
        ];
        for set in [
            format!("sources.transactions.topics=[\"{}\"]", self.topic),
            format!("sources.transactions.group_id=\"{}\"", self.group),
            // A killed member leaves the group after this long, not after the default 45 s.
            format!(
                "sources.transactions.options={{ \"session.timeout.ms\" = {} }}",
                SESSION.as_millis()
            ),
            "sources.transactions.stop_at_end=true".to_string(),
            format!("sinks.transactions_index.index=\"{}\"", self.index),
        ] {
            args.push("--set".into());
            args.push(set);
        }
        args
    }

    /// The environment of a run writing its dead letters to `dead_letters`.
    fn env(&self, dead_letters: &Path) -> Vec<(&'static str, String)> {
        vec![
            ("KAFKA_BOOTSTRAP_SERVERS", kafka()),
            ("DATABASE_URL", self.database.clone()),
            ("ELASTICSEARCH_URL", elasticsearch()),
            ("ECOMFLOW_DEAD_LETTER", dead_letters.display().to_string()),
            ("ECOMFLOW_STATE_DIR", self.state.display().to_string()),
            ("ECOMFLOW_CHECKPOINT_INTERVAL", "1s".to_string()),
            // Dynamic membership: the second run joins as a new member, and the group
            // rebalances while the killed one's session runs (the moment this test is about).
            ("ECOMFLOW_INSTANCE_ID", String::new()),
        ]
    }

    /// The completed checkpoint in the state directory, if there is one.
    fn checkpoint(&self) -> Option<Checkpoint> {
        checkpoint(&self.state)
    }
}

/// A completed checkpoint: its id, and how many messages of the topic it holds.
type Checkpoint = (u64, i64);

/// The completed checkpoint in `state`: its id and the sum of the Kafka source's next
/// offsets over the partitions.
fn checkpoint(state: &Path) -> Option<Checkpoint> {
    let bytes = std::fs::read(state.join("checkpoint.json")).ok()?;
    let checkpoint: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let partitions = checkpoint["partitions"]["sources.transactions"].as_object()?;
    let messages = partitions
        .values()
        .filter_map(|p| p["position"].as_i64())
        .sum();
    Some((checkpoint["id"].as_u64()?, messages))
}

/// Asks the broker's coordinator about one group.
struct GroupWatch {
    consumer: BaseConsumer,
    group: String,
}

impl GroupWatch {
    fn new(group: &str) -> GroupWatch {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", kafka())
            .create()
            .expect("consumer");
        GroupWatch {
            consumer,
            group: group.to_string(),
        }
    }

    /// The group's state (`Stable`, `PreparingRebalance`, `CompletingRebalance`,
    /// `Empty`...) and how many members it counts, dead ones included until their sessions
    /// time out.
    fn state(&self) -> (String, usize) {
        let list = self
            .consumer
            .fetch_group_list(Some(&self.group), Duration::from_secs(10))
            .expect("group list");
        match list.groups().first() {
            Some(g) => (g.state().to_string(), g.members().len()),
            None => ("unknown".to_string(), 0),
        }
    }
}

/// How a third run went.
struct Watched {
    /// Its exit status; `None` when it was killed because the group had a dead leader.
    status: Option<ExitStatus>,
    /// The group was stable with more members than this run: dead members held partitions
    /// while it read the others.
    shared_with_the_dead: bool,
    /// The group's states meanwhile, with when, for the report.
    states: Vec<String>,
}

/// One run of the crashing flagship: all share the state directory, each has its own log and
/// dead-letter file. Killed when dropped still running (a test that fails leaves no process).
struct Run {
    name: String,
    child: Child,
    log: PathBuf,
    dead_letters: PathBuf,
    started: Instant,
}

impl Run {
    /// Starts the flagship in the background as `name`, its standard error going to a log.
    fn start(name: String, target: &Target, dir: &Path) -> Run {
        let log = dir.join(format!("{name}.log"));
        let dead_letters = dir.join(format!("{name}.dead.jsonl"));
        let child = ecomflow(&target.args(), &target.env(&dead_letters), dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("ecomflow starts");
        Run {
            name,
            child,
            log,
            dead_letters,
            started: Instant::now(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with the log if the run ended.
    fn assert_running(&mut self, waiting_for: &str) {
        if let Some(status) = self.child.try_wait().expect("wait") {
            panic!(
                "{} ended ({status}) before {waiting_for}:\n{}",
                self.name,
                self.log()
            );
        }
    }

    /// SIGKILL: a crash, nothing drained, no last checkpoint.
    fn kill(&mut self) {
        let sent = Command::new("kill")
            .args(["-KILL", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(sent.success());
        let status = self.child.wait().expect("exits");
        assert!(!status.success(), "killed");
    }

    /// Waits for the run to end on its own (`stop_at_end`), for up to `patience`, watching
    /// its group. A group that waits [`DEAD_LEADER`] for its leader's assignment has a dead
    /// leader: it assigns nothing until it times out, so the rebalance this test is about
    /// cannot happen, and the run is killed at once.
    fn watch(&mut self, group: &GroupWatch, patience: Duration) -> Watched {
        let deadline = Instant::now() + patience;
        let mut watched = Watched {
            status: None,
            shared_with_the_dead: false,
            states: Vec::new(),
        };
        let (mut last, mut since) = (None, Instant::now());
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                watched.status = Some(status);
                return watched;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not end in {patience:?}:\n{}",
                self.name,
                self.log()
            );
            let now = group.state();
            if last.as_ref() != Some(&now) {
                let (state, members) = &now;
                let at = self.started.elapsed();
                watched
                    .states
                    .push(format!("{at:.1?}: {state} with {members} members"));
                (last, since) = (Some(now.clone()), Instant::now());
            }
            match (now.0.as_str(), now.1) {
                ("Stable", members) if members > 1 => watched.shared_with_the_dead = true,
                ("CompletingRebalance", _)
                    if !watched.shared_with_the_dead && since.elapsed() > DEAD_LEADER =>
                {
                    self.kill();
                    return watched;
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The three runs of one try, named `name`, and their dead-letter files; `None` when the
/// group did not hand a dead member partitions beside the third run (the try proves nothing
/// then).
fn crash_twice_then_run_to_the_end(
    name: &str,
    target: &Target,
    dir: &Path,
    end: i64,
) -> Option<Vec<PathBuf>> {
    let group = GroupWatch::new(&target.group);

    // 1. Killed once it joined the group and read part of the topic: a checkpoint that holds
    //    some of it is the proof of both (the first comes a second or a few after the
    //    start). Its member stays in the group, holding every partition, for SESSION.
    let mut first = Run::start(format!("{name} first"), target, dir);
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_first = loop {
        if let Some(c) = target.checkpoint().filter(|(_, n)| *n > 0) {
            break c;
        }
        first.assert_running("a checkpoint");
        assert!(Instant::now() < deadline, "{name}: no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(at_first.1 < end, "the first run has not read everything");
    first.kill();
    let first_killed = Instant::now();
    eprintln!(
        "{name}: first run killed {:.1?} after its start, at checkpoint {} holding {} messages",
        first.started.elapsed(),
        at_first.0,
        at_first.1
    );

    // 2. Started again: its join makes the coordinator rebalance, which waits for the dead
    //    first member until that one's session times out. Killed as soon as the group is
    //    rebalancing: it is a member then, still joining, with nothing assigned, and the
    //    group may give it partitions after it died.
    let mut second = Run::start(format!("{name} second"), target, dir);
    let deadline = first_killed + SESSION - Duration::from_secs(1);
    loop {
        let (state, _) = group.state();
        if state == "PreparingRebalance" {
            break;
        }
        second.assert_running("the group rebalancing");
        assert!(
            Instant::now() < deadline,
            "{name}: the second run did not join before the first member's session ended \
             (group {state}):\n{}",
            second.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    second.kill();
    eprintln!(
        "{name}: second run killed {:.1?} after its start, while joining",
        second.started.elapsed()
    );
    assert_eq!(
        target.checkpoint(),
        Some(at_first),
        "{name}: the second run, killed while joining, took no checkpoint"
    );

    // 3. Started a third time, at once, while the dead members are still in the group:
    //    whatever they hold is not at its end. It must wait until the group moves those
    //    partitions to it (their sessions end), read them, and only then end.
    let mut third = Run::start(format!("{name} third"), target, dir);
    let watched = third.watch(&group, Duration::from_secs(90));
    eprintln!(
        "{name}: the group during the third run: {:?}",
        watched.states
    );
    let status = watched.status?;
    assert!(
        status.success(),
        "{name}: the third run ends on its own with success:\n{}",
        third.log()
    );
    eprintln!(
        "{name}: third run ended by itself after {:.1?}",
        third.started.elapsed()
    );
    watched.shared_with_the_dead.then(|| {
        [first, second, third]
            .iter()
            .map(|r| r.dead_letters.clone())
            .collect()
    })
}

/// Every dead letter in the files at `paths` (none for a file not there), as JSON text.
fn dead_letters(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .map(|l| {
                    let letter: serde_json::Value = serde_json::from_str(l).expect("JSON");
                    letter.to_string()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Whether a dead letter says its record came too late (after its window or day closed).
fn is_late(letter: &str) -> bool {
    let letter: serde_json::Value = serde_json::from_str(letter).expect("JSON");
    letter["reason"]
        .as_str()
        .is_some_and(|r| r.to_lowercase().contains("late"))
}

/// The rows of `table` in `dump`.
fn rows_of<'a>(dump: &'a [String], table: &str) -> BTreeSet<&'a str> {
    dump.iter()
        .filter(|r| r.strip_prefix(table).is_some_and(|r| r.starts_with(' ')))
        .map(String::as_str)
        .collect()
}

/// Every row of the flagship's tables and views and of the partial tables behind them.
async fn dump(database: &str) -> Vec<String> {
    let mut rows = postgres_dump(database).await;
    rows.extend(postgres_dump_tables(database, &PARTIALS).await);
    rows
}

/// Asserts the two dumps hold the same rows, table by table.
fn assert_same_rows(name: &str, reference: &[String], crashed: &[String]) {
    for table in common::TABLES.iter().chain(&PARTIALS) {
        let (want, got) = (rows_of(reference, table), rows_of(crashed, table));
        if want != got {
            let missing: Vec<_> = want.difference(&got).take(5).collect();
            let extra: Vec<_> = got.difference(&want).take(5).collect();
            panic!(
                "{name}: {table}: {} rows in the uninterrupted run, {} after the crashes; \
                 missing (first 5): {missing:?}; unexpected (first 5): {extra:?}",
                want.len(),
                got.len()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_the_group_rebalances_then_restarted_ends_with_the_uninterrupted_tables() {
    let id = std::process::id();
    let topic = format!("ecomflow_rebalance_{id}");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir = dir.path();
    let _keep = common::KeepOnFailure::new(dir, "rebalance_kills");
    let target = |name: &str, database: String| Target {
        topic: topic.clone(),
        group: format!("ecomflow_rebalance_{id}_{name}"),
        index: format!("transactions_rebalance_{id}_{name}"),
        database,
        state: dir.join(format!("{name}.state")),
    };
    let test_started = Instant::now();

    // 1. The whole topic is written before any consumer starts: its end does not move, so
    //    every run's "end" is the same.
    common::stack::create_topic(&topic, PARTITIONS).await;
    write_topic(&topic, dir);
    let end = topic_end(&topic);
    assert!(end >= GOOD as i64, "the topic holds every good transaction");

    // 2. The reference: the topic read once, never interrupted.
    let started = Instant::now();
    let reference = target(
        "reference",
        common::fresh_postgres_database(&format!("ecomflow_rebalance_{id}_reference")).await,
    );
    let reference_dead = dir.join("reference.dead.jsonl");
    run(&reference.args(), &reference.env(&reference_dead), dir);
    eprintln!("uninterrupted run: {:.1?}", started.elapsed());

    // 3. The crashing runs: rounds of tries side by side, until a round reproduces the
    //    rebalance in at least one try.
    let mut indices = vec![reference.index.clone()];
    let mut reproduced = Vec::new();
    for round in 1..=ROUNDS {
        let mut tries = Vec::new();
        for n in 1..=AT_ONCE {
            let name = format!("round{round}_try{n}");
            let database =
                common::fresh_postgres_database(&format!("ecomflow_rebalance_{id}_{name}")).await;
            let try_dir = dir.join(&name);
            std::fs::create_dir(&try_dir).expect("dir");
            let crashed = target(&name, database);
            indices.push(crashed.index.clone());
            tries.push((name, crashed, try_dir));
        }
        let started = Instant::now();
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let running: Vec<_> = tries
                .iter()
                .map(|(name, target, dir)| {
                    scope.spawn(move || crash_twice_then_run_to_the_end(name, target, dir, end))
                })
                .collect();
            running
                .into_iter()
                .map(|t| t.join().expect("a try panicked"))
                .collect()
        });
        eprintln!("round {round}: {:.1?}", started.elapsed());
        for ((name, target, _), outcome) in tries.into_iter().zip(outcomes) {
            match outcome {
                Some(dead_letters) => reproduced.push((name, target, dead_letters)),
                None => eprintln!("{name}: no dead member held partitions beside the third run"),
            }
        }
        if !reproduced.is_empty() {
            break;
        }
    }
    assert!(
        !reproduced.is_empty(),
        "in {ROUNDS} rounds of {AT_ONCE} tries the group never handed a dead member partitions"
    );

    // 4. Every try that got there ends like the uninterrupted run.
    let want = dump(&reference.database).await;
    assert_eq!(
        rows_of(&want, "transactions").len() as u64,
        GOOD,
        "the uninterrupted run holds every good transaction"
    );
    let want_letters: BTreeSet<String> = dead_letters(&[reference_dead]).into_iter().collect();
    for (name, crashed, crashed_letters) in &reproduced {
        assert_ends_like_the_reference(name, crashed, end, &want, &want_letters, crashed_letters)
            .await;
        eprintln!("{name}: the same tables, offsets, documents and dead letters");
    }

    let http = reqwest::Client::new();
    for index in indices {
        let _ = http
            .delete(format!("{}/{index}", elasticsearch()))
            .send()
            .await;
    }
    eprintln!("whole test: {:.1?}", test_started.elapsed());
}

/// Asserts that the try `name`, whose runs wrote their dead letters to `crashed_letters`,
/// ended like the uninterrupted run, which left the rows `want` and the dead letters
/// `want_letters`: the same rows in every table, view and partial table (floats to 6
/// decimals), the whole topic (`end` messages) in the last checkpoint and in the group's
/// offsets, every good transaction in Elasticsearch, and the same records dead-lettered
/// (the crashing runs replay what followed their last checkpoint), none as late that the
/// uninterrupted run did not.
async fn assert_ends_like_the_reference(
    name: &str,
    crashed: &Target,
    end: i64,
    want: &[String],
    want_letters: &BTreeSet<String>,
    crashed_letters: &[PathBuf],
) {
    let got = dump(&crashed.database).await;
    assert_same_rows(name, want, &got);
    assert_eq!(
        crashed.checkpoint().map(|(_, n)| n),
        Some(end),
        "{name}: the last checkpoint holds the whole topic"
    );
    assert_committed_to_the_end(&crashed.group, &crashed.topic);
    assert_eq!(es_count(&crashed.index).await, Some(GOOD), "{name}");

    let got = dead_letters(crashed_letters);
    let late: Vec<_> = got
        .iter()
        .filter(|l| is_late(l) && !want_letters.contains(*l))
        .take(5)
        .collect();
    assert!(
        late.is_empty(),
        "{name}: late only after the crashes: {late:?}"
    );
    let got: BTreeSet<String> = got.into_iter().collect();
    let missing: Vec<_> = want_letters.difference(&got).take(5).collect();
    let extra: Vec<_> = got.difference(want_letters).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: other dead letters after the crashes; missing (first 5): {missing:?}; \
         unexpected (first 5): {extra:?}"
    );
}
