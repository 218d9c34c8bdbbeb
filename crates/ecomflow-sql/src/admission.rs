//! What a `sql` sink's table refuses, read from the table once the sink is open (for a
//! `storable` transform upstream): every column a value that does not convert for it (a word
//! in a number column); a PostgreSQL text column a NUL character, and a `varchar(n)` or
//! `char(n)` more than n characters; a `smallint` or `integer` a whole number out of its
//! range; a NOT NULL column a missing field or null. What the database decides only when a
//! row is written (a unique column besides the key, a foreign key, a CHECK, a trigger, a
//! date it cannot read) is not known here: such a row is still a dead letter of the sink.

use crate::db::{ColumnFacts, Db};
use crate::dialect::BindKind;
use crate::value_bind::{Bound, convert};
use ecomflow_core::{Admission, Field, Record, Value};

/// What one column refuses.
#[derive(Debug, Clone, PartialEq)]
struct ColumnRule {
    column: String,
    field: Field,
    kind: BindKind,
    /// Characters at most (`varchar(n)`, `char(n)`).
    max_chars: Option<usize>,
    /// Whether a NUL character is refused (every PostgreSQL text type).
    no_nul: bool,
    /// The whole numbers it holds (`smallint`, `integer`).
    range: Option<(i64, i64)>,
    /// Whether NULL is refused.
    not_null: bool,
    /// Whether it holds `jsonb`, which refuses a NUL character written `\u0000` (`json`
    /// keeps it as text).
    json: bool,
    /// Whether a record without the field leaves the column alone (a sink without
    /// `columns` writes the fields its records have).
    absent_unchecked: bool,
}

/// What a table refuses, column by column.
#[derive(Debug)]
pub struct TableRules {
    columns: Vec<ColumnRule>,
}

impl TableRules {
    /// The rules of `table` for a sink that writes `columns` ((column, field) pairs; empty:
    /// every column of the table from the field of its name), leaving out the column the
    /// sink fills itself (`partition_column`).
    pub fn new(
        facts: &[ColumnFacts],
        columns: &[(String, Field)],
        own: Option<&str>,
    ) -> TableRules {
        let field_of = |name: &str| {
            if columns.is_empty() {
                Some(Field::new(name))
            } else {
                columns.iter().find(|(c, _)| c == name).map(|(_, f)| *f)
            }
        };
        let columns = facts
            .iter()
            .filter(|c| Some(c.name.as_str()) != own)
            .filter_map(|c| {
                let field = field_of(&c.name)?;
                // SQLite (values bound as they are) keeps any text and 64-bit integer.
                let postgres = c.kind != BindKind::Native;
                let text = postgres
                    && matches!(
                        c.data_type.as_str(),
                        "text" | "character varying" | "character" | "name" | "json" | "jsonb"
                    );
                Some(ColumnRule {
                    column: c.name.clone(),
                    field,
                    kind: c.kind,
                    max_chars: c.max_chars.and_then(|n| usize::try_from(n).ok()),
                    no_nul: text,
                    range: match c.data_type.as_str() {
                        "smallint" if postgres => Some((i16::MIN.into(), i16::MAX.into())),
                        "integer" if postgres => Some((i32::MIN.into(), i32::MAX.into())),
                        _ => None,
                    },
                    not_null: c.not_null,
                    json: c.data_type == "jsonb",
                    absent_unchecked: columns.is_empty(),
                })
            })
            .filter(ColumnRule::checks_anything)
            .collect();
        TableRules { columns }
    }

    /// Reads the columns of `table` and makes its rules (see [`TableRules::new`]).
    pub async fn read(
        db: &Db,
        table: &str,
        columns: &[(String, Field)],
        own: Option<&str>,
    ) -> Result<TableRules, sqlx::Error> {
        Ok(TableRules::new(
            &db.column_facts(table).await?,
            columns,
            own,
        ))
    }
}

