//! The `file` sink: appends records to a file as JSON lines.

use ecomflow_core::async_trait::async_trait;
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Incoming, Plugin, Sink, SinkContext, SinkPlugin,
};
use ecomflow_json::encode_line;
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;
use tokio::fs::{File, OpenOptions};
use tokio::io::AsyncWriteExt;

/// Options of the `file` sink.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The file to write, one JSON object per line; missing parent directories are created.
    pub path: String,
    /// Add to what the file already holds; with `false` the file is emptied when the run
    /// starts writing.
    #[serde(default = "default_append")]
    pub append: bool,
}

fn default_append() -> bool {
    true
}

/// Registers the `file` sink.
pub struct FileSinkPlugin;

impl SinkPlugin for FileSinkPlugin {
    type Config = FileSinkConfig;

    fn build(cfg: FileSinkConfig, _cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError> {
        if cfg.path.is_empty() {
            return Err(BuildError::field("path", "path is empty"));
        }
        Ok(Box::new(FileSink {
            path: PathBuf::from(cfg.path),
            append: cfg.append,
            file: None,
            buf: Vec::new(),
        }))
    }
}

struct FileSink {
    path: PathBuf,
    append: bool,
    /// Opened on first write (or at finish, so an empty run still leaves the file).
    file: Option<File>,
    /// The encoded batch, reused across batches.
    buf: Vec<u8>,
}

impl FileSink {
    fn error(&self, doing: &str, e: std::io::Error) -> ComponentError {
        ComponentError::io(format!("cannot {doing} {}", self.path.display()), e)
    }

    async fn file(&mut self) -> Result<&mut File, ComponentError> {
        if self.file.is_none() {
            if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| self.error("create the directory of", e))?;
            }
            let mut options = OpenOptions::new();
            options.create(true);
            if self.append {
                options.append(true);
            } else {
                options.write(true).truncate(true);
            }
            let file = options
                .open(&self.path)
                .await
                .map_err(|e| self.error("open", e))?;
            self.file = Some(file);
        }
        self.file
            .as_mut()
            .ok_or_else(|| ComponentError::Other("file sink lost its file".into()))
    }
}

#[async_trait]
impl Sink for FileSink {
    fn destination(&self) -> Option<ecomflow_core::Destination> {
        let place = ecomflow_core::Destination::place(self.path.display().to_string());
        Some(if self.append {
            place.with_note("appended: what earlier runs wrote is still there")
        } else {
            place.with_note("emptied when the run started")
        })
    }

    async fn write(&mut self, batch: Incoming, _cx: &SinkContext) -> Result<(), ComponentError> {
        let batch = batch.records();
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        for record in batch.iter() {
            encode_line(record, &mut buf);
        }
        let written = self.file().await?.write_all(&buf).await;
        self.buf = buf;
        written.map_err(|e| self.error("write to", e))
    }

    async fn checkpoint(&mut self, cx: &SinkContext) -> Result<(), ComponentError> {
        self.finish(cx).await
    }

    async fn finish(&mut self, _cx: &SinkContext) -> Result<(), ComponentError> {
        let file = self.file().await?;
        let flushed = match file.flush().await {
            Ok(()) => file.sync_all().await,
            Err(e) => Err(e),
        };
        flushed.map_err(|e| self.error("flush", e))
    }
}

ecomflow_core::inventory::submit!(Plugin::sink::<FileSinkPlugin>(
    "file",
    "appends records to a file as JSON lines"
));

// Where dead letters go when a pipeline has no `[dead_letter]` table.
ecomflow_core::inventory::submit!(ecomflow_core::DefaultDeadLetter {
    sink: "file",
    options: &[("path", "dead-letter.jsonl")],
});

#[cfg(test)]
mod tests {
    use crate::test_support::{build_error, build_sink, record, sink_context};
    use ecomflow_core::{ComponentError, Incoming, Sink};
    use serde_json::json;
    use std::path::Path;

    fn sink(path: &Path, extra: &str) -> Box<dyn Sink> {
        let options = format!("path = {:?}\n{extra}", path.to_str().expect("utf8 path"));
        build_sink("file", &options).expect("builds")
    }

    async fn run(mut sink: Box<dyn Sink>, values: &[i64]) {
        let (cx, _dead) = sink_context();
        for v in values {
            sink.write(Incoming::from(vec![record(json!({"v": v}))]), &cx)
                .await
                .expect("writes");
        }
        sink.finish(&cx).await.expect("finishes");
    }

    #[tokio::test]
    async fn creates_directories_and_appends_by_default() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("a/b/out.jsonl");
        run(sink(&path, ""), &[1, 2]).await;
        run(sink(&path, ""), &[3]).await;
        let text = std::fs::read_to_string(&path).expect("written");
        assert_eq!(text, "{\"v\":1}\n{\"v\":2}\n{\"v\":3}\n");
    }

    #[tokio::test]
    async fn append_false_truncates_once_at_start() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("out.jsonl");
        std::fs::write(&path, "old line\n").expect("seeded");
        run(sink(&path, "append = false"), &[1, 2]).await;
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "{\"v\":1}\n{\"v\":2}\n"
        );
        run(sink(&path, "append = false"), &[]).await;
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "",
            "an empty run empties it"
        );
    }

    #[tokio::test]
    async fn failures_name_the_path() {
        let dir = tempfile::tempdir().expect("dir");
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "").expect("file");
        let path = blocker.join("out.jsonl");
        let mut sink = sink(&path, "");
        let (cx, _dead) = sink_context();
        let e = sink
            .write(Incoming::from(vec![record(json!({"v": 1}))]), &cx)
            .await
            .expect_err("fails");
        assert!(matches!(e, ComponentError::Io { .. }));
        assert!(e.to_string().contains(path.to_str().expect("utf8")), "{e}");
    }

    #[test]
    fn path_is_required() {
        let e = build_error(build_sink("file", "append = true"));
        assert!(e.message.contains("missing field `path`"), "{e}");
    }
}
