//! The write plan, fixed at the first write: which columns get which fields, how each is
//! bound, the INSERT text for the statement sizes that recur, and PostgreSQL's COPY path.

use crate::copy::CopySql;
use crate::db::TableColumn;
use crate::dialect::{BindKind, ColumnSql, Dialect, quote_table};
use crate::value_bind::{Bound, convert};
use ecomflow_core::{Field, Record};
use std::borrow::Cow;

/// One written column.
#[derive(Debug)]
struct PlanColumn {
    name: String,
    field: Field,
    kind: BindKind,
}

/// What every flush of one sink writes, and how.
#[derive(Debug)]
pub struct Plan {
    dialect: Dialect,
    table: String,
    key: Vec<String>,
    columns: Vec<PlanColumn>,
    sql_columns: Vec<ColumnSql>,
    /// Rows per INSERT statement, within the database's parameter limit.
    rows_per_statement: usize,
    full_sql: String,
    one_sql: String,
    /// PostgreSQL's bulk path (COPY into a staging table, then one INSERT ... SELECT).
    copy: Option<CopySql>,
}

impl Plan {
    /// The plan for writing `wanted` (column, field) pairs into `table`, whose columns are
    /// `existing`. The error names missing tables and columns.
    pub fn new(
        dialect: Dialect,
        table: &str,
        key: &[String],
        wanted: &[(String, Field)],
        existing: &[TableColumn],
        batch_size: usize,
    ) -> Result<Plan, String> {
        if existing.is_empty() {
            return Err(format!(
                "table {} does not exist (create it with `migrations`)",
                quote_table(table)
            ));
        }
        if wanted.is_empty() {
            return Err(
                "there is no column to write: the first record has no field and `columns` is \
                 empty"
                    .into(),
            );
        }
        let mut columns = Vec::with_capacity(wanted.len());
        let mut sql_columns = Vec::with_capacity(wanted.len());
        for (name, field) in wanted {
            let found = existing.iter().find(|c| c.name == *name).or_else(|| {
                // SQLite identifiers are case-insensitive, quoted or not.
                (dialect == Dialect::Sqlite)
                    .then(|| existing.iter().find(|c| c.name.eq_ignore_ascii_case(name)))
                    .flatten()
            });
            let Some(column) = found else {
                let names: Vec<&str> = existing.iter().map(|c| c.name.as_str()).collect();
                return Err(format!(
                    "table {} has no column `{name}` for field `{field}`; its columns are {}",
                    quote_table(table),
                    names.join(", ")
                ));
            };
            columns.push(PlanColumn {
                name: name.clone(),
                field: *field,
                kind: column.kind,
            });
            sql_columns.push(ColumnSql {
                name: name.clone(),
                cast: column.cast.clone(),
            });
        }
        let rows_per_statement = dialect.rows_per_statement(columns.len(), batch_size);
        let full_sql = dialect.insert_sql(table, &sql_columns, key, rows_per_statement);
        let one_sql = dialect.insert_sql(table, &sql_columns, key, 1);
        let kinds: Vec<BindKind> = columns.iter().map(|c| c.kind).collect();
        let copy =
            (dialect == Dialect::Postgres).then(|| CopySql::new(table, &sql_columns, &kinds, key));
        Ok(Plan {
            dialect,
            table: table.to_string(),
            key: key.to_vec(),
            columns,
            sql_columns,
            rows_per_statement,
            full_sql,
            one_sql,
            copy,
        })
    }

    /// How many values one row binds.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Rows per statement.
    pub fn rows_per_statement(&self) -> usize {
        self.rows_per_statement
    }

    /// PostgreSQL's bulk path; `None` for SQLite, which writes multi-row INSERTs.
    pub fn copy_sql(&self) -> Option<&CopySql> {
        self.copy.as_ref()
    }

    /// Appends the values of `record` to `values`, or says which field does not convert (and
    /// appends nothing).
    pub fn bind_row<'a>(
        &self,
        record: &'a Record,
        values: &mut Vec<Bound<'a>>,
    ) -> Result<(), String> {
        let start = values.len();
        for c in &self.columns {
            match convert(record.get(c.field), c.kind) {
                Ok(v) => values.push(v),
                Err(why) => {
                    values.truncate(start);
                    return Err(format!(
                        "field `{}` cannot be written to column `{}`: {why}",
                        c.field, c.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// The INSERT for `rows` rows, and whether it is worth keeping prepared.
    pub fn sql(&self, rows: usize) -> (Cow<'_, str>, bool) {
        if rows == self.rows_per_statement {
            (Cow::Borrowed(&self.full_sql), true)
        } else if rows == 1 {
            (Cow::Borrowed(&self.one_sql), true)
        } else {
            let sql = self
                .dialect
                .insert_sql(&self.table, &self.sql_columns, &self.key, rows);
            (Cow::Owned(sql), false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Cast;

    fn existing(names: &[&str]) -> Vec<TableColumn> {
        names
            .iter()
            .map(|n| TableColumn {
                name: n.to_string(),
                kind: BindKind::Native,
                cast: Cast::None,
            })
            .collect()
    }

    fn wanted(pairs: &[(&str, &str)]) -> Vec<(String, Field)> {
        pairs
            .iter()
            .map(|(c, f)| (c.to_string(), Field::new(f)))
            .collect()
    }

    #[test]
    fn missing_table_and_columns_are_named() {
        let w = wanted(&[("id", "transactionId")]);
        let e = Plan::new(Dialect::Sqlite, "t", &[], &w, &[], 10).expect_err("no table");
        assert!(e.contains("table \"t\" does not exist"), "{e}");
        let e = Plan::new(Dialect::Sqlite, "t", &[], &w, &existing(&["a", "b"]), 10)
            .expect_err("no column");
        assert!(
            e.contains("no column `id` for field `transactionId`; its columns are a, b"),
            "{e}"
        );
    }

    #[test]
    fn statement_sizes_follow_the_batch_and_the_limit() {
        let w = wanted(&[("a", "a"), ("b", "b")]);
        let p = Plan::new(Dialect::Sqlite, "t", &[], &w, &existing(&["A", "b"]), 3).expect("plan");
        assert_eq!(p.rows_per_statement(), 3);
        assert_eq!(p.sql(3), (Cow::Borrowed(p.full_sql.as_str()), true));
        assert_eq!(p.sql(1).0, r#"INSERT INTO "t" ("a", "b") VALUES (?, ?)"#);
        assert_eq!(
            p.sql(2),
            (
                Cow::Owned(r#"INSERT INTO "t" ("a", "b") VALUES (?, ?), (?, ?)"#.to_string()),
                false
            )
        );
    }
}
