//! `/metrics`: the run's figures in the Prometheus text format (version 0.0.4), read from
//! the run's telemetry at each scrape (nothing is counted twice: the counters are the ones
//! the end-of-run table prints). Names follow Prometheus conventions: an `ecomflow_` prefix,
//! base units in the name, `_total` on counters; every component's series carry the labels
//! `component` (its path), `kind` and `type` (its plugin).

use ecomflow_core::{ComponentTelemetry, Kind};
use ecomflow_runtime::RunTelemetry;
use ecomflow_runtime::telemetry::now_millis;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::fmt::Error;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Now, in microseconds since the epoch (the unit of event time).
fn now_micros() -> i64 {
    now_millis().saturating_mul(1000)
}

/// The `Content-Type` of what [`render`] returns.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Every metric of the run, in the Prometheus text format.
pub fn render(telemetry: &Arc<RunTelemetry>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RunCollector(telemetry.clone())));
    let mut text = String::new();
    if prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).is_err() {
        tracing::warn!("cannot encode the metrics");
    }
    text
}

#[derive(Debug)]
struct RunCollector(Arc<RunTelemetry>);

/// The labels of a component's series.
fn labels(c: &ComponentTelemetry) -> [(&'static str, &str); 3] {
    [
        ("component", &c.path),
        ("kind", c.kind.noun()),
        ("type", c.plugin),
    ]
}

/// Writes one metric family: a descriptor, then one sample per item.
fn family<'a, T: 'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric_type: MetricType,
    items: impl IntoIterator<Item = &'a T>,
    mut sample: impl FnMut(&T, &mut MetricEncoder) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, metric_type)?;
    for item in items {
        sample(item, &mut metric)?;
    }
    Ok(())
}

/// A counter of each of `components`.
fn counters(
    encoder: &mut DescriptorEncoder,
    components: &[&Arc<ComponentTelemetry>],
    name: &str,
    help: &str,
    value: impl Fn(&ComponentTelemetry) -> u64,
) -> Result<(), Error> {
    family(
        encoder,
        name,
        help,
        MetricType::Counter,
        components,
        |c, m| ConstCounter::new(value(c)).encode(m.encode_family(&labels(c))?),
    )
}

/// A gauge of each of `components`.
fn gauges(
    encoder: &mut DescriptorEncoder,
    components: &[&Arc<ComponentTelemetry>],
    name: &str,
    help: &str,
    value: impl Fn(&ComponentTelemetry) -> f64,
) -> Result<(), Error> {
    family(
        encoder,
        name,
        help,
        MetricType::Gauge,
        components,
        |c, m| ConstGauge::new(value(c)).encode(m.encode_family(&labels(c))?),
    )
}

/// A gauge of partition `key` of component `c`.
fn partition_gauge(
    m: &mut MetricEncoder,
    c: &ComponentTelemetry,
    key: &str,
    v: f64,
) -> Result<(), Error> {
    let [a, b, d] = labels(c);
    ConstGauge::new(v).encode(m.encode_family(&[a, b, d, ("partition", key)])?)
}

