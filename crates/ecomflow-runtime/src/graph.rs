//! Draws a pipeline as Graphviz dot or Mermaid.

use crate::pipeline::Pipeline;
use ecomflow_core::Kind;
use std::fmt::Write;

/// The output formats of `ecomflow graph`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Graphviz dot.
    Dot,
    /// Mermaid flowchart.
    Mermaid,
}

/// Renders the components and their wiring.
pub fn render(pipeline: &Pipeline, format: GraphFormat) -> String {
    let mut s = String::new();
    match format {
        GraphFormat::Dot => {
            s.push_str("digraph pipeline {\n  rankdir=LR;\n");
            for c in &pipeline.components {
                let shape = match c.kind {
                    Kind::Source => "invhouse",
                    Kind::Transform => "box",
                    Kind::Sink => "house",
                };
                let _ = writeln!(
                    s,
                    "  \"{}\" [shape={shape}, label=\"{}\\n({})\"];",
                    c.id, c.id, c.plugin.name
                );
            }
            for c in &pipeline.components {
                for i in &c.inputs {
                    let label = i.port.as_ref().map(|p| format!(" [label=\"{p}\"]"));
                    let _ = writeln!(
                        s,
                        "  \"{}\" -> \"{}\"{};",
                        i.component,
                        c.id,
                        label.unwrap_or_default()
                    );
                }
            }
            s.push_str("}\n");
        }
        GraphFormat::Mermaid => {
            s.push_str("flowchart LR\n");
            for c in &pipeline.components {
                let (open, close) = match c.kind {
                    Kind::Source => ("[/", "/]"),
                    Kind::Transform => ("[", "]"),
                    Kind::Sink => ("[\\", "\\]"),
                };
                let _ = writeln!(s, "  {}{open}\"{} ({})\"{close}", c.id, c.id, c.plugin.name);
            }
            for c in &pipeline.components {
                for i in &c.inputs {
                    match &i.port {
                        Some(p) => {
                            let _ = writeln!(s, "  {} -->|{p}| {}", i.component, c.id);
                        }
                        None => {
                            let _ = writeln!(s, "  {} --> {}", i.component, c.id);
                        }
                    }
                }
            }
        }
    }
    s
}
