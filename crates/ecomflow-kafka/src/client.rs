//! librdkafka's logs and client errors, forwarded to `tracing` under the target `librdkafka`.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// The context of the sink's producer: librdkafka's logs go to `tracing`.
pub struct Logging;

impl ClientContext for Logging {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self::error(&error, reason);
    }
}

/// Forwards one librdkafka log line.
pub fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{facility}: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{facility}: {message}"),
        RDKafkaLogLevel::Notice => tracing::info!(target: "librdkafka", "{facility}: {message}"),
        RDKafkaLogLevel::Info => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        RDKafkaLogLevel::Debug => tracing::trace!(target: "librdkafka", "{facility}: {message}"),
    }
}

/// Forwards a client error (a broker unreachable, say): librdkafka retries on its own and
/// holds back repeats, so these are warnings; what fails a record or a commit is reported
/// where it happens.
pub fn error(error: &KafkaError, reason: &str) {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
        // The end of a partition was reached: news for `stop_at_end`, not a problem.
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        return;
    }
    tracing::warn!(target: "librdkafka", "{error}: {reason}");
}