/// A gauge without labels.
fn single(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> Result<(), Error> {
    ConstGauge::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for RunCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), Error> {
        let run = &self.0;
        let all: Vec<_> = run.components.iter().collect();
        let of = |kind| -> Vec<_> { all.iter().copied().filter(|c| c.kind == kind).collect() };
        let (sources, sinks) = (of(Kind::Source), of(Kind::Sink));
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);

        counters(
            &mut e,
            &all,
            "ecomflow_records_received",
            "Records a component received from its inputs (a source: read).",
            |c| load(&c.counters.received),
        )?;
        counters(
            &mut e,
            &all,
            "ecomflow_records_sent",
            "Records a component sent on (a sink: wrote).",
            |c| load(&c.counters.sent),
        )?;
        counters(
            &mut e,
            &all,
            "ecomflow_records_dead_lettered",
            "Records a component sent to the dead-letter output.",
            |c| load(&c.counters.dead_lettered),
        )?;
        counters(
            &mut e,
            &all,
            "ecomflow_records_dropped",
            "Records a component dropped on purpose (late records, a named output nothing reads).",
            |c| load(&c.counters.dropped),
        )?;
        counters(
            &mut e,
            &sources,
            "ecomflow_source_read_bytes",
            "Bytes a source read (message payloads, lines).",
            |c| load(&c.bytes_read),
        )?;
        counters(
            &mut e,
            &sinks,
            "ecomflow_sink_batches",
            "Batches a sink was given to write.",
            |c| load(&c.batches),
        )?;
        counters(
            &mut e,
            &sinks,
            "ecomflow_sink_rejected_rows",
            "Rows a sink's database or server refused (sent to the dead-letter output).",
            |c| load(&c.counters.dead_lettered),
        )?;
        counters(
            &mut e,
            &all,
            "ecomflow_retries",
            "Pauses a component took before trying again what failed (a lost connection, say).",
            |c| load(&c.retries),
        )?;
        family(
            &mut e,
            "ecomflow_sink_write_seconds",
            "How long a sink took to write one batch.",
            MetricType::Histogram,
            &sinks,
            |c, m| {
                let h = c.write_seconds.histogram();
                m.encode_family(&labels(c))?
                    .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)
            },
        )?;
        gauges(
            &mut e,
            &all,
            "ecomflow_component_ready",
            "1 when the component is ready (a sink connected, a Kafka source assigned, no outage being retried).",
            |c| f64::from(u8::from(c.not_ready().is_none())),
        )?;
        self.encode_time(&mut e, &all)?;
        self.encode_partitions(&mut e, &sources)?;
        self.encode_checkpoints(&mut e)?;

        let channels = run.channels();
        family(
            &mut e,
            "ecomflow_channel_batches",
            "Batches waiting in a component's input channel: a full one is where backpressure sits.",
            MetricType::Gauge,
            &channels,
            |ch, m| {
                ConstGauge::new(ch.batches as i64)
                    .encode(m.encode_family(&[("component", &*ch.component)])?)
            },
        )?;
        family(
            &mut e,
            "ecomflow_channel_capacity_batches",
            "Batches a component's input channel holds before its writers wait.",
            MetricType::Gauge,
            &channels,
            |ch, m| {
                ConstGauge::new(ch.capacity as i64)
                    .encode(m.encode_family(&[("component", &*ch.component)])?)
            },
        )?;
        family(
            &mut e,
            "ecomflow_channel_bytes",
            "Bytes of records waiting in a component's input channel.",
            MetricType::Gauge,
            &channels,
            |ch, m| {
                ConstGauge::new(i64::try_from(ch.bytes).unwrap_or(i64::MAX))
                    .encode(m.encode_family(&[("component", &*ch.component)])?)
            },
        )?;
        family(
            &mut e,
            "ecomflow_channel_capacity_bytes",
            "Bytes of records a component's input channel holds before its writers wait.",
            MetricType::Gauge,
            &channels,
            |ch, m| {
                ConstGauge::new(i64::try_from(ch.byte_capacity).unwrap_or(i64::MAX))
                    .encode(m.encode_family(&[("component", &*ch.component)])?)
            },
        )?;
        single(
            &mut e,
            "ecomflow_ready",
            "1 when the whole run is ready (see /ready).",
            f64::from(u8::from(run.not_ready().is_empty())),
        )?;
        if let Some(memory) = memory_stats::memory_stats() {
            single(
                &mut e,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                memory.physical_mem as f64,
            )?;
            single(
                &mut e,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                memory.virtual_mem as f64,
            )?;
        }
        Ok(())
    }
}

