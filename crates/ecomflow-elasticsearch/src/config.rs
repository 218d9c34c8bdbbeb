//! The options of the `elasticsearch` sink and their offline checks (no file or network access).

use ecomflow_core::BuildError;
use elasticsearch::http::Url;
use schemars::JsonSchema;
use serde::Deserialize;
use std::time::Duration;

/// Options of the `elasticsearch` sink.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ElasticsearchConfig {
    /// The Elasticsearch node, such as `http://localhost:9200` (`https://` works too).
    pub url: String,
    /// The index to write, such as `transactions`; created by Elasticsearch at the first write
    /// when missing (with the mappings of a matching index template, such as `template`'s).
    pub index: String,
    /// The record field whose value, as text, is the document `_id`, such as `transactionId`:
    /// writing a record again replaces its document instead of adding one. A record without
    /// it goes to the dead-letter output. Unset: Elasticsearch assigns ids.
    #[serde(default)]
    pub id_field: Option<String>,
    /// An index-template JSON file, such as `../elasticsearch/transactions-template.json`,
    /// relative to the pipeline file; stored as `_index_template/<file name>` when the sink first
    /// connects, before anything is written. Its `index_patterns` must match `index`; it
    /// shapes indices created after it (an existing index keeps its mappings).
    #[serde(default)]
    pub template: Option<String>,
    /// Documents sent per `_bulk` request; a full buffer is sent at once.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// How many `_bulk` requests may be in flight at once: the sink goes on taking and
    /// batching records while they run. A document is never in two requests in flight, so a
    /// later version of it cannot be overtaken by an earlier one.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1))]
    pub concurrency: usize,
    /// Send request bodies gzip-compressed (`Content-Encoding: gzip`): about a tenth of the
    /// bytes on the network for the CPU of compressing them, worth it when Elasticsearch is
    /// across a network rather than on the same machine.
    #[serde(default)]
    pub compression: bool,
    /// The longest a document waits in the buffer before it is sent, such as `1s` or
    /// `500ms` (checked whenever records arrive, on a timer, and at the end of the run).
    #[serde(default = "default_flush_interval")]
    pub flush_interval: ecomflow_core::duration::Positive,
    /// How long a request is tried again, with growing pauses, while Elasticsearch cannot
    /// take it (unreachable, or answering 429 or a 5xx status), and likewise storing the
    /// `template` at start and a document rejected with 429 or a 5xx status. Meanwhile the
    /// sink goes on batching until every `concurrency` place is taken, then waits, and so
    /// does the pipeline upstream (a checkpoint waits for every request). Then a request stops the run with its
    /// error, a document goes to the dead-letter output with its reason. Other errors (such
    /// as 400 or 401) are not retried.
    #[serde(default = "default_retry_for")]
    pub retry_for: ecomflow_core::duration::ZeroAllowed,
    /// The pause before the first retry, doubled for each next one (at most 5s, or this
    /// pause when it is longer).
    #[serde(default = "default_retry_backoff")]
    pub retry_backoff: ecomflow_core::duration::Positive,
    /// The longest one request may take before it counts as failed (and is retried).
    #[serde(default = "default_request_timeout")]
    pub request_timeout: ecomflow_core::duration::Positive,
    /// User name for HTTP basic authentication (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// Password for HTTP basic authentication (with `username`).
    #[serde(default)]
    pub password: Option<String>,
}

fn default_batch_size() -> usize {
    1000
}

fn default_concurrency() -> usize {
    2
}

fn default_flush_interval() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_secs(1))
}

fn default_retry_for() -> ecomflow_core::duration::ZeroAllowed {
    ecomflow_core::duration::ZeroAllowed::new(Duration::from_secs(60))
}

fn default_retry_backoff() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_millis(200))
}

fn default_request_timeout() -> ecomflow_core::duration::Positive {
    ecomflow_core::duration::Positive::new(Duration::from_secs(60))
}

impl ElasticsearchConfig {
    /// Checks the options without touching the network and returns the parsed URL.
    pub fn check(&self) -> Result<Url, BuildError> {
        let url = Url::parse(&self.url).map_err(|e| {
            BuildError::field("url", format!("`{}` is not a URL: {e}", self.url))
                .with_hint("write it as `http://host:9200`")
        })?;
        if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
            return Err(BuildError::field(
                "url",
                format!("`{}` is not an http:// or https:// URL", self.url),
            )
            .with_hint("write it as `http://host:9200`"));
        }
        check_index(&self.index)?;
        if self.id_field.as_deref().is_some_and(str::is_empty) {
            return Err(BuildError::field("id_field", "id_field is empty")
                .with_hint("name a field such as \"transactionId\", or leave the option out"));
        }
        if self.template.as_deref().is_some_and(str::is_empty) {
            return Err(BuildError::field("template", "template is empty").with_hint(
                "name a file such as \"elasticsearch/transactions-template.json\", or leave the \
                 option out",
            ));
        }
        if self.concurrency == 0 {
            return Err(BuildError::field(
                "concurrency",
                "concurrency must be at least 1",
            ));
        }
        if self.batch_size == 0 {
            return Err(BuildError::field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(BuildError::field(
                "request_timeout",
                "request_timeout must be longer than 0s",
            ));
        }
        match (&self.username, &self.password) {
            (Some(_), None) => Err(BuildError::field("password", "username needs a password")),
            (None, Some(_)) => Err(BuildError::field("username", "password needs a username")),
            _ => Ok(url),
        }
    }
}

