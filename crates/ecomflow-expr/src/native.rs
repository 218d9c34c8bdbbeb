//! A native evaluator for the common, simple expressions (field and constant comparisons,
//! arithmetic, `and`/`or`/`not`, lookups in constant tables, `round`), with minijinja's
//! semantics for the types it handles. Whenever it meets a case it does not handle exactly
//! (another type, a missing field, an overflow), it answers `None` and the caller evaluates
//! with minijinja itself, so the results never differ.

use compact_str::CompactString;
use ecomflow_core::{Field, Record, Value};
use minijinja::machinery::ast;
use minijinja::value::Value as ExprValue;
use std::sync::atomic::{self, AtomicUsize};

/// A compiled native expression tree.
#[derive(Debug)]
pub enum Node {
    /// A record field, and where it was in the last record.
    Field(Field, AtomicUsize),
    /// The record's event time (microseconds).
    EventTime,
    /// `x | timestamp`: microseconds as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC).
    Timestamp(Box<Node>),
    /// `x | date`: microseconds as `YYYY-MM-DD` (UTC).
    Date(Box<Node>),
    /// A constant.
    Const(Value),
    /// `table[key]` on a constant table of scalars.
    Lookup(foldhash::HashMap<String, Value>, Box<Node>),
    /// `not x`.
    Not(Box<Node>),
    /// `-x`.
    Neg(Box<Node>),
    /// `x | round(p)`, with `10^p`, the scale it rounds at.
    Round(Box<Node>, f64),
    /// A binary operation.
    Bin(Op, Box<Node>, Box<Node>),
    /// A binary operation (not `and`, `or`) of an expression and a constant, such as
    /// `x - y < 0.005`: one step fewer.
    BinConst(Op, Box<Node>, Value),
    /// A binary operation (not `and`, `or`) of a field and a constant, such as
    /// `paymentStatus == 'success'` or `productPrice > 0`: the commonest condition, in one step.
    FieldConst(Op, Field, AtomicUsize, Value),
}

/// The binary operations evaluated natively.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

/// Compiles `source` natively, or `None` when it uses anything not handled here.
pub fn compile(source: &str, constants: &[(String, ExprValue)]) -> Option<Node> {
    let ast = minijinja::machinery::parse_expr(source).ok()?;
    node(&ast, constants)
}

fn node(e: &ast::Expr<'_>, constants: &[(String, ExprValue)]) -> Option<Node> {
    Some(match e {
        ast::Expr::Var(v) => match constants.iter().find(|(n, _)| n == v.id) {
            Some((_, c)) => Node::Const(scalar(c)?),
            None if v.id == super::EVENT_TIME => Node::EventTime,
            None => Node::Field(Field::new(v.id), AtomicUsize::new(0)),
        },
        ast::Expr::Const(c) => Node::Const(scalar(&c.value)?),
        ast::Expr::UnaryOp(u) => {
            let inner = Box::new(node(&u.expr, constants)?);
            match u.op {
                ast::UnaryOpKind::Not => Node::Not(inner),
                ast::UnaryOpKind::Neg => Node::Neg(inner),
            }
        }
        ast::Expr::BinOp(b) => {
            let op = match b.op {
                ast::BinOpKind::Eq => Op::Eq,
                ast::BinOpKind::Ne => Op::Ne,
                ast::BinOpKind::Lt => Op::Lt,
                ast::BinOpKind::Lte => Op::Lte,
                ast::BinOpKind::Gt => Op::Gt,
                ast::BinOpKind::Gte => Op::Gte,
                ast::BinOpKind::ScAnd => Op::And,
                ast::BinOpKind::ScOr => Op::Or,
                ast::BinOpKind::Add => Op::Add,
                ast::BinOpKind::Sub => Op::Sub,
                ast::BinOpKind::Mul => Op::Mul,
                ast::BinOpKind::Div => Op::Div,
                _ => return None,
            };
            let left = node(&b.left, constants)?;
            match (op, left, node(&b.right, constants)?) {
                (Op::And | Op::Or, left, right) => Node::Bin(op, Box::new(left), Box::new(right)),
                (_, Node::Field(f, hint), Node::Const(c)) => Node::FieldConst(op, f, hint, c),
                (_, left, Node::Const(c)) => Node::BinConst(op, Box::new(left), c),
                (_, left, right) => Node::Bin(op, Box::new(left), Box::new(right)),
            }
        }
        ast::Expr::GetItem(g) => {
            let ast::Expr::Var(v) = &g.expr else {
                return None;
            };
            let (_, table) = constants.iter().find(|(n, _)| n == v.id)?;
            let json = serde_json::to_value(table).ok()?;
            let map = json
                .as_object()?
                .iter()
                .map(|(k, v)| match Value::from_json(v.clone()) {
                    Value::Nested(_) => None,
                    scalar => Some((k.clone(), scalar)),
                })
                .collect::<Option<foldhash::HashMap<_, _>>>()?;
            Node::Lookup(map, Box::new(node(&g.subscript_expr, constants)?))
        }
        ast::Expr::Filter(f) if matches!(f.name, "timestamp" | "date") && f.args.is_empty() => {
            let inner = Box::new(node(f.expr.as_ref()?, constants)?);
            if f.name == "timestamp" {
                Node::Timestamp(inner)
            } else {
                Node::Date(inner)
            }
        }
        ast::Expr::Filter(f) if f.name == "round" => {
            let inner = Box::new(node(f.expr.as_ref()?, constants)?);
            let precision = match f.args.as_slice() {
                [] => 0,
                [ast::CallArg::Pos(ast::Expr::Const(c))] => {
                    i32::try_from(c.value.as_i64()?).ok()?
                }
                _ => return None,
            };
            Node::Round(inner, 10f64.powi(precision))
        }
        _ => return None,
    })
}