/// Whether the JSON text `json` holds the escape `\u0000` (not an escaped backslash followed
/// by `u0000`).
fn escaped_nul(json: &str) -> bool {
    json.match_indices("\\u0000").any(|(at, _)| {
        let backslashes = json[..at].bytes().rev().take_while(|&b| b == b'\\').count();
        backslashes % 2 == 0
    })
}

impl Admission for TableRules {
    fn refuses(&self, record: &Record) -> Option<String> {
        self.columns.iter().find_map(|c| c.refuses(record))
    }
}

impl ColumnRule {
    /// Whether a value can fail it: a column that takes any value is not looked at (SQLite's,
    /// mostly).
    fn checks_anything(&self) -> bool {
        let converts_any = matches!(
            self.kind,
            BindKind::Native | BindKind::Text | BindKind::Json
        );
        !converts_any
            || self.not_null
            || self.no_nul
            || self.max_chars.is_some()
            || self.range.is_some()
    }

    /// Why the column cannot hold `text`.
    fn text_refused(&self, text: &str) -> Option<String> {
        let (column, field) = (&self.column, self.field);
        if self.no_nul && (text.as_bytes().contains(&0) || self.json && escaped_nul(text)) {
            return Some(format!(
                "column `{column}` cannot hold the NUL character in field `{field}`"
            ));
        }
        let max = self.max_chars?;
        // A text of at most `max` bytes has at most `max` characters.
        let chars = if text.len() <= max {
            0
        } else {
            text.chars().count()
        };
        // PostgreSQL cuts off spaces beyond the length rather than refusing them.
        let refused = chars > max && text.trim_end_matches(' ').chars().count() > max;
        refused.then(|| {
            format!("field `{field}` has {chars} characters; column `{column}` holds at most {max}")
        })
    }

    /// Why the column cannot hold the whole number `i`.
    fn int_refused(&self, i: i64) -> Option<String> {
        let (low, high) = self.range?;
        (!(low..=high).contains(&i)).then(|| {
            format!(
                "column `{}` holds {low} to {high}; field `{}` is {i}",
                self.column, self.field
            )
        })
    }

