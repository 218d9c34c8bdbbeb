//! Turns a test file's steps into actions, checked against the pipeline they run on: every
//! problem (an unknown source or output, a step that says two things, a time that does not
//! parse) is reported with its line.

use crate::driver::Driver;
use crate::expect::Expectation;
use crate::records::{decode, table_to_json, toml_to_json};
use crate::spec::Step;
use ecomflow_core::{Batch, Value};
use ecomflow_expr::Expr;
use ecomflow_json::JsonDecoder;
use ecomflow_runtime::diagnostic::closest;
use ecomflow_time::TimeFormat;
use std::path::Path;
use std::time::Duration;

/// What one step does.
pub enum Action {
    /// Records (and lines that are not JSON, with why) from a source, or into a component's
    /// input.
    Send {
        target: String,
        from: Option<String>,
        partition: i32,
        records: Batch,
        undecodable: Vec<(String, Vec<u8>)>,
    },
    /// The watermark of a source, or of every source with event time.
    Watermark {
        source: Option<String>,
        partition: Option<i32>,
        at: i64,
    },
    /// The processing clock moves.
    Advance(Duration),
    /// Stop at a checkpoint, start from it.
    Restart,
    /// Every source ends.
    End,
    /// Check an output.
    Expect(Box<Expectation>),
}

fn one_of(step: &Step) -> Result<&'static str, String> {
    let said: Vec<&'static str> = [
        ("send", step.send.is_some()),
        ("watermark", step.watermark.is_some()),
        ("advance", step.advance.is_some()),
        ("restart", step.restart.is_some()),
        ("end", step.end.is_some()),
        ("expect", step.expect.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    match said.as_slice() {
        [one] => Ok(one),
        [] => Err(
            "a step needs one of `send`, `watermark`, `advance`, `restart`, `end` or `expect`"
                .into(),
        ),
        many => Err(format!(
            "a step does one thing; this one says {}",
            many.join(" and ")
        )),
    }
}

/// Keys of `step` that do not go with what it does.
fn stray(step: &Step, kind: &str) -> Option<&'static str> {
    let allowed: &[&str] = match kind {
        "send" => &["records", "lines", "file", "partition", "from"],
        "watermark" => &["input", "partition"],
        "expect" => &[
            "records",
            "match",
            "condition",
            "count",
            "latest_by",
            "ordered",
        ],
        _ => &[],
    };
    [
        ("records", step.records.is_some()),
        ("lines", step.lines.is_some()),
        ("file", step.file.is_some()),
        ("input", step.input.is_some()),
        ("partition", step.partition.is_some()),
        ("from", step.from.is_some()),
        ("match", step.match_fields.is_some()),
        ("condition", step.condition.is_some()),
        ("count", step.count.is_some()),
        ("latest_by", step.latest_by.is_some()),
        ("ordered", step.ordered.is_some()),
    ]
    .into_iter()
    .find(|(k, set)| *set && !allowed.contains(k))
    .map(|(k, _)| k)
}

fn unknown(what: &str, name: &str, known: &[String]) -> String {
    let near = closest(name, known.iter().map(String::as_str));
    let mut message = format!("the pipeline has no {what} `{name}`");
    match near.first() {
        Some(n) => message.push_str(&format!(" (did you mean `{n}`?)")),
        None => message.push_str(&format!(" (it has {})", known.join(", "))),
    }
    message
}

/// The partitions a test may name: 0 to this.
const MAX_PARTITION: i32 = 1023;

/// `partition`, checked: only where a source that keeps state per partition feeds `id`.
fn partition_of(step: &Step, driver: &Driver, id: &str) -> Result<Option<i32>, String> {
    match step.partition {
        None => Ok(None),
        Some(p) if !(0..=MAX_PARTITION).contains(&p) => Err(format!(
            "`partition = {p}`: a partition is numbered 0 to {MAX_PARTITION}"
        )),
        Some(p) if driver.has_partitions(id) => Ok(Some(p)),
        Some(_) => Err(format!(
            "`partition`: no source that keeps state per partition (a `kafka` source) feeds \
             `{id}`; leave it out"
        )),
    }
}

/// An RFC 3339 time (or a TOML date-time) in microseconds since the epoch.
pub fn parse_time(value: &toml::Value) -> Result<i64, String> {
    let text = match toml_to_json(value) {
        serde_json::Value::String(s) => s,
        other => {
            return Err(format!(
                "`watermark` is a time such as \"2025-02-01T00:05:00Z\", not {other}"
            ));
        }
    };
    TimeFormat::parse("rfc3339")?
        .read(&Value::from(text.as_str()))
        .map_err(|e| format!("`watermark`: {e}"))
}

