//! What a running component shows of itself while it runs: its counters, the bytes it read,
//! its sink writes, its retries and whether it is ready, its watermarks and, per source
//! partition, the consumer lag and whether this process owns it. The runtime makes one per
//! component; the HTTP server's metrics, health and dashboard and the terminal's live view
//! read them.
//!
//! Everything is updated per batch (or per retry, per rebalance), never per record. The
//! component's task runs inside [`scope`], so code deep in a plugin (a retry loop) finds
//! its component with [`current`].

use crate::kind::Kind;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::write_times::WriteTimes;

/// Counts kept per component, read for the end-of-run summary and metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records received from inputs.
    pub received: AtomicU64,
    /// Records sent to outputs (sources and transforms) or written (sinks).
    pub sent: AtomicU64,
    /// Records sent to the dead-letter output.
    pub dead_lettered: AtomicU64,
    /// Records dropped on purpose (late records a transform was told to drop).
    pub dropped: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// No watermark yet.
const NONE: i64 = i64::MIN;

/// What one source partition shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionTelemetry {
    /// The partition's watermark (event time, microseconds since the epoch), once it has one.
    pub watermark: Option<i64>,
    /// Messages in the partition not read yet (Kafka: high watermark minus position).
    pub lag: Option<i64>,
    /// Whether this process owns the partition now (a Kafka group member's assignment).
    pub owned: bool,
}

/// The live figures of one component.
pub struct ComponentTelemetry {
    /// Its path, such as `transforms.paid`.
    pub path: Arc<str>,
    /// Source, transform or sink.
    pub kind: Kind,
    /// The plugin's `type`.
    pub plugin: &'static str,
    /// Records received, sent, dead-lettered and dropped (the end-of-run table).
    pub counters: Arc<Counters>,
    /// Bytes a source read (message payloads, file lines).
    pub bytes_read: AtomicU64,
    /// Records a bounded source will send in all (0: unknown or endless).
    pub expected_records: AtomicU64,
    /// Bytes a bounded source will read in all, a file's size (0: unknown or endless).
    pub expected_bytes: AtomicU64,
    /// Batches a sink was given to write.
    pub batches: AtomicU64,
    /// How long a sink took for each batch (seconds).
    pub write_seconds: WriteTimes,
    /// Pauses taken before trying again what failed (every retry of every operation).
    pub retries: AtomicU64,
    /// Operations failing and being retried now: the component is in an outage.
    outages: AtomicU32,
    /// What the last failure that is being retried said.
    last_failure: Mutex<String>,
    /// Whether it is ready: a sink has connected, a Kafka source has its assignment.
    ready: AtomicBool,
    /// The lowest watermark it has sent on (event time, microseconds since the epoch).
    watermark: AtomicI64,
    /// Per source partition (`topic/number`), what it shows.
    partitions: Mutex<BTreeMap<String, PartitionTelemetry>>,
    /// What it shows on the dashboard besides its figures (a `dashboard` sink's chart).
    exhibit: Mutex<Option<Arc<dyn Exhibit>>>,
    /// Samples of the records leaving its default output, for the tap.
    pub tap: Arc<Tap>,
}

/// Something a component shows on the dashboard besides its figures: a chart, say.
pub trait Exhibit: Send + Sync {
    /// What it shows now, as JSON for the dashboard.
    fn snapshot(&self) -> serde_json::Value;
}

/// Records a component sends on, sampled for whoever watches (the tap): costs one atomic
/// load per batch while nobody does.
pub struct Tap {
    watchers: std::sync::atomic::AtomicUsize,
    samples: tokio::sync::broadcast::Sender<Arc<Vec<serde_json::Value>>>,
}

/// Records of one batch a tap takes at most: a tap shows samples, never the whole stream.
pub const TAP_PER_BATCH: usize = 16;

