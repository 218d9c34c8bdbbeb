//! ecomflow-sql: the `sql` sink, writing records to a PostgreSQL or SQLite table.
//!
//! The URL picks the database (`sqlite:` or `postgres:`). Records are buffered and written
//! when `batch_size` rows are waiting or the oldest has waited `flush_interval`, each batch in
//! one transaction (upserts on `key`, de-duplicated within the batch): into SQLite by
//! multi-row INSERTs, into PostgreSQL by binary COPY into a staging table and one INSERT ...
//! SELECT.
//! A transaction runs beside the sink, which goes on taking records: those gathered by its
//! end (up to `max_batch_size` rows) make the next one, so a busy sink commits fewer, larger
//! transactions.
//! The connection opens and the `migrations` are applied at the first write, never at build
//! time, so `ecomflow validate` runs offline. A row the database rejects goes to the
//! dead-letter output with the database's message. While the database cannot be reached
//! (not up yet, connection lost), connecting and writing are tried again for `retry_for`
//! (ecomflow-core's retry policy); then, or at once for other failures, the run stops.

mod admission;
mod config;
mod copy;
mod db;
mod dedup;
mod dialect;
mod migrations;
mod plan;
#[cfg(test)]
mod postgres_tests;
mod read_back;
mod sink;
mod sqlite_files;
mod state;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod url;
mod value_bind;
mod write;

pub use config::SqlConfig;
pub use sink::SqlPlugin;
