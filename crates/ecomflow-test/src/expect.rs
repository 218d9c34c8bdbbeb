//! An `expect` step: what a component's output must hold, and the message that shows the
//! expected and the actual records when it does not.

use crate::records::matches;
use ecomflow_core::Record;
use ecomflow_expr::Expr;
use serde_json::Value as Json;

/// What one `expect` step checks.
pub struct Expectation {
    /// The output checked: `id`, `id.port` or `dead_letter`.
    pub output: String,
    /// The records expected (every field, or with `subset` only those given).
    pub records: Option<Vec<Json>>,
    /// `match` rather than `records`: only the fields given are compared.
    pub subset: bool,
    /// An expression every record must make true.
    pub condition: Option<Expr>,
    /// How many records.
    pub count: Option<usize>,
    /// Only the last record of each value of these fields counts.
    pub latest_by: Option<Vec<String>>,
    /// The records must come in the order given.
    pub ordered: bool,
}

fn show(record: &Json) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

/// The last record of each value of `fields`, in the order those last records came; a
/// record without one of the fields is an error (a misspelt field would make one key).
fn latest(records: Vec<Record>, fields: &[String]) -> Result<Vec<Record>, String> {
    let mut keys = Vec::with_capacity(records.len());
    for r in &records {
        let json = r.to_json();
        let mut parts = Vec::with_capacity(fields.len());
        for f in fields {
            match json.get(f) {
                Some(v) => parts.push(v.clone()),
                None => {
                    return Err(format!(
                        "`latest_by`: a record has no field `{f}`\n  actual:   {}",
                        show(&json)
                    ));
                }
            }
        }
        keys.push(show(&Json::Array(parts)));
    }
    Ok(records
        .into_iter()
        .enumerate()
        .filter(|(at, _)| !keys[at + 1..].contains(&keys[*at]))
        .map(|(_, r)| r)
        .collect())
}

impl Expectation {
    /// Checks what the output emitted; the error shows what differs.
    pub fn check(&self, emitted: Vec<Record>) -> Result<(), String> {
        let emitted = match &self.latest_by {
            Some(fields) => latest(emitted, fields)?,
            None => emitted,
        };
        if self.condition.is_some()
            && self.count.is_none()
            && self.records.is_none()
            && emitted.is_empty()
        {
            return Err(
                "`condition` checks no record: nothing was emitted (add `count = 0` if that is \
                 expected)"
                    .into(),
            );
        }
        let actual: Vec<Json> = emitted.iter().map(Record::to_json).collect();
        if let Some(count) = self.count
            && count != actual.len()
        {
            return Err(format!(
                "expected {count} record{}, {} emitted{}",
                if count == 1 { "" } else { "s" },
                actual.len(),
                listing("emitted", &actual)
            ));
        }
        if let Some(condition) = &self.condition {
            for (record, json) in emitted.iter().zip(&actual) {
                match condition.is_true(record) {
                    Ok(true) => {}
                    Ok(false) => {
                        return Err(format!(
                            "`{}` is false for\n  actual:   {}",
                            condition.source(),
                            show(json)
                        ));
                    }
                    Err(e) => {
                        return Err(format!(
                            "`{}` cannot be evaluated ({e}) for\n  actual:   {}",
                            condition.source(),
                            show(json)
                        ));
                    }
                }
            }
        }
        match &self.records {
            Some(expected) if self.ordered => self.compare_in_order(expected, &actual),
            Some(expected) => self.compare_any_order(expected, &actual),
            None => Ok(()),
        }
    }

    fn compare_in_order(&self, expected: &[Json], actual: &[Json]) -> Result<(), String> {
        for (at, (e, a)) in expected.iter().zip(actual).enumerate() {
            if !matches(e, a, self.subset) {
                return Err(format!(
                    "record {} differs\n  expected: {}\n  actual:   {}",
                    at + 1,
                    show(e),
                    show(a)
                ));
            }
        }
        if expected.len() != actual.len() {
            return Err(format!(
                "expected {} records, {} emitted{}{}",
                expected.len(),
                actual.len(),
                listing("expected", expected),
                listing("emitted", actual)
            ));
        }
        Ok(())
    }