impl Default for Tap {
    fn default() -> Self {
        Tap {
            watchers: std::sync::atomic::AtomicUsize::new(0),
            samples: tokio::sync::broadcast::channel(64).0,
        }
    }
}

impl Tap {
    /// Whether anyone watches.
    pub fn is_watched(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Offers a batch being sent on: while someone watches, its first records go to them
    /// (a watcher too slow for them misses some; the pipeline never waits).
    pub fn offer(&self, batch: &[crate::Record]) {
        if !self.is_watched() || batch.is_empty() {
            return;
        }
        let sample = batch
            .iter()
            .take(TAP_PER_BATCH)
            .map(crate::Record::to_json)
            .collect();
        let _ = self.samples.send(Arc::new(sample));
    }

    /// Starts watching; the watch ends when the [`TapWatch`] is dropped.
    pub fn watch(self: &Arc<Self>) -> TapWatch {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        TapWatch {
            samples: self.samples.subscribe(),
            tap: self.clone(),
        }
    }
}

/// One watcher of a [`Tap`].
pub struct TapWatch {
    /// The samples, batch by batch.
    pub samples: tokio::sync::broadcast::Receiver<Arc<Vec<serde_json::Value>>>,
    tap: Arc<Tap>,
}

impl Drop for TapWatch {
    fn drop(&mut self) {
        self.tap.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ComponentTelemetry {
    /// The figures of a component that has done nothing yet, ready.
    pub fn new(path: Arc<str>, kind: Kind, plugin: &'static str, counters: Arc<Counters>) -> Self {
        ComponentTelemetry {
            path,
            kind,
            plugin,
            counters,
            bytes_read: AtomicU64::new(0),
            expected_records: AtomicU64::new(0),
            expected_bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            write_seconds: WriteTimes::default(),
            retries: AtomicU64::new(0),
            outages: AtomicU32::new(0),
            last_failure: Mutex::new(String::new()),
            ready: AtomicBool::new(true),
            watermark: AtomicI64::new(NONE),
            partitions: Mutex::new(BTreeMap::new()),
            exhibit: Mutex::new(None),
            tap: Arc::new(Tap::default()),
        }
    }

    /// Figures for a component in a test.
    pub fn detached(path: &str, kind: Kind) -> Arc<Self> {
        Arc::new(Self::new(
            path.into(),
            kind,
            "test",
            Arc::new(Counters::default()),
        ))
    }

    /// Says whether the component is ready (a sink that has not connected yet is not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Why the component is not ready, or `None` when it is.
    pub fn not_ready(&self) -> Option<String> {
        if self.outages.load(Ordering::Relaxed) > 0 {
            let why = self
                .last_failure
                .lock()
                .map(|w| w.clone())
                .unwrap_or_default();
            return Some(format!("retrying: {why}"));
        }
        if !self.ready.load(Ordering::Relaxed) {
            return Some(match self.kind {
                Kind::Source => "waiting for its partitions".into(),
                _ => "not connected yet".into(),
            });
        }
        None
    }

    /// An operation failed for `why` and will be tried again.
    pub fn retrying(&self, first: bool, why: String) {
        if first {
            self.outages.fetch_add(1, Ordering::Relaxed);
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut w) = self.last_failure.lock() {
            *w = why;
        }
    }

    /// An operation that was being retried is over (it succeeded, or gave up).
    pub fn outage_over(&self) {
        let _ = self
            .outages
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// A sink wrote one batch in `took`.
    pub fn wrote_batch(&self, took: Duration) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.write_seconds.observe(took);
    }

    /// The component's watermark moved to `at` (microseconds since the epoch).
    pub fn set_watermark(&self, at: i64) {
        self.watermark.store(at, Ordering::Relaxed);
    }

    /// The component's watermark, once it has one.
    pub fn watermark(&self) -> Option<i64> {
        Some(self.watermark.load(Ordering::Relaxed)).filter(|w| *w != NONE)
    }

    /// The lowest watermark of the component and of its partitions, once one has one.
    pub fn low_watermark(&self) -> Option<i64> {
        let partitions = self.partitions();
        let of_partitions = partitions.values().filter_map(|p| p.watermark).min();
        match (self.watermark(), of_partitions) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shows `exhibit` on the dashboard (a `dashboard` sink's chart).
    pub fn set_exhibit(&self, exhibit: Arc<dyn Exhibit>) {
        if let Ok(mut e) = self.exhibit.lock() {
            *e = Some(exhibit);
        }
    }

    /// What the component shows on the dashboard besides its figures.
    pub fn exhibit(&self) -> Option<Arc<dyn Exhibit>> {
        self.exhibit.lock().ok()?.clone()
    }

    /// Changes what partition `key` (`topic/number`) shows.
    pub fn update_partition(&self, key: &str, change: impl FnOnce(&mut PartitionTelemetry)) {
        if let Ok(mut partitions) = self.partitions.lock() {
            match partitions.get_mut(key) {
                Some(p) => change(p),
                None => change(partitions.entry(key.to_string()).or_default()),
            }
        }
    }

    /// Changes what partition `key` shows, if it is shown and owned here (what librdkafka's
    /// statistics say of a partition another member owns is not this process's to show).
    pub fn update_owned_partition(&self, key: &str, change: impl FnOnce(&mut PartitionTelemetry)) {
        if let Ok(mut partitions) = self.partitions.lock()
            && let Some(p) = partitions.get_mut(key).filter(|p| p.owned)
        {
            change(p);
        }
    }

    /// Partition `key` went elsewhere: its watermark no longer holds this component's back.
    pub fn forget_watermark(&self, key: &str) {
        if let Ok(mut partitions) = self.partitions.lock() {
            if let Some(p) = partitions.get_mut(key) {
                p.watermark = None;
            }
            partitions.retain(|_, p| p.owned || p.watermark.is_some() || p.lag.is_some());
        }
    }

    /// What every partition shows, by `topic/number`.
    pub fn partitions(&self) -> BTreeMap<String, PartitionTelemetry> {
        self.partitions
            .lock()
            .map(|p| p.clone())
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for ComponentTelemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentTelemetry")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

tokio::task_local! {
    static CURRENT: Arc<ComponentTelemetry>;
}

/// Runs `future` as component `telemetry`'s task: [`current`] inside it finds it.
pub async fn scope<F: std::future::Future>(
    telemetry: Arc<ComponentTelemetry>,
    future: F,
) -> F::Output {
    CURRENT.scope(telemetry, future).await
}

/// The component whose task this is, when it runs inside [`scope`].
pub fn current() -> Option<Arc<ComponentTelemetry>> {
    CURRENT.try_with(Arc::clone).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_makes_it_not_ready_until_every_retried_operation_is_over() {
        let t = ComponentTelemetry::detached("sinks.db", Kind::Sink);
        assert_eq!(t.not_ready(), None);
        t.retrying(true, "cannot connect".into());
        t.retrying(false, "cannot connect again".into());
        t.retrying(true, "another operation fails".into());
        assert_eq!(t.retries.load(Ordering::Relaxed), 3);
        assert_eq!(
            t.not_ready().as_deref(),
            Some("retrying: another operation fails")
        );
        t.outage_over();
        assert!(t.not_ready().is_some(), "one operation still fails");
        t.outage_over();
        assert_eq!(t.not_ready(), None);
        t.outage_over();
        assert_eq!(t.not_ready(), None, "never below zero");
        t.set_ready(false);
        assert_eq!(t.not_ready().as_deref(), Some("not connected yet"));
    }

    #[tokio::test]
    async fn a_task_in_scope_finds_its_component() {
        let t = ComponentTelemetry::detached("sources.in", Kind::Source);
        assert!(current().is_none());
        let found = scope(t.clone(), async { current() }).await;
        assert_eq!(found.map(|f| f.path.clone()), Some(t.path.clone()));
    }
}
