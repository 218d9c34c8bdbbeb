//! The SQL text per database: identifier quoting, placeholders with PostgreSQL casts, the
//! multi-row INSERT/upsert, and the query that lists a table's columns.

/// The database a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (embedded, through a file or in memory).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// How a PostgreSQL placeholder is converted to its column's type in SQL. Bound text must be
/// cast: PostgreSQL does not assign a text parameter to a DATE or INTEGER column by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cast {
    /// The parameter is used as bound.
    None,
    /// `$n::<type>`, with the type as SQL text (`date`, `integer`, `"public"."mood"`).
    To(String),
    /// `($n::timestamptz AT TIME ZONE 'UTC')`, for TIMESTAMP (without time zone) columns: a
    /// plain `::timestamp` would drop a `+0200` offset instead of applying it, so the text is
    /// read with its offset (none means UTC, the session time zone) and stored as UTC.
    UtcTimestamp,
}

impl Cast {
    /// The PostgreSQL expression converting `expr` (a placeholder or a column).
    pub fn apply(&self, expr: &str) -> String {
        match self {
            Cast::None => expr.to_string(),
            Cast::To(t) => format!("{expr}::{t}"),
            Cast::UtcTimestamp => format!("({expr}::timestamptz AT TIME ZONE 'UTC')"),
        }
    }
}

/// ` ON CONFLICT (key) DO UPDATE SET` every other column to the new row's value (`DO
/// NOTHING` when every column is in the key); empty without a key.
pub fn conflict_clause(columns: &[ColumnSql], key: &[String]) -> String {
    if key.is_empty() {
        return String::new();
    }
    let key_names: Vec<String> = key.iter().map(|k| quote_ident(k)).collect();
    let updates: Vec<String> = columns
        .iter()
        .filter(|c| !key.contains(&c.name))
        .map(|c| {
            let q = quote_ident(&c.name);
            format!("{q} = excluded.{q}")
        })
        .collect();
    let action = if updates.is_empty() {
        "DO NOTHING".to_string()
    } else {
        format!("DO UPDATE SET {}", updates.join(", "))
    };
    format!(" ON CONFLICT ({}) {action}", key_names.join(", "))
}

/// How values are bound for one column (see `value_bind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindKind {
    /// SQLite: each value as its own type (integer, real, text, NULL).
    Native,
    /// A 64-bit integer parameter.
    Int,
    /// A double-precision parameter.
    Float,
    /// A text parameter (cast in SQL when the column is not text).
    Text,
    /// JSON text: strings become JSON strings, objects and arrays their JSON.
    Json,
}

/// One column of the INSERT: its name and how its placeholder is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSql {
    /// The column's name, unquoted.
    pub name: String,
    /// The cast of its placeholder (always `Cast::None` for SQLite).
    pub cast: Cast,
}

/// SQLite's highest parameter number (`SQLITE_MAX_VARIABLE_NUMBER` of the bundled SQLite).
const SQLITE_MAX_PARAMS: usize = 32_766;
/// PostgreSQL's highest parameter number (a 16-bit count in the protocol).
const POSTGRES_MAX_PARAMS: usize = 65_535;

impl Dialect {
    /// The most bind parameters one statement may have.
    pub fn max_params(self) -> usize {
        match self {
            Dialect::Sqlite => SQLITE_MAX_PARAMS,
            Dialect::Postgres => POSTGRES_MAX_PARAMS,
        }
    }

    /// The most rows one INSERT of `columns` columns may carry, at most `batch_size`.
    pub fn rows_per_statement(self, columns: usize, batch_size: usize) -> usize {
        (self.max_params() / columns.max(1)).clamp(1, batch_size.max(1))
    }

