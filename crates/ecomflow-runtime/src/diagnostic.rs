//! Configuration diagnostics: what is wrong, where (`file:line:column`, component path) and
//! how to fix it. All of them are collected before any is reported.

use std::fmt;
use std::ops::Range;

/// One pipeline file's name and text, for turning byte offsets into lines and columns.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it.
    pub name: String,
    /// The file's text.
    pub text: String,
    /// The directory holding the file (relative file options are read from there).
    pub base_dir: std::path::PathBuf,
}

impl SourceFile {
    /// The 1-based line and column of byte `offset` (inside a character: of that character).
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }

    /// The text of the 1-based `line`.
    pub fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line - 1).unwrap_or("")
    }
}

/// One problem in a pipeline's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// `file:line:column`, or another place such as `--set`.
    pub location: String,
    /// The source line, shown under the message.
    pub snippet: Option<(String, usize)>,
    /// The component path, such as `transforms.paid`.
    pub component: Option<String>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at byte range `span` of `file`.
    pub fn at(file: &SourceFile, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let (location, snippet) = match span {
            Some(span) => {
                let (line, column) = file.position(span.start);
                (
                    format!("{}:{line}:{column}", file.name),
                    Some((file.line_text(line).to_string(), column)),
                )
            }
            None => (file.name.clone(), None),
        };
        Diagnostic {
            location,
            snippet,
            component: None,
            message: message.into(),
            hint: None,
        }
    }

    /// A problem not tied to a file position (such as a `--set` argument).
    pub fn general(location: impl Into<String>, message: impl Into<String>) -> Self {
        Diagnostic {
            location: location.into(),
            snippet: None,
            component: None,
            message: message.into(),
            hint: None,
        }
    }

    /// Names the component at fault.
    pub fn in_component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: Option<impl Into<String>>) -> Self {
        self.hint = hint.map(Into::into);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.location)?;
        if let Some(c) = &self.component {
            write!(f, "{c}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some((line, column)) = &self.snippet {
            let pad = " ".repeat(column.saturating_sub(1));
            write!(f, "\n    | {line}\n    | {pad}^")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n    = hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in a pipeline; the pipeline does not start while there is one.
#[derive(Debug, Clone, Default, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {d}")?;
        }
        let n = self.0.len();
        write!(f, "{n} error{} found", if n == 1 { "" } else { "s" })
    }
}

/// The names in `known` closest to `name`, for "did you mean" hints.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(name, k), k))
        .filter(|(score, _)| *score > 0.8)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, k)| k).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let f = SourceFile {
            name: "p.toml".into(),
            text: "a = 1\n[b]\n  cé = 2\n".into(),
            base_dir: ".".into(),
        };
        assert_eq!(f.position(0), (1, 1));
        assert_eq!(f.position(6), (2, 1));
        let at = f.text.find("= 2").expect("present");
        assert_eq!(f.position(at), (3, 6));
        let d = Diagnostic::at(&f, Some(at..at + 1), "bad").in_component("sources.b");
        assert!(
            d.to_string().starts_with("p.toml:3:6: sources.b: bad"),
            "{d}"
        );
    }

    #[test]
    fn closest_names_rank_by_similarity() {
        let names = ["filter", "map", "validate"];
        assert_eq!(closest("filtr", names), ["filter"]);
        assert!(closest("zzz", names).is_empty());
    }
}
