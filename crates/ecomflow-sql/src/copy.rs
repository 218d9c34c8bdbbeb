//! PostgreSQL's bulk path for a batch, inside the caller's transaction: the rows go by binary
//! `COPY` into a temporary staging table of the bound types (bigint, double precision, text),
//! then into the target by one `INSERT ... SELECT`, which casts each column as the one-row
//! INSERT casts its placeholder (and upserts on `key`). One statement per batch, whatever its
//! size, instead of one multi-row INSERT per few thousand rows. The two steps can be taken
//! apart (several staging tables, moved later), as a checkpoint's transaction does.

use crate::dialect::{BindKind, ColumnSql, conflict_clause, quote_ident, quote_table};
use crate::value_bind::Bound;
use sqlx::PgConnection;

/// The staging table of a batch written at once, dropped after it (and at the end of the
/// transaction).
const STAGE: &str = "ecomflow_stage";

/// The statements of the bulk path for one sink.
#[derive(Debug)]
pub struct CopySql {
    /// The staging table's columns: `c0 bigint, c1 text, ...`.
    stage_columns: String,
    /// `INSERT INTO table (columns) SELECT casts FROM`, before the staging table's name.
    insert_select: String,
    /// What follows the staging table's name: the upsert's `ON CONFLICT` clause.
    conflict: String,
}

/// The staging type of a column bound as `kind`.
fn stage_type(kind: BindKind) -> &'static str {
    match kind {
        BindKind::Int => "bigint",
        BindKind::Float => "double precision",
        BindKind::Native | BindKind::Text | BindKind::Json => "text",
    }
}

impl CopySql {
    /// The statements writing `columns` (bound as `kinds`) into `table`, upserting on `key`.
    pub fn new(table: &str, columns: &[ColumnSql], kinds: &[BindKind], key: &[String]) -> Self {
        let stage_columns: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| format!("c{i} {}", stage_type(*k)))
            .collect();
        let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        let selected: Vec<String> = columns
            .iter()
            .enumerate()
            .map(|(i, c)| c.cast.apply(&format!("c{i}")))
            .collect();
        CopySql {
            stage_columns: stage_columns.join(", "),
            insert_select: format!(
                "INSERT INTO {} ({}) SELECT {} FROM",
                quote_table(table),
                names.join(", "),
                selected.join(", "),
            ),
            conflict: conflict_clause(columns, key),
        }
    }

    fn create(&self, stage: &str) -> String {
        format!(
            "CREATE TEMPORARY TABLE {} ({}) ON COMMIT DROP",
            quote_ident(stage),
            self.stage_columns
        )
    }

    fn copy(stage: &str) -> String {
        format!(
            "COPY pg_temp.{} FROM STDIN (FORMAT binary)",
            quote_ident(stage)
        )
    }

    fn insert(&self, stage: &str) -> String {
        format!(
            "{} pg_temp.{}{}",
            self.insert_select,
            quote_ident(stage),
            self.conflict
        )
    }

    /// Writes `values` (rows of `width` values) inside the transaction on `c`.
    pub async fn write(
        &self,
        c: &mut PgConnection,
        values: &[Bound<'_>],
        width: usize,
    ) -> Result<(), sqlx::Error> {
        self.stage(c, STAGE, encode(values, width)).await?;
        self.move_staged(c, STAGE).await
    }

    /// Copies `rows` (from [`encode`]) into a new staging table named `stage`. The COPY is
    /// the one statement during which the server waits for this process's data.
    pub async fn stage(
        &self,
        c: &mut PgConnection,
        stage: &str,
        rows: Vec<u8>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(&self.create(stage)).execute(&mut *c).await?;
        let mut copy = c.copy_in_raw(&Self::copy(stage)).await?;
        if let Err(e) = copy.send(rows).await {
            let _ = copy.abort("the batch could not be sent").await;
            return Err(e);
        }
        copy.finish().await?;
        Ok(())
    }

    /// Moves the rows of the staging table `stage` into the table, and drops it.
    pub async fn move_staged(&self, c: &mut PgConnection, stage: &str) -> Result<(), sqlx::Error> {
        sqlx::query(&self.insert(stage)).execute(&mut *c).await?;
        let drop = format!("DROP TABLE pg_temp.{}", quote_ident(stage));
        sqlx::query(&drop).execute(&mut *c).await?;
        Ok(())
    }
}

