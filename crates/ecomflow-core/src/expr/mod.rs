//! Expressions (minijinja syntax) compiled once and evaluated per record.
//!
//! Simple expressions run on a native evaluator (`native.rs`) that falls back to minijinja
//! for any case it does not handle exactly, so results are always minijinja's.
//!
//! Each expression is given only the variables it uses, found at build time; a variable is
//! either a record field or a constant (a lookup table from the config). Undefined variables
//! are errors, so a record that lacks a field the expression reads is dead-lettered rather
//! than silently compared as empty.

mod native;

use crate::field::Field;
use crate::record::Record;
use crate::value::Value;
use minijinja::value::{Object, Value as ExprValue};
use minijinja::{Environment, Expression, UndefinedBehavior};
use std::sync::{Arc, LazyLock};

/// The variable that holds a record's event time (microseconds since 1970 UTC).
pub const EVENT_TIME: &str = "event_time";

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("timestamp", |us: i64| {
        let mut s = String::with_capacity(26);
        crate::time::write_timestamp(us, &mut s);
        s
    });
    env.add_filter("date", |us: i64| {
        let mut s = String::with_capacity(10);
        crate::time::write_date(us.div_euclid(crate::time::US_PER_DAY), &mut s);
        s
    });
    env
});

/// A compiled expression with its variables resolved.
pub struct Expr {
    source: Arc<str>,
    compiled: Expression<'static, 'static>,
    names: Arc<[Arc<str>]>,
    bindings: Box<[Binding]>,
    native: Option<native::Node>,
}

enum Binding {
    Field(Field),
    Constant(ExprValue),
    EventTime,
}

/// An expression that does not compile, or that failed on one record.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ExprError(pub String);

impl Expr {
    /// Compiles `source`. Names found in `constants` are bound to those values; every other
    /// variable is a record field.
    pub fn compile(source: &str, constants: &[(String, ExprValue)]) -> Result<Expr, ExprError> {
        check_before_parsing(source)?;
        let compiled = ENV
            .compile_expression_owned(source.to_string())
            .map_err(|e| ExprError(describe(&e)))?;
        let mut vars: Vec<String> = compiled.undeclared_variables(false).into_iter().collect();
        vars.sort();
        let bindings = vars
            .iter()
            .map(|name| match constants.iter().find(|(n, _)| n == name) {
                Some((_, value)) => Binding::Constant(value.clone()),
                None if name == EVENT_TIME => Binding::EventTime,
                None => Binding::Field(Field::new(name)),
            })
            .collect();
        Ok(Expr {
            source: source.into(),
            compiled,
            names: vars.into_iter().map(Arc::from).collect(),
            bindings,
            native: native::compile(source, constants),
        })
    }

    /// The expression's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The record fields the expression reads.
    pub fn fields(&self) -> impl Iterator<Item = Field> + '_ {
        self.bindings.iter().filter_map(|b| match b {
            Binding::Field(f) => Some(*f),
            Binding::Constant(_) | Binding::EventTime => None,
        })
    }

    /// True when the expression runs on the native evaluator (for most records).
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Evaluates against `record`. A result that is not a finite number (an overflow to
    /// infinity, a NaN) is an error: no table, index or checkpoint may hold one.
    pub fn eval(&self, record: &Record) -> Result<Value, ExprError> {
        let value = match self.native.as_ref().and_then(|n| n.eval(record)) {
            Some(v) => v,
            None => self.eval_minijinja(record).map(|v| Value::from_expr(&v))?,
        };
        match value {
            Value::Float(f) if !f.is_finite() => Err(ExprError(format!(
                "`{}` gives {} for this record, not a finite number",
                self.source,
                if f.is_nan() { "NaN" } else { "infinity" }
            ))),
            v => Ok(v),
        }
    }

    /// Evaluates against `record` and takes the result's truth (Jinja rules: empty, zero,
    /// none and false are false).
    pub fn is_true(&self, record: &Record) -> Result<bool, ExprError> {
        if let Some(t) = self.native.as_ref().and_then(|n| n.is_true(record)) {
            return Ok(t);
        }
        self.eval_minijinja(record).map(|v| v.is_true())
    }

    /// Evaluates with minijinja alone (the reference semantics).
    pub fn eval_minijinja(&self, record: &Record) -> Result<ExprValue, ExprError> {
        let values = self
            .bindings
            .iter()
            .map(|b| match b {
                Binding::Field(f) => record.get(*f).map(|v| v.to_expr()),
                Binding::Constant(c) => Some(c.clone()),
                Binding::EventTime => record.time().map(ExprValue::from),
            })
            .collect();
        let vars = Vars {
            names: self.names.clone(),
            values,
        };
        self.compiled
            .eval(ExprValue::from_object(vars))
            .map_err(|e| self.explain(record, &e))
    }

    fn explain(&self, record: &Record, e: &minijinja::Error) -> ExprError {
        if record.time().is_none()
            && self
                .bindings
                .iter()
                .any(|b| matches!(b, Binding::EventTime))
        {
            return ExprError(format!(
                "the record has no event time (needed by `{}`): set `event_time` on the source that reads it",
                self.source
            ));
        }
        let missing: Vec<&str> = self
            .fields()
            .filter(|f| record.get(*f).is_none())
            .map(|f| f.name())
            .collect();
        if !missing.is_empty() {
            return ExprError(format!(
                "missing field {} (needed by `{}`)",
                missing
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.source
            ));
        }
        ExprError(format!("`{}` failed: {}", self.source, describe(e)))
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expr").field(&self.source).finish()
    }
}

