//! Helpers shared by the end-to-end tests: the flagship's tables dumped as text, and fresh
//! databases on the PostgreSQL test server; `stack` for the other real servers, `browser`
//! for looking at the dashboard in a real browser.

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod browser;
pub mod http;
pub mod plain_table;
pub mod processes;
pub mod stack;

/// The `ecomflow` binary under test.
pub fn ecomflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ecomflow"))
}

/// The repository's root directory.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository")
}

/// A file of the repository, by its path from the root (`docker-compose.yaml`).
pub fn read(relative: &str) -> String {
    std::fs::read_to_string(repo().join(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// The flagship's tables.
pub const TABLES: [&str; 5] = [
    "transactions",
    "sales_per_category",
    "sales_per_day",
    "sales_per_month",
    "payment_alerts",
];

/// Every row of the flagship's tables in an SQLite database, as sorted text.
pub async fn sqlite_dump(pool: &sqlx::SqlitePool) -> Vec<String> {
    sqlite_dump_tables(pool, &TABLES).await
}

/// Every row of `tables` (the flagship's when `None`) in the SQLite file at `path`, as sorted
/// text, table by table.
pub async fn sqlite_file_dump(path: &std::path::Path, tables: Option<&[&str]>) -> Vec<String> {
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("database");
    let all = sqlite_dump_tables(&pool, tables.unwrap_or(&TABLES)).await;
    pool.close().await;
    all
}

/// Every row of `tables` in an SQLite database, as sorted text, table by table.
pub async fn sqlite_dump_tables(pool: &sqlx::SqlitePool, tables: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    for &table in tables {
        // Every column quoted as SQL text, joined: one string per row.
        let (row_expr,): (String,) = sqlx::query_as(
            "SELECT group_concat('quote(' || name || ')', ' || '','' || ') FROM pragma_table_info(?)",
        )
        .bind(table)
        .fetch_one(pool)
        .await
        .expect("columns");
        let rows: Vec<(String,)> =
            sqlx::query_as(&format!("SELECT {row_expr} AS r FROM {table} ORDER BY r"))
                .fetch_all(pool)
                .await
                .unwrap_or_else(|e| panic!("{table}: {e}"));
        all.extend(rows.into_iter().map(|(r,)| format!("{table} {r}")));
    }
    all
}

/// A new, empty database `name` on the PostgreSQL test server (`ECOMFLOW_TEST_POSTGRES_URL`,
/// started by `scripts/services.sh`); its URL.
pub async fn fresh_postgres_database(name: &str) -> String {
    let server = std::env::var("ECOMFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:55432/postgres".into());
    let admin = sqlx::PgPool::connect(&server).await.unwrap_or_else(|e| {
        panic!("no PostgreSQL at {server} ({e}): run scripts/services.sh start")
    });
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
    ] {
        sqlx::query(&sql).execute(&admin).await.expect("database");
    }
    admin.close().await;
    let at = server.rfind('/').expect("a database in the URL");
    format!("{}/{name}", &server[..at])
}

/// Asserts that two table dumps hold the same rows, naming the rows only one of them has
/// (at most 5 of each).
pub fn assert_same_rows(expected: &[String], got: &[String], what: &str) {
    let (mut expected, mut got) = (expected.to_vec(), got.to_vec());
    expected.sort();
    got.sort();
    if expected == got {
        return;
    }
    let only_expected: Vec<&String> = expected
        .iter()
        .filter(|r| got.binary_search(r).is_err())
        .take(5)
        .collect();
    let only_got: Vec<&String> = got
        .iter()
        .filter(|r| expected.binary_search(r).is_err())
        .take(5)
        .collect();
    panic!(
        "the tables differ ({} rows against {}): only in the reference {only_expected:?}, only {what} \
         {only_got:?}",
        expected.len(),
        got.len()
    );
}

/// Keeps a test's directory (its processes' logs, dead letters and checkpoints) when the test
/// fails: dropped while panicking, it copies the directory to
/// `$TMPDIR/ecomflow-failed-<name>-<pid>` and says where on stderr, so a rare failure can be
/// read after the temporary directory is gone (`ECOMFLOW_TEST_KEEP=1` keeps it after a pass
/// too). Declare it after the directory's `TempDir`, so it is dropped first.
pub struct KeepOnFailure {
    dir: std::path::PathBuf,
    name: &'static str,
}

impl KeepOnFailure {
    /// Watches `dir` for the test `name`.
    pub fn new(dir: &std::path::Path, name: &'static str) -> KeepOnFailure {
        KeepOnFailure {
            dir: dir.to_path_buf(),
            name,
        }
    }
}

impl Drop for KeepOnFailure {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("ECOMFLOW_TEST_KEEP").is_none() {
            return;
        }
        let to = std::env::temp_dir().join(format!(
            "ecomflow-kept-{}-{}",
            self.name,
            std::process::id()
        ));
        let copied = std::process::Command::new("cp")
            .arg("-r")
            .arg(&self.dir)
            .arg(&to)
            .status();
        match copied {
            Ok(s) if s.success() => {
                eprintln!("the test's files are kept in {}", to.display())
            }
            _ => eprintln!("could not keep the test's files in {}", to.display()),
        }
    }
}
