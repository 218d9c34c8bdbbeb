//! The connection to Elasticsearch: requests, with the failures worth retrying (the server
//! unreachable or overloaded) told apart, and the index template stored before the first
//! write.

use crate::bulk::error_of;
use ecomflow_core::ComponentError;
use elasticsearch::auth::Credentials;
use elasticsearch::http::response::Response;
use elasticsearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use elasticsearch::http::{StatusCode, Url};
use elasticsearch::indices::{IndicesExistsParts, IndicesPutIndexTemplateParts};
use elasticsearch::{BulkParts, Elasticsearch};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// The parts of each `_bulk` response the sink reads.
const BULK_FILTER: &[&str] = &["items.*.status", "items.*.error"];

/// A client for one index of one node.
pub struct Client {
    es: Elasticsearch,
    index: String,
    /// `index `<index>` at <url>` (without password), for messages.
    what: String,
}

/// How a request went.
enum Attempt {
    /// Answered with this status and body.
    Answered(StatusCode, Vec<u8>),
    /// Not answered, or answered with 429 or a 5xx status: worth another try.
    Transient(String),
}

impl Client {
    /// A client for `index` at `url`, gzip-compressing request bodies when `compression` (no
    /// I/O: the first request connects).
    pub fn new(
        url: &Url,
        index: &str,
        credentials: Option<(String, String)>,
        timeout: Duration,
        compression: bool,
    ) -> Result<Client, ComponentError> {
        let what = format!("index `{index}` at {}", redact(url));
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url.clone()))
            .timeout(timeout)
            .request_body_compression(compression);
        if let Some((user, password)) = credentials {
            builder = builder.auth(Credentials::Basic(user, password));
        }
        let transport = builder.build().map_err(|e| {
            ComponentError::Other(format!("cannot set up a client for {what}: {e}"))
        })?;
        Ok(Client {
            es: Elasticsearch::new(transport),
            index: index.to_string(),
            what,
        })
    }

    /// `index `<index>` at <url>`, for messages.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Stores the index template read from `path` under the file's name (without `.json`):
    /// every index the template's patterns match shares it, so sinks writing different
    /// `transactions*` indices do not clash. Warns when the index already exists (the
    /// template then does not change it).
    pub async fn put_template(&self, path: &Path) -> Result<(), ComponentError> {
        let shown = path.display();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&self.index)
            .to_lowercase();
        let text = tokio::fs::read(path).await.map_err(|e| {
            ComponentError::io(format!("cannot read the index template {shown}"), e)
        })?;
        let template: serde_json::Value = serde_json::from_slice(&text).map_err(|e| {
            ComponentError::Other(format!("the index template {shown} is not JSON: {e}"))
        })?;
        let indices = self.es.indices();
        let (status, body) = self
            .send("store the index template for", || {
                indices
                    .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
                    .body(&template)
                    .send()
            })
            .await?;
        if !status.is_success() {
            return Err(ComponentError::Other(format!(
                "Elasticsearch refused the index template {shown} for {} ({status}): {}",
                self.what,
                error_of(&body)
            )));
        }
        let names = [self.index.as_str()];
        let (status, _) = self
            .send("check", || {
                indices.exists(IndicesExistsParts::Index(&names)).send()
            })
            .await?;
        if status.is_success() {
            tracing::warn!(
                index = %self.index,
                "the index already exists: the template applies only to indices created after \
                 it, so this index keeps its mappings"
            );
        }
        Ok(())
    }

    /// The mappings and settings the index has, or, when it does not exist yet, those the
    /// stored templates would give it (`_simulate_index`); `Null` for what cannot be read.
    pub async fn layout(&self) -> Result<(serde_json::Value, serde_json::Value), ComponentError> {
        use elasticsearch::http::Method;
        use elasticsearch::http::headers::HeaderMap;
        let get = |method: Method, path: String| async move {
            let (status, body) = self
                .send("read the mappings of", || {
                    self.es.send(
                        method,
                        &path,
                        HeaderMap::new(),
                        Option::<&()>::None,
                        Option::<()>::None,
                        None,
                    )
                })
                .await?;
            let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
            Ok::<_, ComponentError>((status, json))
        };
        let index = &self.index;
        let (status, mapping) = get(Method::Get, format!("/{index}/_mapping")).await?;
        if status.is_success() {
            // Keyed by the index's real name (the configured one may be an alias).
            let first = |v: &serde_json::Value, part: &str| {
                v.as_object()
                    .and_then(|m| m.values().next())
                    .map(|i| i[part].clone())
                    .unwrap_or_default()
            };
            let (_, settings) = get(
                Method::Get,
                format!("/{index}/_settings?include_defaults=true&flat_settings=true"),
            )
            .await?;
            let mut flat = first(&settings, "defaults");
            if let (Some(all), Some(set)) = (
                flat.as_object_mut(),
                first(&settings, "settings").as_object(),
            ) {
                all.extend(set.clone());
            }
            return Ok((first(&mapping, "mappings"), flat));
        }
        let (status, simulated) = get(
            Method::Post,
            format!("/_index_template/_simulate_index/{index}"),
        )
        .await?;
        if !status.is_success() {
            return Ok(Default::default());
        }
        let template = &simulated["template"];
        Ok((template["mappings"].clone(), template["settings"].clone()))
    }

    /// Sends one `_bulk` request and returns the response body.
    pub async fn bulk(&self, body: &[u8]) -> Result<Vec<u8>, ComponentError> {
        let (status, response) = self
            .send("write to", || {
                self.es
                    .bulk(BulkParts::Index(&self.index))
                    .filter_path(BULK_FILTER)
                    .body(vec![body])
                    .send()
            })
            .await?;
        if !status.is_success() {
            let hint = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "; lower `batch_size`"
            } else {
                ""
            };
            return Err(ComponentError::Other(format!(
                "Elasticsearch refused a _bulk request to {} ({status}): {}{hint}",
                self.what,
                error_of(&response)
            )));
        }
        Ok(response)
    }

    /// Sends the request `make` builds once: the answer (any status but 429 and 5xx), or an
    /// error naming `doing`, the node and the index, [`ComponentError::Unavailable`] when
    /// unanswered or answered with 429 or a 5xx status (the caller retries it).
    async fn send<F, Fut>(
        &self,
        doing: &str,
        make: F,
    ) -> Result<(StatusCode, Vec<u8>), ComponentError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Response, elasticsearch::Error>>,
    {
        match Self::attempt(make()).await {
            Attempt::Answered(status, body) => Ok((status, body)),
            Attempt::Transient(e) => Err(ComponentError::Unavailable(format!(
                "cannot {doing} {}: {e}",
                self.what
            ))),
        }
    }

    async fn attempt(
        request: impl Future<Output = Result<Response, elasticsearch::Error>>,
    ) -> Attempt {
        let response = match request.await {
            Ok(r) => r,
            Err(e) => return Attempt::Transient(error_chain(&e)),
        };
        let status = response.status_code();
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => return Attempt::Transient(error_chain(&e)),
        };
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Attempt::Transient(format!("{status}: {}", error_of(&body)))
        } else {
            Attempt::Answered(status, body)
        }
    }
}

/// An error with its sources (`error sending request: connection refused`).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        let _ = shown.set_password(Some("***"));
    }
    shown.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_hide_the_password() {
        let url = Url::parse("https://elastic:s3cret@es.example:9243/").expect("URL");
        assert_eq!(redact(&url), "https://elastic:***@es.example:9243");
    }
}