/// Elasticsearch's rules for index names, so a bad name fails before the run.
fn check_index(index: &str) -> Result<(), BuildError> {
    let bad = |why: &str| {
        Err(
            BuildError::field("index", format!("`{index}` is not an index name: {why}")).with_hint(
                "use lowercase letters, digits, `-`, `_` and `.`, such as `transactions`",
            ),
        )
    };
    if index.is_empty() {
        return bad("it is empty");
    }
    if index.chars().any(|c| c.is_uppercase()) {
        return bad("it has uppercase letters");
    }
    if let Some(c) = index.chars().find(|c| r#"\/*?"<>| ,#:"#.contains(*c)) {
        return bad(&format!("it contains `{c}`"));
    }
    if index.starts_with(['-', '_', '+']) || index == "." || index == ".." {
        return bad("it starts with `-`, `_` or `+`, or is `.` or `..`");
    }
    if index.len() > 255 {
        return bad("it is longer than 255 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::test_support::{build, build_error};

    #[test]
    fn defaults_are_in_the_schema() {
        let plugin = ecomflow_core::Plugin::find(ecomflow_core::Kind::Sink, "elasticsearch")
            .expect("registered");
        let schema = serde_json::to_value((plugin.schema)()).expect("schema");
        let props = &schema["properties"];
        assert_eq!(props["batch_size"]["default"], 1000);
        assert_eq!(props["flush_interval"]["default"], "1s");
        assert_eq!(props["retry_for"]["default"], "1m");
        assert_eq!(props["retry_backoff"]["default"], "200ms");
        assert_eq!(props["request_timeout"]["default"], "1m");
        assert_eq!(props["concurrency"]["default"], 2);
        assert_eq!(props["compression"]["default"], false);
        assert_eq!(schema["required"], serde_json::json!(["url", "index"]));
    }

    #[test]
    fn bad_options_fail_the_build_at_their_field() {
        let cases = [
            ("url = \"localhost:9200\"\nindex = \"t\"", "url"),
            ("url = \"not a url\"\nindex = \"t\"", "url"),
            ("url = \"http://h:9200\"\nindex = \"Transactions\"", "index"),
            ("url = \"http://h:9200\"\nindex = \"a/b\"", "index"),
            ("url = \"http://h:9200\"\nindex = \"_t\"", "index"),
            (
                "url = \"http://h:9200\"\nindex = \"t\"\nbatch_size = 0",
                "batch_size",
            ),
            (
                "url = \"http://h:9200\"\nindex = \"t\"\nconcurrency = 0",
                "concurrency",
            ),
            (
                "url = \"http://h:9200\"\nindex = \"t\"\nid_field = \"\"",
                "id_field",
            ),
            (
                "url = \"http://h:9200\"\nindex = \"t\"\ntemplate = \"\"",
                "template",
            ),
            (
                "url = \"http://h:9200\"\nindex = \"t\"\nusername = \"u\"",
                "password",
            ),
            (
                "url = \"http://h:9200\"\nindex = \"t\"\npassword = \"p\"",
                "username",
            ),
        ];
        for (options, field) in cases {
            let e = build_error(build(options));
            assert_eq!(e.field.as_deref(), Some(field), "{options}: {e}");
        }
        let e = build_error(build(
            "url = \"http://h:9200\"\nindex = \"t\"\nbatchsize = 5",
        ));
        assert!(e.to_string().contains("unknown field `batchsize`"), "{e}");
        let e = build_error(build("index = \"t\""));
        assert!(e.to_string().contains("missing field `url`"), "{e}");
        let e = build_error(build(
            "url = \"http://h\"\nindex = \"t\"\nflush_interval = \"soon\"",
        ));
        assert!(e.span.is_some(), "{e}");
    }

    #[test]
    fn a_complete_configuration_builds_offline() {
        build(
            "url = \"https://user:secret@es.example:9243\"\nindex = \"transactions\"\n\
             id_field = \"transactionId\"\ntemplate = \"missing-until-the-run.json\"\n\
             batch_size = 500\nflush_interval = \"250ms\"\nretry_for = \"0s\"\n\
             retry_backoff = \"1s\"\nrequest_timeout = \"5s\"\nusername = \"u\"\npassword = \"p\"",
        )
        .expect("builds without touching the network or the file");
    }
}