    fn refuses(&self, record: &Record) -> Option<String> {
        let (column, field) = (&self.column, self.field);
        let value = record.get(field);
        if value.is_none() && self.absent_unchecked {
            return None;
        }
        // The usual cases, without converting: a text for a text column, a whole number for
        // an integer column, a number for a float column.
        match (value, self.kind) {
            (Some(Value::Str(text)), BindKind::Text) => return self.text_refused(text),
            (Some(Value::Int(i)), BindKind::Int) => return self.int_refused(*i),
            (Some(Value::Int(_) | Value::Float(_)), BindKind::Float) => return None,
            _ => {}
        }
        let bound = match convert(value, self.kind) {
            Ok(bound) => bound,
            Err(e) => return Some(format!("column `{column}` (field `{field}`): {e}")),
        };
        match bound {
            Bound::Int(None) | Bound::Float(None) | Bound::Bool(None) | Bound::Text(None) => {
                self.not_null.then(|| {
                    format!("column `{column}` is NOT NULL and field `{field}` is missing or null")
                })
            }
            Bound::Text(Some(text)) => self.text_refused(&text),
            Bound::Int(Some(i)) => self.int_refused(i),
            Bound::Float(Some(_)) | Bound::Bool(Some(_)) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{Cast, Dialect};

    fn facts(name: &str, data_type: &str, max: Option<i32>, not_null: bool) -> ColumnFacts {
        let (kind, cast) = Dialect::postgres_column(data_type, "pg_catalog", data_type);
        ColumnFacts {
            name: name.into(),
            data_type: data_type.into(),
            max_chars: max,
            not_null,
            kind,
            cast,
        }
    }

    fn record(fields: &[(&str, Value)]) -> Record {
        let mut r = Record::with_capacity(fields.len());
        for (name, v) in fields {
            r.push(Field::new(name), v.clone());
        }
        r
    }

    #[test]
    fn each_postgres_refusal_is_found_with_its_column_and_field() {
        let table = [
            facts("transaction_id", "character varying", Some(8), true),
            facts("product_name", "character varying", Some(255), false),
            facts("product_quantity", "integer", None, false),
            facts("total", "double precision", None, false),
            facts("source_partition", "integer", None, true),
        ];
        let columns = [
            ("transaction_id".to_string(), Field::new("transactionId")),
            ("product_name".to_string(), Field::new("productName")),
            (
                "product_quantity".to_string(),
                Field::new("productQuantity"),
            ),
            ("total".to_string(), Field::new("totalAmount")),
        ];
        let rules = TableRules::new(&table, &columns, Some("source_partition"));
        let good = [
            ("transactionId", Value::Str("t-1".into())),
            ("productName", Value::Str("é".repeat(255).into())),
            ("productQuantity", Value::Int(2_147_483_647)),
            ("totalAmount", Value::Float(1.5)),
        ];
        assert_eq!(rules.refuses(&record(&good)), None);
        let with = |field: &str, v: Value| {
            let mut r = record(&good);
            r.set(Field::new(field), v);
            rules.refuses(&r).expect("refused")
        };
        assert_eq!(
            with("transactionId", Value::Str("123456789".into())),
            "field `transactionId` has 9 characters; column `transaction_id` holds at most 8"
        );
        assert_eq!(
            with("transactionId", Value::Null),
            "column `transaction_id` is NOT NULL and field `transactionId` is missing or null"
        );
        assert_eq!(
            with("productName", Value::Str("a\0b".into())),
            "column `product_name` cannot hold the NUL character in field `productName`"
        );
        assert_eq!(
            with("productQuantity", Value::Int(2_147_483_648)),
            "column `product_quantity` holds -2147483648 to 2147483647; field `productQuantity` \
             is 2147483648"
        );
        assert!(
            with("totalAmount", Value::Str("many".into()))
                .starts_with("column `total` (field `totalAmount`): ")
        );
    }

    #[test]
    fn sqlite_keeps_any_text_and_integer_but_not_a_null_in_a_not_null_column() {
        let sqlite = |name: &str, data_type: &str, not_null: bool| ColumnFacts {
            name: name.into(),
            data_type: data_type.into(),
            max_chars: None,
            not_null,
            kind: BindKind::Native,
            cast: Cast::None,
        };
        let table = [
            sqlite("id", "varchar(255)", true),
            sqlite("n", "integer", false),
        ];
        let rules = TableRules::new(&table, &[], None);
        let r = record(&[
            ("id", Value::Str(format!("a\0{}", "b".repeat(300)).into())),
            ("n", Value::Int(i64::MAX)),
        ]);
        assert_eq!(rules.refuses(&r), None);
        let e = rules
            .refuses(&record(&[("id", Value::Null)]))
            .expect("NOT NULL");
        assert!(e.contains("NOT NULL"), "{e}");
    }

    #[test]
    fn spaces_beyond_a_varchar_and_an_escaped_backslash_in_jsonb_are_not_refused() {
        let table = [
            facts("name", "character varying", Some(3), false),
            facts("doc", "jsonb", None, false),
        ];
        let rules = TableRules::new(&table, &[], None);
        let one = |field: &str, v: &str| rules.refuses(&record(&[(field, Value::Str(v.into()))]));
        assert_eq!(one("name", "abc   "), None);
        assert!(one("name", "abcd ").is_some());
        // A text for a jsonb column is stored as a JSON string: a NUL in it is `\u0000` there,
        // a backslash followed by `u0000` is `\\u0000`.
        assert!(one("doc", "a\0b").is_some());
        assert_eq!(one("doc", r"a\u0000b"), None);
    }

    #[test]
    fn without_columns_each_column_is_checked_from_the_field_of_its_name() {
        let table = [facts("name", "character varying", Some(3), false)];
        let rules = TableRules::new(&table, &[], None);
        assert!(
            rules
                .refuses(&record(&[("name", Value::Str("abcd".into()))]))
                .is_some()
        );
        assert!(
            rules
                .refuses(&record(&[("other", Value::Str("abcd".into()))]))
                .is_none()
        );
    }
}
