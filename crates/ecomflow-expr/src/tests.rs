//! Tests of expressions: what they compute, and the errors that name the expression.

use super::*;

fn record(pairs: &[(&str, Value)]) -> Record {
    let mut r = Record::default();
    for (k, v) in pairs {
        r.push(Field::new(k), v.clone());
    }
    r
}

#[test]
fn results_that_are_not_finite_numbers_are_errors_on_both_paths() {
    let rates = ExprValue::from_serialize(serde_json::json!({"USD": 1.0}));
    let constants = [("rates".to_string(), rates)];
    let huge = record(&[("a", Value::Float(1.7e308)), ("c", "USD".into())]);
    for source in [
        "(a * rates[c]) | round(2)",
        "a * 10",
        "a + a",
        "a * rates[c] * 2",
    ] {
        let e = Expr::compile(source, &constants).expect("compiles");
        let err = e.eval(&huge).expect_err(source);
        assert!(err.0.contains("gives infinity"), "{source}: {err}");
        assert!(
            e.eval(&record(&[("a", Value::Float(2.5)), ("c", "USD".into())]))
                .is_ok(),
            "{source}"
        );
    }
    let nan = Expr::compile("a - a", &[]).expect("compiles");
    let inf = record(&[("a", Value::Float(f64::INFINITY))]);
    assert!(nan.eval(&inf).expect_err("NaN").0.contains("NaN"));
}

#[test]
fn compares_and_computes_with_constants() {
    let rates = ExprValue::from_serialize(serde_json::json!({"EUR": 2.0}));
    let e =
        Expr::compile("amount * rates[currency]", &[("rates".into(), rates)]).expect("compiles");
    let r = record(&[("amount", Value::Float(1.5)), ("currency", "EUR".into())]);
    assert_eq!(e.eval(&r).expect("evals"), Value::Float(3.0));
    assert_eq!(
        e.fields().map(|f| f.name()).collect::<Vec<_>>(),
        ["amount", "currency"]
    );

    let f = Expr::compile("status == 'success'", &[]).expect("compiles");
    assert!(
        f.is_true(&record(&[("status", "success".into())]))
            .expect("ok")
    );
    assert!(
        !f.is_true(&record(&[("status", "failed".into())]))
            .expect("ok")
    );
}

#[test]
fn missing_field_and_wrong_type_are_errors_that_say_so() {
    let f = Expr::compile("status == 'success'", &[]).expect("compiles");
    let e = f.is_true(&record(&[])).expect_err("missing");
    assert!(e.0.contains("missing field `status`"), "{e}");

    let m = Expr::compile("price + 1", &[]).expect("compiles");
    let e = m
        .eval(&record(&[("price", "cheap".into())]))
        .expect_err("wrong type");
    assert!(e.0.contains("price + 1"), "{e}");
}

#[test]
fn event_time_is_a_variable_with_time_filters() {
    let e = Expr::compile("event_time | timestamp", &[]).expect("compiles");
    let mut r = record(&[]);
    let err = e.eval(&r).expect_err("no time yet");
    assert!(err.0.contains("has no event time"), "{err}");
    r.set_time(1_752_928_496_123_456);
    assert_eq!(
        e.eval(&r).expect("ok"),
        Value::from("2025-07-19 12:34:56.123456")
    );
    let d = Expr::compile("event_time | date", &[]).expect("compiles");
    assert_eq!(d.eval(&r).expect("ok"), Value::from("2025-07-19"));
}

#[test]
fn syntax_errors_fail_to_compile() {
    let e = Expr::compile("status ==", &[]).expect_err("broken");
    assert!(e.0.contains("syntax error"), "{e}");
}

/// Found by the loader's property test: `- - ... - 1` and `a + a + ... + a` overflowed
/// the stack in minijinja's parser and compiler instead of failing to compile.
#[test]
fn chains_too_long_to_compile_are_refused_without_overflowing_the_stack() {
    for long in [
        format!("{}1", "-".repeat(20_000)),
        format!("{}a", "not ".repeat(20_000)),
        format!("{}a", "a + ".repeat(20_000)),
        format!("a{}", " | abs".repeat(20_000)),
        format!("a{}", ".b".repeat(20_000)),
        format!("{}a", "a if b else ".repeat(20_000)),
    ] {
        let e = Expr::compile(&long, &[]).expect_err("too long");
        assert!(e.0.contains("more than 256 operators"), "{e}");
    }
    // Up to the limit it compiles, and a long list is one bracket.
    let at_limit = format!("{}a", "a + ".repeat(MAX_OPERATORS));
    let e = Expr::compile(&at_limit, &[]).expect("compiles");
    let r = record(&[("a", Value::Int(1))]);
    assert_eq!(e.eval(&r).expect("ok"), Value::Int(257));
    let list: Vec<String> = (0..5000).map(|i| format!("'c{i}'")).collect();
    let e = Expr::compile(&format!("a in [{}]", list.join(", ")), &[]).expect("compiles");
    assert!(!e.is_true(&r).expect("ok"));
}

/// Found by the loader's property test: after a `}}`, minijinja's lexer panicked with
/// "empty lexer stack" instead of reporting a syntax error.
#[test]
fn a_closing_brace_pair_inside_an_expression_is_a_syntax_error_not_a_panic() {
    for source in [
        "a }} b",
        "}} }}",
        "a }} }} b",
        "a -}} b",
        "x == 1 }}{{ y",
        "a %} b",
    ] {
        let e = Expr::compile(source, &[]).expect_err("broken");
        assert!(e.0.contains("syntax error"), "{source}: {e}");
    }
}