/// `values`, rows of `width` values, in COPY's binary format: a header, then each row as its
/// field count and each field as its length (-1 for NULL) and its bytes in network order.
pub fn encode(values: &[Bound<'_>], width: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(19 + values.len() * 16);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0i32.to_be_bytes()); // no header extension
    let fields = i16::try_from(width).unwrap_or(i16::MAX).to_be_bytes();
    for row in values.chunks(width.max(1)) {
        out.extend_from_slice(&fields);
        for v in row {
            match v {
                Bound::Int(Some(i)) => field(&mut out, &i.to_be_bytes()),
                Bound::Float(Some(f)) => field(&mut out, &f.to_bits().to_be_bytes()),
                // Never bound for PostgreSQL (see `value_bind::convert`); as text if it were.
                Bound::Bool(Some(b)) => field(&mut out, if *b { b"true" } else { b"false" }),
                Bound::Text(Some(t)) => field(&mut out, t.as_bytes()),
                Bound::Int(None) | Bound::Float(None) | Bound::Bool(None) | Bound::Text(None) => {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                }
            }
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    out
}

/// One non-NULL field: its length, then its bytes. A field longer than COPY allows (1 GiB)
/// cannot come from one record.
fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&i32::try_from(bytes.len()).unwrap_or(i32::MAX).to_be_bytes());
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Cast;

    #[test]
    fn statements_stage_the_bound_types_and_cast_when_moving() {
        let columns = vec![
            ColumnSql {
                name: "day".into(),
                cast: Cast::To("date".into()),
            },
            ColumnSql {
                name: "total".into(),
                cast: Cast::None,
            },
            ColumnSql {
                name: "at".into(),
                cast: Cast::UtcTimestamp,
            },
        ];
        let kinds = [BindKind::Text, BindKind::Float, BindKind::Text];
        let sql = CopySql::new("app.sales", &columns, &kinds, &["day".to_string()]);
        assert_eq!(
            sql.create(STAGE),
            "CREATE TEMPORARY TABLE \"ecomflow_stage\" (c0 text, c1 double precision, c2 text) \
             ON COMMIT DROP"
        );
        assert_eq!(
            CopySql::copy(STAGE),
            "COPY pg_temp.\"ecomflow_stage\" FROM STDIN (FORMAT binary)"
        );
        assert_eq!(
            sql.insert(STAGE),
            "INSERT INTO \"app\".\"sales\" (\"day\", \"total\", \"at\") SELECT c0::date, c1, \
             (c2::timestamptz AT TIME ZONE 'UTC') FROM pg_temp.\"ecomflow_stage\" ON CONFLICT \
             (\"day\") DO UPDATE SET \"total\" = excluded.\"total\", \"at\" = excluded.\"at\""
        );
    }

    #[test]
    fn rows_are_encoded_in_the_binary_format() {
        let values = [
            Bound::Int(Some(-2)),
            Bound::Text(Some("é".into())),
            Bound::Float(None),
            Bound::Float(Some(1.5)),
            Bound::Text(None),
            Bound::Int(None),
        ];
        let out = encode(&values, 3);
        let mut want = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0".to_vec();
        for row in [
            &[
                &[0, 3][..],
                &[0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
                &[0, 0, 0, 2, 0xc3, 0xa9],
                &[0xff, 0xff, 0xff, 0xff],
            ][..],
            &[
                &[0, 3][..],
                &[0, 0, 0, 8, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0],
                &[0xff, 0xff, 0xff, 0xff],
                &[0xff, 0xff, 0xff, 0xff],
            ][..],
        ] {
            for part in row {
                want.extend_from_slice(part);
            }
        }
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(out, want);
        assert_eq!(
            encode(&[], 3),
            b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0\xff\xff"
        );
    }
}
