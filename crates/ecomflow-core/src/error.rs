//! Errors that components report: configuration problems found at build time and failures
//! while running.

use std::ops::Range;

/// A problem with one component's configuration, found before anything runs.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// The option at fault as a dotted path inside the component (`condition`,
    /// `set.total_usd`), used to point at its line when `span` is not known.
    pub field: Option<String>,
    /// Byte range in the pipeline file, when the deserializer knew it.
    pub span: Option<Range<usize>>,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
    /// What kind of problem it is.
    pub kind: BuildErrorKind,
}

/// What kind of configuration problem a [`BuildError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildErrorKind {
    /// An option the component does not have (a misspelling, say).
    UnknownOption,
    /// An option the component needs is not there.
    MissingOption,
    /// An option's value is wrong, or the options do not go together.
    Invalid,
}

impl BuildError {
    /// A problem with the option at `field` (a dotted path inside the component).
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> BuildError {
        BuildError {
            field: Some(field.into()),
            span: None,
            message: message.into(),
            hint: None,
            kind: BuildErrorKind::Invalid,
        }
    }

    /// A problem with the component as a whole.
    pub fn component(message: impl Into<String>) -> BuildError {
        BuildError {
            field: None,
            span: None,
            message: message.into(),
            hint: None,
            kind: BuildErrorKind::Invalid,
        }
    }

    /// Adds a hint saying how to fix it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> BuildError {
        self.hint = Some(hint.into());
        self
    }
}

impl From<toml::de::Error> for BuildError {
    fn from(e: toml::de::Error) -> BuildError {
        let message = e.message().trim_end().to_string();
        // The one place that reads a kind from a message: serde says it only in words, in
        // these forms, for every options struct.
        let kind = if message.starts_with("unknown field") {
            BuildErrorKind::UnknownOption
        } else if message.starts_with("missing field") {
            BuildErrorKind::MissingOption
        } else {
            BuildErrorKind::Invalid
        };
        BuildError {
            field: None,
            span: e.span(),
            message,
            hint: None,
            kind,
        }
    }
}

/// A failure that stops a component while it runs (the run then stops with this message).
#[derive(Debug, thiserror::Error)]
pub enum ComponentError {
    /// An I/O failure, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What the component was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A service that cannot be reached or cannot take the work right now (connection refused
    /// or lost, a server starting up or overloaded): worth trying again, as
    /// [`crate::retry`] does. Holds what was being done and why it failed.
    #[error("{0}")]
    Unavailable(String),
    /// Any other failure: trying again would fail the same way.
    #[error("{0}")]
    Other(String),
}

impl ComponentError {
    /// Wraps an I/O error with what the component was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ComponentError {
        ComponentError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the failure may pass if the same thing is tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, ComponentError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Options {
        path: String,
        #[serde(default)]
        every: u32,
    }

    fn kind_of(text: &str) -> BuildErrorKind {
        let e = toml::from_str::<Options>(text).expect_err("refused");
        BuildError::from(e).kind
    }

    #[test]
    fn options_errors_say_their_kind() {
        assert_eq!(
            kind_of("path = \"a\"\npaht = 1"),
            BuildErrorKind::UnknownOption
        );
        assert_eq!(kind_of("every = 1"), BuildErrorKind::MissingOption);
        assert_eq!(kind_of("path = 3"), BuildErrorKind::Invalid);
        assert_eq!(
            BuildError::field("path", "empty").kind,
            BuildErrorKind::Invalid
        );
    }
}
