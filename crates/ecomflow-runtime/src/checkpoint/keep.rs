//! Where completed checkpoints go: nowhere (checkpoints that only acknowledge), a directory
//! (`checkpoint.json`, one process), or a store shared by every process of the pipeline (a
//! database, through a store plugin), and what a run resumes from.

use ecomflow_core::ComponentError;
use ecomflow_core::PartitionId;
use ecomflow_core::checkpoint::{Checkpoint, CheckpointConfig};
use ecomflow_core::shared_store::{SharedStore, StoreOptions, StorePlugin};
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
    /// `checkpoint.json` in this directory.
    Dir(PathBuf),
    /// A store shared by every process of the pipeline.
    Shared(Arc<dyn SharedStore>),
}

impl Keep {
    /// Opens where `config` keeps checkpoints and reads the last one (the default when there
    /// is none). A checkpoint that cannot be read stops the start with what to do, unless
    /// `reset_all` (every component starts afresh): it is then set aside.
    pub async fn open(
        config: &CheckpointConfig,
        reset_all: bool,
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
        let restored = match super::load(std::path::Path::new(dir)) {
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
        Ok((Keep::Dir(dir.into()), restored))
    }

    /// Makes `checkpoint` durable; `held` are the partitions its sources held. Returns the
    /// partitions another process has claimed since (nothing of them was kept).
    pub async fn commit(
        &self,
        checkpoint: &Checkpoint,
        held: &[(Arc<PartitionId>, Option<i64>)],
    ) -> Result<Vec<Arc<PartitionId>>, String> {
        match self {
            Keep::Nothing => Ok(Vec::new()),
            Keep::Dir(dir) => super::save(checkpoint, dir)
                .map(|()| Vec::new())
                .map_err(|e| {
                    format!(
                        "cannot write checkpoint {} to {}: {e}",
                        checkpoint.id,
                        dir.display()
                    )
                }),
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
