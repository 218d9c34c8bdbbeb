//! A table written with plain INSERTs (no key, so a row written twice stays twice) beside the
//! flagship's: the overlay that adds it, and what it holds.

/// The overlay adding `sinks.every_transaction`, which writes every good transaction to the
/// table `transactions_once` of `DATABASE_URL`.
pub const OVERLAY: &str = r#"
[sinks.every_transaction]
type = "sql"
inputs = ["usd"]
url = "${DATABASE_URL}"
table = "transactions_once"

[sinks.every_transaction.columns]
transaction_id = "transactionId"
total_amount = "totalAmount"
"#;

/// Creates the table in `database`.
pub async fn create(database: &str) {
    let pool = sqlx::PgPool::connect(database).await.expect("database");
    sqlx::query(
        "CREATE TABLE transactions_once (transaction_id TEXT, total_amount DOUBLE PRECISION)",
    )
    .execute(&pool)
    .await
    .expect("table");
    pool.close().await;
}

/// Its rows: (all of them, distinct transaction ids).
pub async fn counts(database: &str) -> (i64, i64) {
    let pool = sqlx::PgPool::connect(database).await.expect("database");
    let counts =
        sqlx::query_as("SELECT count(*), count(DISTINCT transaction_id) FROM transactions_once")
            .fetch_one(&pool)
            .await
            .expect("counts");
    pool.close().await;
    counts
}
