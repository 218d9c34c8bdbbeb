//! The native evaluator against minijinja: the same expressions on the same records give the same values.

use super::*;

fn rates() -> Vec<(String, ExprValue)> {
    vec![(
        "rates".into(),
        ExprValue::from_serialize(serde_json::json!({"USD": 1.0, "EUR": 1.08, "JPY": 0.0067})),
    )]
}

fn records() -> Vec<Record> {
    let rows = [
        serde_json::json!({"s": "success", "a": 12.345, "q": 3, "c": "EUR", "b": true}),
        serde_json::json!({"s": "failed", "a": 0.0, "q": 0, "c": "JPY", "b": false}),
        serde_json::json!({"s": "", "a": -7.5, "q": 9223372036854775807i64, "c": "XXX", "b": null}),
        serde_json::json!({"s": 5, "a": "text", "q": 2.5, "c": 1, "b": "yes"}),
        serde_json::json!({"q": 1}),
    ];
    rows.into_iter()
        .map(|row| {
            let mut r = Record::default();
            for (k, v) in row.as_object().expect("object") {
                r.push(Field::new(k), Value::from_json(v.clone()));
            }
            if r.len() > 1 {
                r.set_time(1_752_928_496_123_456);
            }
            r
        })
        .collect()
}

const EXPRESSIONS: &[&str] = &[
    "event_time | timestamp",
    "event_time | date",
    "event_time > 0",
    "s == 'success'",
    "s != 'success'",
    "a > 1",
    "a <= q",
    "q >= 3 and s == 'success'",
    "q < 1 or a",
    "not b",
    "-a",
    "a * q",
    "a + q - 1",
    "q * q",
    "a / q",
    "(a * rates[c]) | round(2)",
    "q | round",
    "rates[c] * 2",
    "b == true",
    "(event_time | date) == '2025-07-19'",
    "not s",
    "s == b",
    "q / 0",
    "a and s",
    "b or c",
    "rates[s]",
    "-(q * 2) < a",
    "q > 0",
    "0 < q",
    "s == 'failed'",
    "a - q * 2 < 0.005",
    "a * 2 == 24.69",
    "q - 1 != 2",
    "c == 1",
    "b != false",
    "a - q * a < 0.005 and q * a - a < 0.005",
    "a * q > 1",
    "(a + 1) * 2 >= q",
    "q * 2 - q",
    "q * q * q > 0",
    "-a < q",
    "event_time - 1 > q",
    "rates[c] * q < a",
    "(q or a) * 2",
    "s < 'z'",
    "b > 0",
    "a / 0 > 1",
];

#[test]
fn every_expression_and_record_gives_the_same_result() {
    let constants = rates();
    for source in EXPRESSIONS {
        let e = Expr::compile(source, &constants).expect("compiles");
        assert!(e.is_native(), "{source} should compile natively");
        for r in records() {
            let reference = e.eval_minijinja(&r);
            match (e.eval(&r), &reference) {
                (Ok(v), Ok(want)) => {
                    let want = crate::values::from_expr(want);
                    let both_nan = matches!((&v, &want), (Value::Float(x), Value::Float(y)) if x.is_nan() && y.is_nan());
                    assert!(
                        both_nan || v == want,
                        "{source} on {r:?}: {v:?} vs {want:?}"
                    )
                }
                (Err(_), Err(_)) => {}
                // Both paths refuse a result that is not a finite number.
                (Err(e), Ok(want))
                    if matches!(crate::values::from_expr(want), Value::Float(f) if !f.is_finite())
                        && e.0.contains("not a finite number") => {}
                (got, want) => panic!("{source} on {r:?}: {got:?} vs {want:?}"),
            }
            let truth = e.is_true(&r).map_err(|_| ());
            let want = reference.map(|v| v.is_true()).map_err(|_| ());
            assert_eq!(truth, want, "truth of {source} on {r:?}");
        }
    }
}

#[test]
fn other_expressions_use_minijinja() {
    let e = Expr::compile("s | upper", &[]).expect("compiles");
    assert!(!e.is_native());
}
