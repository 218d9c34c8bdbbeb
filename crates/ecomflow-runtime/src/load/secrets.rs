//! Values that came from the environment stay out of diagnostics: a `${VAR}` interpolated
//! into an option of the wrong type or shape (a password in `count`, a token in a URL that
//! does not parse) is shown as `${VAR}`, never as its value.

use crate::diagnostic::Diagnostic;
use std::cell::RefCell;

/// Values shorter than this are left as they are: too common to tell apart in a message
/// (a port, a count), and not secrets.
const SHORTEST: usize = 4;

/// The environment as loading sees it, remembering every value it gave.
pub(super) struct Recording<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    given: RefCell<Vec<(String, String)>>,
}

impl<'a> Recording<'a> {
    /// Records what `env` gives.
    pub(super) fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Recording<'a> {
        Recording {
            env,
            given: RefCell::default(),
        }
    }

    /// The value of `name`, remembered.
    pub(super) fn get(&self, name: &str) -> Option<String> {
        let value = (self.env)(name)?;
        if value.len() >= SHORTEST {
            self.given
                .borrow_mut()
                .push((name.to_string(), value.clone()));
        }
        Some(value)
    }

    /// Replaces every remembered value in `diags` with `${NAME}`.
    pub(super) fn hide(&self, diags: &mut [Diagnostic]) {
        let mut given = self.given.borrow().clone();
        // The longest first, so a value inside another is not replaced in it first.
        given.sort_by_key(|(_, v)| std::cmp::Reverse(v.len()));
        given.dedup();
        let hide = |text: &mut String| {
            for (name, value) in &given {
                if text.contains(value.as_str()) {
                    *text = text.replace(value.as_str(), &format!("${{{name}}}"));
                }
            }
        };
        for d in diags {
            hide(&mut d.message);
            hide(&mut d.location);
            if let Some(h) = &mut d.hint {
                hide(h);
            }
            if let Some((line, _)) = &mut d.snippet {
                hide(line);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_values_are_shown_as_their_variable() {
        let env = |name: &str| match name {
            "SECRET_PW" => Some("hunter2hunter2".to_string()),
            "PORT" => Some("5".to_string()),
            _ => None,
        };
        let recording = Recording::new(&env);
        assert_eq!(
            recording.get("SECRET_PW").as_deref(),
            Some("hunter2hunter2")
        );
        assert_eq!(recording.get("PORT").as_deref(), Some("5"));
        let mut diags = vec![
            Diagnostic::general(
                "--set sinks.db.url=x-hunter2hunter2",
                "invalid type: string \"hunter2hunter2\", expected u64 (5 of 5)",
            )
            .with_hint(Some("hunter2hunter2?")),
        ];
        recording.hide(&mut diags);
        let d = &diags[0];
        assert_eq!(d.location, "--set sinks.db.url=x-${SECRET_PW}");
        assert_eq!(
            d.message,
            "invalid type: string \"${SECRET_PW}\", expected u64 (5 of 5)"
        );
        assert_eq!(d.hint.as_deref(), Some("${SECRET_PW}?"));
    }
}
