//! The `file` source: JSON lines from a file or stdin, undecodable lines dead-lettered with their line number.

use super::lines::{Decoding, Lines};
use ecomflow_core::async_trait::async_trait;
use ecomflow_core::byte_size::{ByteSize, bytes};
use ecomflow_core::{
    BuildContext, BuildError, ComponentError, Plugin, Source, SourceContext, SourcePlugin,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes asked for per read.
const CHUNK: usize = 64 * 1024;

/// Options of the `file` source.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// The file to read, one JSON object per line; `-` reads standard input.
    pub path: String,
    /// Lines per batch sent downstream, so at most as many records (a line that does not
    /// decode goes to the dead letters instead); a partial batch goes out at the end of the
    /// input, and whenever a pipe or stdin has nothing more to read for now.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: usize,
    /// A batch also goes out as soon as its lines reach this many bytes, such as `"4 MiB"`,
    /// however few records it holds: with long lines this bounds a batch's memory.
    #[serde(default = "default_max_batch_bytes")]
    #[schemars(with = "ecomflow_core::byte_size::Bytes")]
    pub max_batch_bytes: ByteSize,
}

fn default_max_batch_bytes() -> ByteSize {
    ByteSize::mib(4)
}

fn default_batch_size() -> usize {
    1024
}

/// Registers the `file` source.
pub struct FileSourcePlugin;

impl SourcePlugin for FileSourcePlugin {
    type Config = FileSourceConfig;

    fn build(cfg: FileSourceConfig, _cx: &BuildContext) -> Result<Box<dyn Source>, BuildError> {
        if cfg.path.is_empty() {
            return Err(BuildError::field("path", "path is empty").with_hint("use `-` for stdin"));
        }
        if cfg.batch_size == 0 {
            return Err(BuildError::field(
                "batch_size",
                "batch_size must be at least 1",
            ));
        }
        Ok(Box::new(FileSource {
            path: cfg.path,
            batch_size: cfg.batch_size,
            max_batch_bytes: bytes(cfg.max_batch_bytes).max(1),
        }))
    }
}

struct FileSource {
    path: String,
    batch_size: usize,
    max_batch_bytes: usize,
}

/// Where a checkpoint leaves the source: the byte after the last line sent, and that line's
/// number.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
struct Position {
    offset: u64,
    line: u64,
}

/// Lines read so far: those not handed to decoding yet, and the batches being decoded.
struct Pending {
    lines: Lines,
    decoding: Decoding,
    batch_size: usize,
    max_batch_bytes: usize,
}

impl Pending {
    /// Takes one line; hands a full batch of lines to decoding, and sends the oldest
    /// decoded batch when enough are under way. False when nothing reads the output any
    /// more.
    async fn line(&mut self, cx: &SourceContext, line: &[u8]) -> bool {
        self.lines.push(line);
        if self.lines.len() < self.batch_size && self.lines.bytes() < self.max_batch_bytes {
            return true;
        }
        self.cut();
        while self.decoding.full() {
            if !self.send_oldest(cx).await {
                return false;
            }
        }
        true
    }

    /// Hands the lines not handed yet to decoding.
    fn cut(&mut self) {
        if !self.lines.is_empty() {
            let next = self.lines.next(self.max_batch_bytes);
            self.decoding
                .start(std::mem::replace(&mut self.lines, next));
        }
    }

    /// Sends everything read so far; false when the source must stop (nothing reads the
    /// output any more, or the runtime is shutting down).
    async fn send(&mut self, cx: &SourceContext) -> bool {
        self.cut();
        while !self.decoding.is_empty() {
            if !self.send_oldest(cx).await {
                return false;
            }
        }
        true
    }

    /// Sends the oldest decoded batch and its dead letters; false when the source must stop.
    async fn send_oldest(&mut self, cx: &SourceContext) -> bool {
        let Some(decoded) = self.decoding.next().await else {
            return false;
        };
        cx.reject(decoded.dead).await;
        decoded.batch.is_empty() || cx.send(decoded.batch).await.is_ok()
    }
}