fn scalar(v: &ExprValue) -> Option<Value> {
    match crate::values::from_expr(v) {
        Value::Nested(_) => None,
        s => Some(s),
    }
}

/// A value met while evaluating: scalars by value, strings and nested values borrowed from
/// the record or the expression, so that evaluating allocates nothing.
#[derive(Clone, Copy)]
enum Scalar<'r> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string, its text read only when an operation needs it.
    Str(&'r CompactString),
    Nested(&'r Value),
}

impl<'r> Scalar<'r> {
    #[inline(always)]
    fn of(v: &'r Value) -> Scalar<'r> {
        match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Int(i) => Scalar::Int(*i),
            Value::Float(f) => Scalar::Float(*f),
            Value::Str(s) => Scalar::Str(s),
            Value::Nested(_) => Scalar::Nested(v),
        }
    }

    /// Jinja truth; `None` for nested values.
    fn truthy(self) -> Option<bool> {
        Some(match self {
            Scalar::Null => false,
            Scalar::Bool(b) => b,
            Scalar::Int(i) => i != 0,
            Scalar::Float(f) => f != 0.0,
            Scalar::Str(s) => !s.is_empty(),
            Scalar::Nested(_) => return None,
        })
    }

    fn num(self) -> Num {
        match self {
            Scalar::Int(i) => Num::Int(i),
            Scalar::Float(f) => Num::Float(f),
            _ => Num::Not,
        }
    }

    fn into_value(self) -> Value {
        match self {
            Scalar::Null => Value::Null,
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Int(i) => Value::Int(i),
            Scalar::Float(f) => Value::Float(f),
            Scalar::Str(s) => Value::Str(s.clone()),
            Scalar::Nested(v) => v.clone(),
        }
    }
}

/// A number met while evaluating arithmetic and order comparisons, the only operations
/// whose operands must be numbers: small enough to come back from a call in registers.
#[derive(Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
    /// Not a number (or an overflow): minijinja decides.
    Not,
}

impl Num {
    #[inline(always)]
    fn of(v: &Value) -> Num {
        match v {
            Value::Int(i) => Num::Int(*i),
            Value::Float(f) => Num::Float(*f),
            _ => Num::Not,
        }
    }

    fn scalar<'r>(self) -> Option<Scalar<'r>> {
        match self {
            Num::Int(i) => Some(Scalar::Int(i)),
            Num::Float(f) => Some(Scalar::Float(f)),
            Num::Not => None,
        }
    }

    /// `a op b` for `+ - * /`, as minijinja computes it: integers stay integers (an
    /// overflow is left to minijinja), a float on either side makes a float, `/` always does.
    #[inline(always)]
    fn arithmetic(op: Op, a: Num, b: Num) -> Num {
        match (op, a, b) {
            (_, Num::Not, _) | (_, _, Num::Not) => Num::Not,
            (Op::Add, Num::Int(x), Num::Int(y)) => x.checked_add(y).map_or(Num::Not, Num::Int),
            (Op::Sub, Num::Int(x), Num::Int(y)) => x.checked_sub(y).map_or(Num::Not, Num::Int),
            (Op::Mul, Num::Int(x), Num::Int(y)) => x.checked_mul(y).map_or(Num::Not, Num::Int),
            (Op::Add, a, b) => Num::Float(a.f64() + b.f64()),
            (Op::Sub, a, b) => Num::Float(a.f64() - b.f64()),
            (Op::Mul, a, b) => Num::Float(a.f64() * b.f64()),
            (Op::Div, a, b) => Num::Float(a.f64() / b.f64()),
            _ => Num::Not,
        }
    }

