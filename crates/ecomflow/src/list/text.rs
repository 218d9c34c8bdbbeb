//! `ecomflow list` as text, for a terminal.

use super::{OptionDoc, options, options_of, shared_tables};
use ecomflow_core::Plugin;
use std::fmt::Write;

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
