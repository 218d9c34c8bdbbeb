//! One `_bulk` request's documents, sent beside the sink: a request that fails transiently is
//! sent again, documents rejected with 429 or a 5xx status are sent again (alone), with
//! growing pauses for up to `retry_for`; documents rejected for good, or still rejected then,
//! go to the dead-letter output with Elasticsearch's reason.

use crate::bulk::{Buffer, Outcome, outcomes};
use crate::client::Client;
use ecomflow_core::component::DeadLetterOutput;
use ecomflow_core::retry::shown;
use ecomflow_core::{ComponentError, Counters, Payload, RetryPolicy};
use std::sync::Arc;

/// What every request of one sink needs.
pub struct Sender {
    /// The client of the sink's index.
    pub client: Arc<Client>,
    /// How requests and rejected documents are tried again.
    pub retry: RetryPolicy,
}

impl Sender {
    /// Sends every document of `batch`. Returns when each is stored (counted in
    /// `counters.sent`) or dead-lettered; a request still failing after `retry_for` stops the
    /// run with its error.
    pub async fn send(
        &self,
        batch: Buffer,
        dead_letter: &DeadLetterOutput,
        counters: &Counters,
    ) -> Result<(), ComponentError> {
        let mut dead: Vec<(String, Payload)> = Vec::new();
        let result = self.send_docs(&batch, &mut dead).await;
        if result.is_ok() {
            Counters::add(&counters.sent, batch.len() - dead.len());
        }
        dead_letter.send(dead).await;
        result
    }

    async fn send_docs(
        &self,
        batch: &Buffer,
        dead: &mut Vec<(String, Payload)>,
    ) -> Result<(), ComponentError> {
        let client = &self.client;
        let n = batch.len();
        let mut pending: Vec<usize> = (0..n).collect();
        let mut retrying = self.retry.start();
        loop {
            let sent = if pending.len() == n {
                client.bulk(batch.slice(0..n)).await
            } else {
                client.bulk(&batch.select(&pending)).await
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
                        dead.push((reason, Payload::Record(batch.record(p))));
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
                    dead.push((reason, Payload::Record(batch.record(p))));
                }
                return Ok(());
            }
            pending = again.into_iter().map(|(p, _)| p).collect();
        }
    }
}
