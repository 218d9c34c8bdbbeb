//! `ecomflow list`: every linked plugin with its options, read from the options' JSON schema
//! (so the `///` docs on config fields are the reference documentation), as text, JSON or
//! the Markdown of `docs/reference/plugins.md`.

mod json;
mod markdown;
mod text;

pub use json::render_json;
pub use markdown::render_markdown;
pub use text::render_text;

use ecomflow_core::Plugin;
use serde_json::Value;

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
pub(crate) fn options_of(schema: schemars::Schema) -> Vec<OptionDoc> {
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

/// A table of a pipeline file that is not a plugin: its place, what it is for and its schema.
pub(crate) struct SharedTable {
    /// Where it sits in a pipeline file.
    pub place: &'static str,
    /// What it is for.
    pub summary: &'static str,
    /// Its options' schema.
    pub schema: fn() -> schemars::Schema,
}

/// The tables every pipeline can have besides its components.
pub(crate) fn shared_tables() -> [SharedTable; 5] {
    [
        SharedTable {
            place: "sources.<id>.event_time",
            summary: "where a source's records keep their event time",
            schema: || schemars::schema_for!(ecomflow_core::EventTimeConfig),
        },
        SharedTable {
            place: "http",
            summary: "the HTTP server of `ecomflow run`: metrics, probes, the tap and the dashboard",
            schema: || schemars::schema_for!(ecomflow_runtime::HttpConfig),
        },
        SharedTable {
            place: "channels",
            summary: "how much each component's input holds",
            schema: || schemars::schema_for!(ecomflow_runtime::ChannelsConfig),
        },
        SharedTable {
            place: "state",
            summary: "how much memory stateful transforms' keyed state takes, and where the rest goes",
            schema: || schemars::schema_for!(ecomflow_runtime::StateConfig),
        },
        SharedTable {
            place: "checkpoint",
            summary: "checkpoints that keep the pipeline's state, to resume after a stop or crash",
            schema: || schemars::schema_for!(ecomflow_core::checkpoint::CheckpointConfig),
        },
    ]
}