    /// How values of a PostgreSQL column are bound and cast, from `information_schema.columns`
    /// (`data_type`, `udt_schema`, `udt_name`).
    pub fn postgres_column(data_type: &str, udt_schema: &str, udt_name: &str) -> (BindKind, Cast) {
        let to = |t: &str| Cast::To(t.to_string());
        match data_type {
            "text" | "character varying" | "character" | "name" => (BindKind::Text, Cast::None),
            "bigint" => (BindKind::Int, Cast::None),
            "integer" | "smallint" => (BindKind::Int, to(data_type)),
            "double precision" => (BindKind::Float, Cast::None),
            "real" => (BindKind::Float, to("real")),
            "json" | "jsonb" => (BindKind::Json, to(data_type)),
            "timestamp without time zone" => (BindKind::Text, Cast::UtcTimestamp),
            "timestamp with time zone" => (BindKind::Text, to("timestamptz")),
            "date" | "numeric" | "boolean" | "uuid" | "interval" => (BindKind::Text, to(data_type)),
            // Anything else (time, arrays, enums, domains...): its exact type by name.
            _ => (
                BindKind::Text,
                Cast::To(format!(
                    "{}.{}",
                    quote_ident(udt_schema),
                    quote_ident(udt_name)
                )),
            ),
        }
    }

    /// `INSERT INTO table (cols) VALUES (...), ... [ON CONFLICT (key) DO UPDATE SET ...]` for
    /// `rows` rows, with placeholders numbered from 1.
    pub fn insert_sql(
        self,
        table: &str,
        columns: &[ColumnSql],
        key: &[String],
        rows: usize,
    ) -> String {
        let names: Vec<String> = columns.iter().map(|c| quote_ident(&c.name)).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            quote_table(table),
            names.join(", ")
        );
        let mut n = 0;
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    sql.push_str(", ");
                }
                n += 1;
                self.push_placeholder(&mut sql, n, &c.cast);
            }
            sql.push(')');
        }
        sql.push_str(&conflict_clause(columns, key));
        sql
    }

    fn push_placeholder(self, sql: &mut String, n: usize, cast: &Cast) {
        match self {
            Dialect::Sqlite => sql.push('?'),
            Dialect::Postgres => sql.push_str(&cast.apply(&format!("${n}"))),
        }
    }

    /// The query listing a table's columns. It binds the table name, then the schema (`main`
    /// for SQLite, NULL for PostgreSQL's current one), and returns the column names, with
    /// `data_type`, `udt_schema` and `udt_name` for PostgreSQL.
    pub fn columns_sql(self) -> &'static str {
        match self {
            Dialect::Sqlite => "SELECT name, type, \"notnull\" = 1 FROM pragma_table_info(?, ?)",
            Dialect::Postgres => {
                "SELECT column_name::text, data_type::text, udt_schema::text, udt_name::text, \
                 character_maximum_length::int, is_nullable = 'NO' \
                 FROM information_schema.columns \
                 WHERE table_name = $1 AND table_schema = coalesce($2, current_schema()) \
                 ORDER BY ordinal_position"
            }
        }
    }
}

/// `name` as a quoted identifier: `"name"`, with inner quotes doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A `table` or `schema.table` option as quoted SQL.
pub fn quote_table(table: &str) -> String {
    let (schema, name) = split_table(table);
    match schema {
        Some(s) => format!("{}.{}", quote_ident(s), quote_ident(name)),
        None => quote_ident(name),
    }
}