/// The action of `step`, checked against `driver`'s pipeline; `dir` is the test file's.
pub fn compile(step: &Step, driver: &Driver, dir: &Path) -> Result<Action, String> {
    let kind = one_of(step)?;
    if let Some(key) = stray(step, kind) {
        return Err(format!("`{key}` does not go with `{kind}`"));
    }
    let sources = driver.sources();
    let known_source = |id: &str| -> Result<String, String> {
        if sources.iter().any(|s| s == id) {
            Ok(id.to_string())
        } else {
            Err(unknown("source", id, &sources))
        }
    };
    match kind {
        "send" => {
            let target = step.send.clone().unwrap_or_default();
            let from = step.from.clone();
            let at_source = driver.check_send(&target, from.as_deref()).map_err(|e| {
                if driver.has_output(&target) {
                    e
                } else {
                    unknown("component", &target, &driver.outputs())
                }
            })?;
            let mut decoder = JsonDecoder::new();
            let mut records = Vec::new();
            let mut undecodable = Vec::new();
            let mut add_lines = |text: &str| {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    match decode(&mut decoder, line.as_bytes()) {
                        Ok(r) => records.push(r),
                        Err(e) => undecodable.push((e, line.as_bytes().to_vec())),
                    }
                }
            };
            match (&step.records, &step.lines, &step.file) {
                (Some(tables), None, None) => {
                    for t in tables {
                        add_lines(&table_to_json(t).to_string());
                    }
                }
                (None, Some(lines), None) => add_lines(lines),
                (None, None, Some(file)) => {
                    let path = dir.join(file);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
                    add_lines(&text);
                }
                _ => return Err("`send` takes one of `records`, `lines` or `file`".into()),
            }
            if let (false, Some((reason, line))) = (at_source, undecodable.first()) {
                return Err(format!(
                    "`{}` is not a record ({reason}): only a source dead-letters what it cannot \
                     decode",
                    String::from_utf8_lossy(line)
                ));
            }
            let partition = partition_of(step, driver, &target)?.unwrap_or(0);
            Ok(Action::Send {
                target,
                from,
                partition,
                records,
                undecodable,
            })
        }
        "watermark" => {
            let source = step.input.as_deref().map(known_source).transpose()?;
            if let Some(id) = &source
                && !driver.reads_event_time(id)
            {
                return Err(format!("`{id}` reads no event time: it has no watermark"));
            }
            let partition = match &source {
                Some(id) => partition_of(step, driver, id)?,
                None if step.partition.is_some() => {
                    return Err("`partition` goes with `input`, the source it belongs to".into());
                }
                None => None,
            };
            Ok(Action::Watermark {
                source,
                partition,
                at: parse_time(
                    step.watermark
                        .as_ref()
                        .unwrap_or(&toml::Value::Boolean(false)),
                )?,
            })
        }
        "advance" => {
            let text = step.advance.as_deref().unwrap_or_default();
            humantime::parse_duration(text)
                .map(Action::Advance)
                .map_err(|e| format!("`advance = \"{text}\"`: {e} (a duration such as \"30s\")"))
        }
        "restart" | "end" => {
            if step.restart == Some(false) || step.end == Some(false) {
                return Err(format!("`{kind}` is `true` or left out"));
            }
            Ok(if kind == "end" {
                Action::End
            } else {
                Action::Restart
            })
        }
        _ => {
            let output = step.expect.clone().unwrap_or_default();
            if !driver.has_output(&output) {
                return Err(unknown("output", &output, &driver.outputs()));
            }
            let records = match (&step.records, &step.match_fields) {
                (Some(_), Some(_)) => {
                    return Err("an `expect` takes `records` (every field) or `match` (the fields given), not both".into());
                }
                (Some(t), None) | (None, Some(t)) => Some(t.iter().map(table_to_json).collect()),
                (None, None) => None,
            };
            let condition = step
                .condition
                .as_deref()
                .map(|c| Expr::compile(c, &[]).map_err(|e| format!("`condition`: {e}")))
                .transpose()?;
            if records.is_none() && condition.is_none() && step.count.is_none() {
                return Err("an `expect` needs `records`, `match`, `condition` or `count`".into());
            }
            if step.ordered.is_some() && records.is_none() {
                return Err("`ordered` goes with `records` or `match`".into());
            }
            Ok(Action::Expect(Box::new(Expectation {
                output,
                records,
                subset: step.match_fields.is_some(),
                condition,
                count: step.count,
                latest_by: step.latest_by.clone(),
                ordered: step.ordered.unwrap_or(false),
            })))
        }
    }
}
