//! The running state of one aggregation for one group.

use super::function::{Aggregation, Function};
use ecomflow_core::{Record, Value};

/// Running state of one aggregation.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Accumulator {
    /// Records (or non-null values) counted.
    Count(i64),
    /// A sum: exact while every value is an integer, then a compensated float sum.
    Sum {
        /// The integer sum while `exact`.
        int: i64,
        /// The float sum.
        float: f64,
        /// Neumaier compensation for `float`.
        compensation: f64,
        /// True while every value was an integer and the sum fits.
        exact: bool,
        /// Whether any non-null value was seen.
        seen: bool,
    },
    /// The smallest value so far.
    Min(Option<Value>),
    /// The largest value so far.
    Max(Option<Value>),
    /// A mean: its sum and count.
    Avg {
        /// Sum of the values.
        sum: f64,
        /// Neumaier compensation for `sum`.
        compensation: f64,
        /// Number of values.
        n: i64,
    },
}

impl Accumulator {
    /// An empty accumulator for `function`.
    pub fn new(function: Function) -> Accumulator {
        match function {
            Function::Count => Accumulator::Count(0),
            Function::Sum => Accumulator::Sum {
                int: 0,
                float: 0.0,
                compensation: 0.0,
                exact: true,
                seen: false,
            },
            Function::Min => Accumulator::Min(None),
            Function::Max => Accumulator::Max(None),
            Function::Avg => Accumulator::Avg {
                sum: 0.0,
                compensation: 0.0,
                n: 0,
            },
        }
    }

    /// Checks that `value` can be added (the field read by a numeric aggregation must be a
    /// number or null; `None` means the field is absent, which only `count()` accepts).
    pub fn check(&self, value: Option<&Value>, counts_records: bool) -> Result<(), String> {
        match (self, value) {
            (Accumulator::Count(_), _) if counts_records => Ok(()),
            (_, None) => Err("is missing".into()),
            (_, Some(Value::Null)) => Ok(()),
            (_, Some(Value::Float(f))) if !f.is_finite() => Err("is not a finite number".into()),
            (Accumulator::Sum { .. } | Accumulator::Avg { .. }, Some(v))
                if v.as_f64().is_none() =>
            {
                Err(format!("should be a number, found {}", v.type_name()))
            }
            (Accumulator::Min(_) | Accumulator::Max(_), Some(Value::Nested(_))) => {
                Err("cannot be compared: it is an array or object".into())
            }
            _ => Ok(()),
        }
    }

    /// Checks that adding `value` (already [checked](Accumulator::check)) keeps the result a
    /// finite number: a sum that would overflow refuses the value instead of becoming
    /// infinite.
    pub fn fits(&self, value: Option<&Value>) -> Result<(), String> {
        let Some(x) = value.and_then(Value::as_f64) else {
            return Ok(());
        };
        let (sum, compensation) = match self {
            Accumulator::Sum {
                float,
                compensation,
                ..
            } => (*float, *compensation),
            Accumulator::Avg {
                sum, compensation, ..
            } => (*sum, *compensation),
            _ => return Ok(()),
        };
        if (sum + x).is_finite() && (sum + compensation + x).is_finite() {
            Ok(())
        } else {
            Err(format!(
                "would make the sum overflow: {x} added to {} is not a finite number",
                sum + compensation
            ))
        }
    }

    /// Whether the result is a finite number (or not a number at all), as every row must be.
    pub fn is_finite(&self) -> bool {
        match self.value() {
            Value::Float(f) => f.is_finite(),
            _ => true,
        }
    }

    /// Checks that the value `aggregation` reads from `record` has a type this accumulator
    /// takes (checked once per record, on the empty accumulator, before its group is found).
    /// The reason names the field and the output.
    pub fn takes(&self, aggregation: &Aggregation, record: &Record) -> Result<(), String> {
        self.check(aggregation.value(record), aggregation.input.is_none())
            .map_err(|e| refused(aggregation, e))
    }

    /// Checks that adding that (already typed) value to this group's accumulator keeps the
    /// result a finite number.
    pub fn admits(&self, aggregation: &Aggregation, record: &Record) -> Result<(), String> {
        self.fits(aggregation.value(record))
            .map_err(|e| refused(aggregation, e))
    }