    fn compare_any_order(&self, expected: &[Json], actual: &[Json]) -> Result<(), String> {
        let mut used = vec![false; actual.len()];
        let mut missing = Vec::new();
        for e in expected {
            match (0..actual.len()).find(|&i| !used[i] && matches(e, &actual[i], self.subset)) {
                Some(i) => used[i] = true,
                None => missing.push(e.clone()),
            }
        }
        let unexpected: Vec<Json> = actual
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(a, _)| a.clone())
            .collect();
        if missing.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        Err(format!(
            "expected {} record{}, {} emitted; {} expected not emitted, {} emitted not expected{}{}",
            expected.len(),
            if expected.len() == 1 { "" } else { "s" },
            actual.len(),
            missing.len(),
            unexpected.len(),
            listing("expected", &missing),
            listing("actual", &unexpected)
        ))
    }
}

fn listing(label: &str, records: &[Json]) -> String {
    records
        .iter()
        .map(|r| format!("\n  {:<9} {}", format!("{label}:"), show(r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomflow_json::JsonDecoder;
    use serde_json::json;

    fn records(lines: &[&str]) -> Vec<Record> {
        let mut d = JsonDecoder::new();
        lines
            .iter()
            .map(|l| d.decode(l.as_bytes()).expect("JSON"))
            .collect()
    }

    fn expecting(records: Vec<Json>, subset: bool) -> Expectation {
        Expectation {
            output: "x".into(),
            records: Some(records),
            subset,
            condition: None,
            count: None,
            latest_by: None,
            ordered: false,
        }
    }

    #[test]
    fn any_order_passes_and_a_difference_shows_both_records() {
        let got = records(&[r#"{"k":"a","n":1}"#, r#"{"k":"b","n":2}"#]);
        let e = expecting(vec![json!({"k":"b","n":2}), json!({"k":"a","n":1})], false);
        assert_eq!(e.check(got.clone()), Ok(()));
        let e = expecting(vec![json!({"k":"b","n":3}), json!({"k":"a","n":1})], false);
        let message = e.check(got).expect_err("differs");
        assert!(
            message.contains(r#"expected: {"k":"b","n":3}"#),
            "{message}"
        );
        assert!(
            message.contains(r#"actual:   {"k":"b","n":2}"#),
            "{message}"
        );
    }

    #[test]
    fn latest_by_keeps_the_last_row_of_each_key_and_count_counts_them() {
        let got = records(&[
            r#"{"k":"a","n":1}"#,
            r#"{"k":"b","n":2}"#,
            r#"{"k":"a","n":5}"#,
        ]);
        let mut e = expecting(vec![json!({"k":"a","n":5}), json!({"k":"b","n":2})], false);
        e.latest_by = Some(vec!["k".into()]);
        e.count = Some(2);
        e.ordered = true;
        assert!(e.check(got.clone()).is_err(), "b came before a's last row");
        e.ordered = false;
        assert_eq!(e.check(got.clone()), Ok(()));
        e.count = Some(3);
        assert!(
            e.check(got)
                .expect_err("differs")
                .starts_with("expected 3 records, 2 emitted")
        );
    }

    #[test]
    fn a_match_and_a_condition_check_what_they_name() {
        let got = records(&[r#"{"k":"a","n":1,"extra":true}"#]);
        assert_eq!(
            expecting(vec![json!({"n":1})], true).check(got.clone()),
            Ok(())
        );
        assert!(
            expecting(vec![json!({"n":1})], false)
                .check(got.clone())
                .is_err()
        );
        let mut e = expecting(vec![], true);
        e.records = None;
        e.condition = Some(Expr::compile("n > 1", &[]).expect("compiles"));
        let message = e.check(got).expect_err("differs");
        assert!(message.starts_with("`n > 1` is false for"), "{message}");
        assert!(
            expecting(vec![], false).check(Vec::new()).is_ok(),
            "no output"
        );
    }
}
