//! The `elasticsearch` sink: buffers documents and sends them with `_bulk` by size or age, up
//! to `concurrency` requests at a time (see `send` for the retries and dead letters).

use crate::admission::IndexRules;
use crate::bulk::Buffer;
use crate::client::Client;
use crate::config::ElasticsearchConfig;
use crate::send::Sender;
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    Batching, BuildContext, BuildError, ComponentError, Counters, Field, InFlight, Incoming,
    Payload, Plugin, Record, RetryPolicy, Sink, SinkContext, SinkPlugin,
};
use elasticsearch::http::Url;
use std::path::PathBuf;
use std::sync::Arc;
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
            timeout: cfg.request_timeout.get(),
            compression: cfg.compression,
            retry: RetryPolicy::new(cfg.retry_for.get()).with_first_pause(cfg.retry_backoff.get()),
            batching: Batching::new(cfg.batch_size, cfg.flush_interval.get()),
            client: None,
            buffer: Buffer::default(),
            in_flight: InFlight::new(cfg.concurrency),
            admission: None,
            counters: Arc::default(),
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
    /// Whether request bodies are sent gzip-compressed.
    compression: bool,
    /// How requests, the template and rejected documents are tried again.
    retry: RetryPolicy,
    /// When the buffer is sent: by size and by age.
    batching: Batching,
    /// Made at the first write (or at finish), once the template is stored.
    client: Option<Arc<Client>>,
    /// Documents not sent yet.
    buffer: Buffer,
    /// The requests running beside the sink.
    in_flight: InFlight,
    /// What the index refuses, read when the sink opens.
    admission: Option<Arc<IndexRules>>,
    /// Its counters (taken when it opens): it counts the documents stored (see
    /// `Sink::counts_written`).
    counters: Arc<Counters>,
}

impl ElasticsearchSink {
    /// Makes the client and stores the index template, once; tried again while
    /// Elasticsearch cannot take it, for up to `retry_for`.
    async fn connect(&mut self) -> Result<(), ComponentError> {
        if self.client.is_some() {
            return Ok(());
        }
        let credentials = self.credentials.clone();
        let client = Client::new(
            &self.url,
            &self.index,
            credentials,
            self.timeout,
            self.compression,
        )?;
        if let Some(template) = &self.template {
            self.retry.run(|| client.put_template(template)).await?;
        }
        self.client = Some(Arc::new(client));
        Ok(())
    }

    /// Starts sending the first `n` buffered documents beside the sink (taking them out of
    /// the buffer), once a place among the `concurrency` requests in flight is free and no
    /// request in flight holds one of their ids; returns an earlier request's failure.
    async fn send(&mut self, n: usize, cx: &SinkContext) -> Result<(), ComponentError> {
        if n == 0 {
            return Ok(());
        }
        self.connect().await?;
        let Some(client) = &self.client else {
            return Err(ComponentError::Other(
                "the elasticsearch sink is not connected".into(),
            ));
        };
        let sender = Sender {
            client: client.clone(),
            retry: self.retry,
        };
        let batch = self.buffer.split_front(n);
        let ids = batch.id_hashes();
        let dead_letter = cx.dead_letter.clone();
        let counters = self.counters.clone();
        let request = async move { sender.send(batch, &dead_letter, &counters).await };
        self.in_flight.start(ids, request).await
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

    /// Sends every buffered document, and waits until every request has ended.
    async fn flush_all(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        while !self.buffer.is_empty() {
            self.send(self.batching.batch_size().min(self.buffer.len()), cx)
                .await?;
        }
        self.buffer.clear();
        self.batching.emptied();
        self.in_flight.wait_all().await
    }
}

#[async_trait]
impl Sink for ElasticsearchSink {
    fn destination(&self) -> Option<ecomflow_core::Destination> {
        Some(ecomflow_core::Destination::named(
            crate::client::redact(&self.url),
            format!("index {}", self.index),
        ))
    }

    /// Makes the client (and stores the index template) before the first batch, so the sink
    /// is ready once Elasticsearch has answered.
    async fn open(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        self.counters = cx.telemetry.counters.clone();
        self.connect().await?;
        let Some(client) = &self.client else {
            return Ok(());
        };
        let (mappings, settings) = self.retry.run(|| client.layout()).await?;
        self.admission = Some(Arc::new(IndexRules::new(
            self.id_field,
            &mappings,
            &settings,
        )));
        Ok(())
    }

    fn counts_written(&self) -> bool {
        true
    }

    fn admission(&self) -> Option<Arc<dyn ecomflow_core::Admission>> {
        self.admission
            .clone()
            .map(|a| a as Arc<dyn ecomflow_core::Admission>)
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