    /// How `a` compares with `b`: `None` when either is not a number, or for NaN.
    #[inline(always)]
    fn cmp(a: Num, b: Num) -> Option<std::cmp::Ordering> {
        match (a, b) {
            (Num::Not, _) | (_, Num::Not) => None,
            (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
            (a, b) => a.f64().partial_cmp(&b.f64()),
        }
    }

    /// `a op b` for `< <= > >=`: `None` when either is not a number, or for NaN.
    #[inline(always)]
    fn order(op: Op, a: Num, b: Num) -> Option<bool> {
        use std::cmp::Ordering;
        let order = Num::cmp(a, b)?;
        Some(match op {
            Op::Lt => order == Ordering::Less,
            Op::Lte => order != Ordering::Greater,
            Op::Gt => order == Ordering::Greater,
            Op::Gte => order != Ordering::Less,
            _ => return None,
        })
    }

    #[inline(always)]
    fn f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
            Num::Not => f64::NAN,
        }
    }
}

impl Op {
    fn is_arithmetic(self) -> bool {
        matches!(self, Op::Add | Op::Sub | Op::Mul | Op::Div)
    }

    fn is_order(self) -> bool {
        matches!(self, Op::Lt | Op::Lte | Op::Gt | Op::Gte)
    }
}

impl Node {
    /// Evaluates against `record`, or `None` when minijinja must decide.
    pub fn eval(&self, record: &Record) -> Option<Value> {
        match self {
            Node::Timestamp(x) => {
                let Scalar::Int(us) = x.scalar(record)? else {
                    return None;
                };
                let mut s = String::with_capacity(26);
                ecomflow_time::write_timestamp(us, &mut s);
                Some(Value::from(s))
            }
            Node::Date(x) => {
                let Scalar::Int(us) = x.scalar(record)? else {
                    return None;
                };
                let mut s = String::with_capacity(10);
                ecomflow_time::write_date(us.div_euclid(ecomflow_time::US_PER_DAY), &mut s);
                Some(Value::from(s))
            }
            _ => self.scalar(record).map(Scalar::into_value),
        }
    }

    /// The truth of the result for `record`, or `None` when minijinja must decide.
    pub fn is_true(&self, record: &Record) -> Option<bool> {
        match self {
            Node::Timestamp(_) | Node::Date(_) => Scalar::of(&self.eval(record)?).truthy(),
            _ => self.scalar(record)?.truthy(),
        }
    }

    /// An operand of arithmetic or an order comparison, as a number; a field or a constant
    /// is read here, without a call.
    #[inline(always)]
    fn num_operand(&self, record: &Record) -> Num {
        match self {
            Node::Field(f, hint) => field_num(record, *f, hint),
            Node::Const(c) => Num::of(c),
            _ => self.number(record),
        }
    }

    /// The node's value when it is a number, `Num::Not` otherwise. Arithmetic is computed
    /// here, on numbers alone (what minijinja computes on anything else is left to it).
    fn number(&self, record: &Record) -> Num {
        match self {
            Node::Bin(op, l, r) if op.is_arithmetic() => {
                Num::arithmetic(*op, l.num_operand(record), r.num_operand(record))
            }
            Node::BinConst(op, l, c) if op.is_arithmetic() => {
                Num::arithmetic(*op, l.num_operand(record), Num::of(c))
            }
            Node::FieldConst(op, f, hint, c) if op.is_arithmetic() => {
                Num::arithmetic(*op, field_num(record, *f, hint), Num::of(c))
            }
            Node::Field(..) | Node::Const(_) => self.num_operand(record),
            Node::EventTime => record.time().map_or(Num::Not, Num::Int),
            _ => self.scalar(record).map_or(Num::Not, Scalar::num),
        }
    }

    /// An operand of a larger expression: a field or a constant is read here, without the
    /// call that evaluating any other node takes (the calls cost the evaluator a quarter of
    /// its instructions).
    #[inline(always)]
    fn operand<'r>(&'r self, record: &'r Record) -> Option<Scalar<'r>> {
        match self {
            Node::Field(f, hint) => field(record, *f, hint),
            Node::Const(c) => Some(Scalar::of(c)),
            _ => self.scalar(record),
        }
    }

