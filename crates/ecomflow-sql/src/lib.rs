//! ecomflow-sql: the `sql` sink.
