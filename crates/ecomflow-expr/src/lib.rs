//! ecomflow-expr: expressions (minijinja syntax) compiled once and evaluated per record, as
//! `filter`, `map` and `validate` use them.
//!
//! Simple expressions run on a native evaluator (`native.rs`) that falls back to minijinja
//! for any case it does not handle exactly, so results are always minijinja's.
//!
//! Each expression is given only the variables it uses, found at build time; a variable is
//! either a record field or a constant (a lookup table from the config). Undefined variables
//! are errors, so a record that lacks a field the expression reads is dead-lettered rather
//! than silently compared as empty.

mod native;
mod values;

pub use minijinja;
pub use values::{from_expr, to_expr};

use ecomflow_core::{Field, Record, Value};
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
        ecomflow_time::write_timestamp(us, &mut s);
        s
    });
    env.add_filter("date", |us: i64| {
        let mut s = String::with_capacity(10);
        ecomflow_time::write_date(us.div_euclid(ecomflow_time::US_PER_DAY), &mut s);
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
            None => self
                .eval_minijinja(record)
                .map(|v| crate::values::from_expr(&v))?,
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
                Binding::Field(f) => record.get(*f).map(crate::values::to_expr),
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
mod tests;

#[cfg(test)]
mod native_agrees_with_minijinja;