#[async_trait]
impl Source for FileSource {
    async fn run(self: Box<Self>, cx: SourceContext) -> Result<(), ComponentError> {
        // After a restart, go on from the last checkpoint: the byte after the last line sent.
        let restored: Option<Position> = cx.restored()?;
        let Position {
            offset: mut consumed,
            line: first_line,
        } = restored.unwrap_or_default();
        let (name, mut input): (String, Box<dyn AsyncRead + Unpin + Send>) = if self.path == "-" {
            if restored.is_some() {
                tracing::warn!("stdin cannot be read again from a checkpoint's position");
            }
            ("stdin".into(), Box::new(tokio::io::stdin()))
        } else {
            let mut file = tokio::fs::File::open(&self.path)
                .await
                .map_err(|e| ComponentError::io(format!("cannot open {}", self.path), e))?;
            if consumed > 0 {
                use tokio::io::AsyncSeekExt;
                file.seek(std::io::SeekFrom::Start(consumed))
                    .await
                    .map_err(|e| ComponentError::io(format!("cannot seek in {}", self.path), e))?;
            }
            // What this run will read, for the live progress.
            if let Ok(meta) = file.metadata().await {
                cx.telemetry.expected_bytes.store(
                    meta.len().saturating_sub(consumed),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
            (self.path.clone(), Box::new(file))
        };
        let mut pending = Pending {
            lines: Lines::new(first_line),
            decoding: Decoding::new(&name),
            batch_size: self.batch_size,
            max_batch_bytes: self.max_batch_bytes,
        };
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
        loop {
            if cx.checkpoint_due() {
                // Everything decoded so far goes out first: the position covers sent lines.
                if !pending.send(&cx).await {
                    return Ok(());
                }
                let position = Position {
                    offset: consumed,
                    line: pending.lines.through(),
                };
                cx.checkpoint(&position).await;
            }
            buf.reserve(CHUNK);
            let asked = buf.capacity() - buf.len();
            let read = tokio::select! {
                biased;
                _ = cx.shutdown.cancelled() => break,
                _ = cx.checkpoint_requested() => continue,
                read = input.read_buf(&mut buf) => read,
            };
            let n = read.map_err(|e| ComponentError::io(format!("cannot read {name}"), e))?;
            cx.read_bytes(n);
            if n == 0 {
                // End of input: the last line may lack its newline.
                let last = std::mem::take(&mut buf);
                consumed += last.len() as u64;
                if !last.is_empty() && !pending.line(&cx, &last).await {
                    return Ok(());
                }
                break;
            }
            let mut start = 0;
            while let Some(end) = memchr::memchr(b'\n', &buf[start..]) {
                let line = start..start + end;
                start += end + 1;
                consumed += end as u64 + 1;
                if !pending.line(&cx, &buf[line]).await {
                    return Ok(());
                }
            }
            buf.drain(..start);
            // A short read means a pipe or terminal with nothing more for now: do not hold
            // its records back waiting for a full batch.
            if n < asked && !pending.send(&cx).await {
                return Ok(());
            }
        }
        pending.send(&cx).await;
        let position = Position {
            offset: consumed,
            line: pending.lines.through(),
        };
        cx.last_checkpoint(&position).await;
        Ok(())
    }
}

ecomflow_core::inventory::submit!(Plugin::source::<FileSourcePlugin>(
    "file",
    "JSON lines from a file or stdin (`-`)"
));

#[cfg(test)]
mod tests {
    use crate::test_support::{build_error, build_source, run_source, source_context};
    use ecomflow_core::{ComponentError, Field, Payload, Value};
    use std::io::Write;

    fn write_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("written");
        f
    }

    fn options(path: &std::path::Path, extra: &str) -> String {
        format!("path = {:?}\n{extra}", path.to_str().expect("utf8 path"))
    }

    #[tokio::test]
    async fn long_lines_make_smaller_batches() {
        // Ten lines of about 1,000 bytes with batches of at most 2,500 bytes of lines: a
        // batch goes out at its third line, long before its 1,024 records.
        let line = format!("{{\"text\":\"{}\"}}\n", "x".repeat(1000));
        let f = write_file(&line.repeat(10));
        let source =
            build_source("file", &options(f.path(), "max_batch_bytes = 2500")).expect("builds");
        let (batches, dead) = run_source(source).await;
        assert!(dead.is_empty());
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [3, 3, 3, 1]);
        // A size with a unit reads too; nonsense is refused with the option's name.
        assert!(build_source("file", &options(f.path(), "max_batch_bytes = \"1 MiB\"")).is_ok());
        let e = build_error(build_source(
            "file",
            &options(f.path(), "max_batch_bytes = \"lots\""),
        ));
        assert!(e.to_string().contains("lots"), "{e}");
    }

