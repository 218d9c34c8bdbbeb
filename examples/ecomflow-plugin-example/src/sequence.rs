//! The `sequence` source: the numbers 0, 1, 2, ... up to `count`, one record `{"n": ...}`
//! each, in batches. It resumes where the last checkpoint left it, so after a restart no
//! number is sent twice or skipped.

use ecomflow_core::async_trait::async_trait;
use ecomflow_core::duration::ZeroAllowed;
use ecomflow_core::schemars::JsonSchema;
use ecomflow_core::serde::Deserialize;
use ecomflow_core::{BuildContext, BuildError, ComponentError, Field, Plugin, Record};
use ecomflow_core::{Source, SourceContext, SourcePlugin, Value, tokio};

/// Options of the `sequence` source.
#[derive(Deserialize, JsonSchema)]
#[serde(crate = "ecomflow_core::serde", deny_unknown_fields)]
#[schemars(crate = "ecomflow_core::schemars")]
pub struct SequenceConfig {
    /// How many numbers it sends in all, from 0.
    pub count: u64,
    /// Numbers per batch.
    #[serde(default = "hundred")]
    #[schemars(range(min = 1))]
    pub batch_size: u64,
    /// A pause after each batch, such as `10ms` (none by default).
    #[serde(default)]
    pub every: ZeroAllowed,
}

fn hundred() -> u64 {
    100
}

/// The `sequence` source, built from [`SequenceConfig`].
pub struct Sequence(SequenceConfig);

impl SourcePlugin for Sequence {
    type Config = SequenceConfig;

    fn build(config: SequenceConfig, _cx: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
        if config.batch_size == 0 {
            return Err(BuildError::field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        Ok(Box::new(Sequence(config)))
    }
}

#[async_trait]
impl Source for Sequence {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        let n = Field::new("n");
        // Its position is the next number to send: 0, or what the last checkpoint kept.
        let mut next: u64 = cx.restored()?.unwrap_or(0);
        while next < self.0.count && !cx.shutdown.is_cancelled() {
            if cx.checkpoint_due() {
                cx.checkpoint(&next).await;
            }
            let end = self.0.count.min(next + self.0.batch_size);
            let batch = (next..end).map(|i| {
                let mut record = Record::with_capacity(1);
                record.push(n, Value::Int(i64::try_from(i).unwrap_or(i64::MAX)));
                record
            });
            if cx.send(batch.collect()).await.is_err() {
                break; // Nothing reads the output any more: the run is stopping.
            }
            next = end;
            tokio::select! {
                _ = tokio::time::sleep(self.0.every.get()) => {}
                _ = cx.shutdown.cancelled() => {}
            }
        }
        // At its end, or stopped: the runtime takes its last checkpoints at `next`.
        cx.last_checkpoint(&next).await;
        Ok(())
    }
}

ecomflow_core::inventory::submit!(Plugin::source::<Sequence>(
    "sequence",
    "The numbers from 0 to `count`, resumed where the last checkpoint left them"
));
