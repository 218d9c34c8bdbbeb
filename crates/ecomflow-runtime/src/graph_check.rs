//! Checks the wiring between components: every input names a component and one of its
//! outputs, nothing reads a sink, and there is no cycle.

use crate::diagnostic::{Diagnostic, SourceFile, closest};
use crate::pipeline::InputRef;
use ecomflow_core::{Kind, Plugin};
use std::ops::Range;

/// A declared component as the graph check sees it (whether or not its options built).
pub struct Node<'a> {
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// The file that declares it.
    pub file: &'a SourceFile,
    /// Where its id is written.
    pub span: Range<usize>,
    /// What it reads, each with where it is written.
    pub inputs: Vec<(InputRef, Range<usize>)>,
    /// Its plugin, when the `type` was known.
    pub plugin: Option<&'static Plugin>,
}

impl Node<'_> {
    fn path(&self) -> String {
        format!("{}.{}", self.kind.table(), self.id)
    }
}

/// Adds a diagnostic for every dangling input, read sink, unknown port and cycle.
pub fn check_graph(nodes: &[Node<'_>], diags: &mut Vec<Diagnostic>) {
    let ids: Vec<&str> = nodes.iter().map(|c| c.id.as_str()).collect();
    for c in nodes {
        for (i, (input, span)) in c.inputs.iter().enumerate() {
            let at = |msg: String| {
                Diagnostic::at(c.file, Some(span.clone()), msg).in_component(c.path())
            };
            if c.inputs[..i].iter().any(|(earlier, _)| earlier == input) {
                diags.push(at(format!("input `{input}` is listed twice")));
                continue;
            }
            let Some(up) = nodes.iter().find(|u| u.id == input.component) else {
                let hint = match closest(&input.component, ids.iter().copied()).first() {
                    Some(best) => {
                        format!("did you mean `{best}`? (components: {})", ids.join(", "))
                    }
                    None => format!("components: {}", ids.join(", ")),
                };
                diags.push(at(format!("input `{input}` names no component")).with_hint(Some(hint)));
                continue;
            };
            if up.kind == Kind::Sink {
                diags.push(at(format!(
                    "input `{input}` is a sink; sinks have no outputs"
                )));
                continue;
            }
            if let (Some(port), Some(plugin)) = (&input.port, up.plugin)
                && !plugin.outputs.contains(&port.as_str())
            {
                let ports = if plugin.outputs.is_empty() {
                    "it has only its default output".to_string()
                } else {
                    format!("its named outputs: {}", plugin.outputs.join(", "))
                };
                diags.push(
                    at(format!("`{}` has no output named `{port}`", up.path()))
                        .with_hint(Some(ports)),
                );
            }
        }
    }
    if let Some(cycle) = find_cycle(nodes) {
        let names: Vec<&str> = cycle.iter().map(|&i| nodes[i].id.as_str()).collect();
        let first = &nodes[cycle[0]];
        diags.push(
            Diagnostic::at(
                first.file,
                Some(first.span.clone()),
                format!("cycle: {} -> {}", names.join(" -> "), names[0]),
            )
            .in_component(first.path())
            .with_hint(Some(
                "a component cannot read its own output, directly or through others",
            )),
        );
    }
}

/// One cycle as node indexes, if the graph has any.
fn find_cycle(nodes: &[Node<'_>]) -> Option<Vec<usize>> {
    // 0 = unvisited, 1 = on the current path, 2 = done.
    let mut state = vec![0u8; nodes.len()];
    let mut path = Vec::new();
    fn visit(
        i: usize,
        ns: &[Node<'_>],
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        state[i] = 1;
        path.push(i);
        for (input, _) in &ns[i].inputs {
            let Some(up) = ns.iter().position(|c| c.id == input.component) else {
                continue;
            };
            if state[up] == 1 {
                let start = path.iter().position(|&p| p == up).unwrap_or(0);
                let mut cycle = path[start..].to_vec();
                cycle.reverse();
                return Some(cycle);
            }
            if state[up] == 0
                && let Some(c) = visit(up, ns, state, path)
            {
                return Some(c);
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    (0..nodes.len()).find_map(|i| {
        if state[i] == 0 {
            visit(i, nodes, &mut state, &mut path)
        } else {
            None
        }
    })
}
