//! Checkpoints: barriers that sources put into their streams, the state that transforms keep
//! at each barrier, and the file a completed checkpoint is written to, so a restarted pipeline
//! resumes where the last one left off without losing or double counting anything.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// The `[checkpoint]` table of a pipeline.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Directory holding the last completed checkpoint (`checkpoint.json`), relative to the
    /// working directory. A pipeline started again with the same directory resumes from it.
    pub dir: String,
    /// How often a checkpoint is taken.
    #[serde(default = "five_seconds", with = "crate::duration::positive")]
    #[schemars(with = "crate::duration::Positive")]
    pub interval: Duration,
}

fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

/// A completed checkpoint, as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Its number.
    pub id: u64,
    /// Each source's position, by component path.
    pub sources: BTreeMap<String, serde_json::Value>,
    /// Each stateful transform's state, by component path.
    pub transforms: BTreeMap<String, serde_json::Value>,
}

impl Checkpoint {
    /// The file of the checkpoint kept in `dir`.
    pub fn file(dir: &Path) -> PathBuf {
        dir.join("checkpoint.json")
    }

    /// The checkpoint kept in `dir`, if any.
    pub fn load(dir: &Path) -> std::io::Result<Option<Checkpoint>> {
        match std::fs::read(Checkpoint::file(dir)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the checkpoint to `dir` atomically: a crash leaves the previous one or this one.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join("checkpoint.json.tmp");
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, Checkpoint::file(dir))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// What a component tells the checkpoint coordinator.
#[derive(Debug)]
pub enum Report {
    /// A source passed barrier `id` at `position`.
    Source {
        /// The checkpoint.
        id: u64,
        /// The source's path.
        component: Arc<str>,
        /// Where to resume.
        position: serde_json::Value,
    },
    /// A transform aligned barrier `id` and kept `state`.
    Transform {
        /// The checkpoint.
        id: u64,
        /// The transform's path.
        component: Arc<str>,
        /// Its state, if it has one.
        state: Option<serde_json::Value>,
    },
    /// A sink made everything before barrier `id` durable.
    Sink {
        /// The checkpoint.
        id: u64,
        /// The sink's path.
        component: Arc<str>,
    },
    /// A component has ended; it takes part in no later checkpoint.
    Ended {
        /// Its path.
        component: Arc<str>,
    },
}

/// A source's link to the checkpoint coordinator.
pub struct SourceCheckpoints {
    /// The newest checkpoint asked for.
    pub requested: Arc<AtomicU64>,
    /// Woken when a checkpoint is asked for.
    pub asked: Arc<tokio::sync::Notify>,
    /// The newest checkpoint this source has taken part in.
    pub taken: AtomicU64,
    /// Where reports go.
    pub reports: mpsc::UnboundedSender<Report>,
    /// Asks the coordinator for a checkpoint as soon as the one under way (if any) is done.
    /// Only the coordinator decides which checkpoint comes when.
    pub wanted: mpsc::UnboundedSender<()>,
    /// The position kept by the last completed checkpoint.
    pub restored: Option<serde_json::Value>,
    /// The newest completed checkpoint.
    pub completed: watch::Receiver<u64>,
}

impl SourceCheckpoints {
    /// True when a checkpoint this source has not taken part in is asked for.
    pub fn due(&self) -> bool {
        self.requested.load(Ordering::Acquire) > self.taken.load(Ordering::Acquire)
    }

    /// Waits until a checkpoint this source has not taken part in is asked for.
    pub async fn wait_due(&self) {
        loop {
            let asked = self.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.due() {
                return;
            }
            asked.await;
        }
    }

    /// Asks for a checkpoint and waits until one this source has not taken part in is due
    /// (at once when one already is). Returns early if the coordinator has stopped.
    pub async fn want(&self) {
        let mut completed = self.completed.clone();
        if !self.due() && self.wanted.send(()).is_err() {
            return;
        }
        loop {
            let asked = self.asked.notified();
            tokio::pin!(asked);
            asked.as_mut().enable();
            if self.due() {
                return;
            }
            tokio::select! {
                _ = asked => {}
                changed = completed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Claims the due checkpoint's id, if one is due.
    pub fn take(&self) -> Option<u64> {
        let id = self.requested.load(Ordering::Acquire);
        (id > self.taken.swap(id, Ordering::AcqRel)).then_some(id)
    }

    /// Sends a report to the coordinator (which outlives every component).
    pub fn report(&self, report: Report) {
        let _ = self.reports.send(report);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_checkpoints_load_back_and_replace_the_previous_one() {
        let dir = tempfile_dir();
        assert_eq!(Checkpoint::load(&dir).expect("readable"), None);
        let mut c = Checkpoint {
            id: 3,
            ..Checkpoint::default()
        };
        c.sources
            .insert("sources.a".into(), serde_json::json!({"offset": 7}));
        c.save(&dir).expect("saved");
        assert_eq!(Checkpoint::load(&dir).expect("readable"), Some(c.clone()));
        c.id = 4;
        c.save(&dir).expect("saved again");
        assert_eq!(
            Checkpoint::load(&dir).expect("readable").map(|c| c.id),
            Some(4)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("ecomflow-checkpoint-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}