    /// Adds a value (already checked). `None` is a record counted by `count()`.
    pub fn add(&mut self, value: Option<&Value>) {
        match (self, value) {
            (Accumulator::Count(n), None) => *n += 1,
            (_, Some(Value::Null)) | (_, None) => {}
            (Accumulator::Count(n), Some(_)) => *n += 1,
            (
                Accumulator::Sum {
                    int,
                    float,
                    compensation,
                    exact,
                    seen,
                },
                Some(v),
            ) => {
                *seen = true;
                if let (true, Value::Int(i)) = (*exact, v) {
                    match int.checked_add(*i) {
                        Some(s) => *int = s,
                        None => *exact = false,
                    }
                } else {
                    *exact = false;
                }
                neumaier(float, compensation, v.as_f64().unwrap_or(0.0));
            }
            (Accumulator::Min(m), Some(v)) => {
                if m.as_ref().is_none_or(|cur| less(v, cur)) {
                    *m = Some(v.clone());
                }
            }
            (Accumulator::Max(m), Some(v)) => {
                if m.as_ref().is_none_or(|cur| less(cur, v)) {
                    *m = Some(v.clone());
                }
            }
            (
                Accumulator::Avg {
                    sum,
                    compensation,
                    n,
                },
                Some(v),
            ) => {
                neumaier(sum, compensation, v.as_f64().unwrap_or(0.0));
                *n += 1;
            }
        }
    }

