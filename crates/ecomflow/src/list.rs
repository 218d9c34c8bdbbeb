//! `ecomflow list`: every linked plugin with its options, read from the options' JSON schema
//! (so the `///` docs on config fields are the reference documentation).

use ecomflow_core::Plugin;
use serde_json::{Map, Value, json};
use std::fmt::Write;

/// One option of a plugin, as shown by `ecomflow list`.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionDoc {
    /// The option's name.
    pub name: String,
    /// Its type, such as `integer`, `string`, `table of number`, `"keep" | "drop"`.
    pub ty: String,
    /// Whether the pipeline must set it.
    pub required: bool,
    /// Its default, as JSON.
    pub default: Option<String>,
    /// What it means.
    pub doc: String,
}

/// The options of `plugin`, in declaration order.
pub fn options(plugin: &Plugin) -> Vec<OptionDoc> {
    options_of((plugin.schema)())
}

/// The options described by a config struct's JSON schema, in declaration order.
fn options_of(schema: schemars::Schema) -> Vec<OptionDoc> {
    let schema = schema.to_value();
    let defs = schema.get("$defs").cloned().unwrap_or(Value::Null);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, p)| OptionDoc {
            name: name.clone(),
            ty: type_of(p, &defs),
            required: required.contains(&name.as_str()),
            default: p.get("default").map(Value::to_string),
            doc: p
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
        .collect()
}

fn type_of(p: &Value, defs: &Value) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return match defs.get(name) {
            Some(d) => type_of(d, defs),
            None => name.to_string(),
        };
    }
    match p.get("format").and_then(Value::as_str) {
        Some("duration") => return "duration".into(),
        Some("duration-or-zero") => return "duration, 0 allowed".into(),
        _ => {}
    }
    if let Some(values) = p.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(variants) = p.get(key).and_then(Value::as_array) {
            let names: Vec<String> = variants
                .iter()
                .map(|v| match v.get("const") {
                    Some(c) => c.to_string(),
                    None => type_of(v, defs),
                })
                .filter(|t| t != "null")
                .collect();
            return names.join(" | ");
        }
    }
    let base = match p.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    };
    match base.as_str() {
        "array" => match p.get("items") {
            Some(items) => format!("list of {}", type_of(items, defs)),
            None => "list".into(),
        },
        "object" => match p.get("additionalProperties") {
            Some(v @ Value::Object(_)) => format!("table of {}", type_of(v, defs)),
            _ => "table".into(),
        },
        _ => base,
    }
}

fn write_options(s: &mut String, options: Vec<OptionDoc>) {
    for o in options {
        let mut line = format!("  {} ({})", o.name, o.ty);
        if o.required {
            line.push_str(", required");
        }
        if let Some(d) = &o.default {
            let _ = write!(line, ", default {d}");
        }
        let _ = writeln!(s, "{line}");
        for doc_line in o.doc.lines() {
            let _ = writeln!(s, "      {doc_line}");
        }
    }
}

/// A table of a pipeline file that is not a plugin: its place, what it is for and its schema.
struct SharedTable {
    place: &'static str,
    summary: &'static str,
    schema: fn() -> schemars::Schema,
}

/// The tables every pipeline can have besides its components.
fn shared_tables() -> [SharedTable; 2] {
    [
        SharedTable {
            place: "sources.<id>.event_time",
            summary: "where a source's records keep their event time",
            schema: || schemars::schema_for!(ecomflow_core::EventTimeConfig),
        },
        SharedTable {
            place: "checkpoint",
            summary: "checkpoints that keep the pipeline's state, to resume after a stop or crash",
            schema: || schemars::schema_for!(ecomflow_core::checkpoint::CheckpointConfig),
        },
    ]
}

/// The whole list as text.
pub fn render_text() -> String {
    let mut s = String::new();
    for t in shared_tables() {
        let _ = writeln!(s, "table [{}]: {}", t.place, t.summary);
        write_options(&mut s, options_of((t.schema)()));
        s.push('\n');
    }
    for p in Plugin::all() {
        let _ = writeln!(s, "{} {}: {}", p.kind().noun(), p.name, p.summary);
        if !p.outputs.is_empty() {
            let _ = writeln!(s, "  named outputs: {}", p.outputs.join(", "));
        }
        write_options(&mut s, options(p));
        s.push('\n');
    }
    s
}

fn options_json(options: Vec<OptionDoc>) -> Vec<Value> {
    options
        .into_iter()
        .map(|o| {
            let mut m = Map::new();
            m.insert("name".into(), json!(o.name));
            m.insert("type".into(), json!(o.ty));
            m.insert("required".into(), json!(o.required));
            m.insert("default".into(), json!(o.default));
            m.insert("doc".into(), json!(o.doc));
            Value::Object(m)
        })
        .collect()
}

/// The whole list as JSON, for tools: the shared tables (kind `table`, named by their place
/// in a pipeline file), then every plugin.
pub fn render_json() -> String {
    let tables = shared_tables().into_iter().map(|t| {
        json!({
            "kind": "table",
            "name": t.place,
            "summary": t.summary,
            "outputs": [],
            "options": options_json(options_of((t.schema)())),
        })
    });
    let plugins = Plugin::all().into_iter().map(|p| {
        json!({
            "kind": p.kind().noun(),
            "name": p.name,
            "summary": p.summary,
            "outputs": p.outputs,
            "options": options_json(options(p)),
        })
    });
    let all: Vec<Value> = tables.chain(plugins).collect();
    serde_json::to_string_pretty(&all).unwrap_or_default()
}
