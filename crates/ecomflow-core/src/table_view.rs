//! What a sink that writes a table holds of the records it is given: one row per key (an
//! upsert table) or every row, with each column taken from a field. `ecomflow test` uses it to
//! check a sink's final rows without running the sink or its database.

use crate::field::Field;
use crate::record::Record;
use crate::value::Value;

/// How a sink's records become the rows of its table.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    /// The key columns: a row replaces the one with the same key. Empty: every row is kept.
    pub key: Vec<String>,
    /// Each column with the field it is written from. Empty: every field of the record,
    /// under its own name.
    pub columns: Vec<(String, Field)>,
    /// A column holding the number of the source partition a record came from (0 without
    /// partitions).
    pub partition_column: Option<String>,
}

impl TableView {
    /// The row `record`, from source partition `partition`, becomes.
    pub fn row(&self, record: &Record, partition: i32) -> Record {
        let mut row = if self.columns.is_empty() {
            record.clone()
        } else {
            let mut row = Record::with_capacity(self.columns.len() + 1);
            for (column, field) in &self.columns {
                row.push(
                    Field::new(column),
                    record.get(*field).cloned().unwrap_or(Value::Null),
                );
            }
            row
        };
        if let Some(column) = &self.partition_column {
            row.set(Field::new(column), Value::Int(i64::from(partition)));
        }
        row
    }

    /// The table after `rows` (each with its source partition, in the order written) went
    /// in: the last row of each key, in the order keys first came; every row when there is no
    /// key.
    pub fn table(&self, rows: &[(i32, Record)]) -> Vec<Record> {
        if self.key.is_empty() {
            return rows.iter().map(|(p, r)| self.row(r, *p)).collect();
        }
        let mut keys: Vec<serde_json::Value> = Vec::new();
        let mut table: Vec<Record> = Vec::new();
        for (partition, record) in rows {
            let row = self.row(record, *partition);
            let json = row.to_json();
            let key = serde_json::Value::Array(
                self.key
                    .iter()
                    .map(|k| json.get(k).cloned().unwrap_or(serde_json::Value::Null))
                    .collect(),
            );
            match keys.iter().position(|k| *k == key) {
                Some(at) => table[at] = row,
                None => {
                    keys.push(key);
                    table.push(row);
                }
            }
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, n: i64) -> Record {
        let mut r = Record::default();
        r.push(Field::new("id"), Value::from(id));
        r.push(Field::new("n"), Value::Int(n));
        r
    }

    #[test]
    fn a_key_keeps_the_last_row_of_each_and_columns_rename_fields() {
        let view = TableView {
            key: vec!["row_id".into()],
            columns: vec![
                ("row_id".into(), Field::new("id")),
                ("total".into(), Field::new("n")),
                ("missing".into(), Field::new("nowhere")),
            ],
            partition_column: Some("source_partition".into()),
        };
        let table = view.table(&[
            (0, record("a", 1)),
            (0, record("b", 2)),
            (4, record("a", 3)),
        ]);
        let json: Vec<serde_json::Value> = table.iter().map(Record::to_json).collect();
        assert_eq!(
            json,
            [
                serde_json::json!({"row_id": "a", "total": 3, "missing": null, "source_partition": 4}),
                serde_json::json!({"row_id": "b", "total": 2, "missing": null, "source_partition": 0}),
            ]
        );
        let append = TableView {
            key: Vec::new(),
            columns: Vec::new(),
            partition_column: None,
        };
        assert_eq!(
            append
                .table(&[(0, record("a", 1)), (0, record("a", 1))])
                .len(),
            2
        );
    }
}
