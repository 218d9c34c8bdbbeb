//! The `blackhole` sink: counts records and drops them (for benchmarks and dry runs).

use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Incoming, Plugin, Sink, SinkContext, SinkPlugin,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// Options of the `blackhole` sink (it has none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlackholeConfig {}

/// Registers the `blackhole` sink.
pub struct BlackholePlugin;

impl SinkPlugin for BlackholePlugin {
    type Config = BlackholeConfig;

    fn build(_cfg: BlackholeConfig, _cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        Ok(Box::new(Blackhole { records: 0 }))
    }
}

struct Blackhole {
    records: u64,
}

#[async_trait]
impl Sink for Blackhole {
    async fn write(&mut self, batch: Incoming, _cx: &SinkContext) -> Result<(), ComponentError> {
        let batch = batch.records();
        self.records += batch.len() as u64;
        Ok(())
    }

    async fn finish(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        tracing::debug!(
            component = %cx.dead_letter.component(),
            records = self.records,
            "blackhole dropped every record"
        );
        Ok(())
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<BlackholePlugin>(
    "blackhole",
    "counts records and drops them"
));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{build_error, build_sink, record, sink_context};
    use serde_json::json;

    #[tokio::test]
    async fn counts_and_drops() {
        let mut sink = Blackhole { records: 0 };
        let (cx, mut dead) = sink_context();
        sink.write(Incoming::from(vec![record(json!({"a": 1})); 3]), &cx)
            .await
            .expect("writes");
        sink.write(Incoming::from(vec![record(json!({"a": 2}))]), &cx)
            .await
            .expect("writes");
        sink.finish(&cx).await.expect("finishes");
        assert_eq!(sink.records, 4);
        drop(cx);
        assert!(dead.recv().await.is_none(), "nothing dead-lettered");
    }

    #[test]
    fn takes_no_options() {
        build_sink("blackhole", "").expect("builds");
        let e = build_error(build_sink("blackhole", "print_summary = true"));
        assert!(e.message.contains("unknown field `print_summary`"), "{e}");
    }
}
