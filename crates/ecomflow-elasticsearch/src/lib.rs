//! ecomflow-elasticsearch: the `elasticsearch` sink, indexing records with `_bulk`.
//!
//! Records are buffered as NDJSON and sent when `batch_size` documents are waiting or the
//! oldest has waited `flush_interval`, each document's `_id` read from `id_field` (so a replay
//! replaces documents instead of adding them). Up to `concurrency` requests run beside the
//! sink while it goes on batching, never two holding the same document; bodies can be
//! gzip-compressed (`compression`). The client is made, and the index `template`
//! stored, at the first write, never at build time, so `ecomflow validate` runs offline. Every
//! item of a `_bulk` response is read: documents rejected with 429 or a 5xx status are sent
//! again with backoff, others go to the dead-letter output with Elasticsearch's reason. A
//! request Elasticsearch cannot take (unreachable, 429, 5xx), the template's too, is sent
//! again with growing pauses (ecomflow-core's retry policy) while the sink blocks once every
//! place in flight is taken; only after `retry_for` does it stop the run.

mod admission;
mod bulk;
mod client;
mod config;
mod date_format;
#[cfg(test)]
mod mock_tests;
mod send;
mod sink;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

pub use config::ElasticsearchConfig;
pub use sink::ElasticsearchPlugin;