/// The most operators, filters, calls and brackets an expression may have. Each one can nest
/// the expression a level deeper, and minijinja's parser and compiler (like the native
/// evaluator) recurse once per level: a chain such as `a + a + ... + a` or `- - ... - 1`
/// escapes minijinja's own nesting limit, and a few thousand links overflow the stack.
pub const MAX_OPERATORS: usize = 256;

/// Refuses, before minijinja parses it, an expression that minijinja 2.24 would not refuse
/// by itself: one with more than [`MAX_OPERATORS`] (its parser or compiler overflows the
/// stack), or with `}}` and more after it (its lexer panics with "empty lexer stack").
fn check_before_parsing(source: &str) -> Result<(), ExprError> {
    use minijinja::machinery::{Token, WhitespaceConfig, tokenize};
    let tokens = tokenize(
        source,
        true,
        Default::default(),
        WhitespaceConfig::default(),
    );
    let mut operators = 0;
    // A token the lexer refuses ends the scan: compiling reports it.
    for (token, _) in tokens.map_while(Result::ok) {
        let nests = match token {
            // The lexer leaves expression mode here; asking it for the next token panics.
            Token::VariableEnd | Token::BlockEnd => {
                return Err(ExprError(
                    "syntax error: unexpected `}}` (an expression is written without `{{ }}`)"
                        .into(),
                ));
            }
            Token::Ident(word) => {
                matches!(word, "and" | "or" | "not" | "is" | "in" | "if" | "else")
            }
            Token::Str(_)
            | Token::String(_)
            | Token::Int(_)
            | Token::Int128(_)
            | Token::Float(_)
            | Token::Comma
            | Token::Colon
            | Token::Assign
            | Token::BracketClose
            | Token::ParenClose
            | Token::BraceClose => false,
            _ => true,
        };
        operators += usize::from(nests);
        if operators > MAX_OPERATORS {
            return Err(ExprError(format!(
                "syntax error: more than {MAX_OPERATORS} operators, filters and brackets; split the expression up (a long list of alternatives can be `x in [...]`)"
            )));
        }
    }
    Ok(())
}

fn describe(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

#[derive(Debug)]
struct Vars {
    names: Arc<[Arc<str>]>,
    values: Vec<Option<ExprValue>>,
}

impl Object for Vars {
    fn get_value(self: &Arc<Self>, key: &ExprValue) -> Option<ExprValue> {
        let key = key.as_str()?;
        let at = self.names.iter().position(|n| &**n == key)?;
        self.values[at].clone()
    }
}

#[cfg(test)]
mod tests {
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
        let e = Expr::compile("amount * rates[currency]", &[("rates".into(), rates)])
            .expect("compiles");
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
}

#[cfg(test)]
mod native_agrees_with_minijinja {
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
                        let want = Value::from_expr(want);
                        let both_nan = matches!((&v, &want), (Value::Float(x), Value::Float(y)) if x.is_nan() && y.is_nan());
                        assert!(
                            both_nan || v == want,
                            "{source} on {r:?}: {v:?} vs {want:?}"
                        )
                    }
                    (Err(_), Err(_)) => {}
                    // Both paths refuse a result that is not a finite number.
                    (Err(e), Ok(want))
                        if matches!(Value::from_expr(want), Value::Float(f) if !f.is_finite())
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
}
