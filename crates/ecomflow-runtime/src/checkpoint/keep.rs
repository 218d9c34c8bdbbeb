//! Where completed checkpoints go: nowhere (checkpoints that only acknowledge), a directory
//! (`checkpoint.json`, one process), or a store shared by every process of the pipeline (a
//! database, through a store plugin), and what a run resumes from.

use crate::state_config::StateConfig;
use ecomflow_core::ComponentError;
use ecomflow_core::PartitionId;
use ecomflow_core::checkpoint::{Checkpoint, CheckpointConfig};
use ecomflow_core::shared_store::{SharedStore, StoreOptions, StorePlugin};
use ecomflow_core::state::{Delta, StateDb};
use std::path::PathBuf;
use std::sync::Arc;

/// What to do about a checkpoint that cannot be read.
const REMEDY: &str = "Nothing in it can be resumed: to start every component afresh, run again \
     with `--reset-state all`";

/// Where completed checkpoints go.
#[derive(Clone)]
pub enum Keep {
    /// Nowhere: checkpoints only acknowledge what the sinks made durable.
    Nothing,
    /// `checkpoint.json` in directory `dir`, and the keyed states' changes in `state` (which
    /// then holds the checkpoint too: it is written first, so it is the newer of the two).
    Dir {
        /// The `[checkpoint]` directory.
        dir: PathBuf,
        /// The keyed-state store, when the pipeline keeps keyed state.
        state: Option<Arc<StateDb>>,
    },
    /// A store shared by every process of the pipeline.
    Shared(Arc<dyn SharedStore>),
}

impl Keep {
    /// Opens where `config` keeps checkpoints and reads the last one (the default when there
    /// is none). A checkpoint that cannot be read stops the start with what to do, unless
    /// `reset_all` (every component starts afresh): it is then set aside. `keyed`: the
    /// pipeline keeps keyed state, with these options.
    pub async fn open(
        config: &CheckpointConfig,
        reset_all: bool,
        keyed: Option<&StateConfig>,
    ) -> Result<(Keep, Checkpoint), String> {
        if let Some(url) = config.url() {
            let Some(plugin) = StorePlugin::for_url(url) else {
                return Err(format!(
                    "`checkpoint.url` is not a database a checkpoint store is linked in for \
                     (stores: {})",
                    StorePlugin::schemes().join(", ")
                ));
            };
            let options = StoreOptions {
                url: url.to_string(),
                name: config.name.clone(),
            };
            let store = (plugin.open)(options).await.map_err(|e| e.to_string())?;
            let restored = match store.load().await {
                Ok(restored) => restored,
                Err(e) if reset_all => {
                    tracing::warn!(
                        store = %store.describe(),
                        "the last checkpoint cannot be read ({e}); every component starts \
                         afresh (--reset-state all), and the next checkpoint replaces it"
                    );
                    Checkpoint::default()
                }
                Err(e) => {
                    return Err(format!(
                        "cannot read the checkpoint in {}: {e}. {REMEDY}, and the next \
                         checkpoint replaces it",
                        store.describe()
                    ));
                }
            };
            return Ok((Keep::Shared(store), restored));
        }
        let Some(dir) = &config.dir else {
            return Err("`[checkpoint]` needs `dir` or `url`".into());
        };
        let state = match keyed {
            Some(keyed) => Some(open_state(keyed, dir)?),
            None => None,
        };
        let mut restored = match super::load(std::path::Path::new(dir)) {
            Ok(restored) => restored.unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData && reset_all => {
                let aside = super::set_aside(std::path::Path::new(dir)).map_err(|e| {
                    format!("cannot set the damaged checkpoint in {dir} aside: {e}")
                })?;
                tracing::warn!(
                    "the checkpoint in {dir} cannot be read ({e}); every component starts \
                     afresh (--reset-state all), and it is kept as {}",
                    aside.display()
                );
                Checkpoint::default()
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(format!(
                    "cannot read the checkpoint in {dir}: the file is damaged (cut short, or \
                     not a checkpoint): {e}. {REMEDY} (the damaged file is kept beside it), or \
                     put back a copy of an earlier checkpoint.json"
                ));
            }
            Err(e) => return Err(format!("cannot read the checkpoint in {dir}: {e}")),
        };
        // The store's copy is written first: it is newer after a crash between the two.
        if let Some(db) = &state
            && let Some(document) = db.document()?
        {
            let kept: Checkpoint = serde_json::from_slice(&document).map_err(|e| {
                format!(
                    "cannot read the checkpoint kept in {}: {e}. {REMEDY}",
                    db.dir().display()
                )
            })?;
            if kept.id > restored.id {
                restored = kept;
            }
        }
        let dir = dir.into();
        Ok((Keep::Dir { dir, state }, restored))
    }

    /// The keyed-state store checkpoints commit to, if any.
    pub fn state(&self) -> Option<&Arc<StateDb>> {
        match self {
            Keep::Dir { state, .. } => state.as_ref(),
            _ => None,
        }
    }

    /// Makes `checkpoint` durable, with the changes of the keyed states in `deltas`; `held`
    /// are the partitions its sources held. Returns the partitions another process has
    /// claimed since (nothing of them was kept).
    pub async fn commit(
        &self,
        checkpoint: &Checkpoint,
        held: &[(Arc<PartitionId>, Option<i64>)],
        deltas: &[Delta],
    ) -> Result<Vec<Arc<PartitionId>>, String> {
        match self {
            Keep::Nothing => Ok(Vec::new()),
            Keep::Dir { dir, state } => {
                let failed = |e: &dyn std::fmt::Display| {
                    format!(
                        "cannot write checkpoint {} to {}: {e}",
                        checkpoint.id,
                        dir.display()
                    )
                };
                if let Some(db) = state {
                    let document = serde_json::to_vec(checkpoint).map_err(|e| failed(&e))?;
                    db.commit(deltas, &document).map_err(|e| failed(&e))?;
                }
                super::save(checkpoint, dir)
                    .map(|()| Vec::new())
                    .map_err(|e| failed(&e))
            }
            Keep::Shared(store) => {
                store
                    .commit(checkpoint, held)
                    .await
                    .map_err(|e: ComponentError| {
                        format!(
                            "cannot commit checkpoint {} to {}: {e}",
                            checkpoint.id,
                            store.describe()
                        )
                    })
            }
        }
    }
}

/// Opens the keyed-state store of a pipeline whose checkpoints go to directory `dir`:
/// `state.dir`, or `keyed` in `dir`.
fn open_state(state: &StateConfig, dir: &str) -> Result<Arc<StateDb>, String> {
    let place = match &state.dir {
        Some(d) => PathBuf::from(d),
        None => std::path::Path::new(dir).join("keyed"),
    };
    StateDb::open(&place, crate::state_store::disk_cache(state))
}
