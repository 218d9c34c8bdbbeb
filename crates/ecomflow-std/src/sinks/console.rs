//! The `console` sink: writes records to stdout as JSON lines, one write per batch.

use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Incoming, Plugin, Sink, SinkContext, SinkPlugin,
};
use ecomflow_json::encode_line;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Options of the `console` sink (it has none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {}

/// Registers the `console` sink.
pub struct ConsolePlugin;

impl SinkPlugin for ConsolePlugin {
    type Config = ConsoleConfig;

    fn build(_cfg: ConsoleConfig, _cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        Ok(Box::new(Console {
            out: None::<tokio::io::Stdout>,
            open: tokio::io::stdout,
            buf: Vec::new(),
        }))
    }
}

/// Writes JSON lines to `out`, opened on first use.
struct Console<W> {
    out: Option<W>,
    open: fn() -> W,
    /// The encoded batch, reused across batches.
    buf: Vec<u8>,
}

#[async_trait]
impl<W: AsyncWrite + Unpin + Send> Sink for Console<W> {
    async fn write(&mut self, batch: Incoming, _cx: &SinkContext) -> Result<(), ComponentError> {
        let batch = batch.records();
        self.buf.clear();
        for record in batch.iter() {
            encode_line(record, &mut self.buf);
        }
        let out = self.out.get_or_insert_with(self.open);
        out.write_all(&self.buf)
            .await
            .map_err(|e| ComponentError::io("cannot write to stdout", e))?;
        // Stdout is shared with the rest of the program: hand the batch over now.
        out.flush()
            .await
            .map_err(|e| ComponentError::io("cannot write to stdout", e))
    }

    async fn finish(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        match &mut self.out {
            Some(out) => out
                .flush()
                .await
                .map_err(|e| ComponentError::io("cannot write to stdout", e)),
            None => Ok(()),
        }
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<ConsolePlugin>(
    "console",
    "writes records to stdout as JSON lines"
));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{build_error, build_sink, record, sink_context};
    use serde_json::json;

    #[tokio::test]
    async fn writes_each_batch_as_json_lines() {
        let mut sink = Console {
            out: None,
            open: Vec::new,
            buf: Vec::new(),
        };
        let (cx, _dead) = sink_context();
        sink.write(
            Incoming::from(vec![
                record(json!({"a": 1, "b": "x"})),
                record(json!({"a": 2})),
            ]),
            &cx,
        )
        .await
        .expect("writes");
        assert_eq!(
            sink.out.as_deref(),
            Some(&b"{\"a\":1,\"b\":\"x\"}\n{\"a\":2}\n"[..])
        );
        sink.write(Incoming::from(vec![record(json!({"c": null}))]), &cx)
            .await
            .expect("writes");
        sink.finish(&cx).await.expect("finishes");
        let text = String::from_utf8(sink.out.expect("opened")).expect("utf8");
        assert_eq!(text, "{\"a\":1,\"b\":\"x\"}\n{\"a\":2}\n{\"c\":null}\n");
    }

    #[test]
    fn takes_no_options() {
        build_sink("console", "").expect("builds");
        let e = build_error(build_sink("console", "path = \"x\""));
        assert!(e.message.contains("unknown field `path`"), "{e}");
    }
}