impl RunCollector {
    /// Each component's watermark, and how far event time lags behind the clock.
    fn encode_time(
        &self,
        e: &mut DescriptorEncoder,
        all: &[&Arc<ComponentTelemetry>],
    ) -> Result<(), Error> {
        let timed: Vec<_> = all
            .iter()
            .filter_map(|c| Some((*c, c.low_watermark()?)))
            .collect();
        let now = now_micros();
        family(
            e,
            "ecomflow_watermark_seconds",
            "The lowest watermark a component sent on (seconds since the epoch).",
            MetricType::Gauge,
            &timed,
            |(c, w), m| ConstGauge::new(*w as f64 / 1e6).encode(m.encode_family(&labels(c))?),
        )?;
        family(
            e,
            "ecomflow_event_time_lag_seconds",
            "Now minus a component's watermark.",
            MetricType::Gauge,
            &timed,
            |(c, w), m| {
                ConstGauge::new(now.saturating_sub(*w) as f64 / 1e6)
                    .encode(m.encode_family(&labels(c))?)
            },
        )
    }

    /// Per source partition: its watermark, the consumer lag and whether it is owned here.
    fn encode_partitions(
        &self,
        e: &mut DescriptorEncoder,
        sources: &[&Arc<ComponentTelemetry>],
    ) -> Result<(), Error> {
        let rows: Vec<_> = sources
            .iter()
            .flat_map(|c| c.partitions().into_iter().map(move |(key, p)| (*c, key, p)))
            .collect();
        let now = now_micros();
        family(
            e,
            "ecomflow_partition_watermark_seconds",
            "A source partition's watermark (seconds since the epoch).",
            MetricType::Gauge,
            rows.iter().filter(|r| r.2.watermark.is_some()),
            |(c, key, p), m| {
                partition_gauge(m, c, key, p.watermark.unwrap_or_default() as f64 / 1e6)
            },
        )?;
        family(
            e,
            "ecomflow_partition_event_time_lag_seconds",
            "Now minus a source partition's watermark.",
            MetricType::Gauge,
            rows.iter().filter(|r| r.2.watermark.is_some()),
            |(c, key, p), m| {
                partition_gauge(
                    m,
                    c,
                    key,
                    now.saturating_sub(p.watermark.unwrap_or(now)) as f64 / 1e6,
                )
            },
        )?;
        family(
            e,
            "ecomflow_kafka_consumer_lag_messages",
            "Messages of a partition not read yet (librdkafka's consumer_lag).",
            MetricType::Gauge,
            rows.iter().filter(|r| r.2.lag.is_some()),
            |(c, key, p), m| partition_gauge(m, c, key, p.lag.unwrap_or_default() as f64),
        )?;
        family(
            e,
            "ecomflow_partition_owned",
            "1 when this process owns the partition now (its Kafka group assignment).",
            MetricType::Gauge,
            &rows,
            |(c, key, p), m| partition_gauge(m, c, key, f64::from(u8::from(p.owned))),
        )
    }

    /// The last completed checkpoint and the failures.
    fn encode_checkpoints(&self, e: &mut DescriptorEncoder) -> Result<(), Error> {
        let stats = &self.0.checkpoints;
        ConstCounter::new(stats.failures()).encode(e.encode_descriptor(
            "ecomflow_checkpoint_failures",
            "Checkpoints that could not be kept.",
            None,
            MetricType::Counter,
        )?)?;
        let Some(last) = stats.last() else {
            return Ok(());
        };
        single(
            e,
            "ecomflow_checkpoint_last_id",
            "The id of the last completed checkpoint.",
            last.id as f64,
        )?;
        single(
            e,
            "ecomflow_checkpoint_last_duration_seconds",
            "How long the last completed checkpoint took, from its request to every component having made it durable.",
            last.duration.as_secs_f64(),
        )?;
        single(
            e,
            "ecomflow_checkpoint_last_size_bytes",
            "The size of what the last completed checkpoint kept (bytes of JSON).",
            last.size as f64,
        )?;
        single(
            e,
            "ecomflow_checkpoint_age_seconds",
            "Seconds since the last checkpoint completed.",
            now_millis().saturating_sub(last.completed_at) as f64 / 1000.0,
        )
    }
}