    /// Evaluates without allocating. A date or timestamp inside a larger expression (its
    /// string would need one) is left to minijinja.
    fn scalar<'r>(&'r self, record: &'r Record) -> Option<Scalar<'r>> {
        Some(match self {
            Node::Field(f, hint) => field(record, *f, hint)?,
            Node::EventTime => Scalar::Int(record.time()?),
            Node::Timestamp(_) | Node::Date(_) => return None,
            Node::Const(c) => Scalar::of(c),
            Node::Lookup(table, key) => {
                let Scalar::Str(key) = key.operand(record)? else {
                    return None;
                };
                Scalar::of(table.get(key.as_str())?)
            }
            Node::Not(x) => Scalar::Bool(!x.operand(record)?.truthy()?),
            Node::Neg(x) => match x.operand(record)? {
                Scalar::Int(i) => Scalar::Int(i.checked_neg()?),
                Scalar::Float(f) => Scalar::Float(-f),
                _ => return None,
            },
            Node::Round(x, scale) => match x.operand(record)? {
                Scalar::Int(i) => Scalar::Int(i),
                Scalar::Float(f) => Scalar::Float((scale * f).round() / scale),
                _ => return None,
            },
            Node::Bin(Op::And, l, r) => {
                let left = l.operand(record)?;
                if left.truthy()? {
                    r.operand(record)?
                } else {
                    left
                }
            }
            Node::Bin(Op::Or, l, r) => {
                let left = l.operand(record)?;
                if left.truthy()? {
                    left
                } else {
                    r.operand(record)?
                }
            }
            Node::Bin(op, _, _) | Node::BinConst(op, _, _) | Node::FieldConst(op, ..)
                if op.is_arithmetic() =>
            {
                self.number(record).scalar()?
            }
            Node::Bin(op, l, r) if op.is_order() => Scalar::Bool(Num::order(
                *op,
                l.num_operand(record),
                r.num_operand(record),
            )?),
            Node::BinConst(op, l, c) if op.is_order() => {
                Scalar::Bool(Num::order(*op, l.num_operand(record), Num::of(c))?)
            }
            Node::FieldConst(op, f, hint, c) if op.is_order() => {
                Scalar::Bool(Num::order(*op, field_num(record, *f, hint), Num::of(c))?)
            }
            // What is left is `==` and `!=`.
            Node::Bin(op, l, r) => is(*op, equal(l.operand(record)?, r.operand(record)?)?),
            Node::BinConst(op, l, c) => is(*op, equal(l.operand(record)?, Scalar::of(c))?),
            Node::FieldConst(op, f, hint, c) => {
                is(*op, equal(field(record, *f, hint)?, Scalar::of(c))?)
            }
        })
    }
}

/// `field` of `record` as a number (`Num::Not` when missing or not a number).
#[inline(always)]
fn field_num(record: &Record, field: Field, hint: &AtomicUsize) -> Num {
    let mut at = hint.load(atomic::Ordering::Relaxed);
    let Some(value) = record.get_hinted(field, &mut at) else {
        return Num::Not;
    };
    hint.store(at, atomic::Ordering::Relaxed);
    Num::of(value)
}

/// The truth of `==` (`Op::Eq`) or `!=` from whether the two are equal.
fn is(op: Op, equal: bool) -> Scalar<'static> {
    Scalar::Bool(if matches!(op, Op::Ne) { !equal } else { equal })
}

/// `field` of `record`, looked up where it was in the last record first.
#[inline(always)]
fn field<'r>(record: &'r Record, field: Field, hint: &AtomicUsize) -> Option<Scalar<'r>> {
    let mut at = hint.load(atomic::Ordering::Relaxed);
    let value = record.get_hinted(field, &mut at)?;
    hint.store(at, atomic::Ordering::Relaxed);
    Some(Scalar::of(value))
}

/// `a == b` as minijinja compares: strings, booleans and nulls by value, numbers by value
/// whatever their type (`1 == 1.0`); `None` for other pairs, which minijinja decides.
fn equal(a: Scalar<'_>, b: Scalar<'_>) -> Option<bool> {
    match (a, b) {
        (Scalar::Str(x), Scalar::Str(y)) => Some(x.as_str() == y.as_str()),
        (Scalar::Bool(x), Scalar::Bool(y)) => Some(x == y),
        (Scalar::Null, Scalar::Null) => Some(true),
        _ => Num::cmp(a.num(), b.num()).map(|o| o == std::cmp::Ordering::Equal),
    }
}
