//! One writer per SQLite file: every `sql` sink of this process that writes the same database
//! file shares one pool of one connection, so the sinks take turns instead of fighting over
//! SQLite's lock (several connections waiting on each other's busy handlers could stall a run
//! for the whole busy timeout). The last sink to close folds the write-ahead log into the file.

use sqlx::sqlite::SqlitePool;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use tokio::sync::Mutex;

struct Open {
    pool: SqlitePool,
    users: usize,
}

/// Open files by canonical path. An async mutex: a sink opening a file waits for another
/// sink that is opening it, and then shares its pool.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Open>>> = LazyLock::new(Default::default);

/// The canonical path of a database file that may not exist yet (its directory does).
pub async fn canonical(file: &Path) -> PathBuf {
    if let Ok(path) = tokio::fs::canonicalize(file).await {
        return path;
    }
    let dir = file.parent().filter(|p| !p.as_os_str().is_empty());
    let dir = match dir {
        Some(d) => tokio::fs::canonicalize(d)
            .await
            .unwrap_or_else(|_| d.to_path_buf()),
        None => std::env::current_dir().unwrap_or_default(),
    };
    match file.file_name() {
        Some(name) => dir.join(name),
        None => file.to_path_buf(),
    }
}

/// The pool of the file at `path` (canonical): the one already open in this process, or a
/// new one from `connect`.
pub async fn share<F>(path: &Path, connect: F) -> Result<SqlitePool, sqlx::Error>
where
    F: Future<Output = Result<SqlitePool, sqlx::Error>>,
{
    let mut open = OPEN.lock().await;
    if let Some(o) = open.get_mut(path) {
        o.users += 1;
        return Ok(o.pool.clone());
    }
    let pool = connect.await?;
    open.insert(
        path.to_path_buf(),
        Open {
            pool: pool.clone(),
            users: 1,
        },
    );
    Ok(pool)
}

/// Gives back one share of the file at `path`; returns the pool when that was the last one
/// (the caller then folds the log in and closes it).
pub async fn release(path: &Path) -> Option<SqlitePool> {
    let mut open = OPEN.lock().await;
    let o = open.get_mut(path)?;
    o.users -= 1;
    if o.users > 0 {
        return None;
    }
    open.remove(path).map(|o| o.pool)
}
