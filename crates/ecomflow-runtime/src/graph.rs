//! Draws a pipeline as Graphviz dot or Mermaid: its components, what each reads, and the sinks
//! that write in the checkpoint's transaction (a dashed arrow to the checkpoint store).

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

/// The checkpoint store's node.
const STORE: &str = "checkpoint_store";
/// What the arrow from a sink to the checkpoint store says.
const LINK: &str = "commits in the checkpoint's transaction";

/// Renders the components and their wiring.
pub fn render(pipeline: &Pipeline, format: GraphFormat) -> String {
    let mut s = String::new();
    let mut linked = pipeline
        .components
        .iter()
        .filter(|c| c.in_checkpoint)
        .peekable();
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
            if linked.peek().is_some() {
                let _ = writeln!(
                    s,
                    "  \"{STORE}\" [shape=cylinder, label=\"checkpoint store\\n(checkpoint.url)\"];"
                );
            }
            for c in linked {
                let _ = writeln!(
                    s,
                    "  \"{}\" -> \"{STORE}\" [style=dashed, label=\"{LINK}\"];",
                    c.id
                );
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
            if linked.peek().is_some() {
                let _ = writeln!(s, "  {STORE}[(\"checkpoint store (checkpoint.url)\")]");
            }
            for c in linked {
                let _ = writeln!(s, "  {} -.->|{LINK}| {STORE}", c.id);
            }
        }
    }
    s
}
