//! The `elasticsearch` sink: buffers documents, sends them with `_bulk` by size or age, retries
//! the ones Elasticsearch could not take yet and dead-letters the ones it rejects.

use crate::bulk::{Buffer, Outcome, outcomes};
use crate::client::Client;
use crate::config::ElasticsearchConfig;
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::retry::shown;
use ecomflow_core::{
    Batching, BuildContext, BuildError, ComponentError, Field, Incoming, Payload, Plugin, Record,
    RetryPolicy, Sink, SinkContext, SinkPlugin,
};
use elasticsearch::http::Url;
use std::path::PathBuf;
use std::time::Duration;

/// Registers the `elasticsearch` sink.
pub struct ElasticsearchPlugin;

impl SinkPlugin for ElasticsearchPlugin {
    type Config = ElasticsearchConfig;

    fn build(cfg: ElasticsearchConfig, cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        let url = cfg.check()?;
        Ok(Box::new(ElasticsearchSink {
            url,
            id_field: cfg.id_field.as_deref().map(Field::new),
            index: cfg.index,
            // Relative to the pipeline file, so a pipeline finds the template shipped with it.
            template: cfg.template.map(|t| cx.base_dir.join(t)),
            credentials: cfg.username.zip(cfg.password),
            timeout: cfg.request_timeout,
            retry: RetryPolicy::new(cfg.retry_for).with_first_pause(cfg.retry_backoff),
            batching: Batching::new(cfg.batch_size, cfg.flush_interval),
            client: None,
            buffer: Buffer::default(),
        }))
    }
}

struct ElasticsearchSink {
    url: Url,
    index: String,
    id_field: Option<Field>,
    template: Option<PathBuf>,
    credentials: Option<(String, String)>,
    timeout: Duration,
    /// How requests, the template and rejected documents are tried again.
    retry: RetryPolicy,
    /// When the buffer is sent: by size and by age.
    batching: Batching,
    /// Made at the first write (or at finish), once the template is stored.
    client: Option<Client>,
    /// Documents not sent yet.
    buffer: Buffer,
}

impl ElasticsearchSink {
    /// Makes the client and stores the index template, once; tried again while
    /// Elasticsearch cannot take it, for up to `retry_for`.
    async fn connect(&mut self) -> Result<(), ComponentError> {
        if self.client.is_some() {
            return Ok(());
        }
        let credentials = self.credentials.clone();
        let client = Client::new(&self.url, &self.index, credentials, self.timeout)?;
        if let Some(template) = &self.template {
            self.retry.run(|| client.put_template(template)).await?;
        }
        self.client = Some(client);
        Ok(())
    }

    /// Sends the first `n` buffered documents and drops them from the buffer. Returns when
    /// each is stored or dead-lettered: a request that fails transiently is sent again, and
    /// documents rejected with 429 or a 5xx status are sent again (alone), with growing
    /// pauses for up to `retry_for`; then the request's error stops the run, and the
    /// documents still rejected are dead-lettered.
    async fn send(&mut self, n: usize, cx: &SinkContext) -> Result<(), ComponentError> {
        if n == 0 {
            return Ok(());
        }
        self.connect().await?;
        let mut dead: Vec<(String, Payload)> = Vec::new();
        let result = self.send_docs(n, &mut dead).await;
        cx.dead_letter.send(dead).await;
        result?;
        self.buffer.drain_front(n);
        Ok(())
    }

    async fn send_docs(
        &self,
        n: usize,
        dead: &mut Vec<(String, Payload)>,
    ) -> Result<(), ComponentError> {
        let Some(client) = &self.client else {
            return Err(ComponentError::Other(
                "the elasticsearch sink is not connected".into(),
            ));
        };
        let mut pending: Vec<usize> = (0..n).collect();
        let mut retrying = self.retry.start();
        loop {
            let sent = if pending.len() == n {
                client.bulk(self.buffer.slice(0..n)).await
            } else {
                client.bulk(&self.buffer.select(&pending)).await
            };
            let response = match sent {
                Ok(response) => response,
                Err(e) => {
                    retrying.failed(e).await?;
                    continue;
                }
            };
            let results = outcomes(&response, pending.len())
                .map_err(|e| ComponentError::Other(format!("{}: {e}", client.what())))?;
            let mut again = Vec::new();
            for (&p, outcome) in pending.iter().zip(results) {
                match outcome {
                    Outcome::Done => {}
                    Outcome::Retry(reason) => again.push((p, reason)),
                    Outcome::Failed(reason) => {
                        dead.push((reason, Payload::Record(self.buffer.record(p))));
                    }
                }
            }
            let Some((_, first_reason)) = again.first() else {
                return Ok(());
            };
            let why = format!(
                "{} of {} documents not taken by {} yet ({first_reason})",
                again.len(),
                pending.len(),
                client.what()
            );
            if !retrying.wait(&why).await {
                let after = shown(retrying.retry_for());
                for (p, reason) in again {
                    let reason = format!("{reason} (still rejected after retrying for {after})");
                    dead.push((reason, Payload::Record(self.buffer.record(p))));
                }
                return Ok(());
            }
            pending = again.into_iter().map(|(p, _)| p).collect();
        }
    }

    /// Buffers `records` and sends every full batch.
    async fn accept(&mut self, records: &[Record], cx: &SinkContext) -> Result<(), ComponentError> {
        let mut dead = Vec::new();
        let before = self.buffer.len();
        for r in records {
            if let Err(reason) = self.buffer.push(r, self.id_field) {
                dead.push((reason, Payload::Record(r.clone())));
            }
        }
        cx.dead_letter.send(dead).await;
        let arrived = self.buffer.len() - before;
        self.batching.added(arrived);
        if self.batching.is_full(self.buffer.len()) {
            while self.batching.is_full(self.buffer.len()) {
                self.send(self.batching.batch_size(), cx).await?;
            }
            self.batching
                .full_batches_written(self.buffer.len(), arrived);
        }
        self.flush_if_old(cx).await
    }

    async fn flush_if_old(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        if self.batching.is_due() {
            self.flush_all(cx).await?;
        }
        Ok(())
    }

    /// Sends every buffered document.
    async fn flush_all(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        while !self.buffer.is_empty() {
            self.send(self.batching.batch_size().min(self.buffer.len()), cx)
                .await?;
        }
        self.buffer.clear();
        self.batching.emptied();
        Ok(())
    }
}

#[async_trait]
impl Sink for ElasticsearchSink {
    /// Makes the client (and stores the index template) before the first batch, so the sink
    /// is ready once Elasticsearch has answered.
    async fn open(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        self.connect().await
    }

    async fn write(&mut self, batch: Incoming, cx: &SinkContext) -> Result<(), ComponentError> {
        let batch = batch.records();
        self.accept(batch, cx).await
    }

    fn tick_interval(&self) -> Option<Duration> {
        Some(self.batching.flush_interval())
    }

    async fn tick(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        self.flush_if_old(cx).await
    }

    async fn checkpoint(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        self.flush_all(cx).await
    }

    async fn finish(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        // An empty run still connects, so the template is stored and errors show.
        self.connect().await?;
        self.flush_all(cx).await
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<ElasticsearchPlugin>(
    "elasticsearch",
    "indexes records into Elasticsearch with _bulk: document ids from a field, an index \
     template, batched by size and time, per-document retries and dead letters"
));
