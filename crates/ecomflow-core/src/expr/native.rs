//! A native evaluator for the common, simple expressions (field and constant comparisons,
//! arithmetic, `and`/`or`/`not`, lookups in constant tables, `round`), with minijinja's
//! semantics for the types it handles. Whenever it meets a case it does not handle exactly
//! (another type, a missing field, an overflow), it answers `None` and the caller evaluates
//! with minijinja itself, so the results never differ.

use crate::field::Field;
use crate::record::Record;
use crate::value::Value;
use minijinja::machinery::ast;
use minijinja::value::Value as ExprValue;
use std::borrow::Cow;

/// A compiled native expression tree.
#[derive(Debug)]
pub enum Node {
    /// A record field.
    Field(Field),
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
    /// `x | round(p)`.
    Round(Box<Node>, i32),
    /// A binary operation.
    Bin(Op, Box<Node>, Box<Node>),
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
            None => Node::Field(Field::new(v.id)),
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
            Node::Bin(
                op,
                Box::new(node(&b.left, constants)?),
                Box::new(node(&b.right, constants)?),
            )
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
            Node::Round(inner, precision)
        }
        _ => return None,
    })
}

fn scalar(v: &ExprValue) -> Option<Value> {
    match Value::from_expr(v) {
        Value::Nested(_) => None,
        s => Some(s),
    }
}

/// Jinja truth of a scalar; `None` for nested values.
pub fn truthy(v: &Value) -> Option<bool> {
    Some(match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Int(i) => *i != 0,
        Value::Float(f) => *f != 0.0,
        Value::Str(s) => !s.is_empty(),
        Value::Nested(_) => return None,
    })
}

impl Node {
    /// Evaluates against `record`, or `None` when minijinja must decide.
    pub fn eval<'r>(&'r self, record: &'r Record) -> Option<Cow<'r, Value>> {
        Some(match self {
            Node::Field(f) => Cow::Borrowed(record.get(*f)?),
            Node::EventTime => Cow::Owned(Value::Int(record.time()?)),
            Node::Timestamp(x) => {
                let Value::Int(us) = *x.eval(record)? else {
                    return None;
                };
                let mut s = String::with_capacity(26);
                crate::time::write_timestamp(us, &mut s);
                Cow::Owned(Value::from(s))
            }
            Node::Date(x) => {
                let Value::Int(us) = *x.eval(record)? else {
                    return None;
                };
                let mut s = String::with_capacity(10);
                crate::time::write_date(us.div_euclid(crate::time::US_PER_DAY), &mut s);
                Cow::Owned(Value::from(s))
            }
            Node::Const(c) => Cow::Borrowed(c),
            Node::Lookup(table, key) => {
                let key = key.eval(record)?;
                Cow::Borrowed(table.get(key.as_str()?)?)
            }
            Node::Not(x) => Cow::Owned(Value::Bool(!truthy(x.eval(record)?.as_ref())?)),
            Node::Neg(x) => Cow::Owned(match &*x.eval(record)? {
                Value::Int(i) => Value::Int(i.checked_neg()?),
                Value::Float(f) => Value::Float(-f),
                _ => return None,
            }),
            Node::Round(x, precision) => match &*x.eval(record)? {
                Value::Int(i) => Cow::Owned(Value::Int(*i)),
                Value::Float(f) => {
                    let scale = 10f64.powi(*precision);
                    Cow::Owned(Value::Float((scale * f).round() / scale))
                }
                _ => return None,
            },
            Node::Bin(Op::And, l, r) => {
                let left = l.eval(record)?;
                if truthy(&left)? {
                    r.eval(record)?
                } else {
                    left
                }
            }
            Node::Bin(Op::Or, l, r) => {
                let left = l.eval(record)?;
                if truthy(&left)? {
                    left
                } else {
                    r.eval(record)?
                }
            }
            Node::Bin(op, l, r) => {
                let (a, b) = (l.eval(record)?, r.eval(record)?);
                Cow::Owned(binary(*op, a.as_ref(), b.as_ref())?)
            }
        })
    }
}

fn binary(op: Op, a: &Value, b: &Value) -> Option<Value> {
    use std::cmp::Ordering;
    let order = match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
            a.as_f64()?.partial_cmp(&b.as_f64()?)
        }
        _ => None,
    };
    let equal = match (a, b) {
        (Value::Str(x), Value::Str(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::Null, Value::Null) => Some(true),
        _ => order.map(|o| o == Ordering::Equal),
    };
    Some(match op {
        Op::Eq => Value::Bool(equal?),
        Op::Ne => Value::Bool(!equal?),
        Op::Lt => Value::Bool(order? == Ordering::Less),
        Op::Lte => Value::Bool(order? != Ordering::Greater),
        Op::Gt => Value::Bool(order? == Ordering::Greater),
        Op::Gte => Value::Bool(order? != Ordering::Less),
        Op::Add | Op::Sub | Op::Mul => match (a, b) {
            (Value::Int(x), Value::Int(y)) => Value::Int(match op {
                Op::Add => x.checked_add(*y)?,
                Op::Sub => x.checked_sub(*y)?,
                _ => x.checked_mul(*y)?,
            }),
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                let (x, y) = (a.as_f64()?, b.as_f64()?);
                Value::Float(match op {
                    Op::Add => x + y,
                    Op::Sub => x - y,
                    _ => x * y,
                })
            }
            _ => return None,
        },
        Op::Div => match (a, b) {
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                Value::Float(a.as_f64()? / b.as_f64()?)
            }
            _ => return None,
        },
        Op::And | Op::Or => return None,
    })
}
