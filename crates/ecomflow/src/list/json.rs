//! `ecomflow list --format json`, for tools.

use super::{OptionDoc, options, options_of, shared_tables};
use ecomflow_core::Plugin;
use serde_json::{Map, Value, json};

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