    /// Folds another accumulator of the same function into this one (sessions merging).
    pub fn merge(&mut self, other: &Accumulator) {
        if let Accumulator::Min(Some(v)) | Accumulator::Max(Some(v)) = other {
            self.add(Some(v));
            return;
        }
        match (self, other) {
            (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
            (
                Accumulator::Sum {
                    int,
                    float,
                    compensation,
                    exact,
                    seen,
                },
                Accumulator::Sum {
                    int: int_b,
                    float: float_b,
                    compensation: comp_b,
                    exact: exact_b,
                    seen: seen_b,
                },
            ) => {
                match int.checked_add(*int_b) {
                    Some(s) if *exact_b => *int = s,
                    _ => *exact = false,
                }
                neumaier(float, compensation, *float_b);
                *compensation += comp_b;
                *seen |= seen_b;
            }
            (
                Accumulator::Avg {
                    sum,
                    compensation,
                    n,
                },
                Accumulator::Avg {
                    sum: sum_b,
                    compensation: comp_b,
                    n: n_b,
                },
            ) => {
                neumaier(sum, compensation, *sum_b);
                *compensation += comp_b;
                *n += n_b;
            }
            _ => {}
        }
    }

    /// The aggregate value now. A sum or mean of nothing is null, as in SQL.
    pub fn value(&self) -> Value {
        match self {
            Accumulator::Count(n) => Value::Int(*n),
            Accumulator::Sum {
                int,
                float,
                compensation,
                exact,
                seen,
            } => match (seen, exact) {
                (false, _) => Value::Null,
                (true, true) => Value::Int(*int),
                (true, false) => Value::Float(float + compensation),
            },
            Accumulator::Min(v) | Accumulator::Max(v) => v.clone().unwrap_or(Value::Null),
            Accumulator::Avg {
                sum,
                compensation,
                n,
            } => {
                if *n == 0 {
                    Value::Null
                } else {
                    Value::Float((sum + compensation) / *n as f64)
                }
            }
        }
    }
}

/// A dead-letter reason for a value `aggregation` cannot take.
fn refused(aggregation: &Aggregation, why: String) -> String {
    format!(
        "field `{}` {why} (for `{}`)",
        aggregation.input.map_or("", |f| f.name()),
        aggregation.output
    )
}

/// Adds `x` to `sum` with Neumaier's compensation, so long sums of amounts stay exact to the
/// cent.
fn neumaier(sum: &mut f64, compensation: &mut f64, x: f64) {
    let t = *sum + x;
    if sum.abs() >= x.abs() {
        *compensation += (*sum - t) + x;
    } else {
        *compensation += (x - t) + *sum;
    }
    *sum = t;
}

/// Order for min and max: numbers by value, strings and booleans among themselves; a
/// number sorts before a string.
fn less(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => x < y,
        (Value::Bool(x), Value::Bool(y)) => x < y,
        (x, y) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x < y,
            (Some(_), None) => true,
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(function: Function, values: &[Value]) -> Value {
        let mut a = Accumulator::new(function);
        for v in values {
            a.check(Some(v), false).expect("valid");
            a.add(Some(v));
        }
        a.value()
    }

    #[test]
    fn sums_that_would_overflow_refuse_the_value_and_stay_finite() {
        for function in [Function::Sum, Function::Avg] {
            let mut a = Accumulator::new(function);
            let huge = Value::Float(1.7e308);
            a.check(Some(&huge), false).expect("a finite number");
            a.fits(Some(&huge)).expect("fits once");
            a.add(Some(&huge));
            let e = a.fits(Some(&huge)).expect_err("a second one overflows");
            assert!(e.contains("would make the sum overflow"), "{e}");
            a.fits(Some(&Value::Float(-1.7e308)))
                .expect("a negative one fits");
            a.fits(Some(&Value::Int(5))).expect("a small one fits");
            assert!(a.is_finite());
            assert_eq!(a.value().as_f64(), Some(1.7e308));
        }
        for bad in [f64::INFINITY, f64::NEG_INFINITY, f64::NAN] {
            let e = Accumulator::new(Function::Max)
                .check(Some(&Value::Float(bad)), false)
                .expect_err("not finite");
            assert_eq!(e, "is not a finite number");
        }
    }

    #[test]
    fn sums_stay_exact_and_integers_stay_integers() {
        assert_eq!(
            fold(Function::Sum, &[Value::Int(2), Value::Int(3)]),
            Value::Int(5)
        );
        let cents: Vec<Value> = (0..100_000).map(|_| Value::Float(0.1)).collect();
        assert_eq!(fold(Function::Sum, &cents), Value::Float(10_000.0));
        assert_eq!(
            fold(Function::Sum, &[Value::Int(1), Value::Float(0.5)]),
            Value::Float(1.5)
        );
        assert_eq!(fold(Function::Sum, &[Value::Null]), Value::Null);
    }

    #[test]
    fn min_max_avg_and_count() {
        let v = [Value::Int(3), Value::Float(1.5), Value::Null, Value::Int(7)];
        assert_eq!(fold(Function::Min, &v), Value::Float(1.5));
        assert_eq!(fold(Function::Max, &v), Value::Int(7));
        assert_eq!(fold(Function::Avg, &v), Value::Float(11.5 / 3.0));
        assert_eq!(
            fold(Function::Count, &v),
            Value::Int(3),
            "nulls are not counted"
        );
        let mut records = Accumulator::new(Function::Count);
        records.add(None);
        records.add(None);
        assert_eq!(records.value(), Value::Int(2));
    }

    #[test]
    fn merging_equals_adding_everything_to_one() {
        let values = [
            Value::Int(4),
            Value::Float(0.5),
            Value::Int(-2),
            Value::Null,
        ];
        for function in [
            Function::Count,
            Function::Sum,
            Function::Min,
            Function::Max,
            Function::Avg,
        ] {
            let (left, right) = values.split_at(2);
            let mut a = Accumulator::new(function);
            left.iter().for_each(|v| a.add(Some(v)));
            let mut b = Accumulator::new(function);
            right.iter().for_each(|v| b.add(Some(v)));
            a.merge(&b);
            assert_eq!(a.value(), fold(function, &values), "{function:?}");
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        let a = Accumulator::new(Function::Sum);
        assert_eq!(
            a.check(Some(&Value::from("12.x")), false),
            Err("should be a number, found string".into())
        );
        assert_eq!(a.check(None, false), Err("is missing".into()));
        assert!(Accumulator::new(Function::Count).check(None, true).is_ok());
    }

    #[test]
    fn a_checkpointed_float_sum_comes_back_bit_for_bit() {
        // A checkpoint is JSON text: every sum written must read back as the same f64, or a
        // restarted run drifts from an uninterrupted one in the last bits.
        let mut a = Accumulator::new(Function::Sum);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let price = (x % 100_000_000) as f64 / 100.0 * 1.0870000000000002;
            a.add(Some(&Value::Float(price)));
            let text = serde_json::to_string(&a).expect("serializes");
            let back: Accumulator = serde_json::from_str(&text).expect("parses");
            assert_eq!(back, a, "{text}");
        }
    }
}