    #[tokio::test]
    async fn reads_lines_in_batches_and_dead_letters_bad_ones_with_line_numbers() {
        batches_and_dead_letters_with_line_numbers().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dead_letters_keep_their_line_numbers_when_decoded_on_other_threads() {
        batches_and_dead_letters_with_line_numbers().await;
    }

    async fn batches_and_dead_letters_with_line_numbers() {
        let f = write_file("{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":\n{\"a\":3}\nnot json\n{\"a\":4}");
        let path = f.path().to_str().expect("utf8").to_string();
        let source = build_source("file", &options(f.path(), "batch_size = 2")).expect("builds");
        let (batches, dead) = run_source(source).await;

        // Batches of two lines (holding the records among them: one each here), then the
        // line without a newline, sent at the end.
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [1, 1, 1, 1]);
        let a: Vec<&Value> = batches
            .iter()
            .flatten()
            .map(|r| r.get(Field::new("a")).expect("a"))
            .collect();
        assert_eq!(
            a,
            [
                &Value::Int(1),
                &Value::Int(2),
                &Value::Int(3),
                &Value::Int(4)
            ]
        );

        // The blank line too, like an empty Kafka message: every line is accounted for.
        let reasons: Vec<&str> = dead.iter().map(|d| d.reason.as_str()).collect();
        assert_eq!(dead.len(), 3, "{reasons:?}");
        assert_eq!(reasons[0], format!("{path}:2: invalid JSON: empty line"));
        assert!(
            reasons[1].starts_with(&format!("{path}:4: invalid JSON")),
            "{}",
            reasons[1]
        );
        assert_eq!(dead[1].payload, Payload::Raw(b"{\"a\":".to_vec()));
        assert!(
            reasons[2].starts_with(&format!("{path}:6: invalid JSON")),
            "{}",
            reasons[2]
        );
        assert_eq!(dead[2].payload, Payload::Raw(b"not json".to_vec()));
    }

    #[tokio::test]
    async fn long_files_cross_read_boundaries_intact() {
        lines_arrive_whole_and_in_order().await;
    }

    /// With two worker threads, batches are decoded beside the source, and still arrive in
    /// the file's order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batches_decoded_on_other_threads_arrive_in_order() {
        lines_arrive_whole_and_in_order().await;
    }

    async fn lines_arrive_whole_and_in_order() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!(
                "{{\"i\":{i},\"pad\":\"{}\"}}\n",
                "x".repeat(i % 50)
            ));
        }
        let f = write_file(&text);
        let source = build_source("file", &options(f.path(), "")).expect("builds");
        let (batches, dead) = run_source(source).await;
        assert!(dead.is_empty(), "{:?}", dead.first());
        assert!(batches.iter().all(|b| b.len() <= 1024));
        let i: Vec<i64> = batches
            .iter()
            .flatten()
            .map(|r| match r.get(Field::new("i")) {
                Some(Value::Int(i)) => *i,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(i, (0..20_000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_line_longer_than_a_read_arrives_whole() {
        // 700,000 bytes: the line spans many reads, between short lines.
        let long = "y".repeat(700_000);
        let text = format!("{{\"i\":1}}\n{{\"i\":2,\"long\":\"{long}\"}}\n{{\"i\":3}}\n");
        let f = write_file(&text);
        let source = build_source("file", &options(f.path(), "")).expect("builds");
        let (batches, dead) = run_source(source).await;
        assert!(dead.is_empty(), "{:?}", dead.first());
        let records: Vec<_> = batches.into_iter().flatten().collect();
        assert_eq!(records.len(), 3);
        assert_eq!(
            records[1].get(Field::new("long")),
            Some(&Value::from(long.as_str()))
        );
        assert_eq!(records[2].get(Field::new("i")), Some(&Value::Int(3)));
    }

    #[tokio::test]
    async fn a_missing_file_is_an_io_error_naming_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("nope.jsonl");
        let source = build_source("file", &options(&path, "")).expect("builds");
        let (cx, _h) = source_context();
        let e = source.run(cx).await.expect_err("missing file");
        assert!(matches!(e, ComponentError::Io { .. }));
        assert!(e.to_string().contains(path.to_str().expect("utf8")), "{e}");
    }

    #[tokio::test]
    async fn stops_when_shutdown_is_asked() {
        let f = write_file("{\"a\":1}\n");
        let source = build_source("file", &options(f.path(), "")).expect("builds");
        let (cx, mut h) = source_context();
        h.shutdown.cancel();
        source.run(cx).await.expect("runs");
        assert!(h.rx.recv().await.is_none(), "nothing read after shutdown");
    }

    #[test]
    fn path_is_required() {
        let e = build_error(build_source("file", "batch_size = 3"));
        assert!(e.message.contains("missing field `path`"), "{e}");
        let e = build_error(build_source("file", "path = \"x\"\nbatch_size = 0"));
        assert_eq!(e.field.as_deref(), Some("batch_size"));
    }
}
