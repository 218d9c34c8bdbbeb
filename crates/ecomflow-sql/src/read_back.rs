//! Reading a table back as records, every column of every row as the database holds it:
//! `ecomflow test` checks what a real `sql` sink wrote with it. Each row comes back as one
//! JSON object built by the database (`to_json` in PostgreSQL, `json_object` in SQLite), so
//! a number is a number, a PostgreSQL `TIMESTAMP` a text such as `2025-01-31T10:00:00` and
//! a `DATE` one such as `2025-01-31`.

use crate::db::Db;
use crate::dialect::{quote_ident, quote_table};
use ecomflow_core::{Field, Record, Value};

/// The rows of `table` (ordered by the `key` columns, when there are some), as records.
pub async fn read_rows(db: &Db, table: &str, key: &[String]) -> Result<Vec<Record>, String> {
    let order = match key.is_empty() {
        true => String::new(),
        false => {
            let columns: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
            format!(" ORDER BY {}", columns.join(", "))
        }
    };
    let texts: Vec<(String,)> = match db {
        Db::Sqlite(pool, _) => {
            let columns = db
                .table_columns(table)
                .await
                .map_err(|e| format!("cannot read the columns of {table}: {e}"))?;
            if columns.is_empty() {
                return Err(format!("there is no table {table}"));
            }
            let sql = format!(
                "SELECT json_object({}) FROM {}{order}",
                sqlite_pairs(columns.iter().map(|c| c.name.as_str())),
                quote_table(table)
            );
            sqlx::query_as(&sql).fetch_all(pool).await
        }
        Db::Postgres(pool) => {
            let sql = format!(
                "SELECT CAST(to_json(t) AS TEXT) FROM {} AS t{order}",
                quote_table(table)
            );
            sqlx::query_as(&sql).fetch_all(pool).await
        }
    }
    .map_err(|e| format!("cannot read the rows of {table}: {e}"))?;
    texts.iter().map(|(text,)| row(text)).collect()
}

/// `json_object`'s arguments: each column's name and value (a BLOB as its hex text, which
/// JSON can hold).
fn sqlite_pairs<'a>(columns: impl Iterator<Item = &'a str>) -> String {
    let pairs: Vec<String> = columns
        .map(|name| {
            let column = quote_ident(name);
            format!(
                "'{}', CASE typeof({column}) WHEN 'blob' THEN hex({column}) ELSE {column} END",
                name.replace('\'', "''")
            )
        })
        .collect();
    pairs.join(", ")
}

/// One row's JSON object as a record, its columns in the table's order.
fn row(text: &str) -> Result<Record, String> {
    let json: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("the database gave a row that is not JSON ({e}): {text}"))?;
    let serde_json::Value::Object(columns) = json else {
        return Err(format!(
            "the database gave a row that is not an object: {text}"
        ));
    };
    let mut record = Record::with_capacity(columns.len());
    for (name, value) in columns {
        record.push(Field::new(&name), Value::from_json(value));
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_column_is_named_and_quoted_and_a_blob_read_as_hex() {
        assert_eq!(
            sqlite_pairs(["id", "it's"].into_iter()),
            "'id', CASE typeof(\"id\") WHEN 'blob' THEN hex(\"id\") ELSE \"id\" END, \
             'it''s', CASE typeof(\"it's\") WHEN 'blob' THEN hex(\"it's\") ELSE \"it's\" END"
        );
    }

    #[test]
    fn a_row_keeps_its_columns_in_order_with_their_types() {
        let r = row(r#"{"z": 1, "a": 2.5, "s": "x", "n": null}"#).expect("a row");
        assert_eq!(
            r.to_json().to_string(),
            r#"{"z":1,"a":2.5,"s":"x","n":null}"#
        );
        assert!(row("[1]").expect_err("an array").contains("not an object"));
        assert!(row("{").expect_err("cut short").contains("not JSON"));
    }
}
