//! The store of completed checkpoints: `checkpoint.json` in the `[checkpoint]` directory,
//! replaced atomically, so a crash at any moment leaves the previous checkpoint or the new one.

use ecomflow_core::checkpoint::Checkpoint;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file of the checkpoint kept in `dir`.
fn file(dir: &Path) -> PathBuf {
    dir.join("checkpoint.json")
}

/// The checkpoint kept in `dir`, if any.
pub fn load(dir: &Path) -> std::io::Result<Option<Checkpoint>> {
    match std::fs::read(file(dir)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Renames the checkpoint kept in `dir` (one that cannot be read) out of the way, to
/// `checkpoint.json.damaged-<seconds since the epoch>`; returns where.
pub fn set_aside(dir: &Path) -> std::io::Result<PathBuf> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = dir.join(format!("checkpoint.json.damaged-{seconds}"));
    std::fs::rename(file(dir), &aside)?;
    Ok(aside)
}

/// Writes `checkpoint` to `dir` atomically: written and synced beside it, then renamed over it.
pub fn save(checkpoint: &Checkpoint, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join("checkpoint.json.tmp");
    let bytes = serde_json::to_vec(checkpoint).map_err(std::io::Error::other)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, file(dir))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_checkpoints_load_back_and_replace_the_previous_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(load(dir.path()).expect("readable"), None);
        let mut c = Checkpoint {
            id: 3,
            ..Checkpoint::default()
        };
        c.sources
            .insert("sources.a".into(), serde_json::json!({"offset": 7}));
        save(&c, dir.path()).expect("saved");
        assert_eq!(load(dir.path()).expect("readable"), Some(c.clone()));
        c.id = 4;
        save(&c, dir.path()).expect("saved again");
        assert_eq!(load(dir.path()).expect("readable").map(|c| c.id), Some(4));
        assert!(!dir.path().join("checkpoint.json.tmp").exists());
    }

    #[test]
    fn a_file_that_is_not_a_checkpoint_is_an_error_not_an_empty_start() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("checkpoint.json"), "{not json").expect("write");
        let e = load(dir.path()).expect_err("unreadable");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }
}
