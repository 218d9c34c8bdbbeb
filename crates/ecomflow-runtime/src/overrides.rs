//! `--set <table>.<id>.<option>=<value>` overrides from the command line.

use crate::diagnostic::Diagnostic;
use std::borrow::Cow;
use toml::de::DeValue;

/// One parsed `--set`.
#[derive(Debug)]
pub struct Override<'a> {
    /// The argument as given, for messages.
    pub arg: &'a str,
    /// `sources`, `transforms`, `sinks`, `dead_letter`, `checkpoint`, `http`, `channels` or
    /// `state`.
    pub table: String,
    /// The component id (empty for `dead_letter`, `checkpoint`, `http`, `channels` and
    /// `state`).
    pub id: String,
    /// The option path inside the component; never empty.
    pub path: Vec<String>,
    /// The value: TOML when it parses as a TOML value (`10`, `true`, `[1, 2]`, `"x"`), the
    /// raw text otherwise.
    pub value: DeValue<'a>,
}

/// Parses every `--set`, reporting malformed ones.
pub fn parse_overrides<'a>(sets: &'a [String], diags: &mut Vec<Diagnostic>) -> Vec<Override<'a>> {
    let mut out = Vec::new();
    for arg in sets {
        let location = format!("--set {arg}");
        let Some((path, raw)) = arg.split_once('=') else {
            diags.push(
                Diagnostic::general(location, "expected <path>=<value>")
                    .with_hint(Some("for example --set sources.transactions.count=1000")),
            );
            continue;
        };
        let parts: Vec<&str> = path.trim().split('.').collect();
        let (table, id, rest) = match parts.as_slice() {
            [
                t @ ("dead_letter" | "checkpoint" | "http" | "channels" | "state"),
                rest @ ..,
            ] if !rest.is_empty() => (*t, "", rest),
            [t @ ("sources" | "transforms" | "sinks"), id, rest @ ..] if !rest.is_empty() => {
                (*t, *id, rest)
            }
            _ => {
                diags.push(
                    Diagnostic::general(location, format!("`{path}` is not an option path"))
                        .with_hint(Some(
                            "write <sources|transforms|sinks>.<id>.<option>, dead_letter.<option>, \
                             checkpoint.<option>, http.<option>, channels.<option> or state.<option>",
                        )),
                );
                continue;
            }
        };
        // A TOML value (10, true, [1, 2], "x"), except dates and times, which options take
        // as text; anything else is text as written.
        let value = match DeValue::parse(raw).map(|v| v.into_inner()) {
            Ok(DeValue::Datetime(_)) | Err(_) => DeValue::String(Cow::Borrowed(raw)),
            Ok(v) => v,
        };
        out.push(Override {
            arg,
            table: table.to_string(),
            id: id.to_string(),
            path: rest.iter().map(|s| s.to_string()).collect(),
            value,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_toml_when_they_parse_and_text_otherwise() {
        let sets = vec![
            "sources.gen.count=1000".to_string(),
            "sinks.out.path=/tmp/x.jsonl".to_string(),
            "dead_letter.path=dl.jsonl".to_string(),
            "sources.gen.start_time=2025-01-01T00:00:00Z".to_string(),
        ];
        let mut diags = Vec::new();
        let o = parse_overrides(&sets, &mut diags);
        assert!(diags.is_empty(), "{diags:?}");
        assert_eq!(o.len(), 4);
        assert_eq!(o[3].value.as_str(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(o[0].value.as_integer().map(|i| i.as_str()), Some("1000"));
        assert_eq!(o[1].value.as_str(), Some("/tmp/x.jsonl"));
        assert_eq!(
            (o[2].table.as_str(), o[2].path[0].as_str()),
            ("dead_letter", "path")
        );
    }

    #[test]
    fn malformed_sets_are_reported() {
        let sets = vec!["count=5".to_string(), "sources.gen.count".to_string()];
        let mut diags = Vec::new();
        assert!(parse_overrides(&sets, &mut diags).is_empty());
        assert_eq!(diags.len(), 2);
    }
}
