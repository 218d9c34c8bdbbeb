//! librdkafka's logs and client errors, forwarded to `tracing` under the target `librdkafka`.

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;
use tracing::Level;

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

/// Forwards one librdkafka log line, at the level [`level`] gives it.
pub fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match self::level(level) {
        Level::ERROR => tracing::error!(target: "librdkafka", "{facility}: {message}"),
        Level::WARN => tracing::warn!(target: "librdkafka", "{facility}: {message}"),
        Level::INFO => tracing::info!(target: "librdkafka", "{facility}: {message}"),
        Level::DEBUG => tracing::debug!(target: "librdkafka", "{facility}: {message}"),
        _ => tracing::trace!(target: "librdkafka", "{facility}: {message}"),
    }
}

/// The level of a librdkafka log line here. librdkafka logs a broker it cannot reach, a
/// connection it lost, a request that timed out at its own error level, then retries on its
/// own and recovers when the broker is back: those are warnings. What ends the run is an
/// error where it happens (a record not delivered, a commit refused, a fatal client error).
pub fn level(level: RDKafkaLogLevel) -> Level {
    match level {
        RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical => Level::ERROR,
        RDKafkaLogLevel::Error | RDKafkaLogLevel::Warning => Level::WARN,
        RDKafkaLogLevel::Notice => Level::INFO,
        RDKafkaLogLevel::Info => Level::DEBUG,
        RDKafkaLogLevel::Debug => Level::TRACE,
    }
}

/// Forwards a client error (a broker unreachable, say): librdkafka retries on its own and
/// holds back repeats, so these are warnings; what fails a record or a commit is reported
/// where it happens. A fatal error (the client cannot go on) is an error.
pub fn error(error: &KafkaError, reason: &str) {
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
        tracing::error!(target: "librdkafka", "{error}: {reason}");
        return;
    }
    if error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF) {
        // The end of a partition was reached: news for `stop_at_end`, not a problem.
        tracing::debug!(target: "librdkafka", "{error}: {reason}");
        return;
    }
    tracing::warn!(target: "librdkafka", "{error}: {reason}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_librdkafka_recovers_from_is_a_warning() {
        assert_eq!(level(RDKafkaLogLevel::Error), Level::WARN);
        assert_eq!(level(RDKafkaLogLevel::Warning), Level::WARN);
        assert_eq!(level(RDKafkaLogLevel::Critical), Level::ERROR);
        assert_eq!(level(RDKafkaLogLevel::Info), Level::DEBUG);
    }
}