/// The schema (if any) and the name of a `table` or `schema.table` option.
pub fn split_table(table: &str) -> (Option<&str>, &str) {
    match table.split_once('.') {
        Some((schema, name)) => (Some(schema), name),
        None => (None, table),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<ColumnSql> {
        names
            .iter()
            .map(|n| ColumnSql {
                name: n.to_string(),
                cast: Cast::None,
            })
            .collect()
    }

    fn key(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn sqlite_insert_of_two_rows() {
        let sql = Dialect::Sqlite.insert_sql("transactions", &cols(&["id", "amount"]), &[], 2);
        assert_eq!(
            sql,
            r#"INSERT INTO "transactions" ("id", "amount") VALUES (?, ?), (?, ?)"#
        );
    }

    #[test]
    fn sqlite_upsert_updates_the_other_columns() {
        let sql = Dialect::Sqlite.insert_sql(
            "sales_per_category",
            &cols(&["transaction_date", "category", "total_sales"]),
            &key(&["transaction_date", "category"]),
            1,
        );
        assert_eq!(
            sql,
            r#"INSERT INTO "sales_per_category" ("transaction_date", "category", "total_sales") VALUES (?, ?, ?) ON CONFLICT ("transaction_date", "category") DO UPDATE SET "total_sales" = excluded."total_sales""#
        );
    }

    #[test]
    fn postgres_upsert_numbers_and_casts_placeholders() {
        let columns = vec![
            ColumnSql {
                name: "transaction_date".into(),
                cast: Cast::To("date".into()),
            },
            ColumnSql {
                name: "total_sales".into(),
                cast: Cast::None,
            },
            ColumnSql {
                name: "seen_at".into(),
                cast: Cast::UtcTimestamp,
            },
        ];
        let sql = Dialect::Postgres.insert_sql(
            "public.sales_per_day",
            &columns,
            &key(&["transaction_date"]),
            2,
        );
        assert_eq!(
            sql,
            "INSERT INTO \"public\".\"sales_per_day\" (\"transaction_date\", \"total_sales\", \"seen_at\") \
             VALUES ($1::date, $2, ($3::timestamptz AT TIME ZONE 'UTC')), \
             ($4::date, $5, ($6::timestamptz AT TIME ZONE 'UTC')) \
             ON CONFLICT (\"transaction_date\") DO UPDATE SET \"total_sales\" = excluded.\"total_sales\", \
             \"seen_at\" = excluded.\"seen_at\""
        );
    }

    #[test]
    fn upsert_of_key_columns_only_does_nothing_on_conflict() {
        let sql = Dialect::Postgres.insert_sql("seen", &cols(&["id"]), &key(&["id"]), 1);
        assert_eq!(
            sql,
            r#"INSERT INTO "seen" ("id") VALUES ($1) ON CONFLICT ("id") DO NOTHING"#
        );
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident(r#"we"ird"#), r#""we""ird""#);
        assert_eq!(quote_table("Sales"), r#""Sales""#);
        assert_eq!(quote_table("app.sales"), r#""app"."sales""#);
        let sql = Dialect::Sqlite.insert_sql("t; DROP TABLE x", &cols(&["a\"b"]), &[], 1);
        assert_eq!(sql, r#"INSERT INTO "t; DROP TABLE x" ("a""b") VALUES (?)"#);
    }

    #[test]
    fn statements_stay_under_the_parameter_limits() {
        assert_eq!(Dialect::Sqlite.rows_per_statement(13, 1000), 1000);
        assert_eq!(Dialect::Sqlite.rows_per_statement(13, 5000), 2520);
        assert_eq!(Dialect::Postgres.rows_per_statement(13, 10_000), 5041);
        assert_eq!(Dialect::Postgres.rows_per_statement(100_000, 1000), 1);
        for d in [Dialect::Sqlite, Dialect::Postgres] {
            for columns in 1..=300 {
                let rows = d.rows_per_statement(columns, usize::MAX);
                assert!(rows * columns <= d.max_params(), "{d:?} {columns}");
                assert!((rows + 1) * columns > d.max_params(), "{d:?} {columns}");
            }
        }
    }

    #[test]
    fn postgres_column_types_pick_binds_and_casts() {
        let c = |t: &str| Dialect::postgres_column(t, "pg_catalog", "x");
        assert_eq!(c("character varying"), (BindKind::Text, Cast::None));
        assert_eq!(c("integer"), (BindKind::Int, Cast::To("integer".into())));
        assert_eq!(c("bigint"), (BindKind::Int, Cast::None));
        assert_eq!(c("double precision"), (BindKind::Float, Cast::None));
        assert_eq!(c("date"), (BindKind::Text, Cast::To("date".into())));
        assert_eq!(
            c("timestamp without time zone"),
            (BindKind::Text, Cast::UtcTimestamp)
        );
        assert_eq!(c("jsonb"), (BindKind::Json, Cast::To("jsonb".into())));
        assert_eq!(
            Dialect::postgres_column("USER-DEFINED", "public", "mood"),
            (BindKind::Text, Cast::To(r#""public"."mood""#.into()))
        );
    }

    #[test]
    fn column_queries_bind_table_then_schema() {
        assert_eq!(
            Dialect::Sqlite.columns_sql(),
            "SELECT name, type, \"notnull\" = 1 FROM pragma_table_info(?, ?)"
        );
        let pg = Dialect::Postgres.columns_sql();
        assert!(pg.contains("FROM information_schema.columns"), "{pg}");
        assert!(
            pg.contains("table_name = $1 AND table_schema = coalesce($2, current_schema())"),
            "{pg}"
        );
    }
}
