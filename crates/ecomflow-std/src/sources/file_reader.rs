//! Reads a file or stdin on a thread of its own, in chunks handed to the source whole, so
//! the source's task only splits and decodes (tokio's file reads copy every byte once more,
//! from their own buffer, and wait for a blocking thread at each read).

use std::io::Read;
use tokio::sync::mpsc;

/// Bytes read at a time from a regular file.
const CHUNK: usize = 256 * 1024;

/// Bytes asked for per read from a pipe or terminal, which answers with what it has.
const PIPE_CHUNK: usize = 64 * 1024;

/// Chunks read ahead of the source.
const AHEAD: usize = 4;

/// One read: its bytes (empty at the end of the input), and whether it was short (a pipe or
/// terminal with nothing more for now).
pub struct Chunk {
    pub bytes: Vec<u8>,
    pub short: bool,
}

/// The receiving end; the thread stops when it is dropped (at its next read's end) or at the
/// end of the input.
pub struct Reader {
    chunks: mpsc::Receiver<std::io::Result<Chunk>>,
}

impl Reader {
    /// Starts reading `input` on a new thread: a regular file (`regular`) in whole chunks,
    /// anything else a read at a time, so that what a pipe has so far goes on at once. A
    /// thread blocked reading stdin does not keep the process from exiting.
    pub fn start(mut input: Box<dyn Read + Send>, regular: bool) -> std::io::Result<Reader> {
        let (tx, chunks) = mpsc::channel(AHEAD);
        std::thread::Builder::new()
            .name("file-reader".into())
            .spawn(move || {
                loop {
                    let read = if regular {
                        whole_chunk(&mut input)
                    } else {
                        one_read(&mut input)
                    };
                    let end = !matches!(&read, Ok(chunk) if !chunk.bytes.is_empty());
                    if tx.blocking_send(read).is_err() || end {
                        return;
                    }
                }
            })?;
        Ok(Reader { chunks })
    }

    /// The next chunk; an empty one at the end of the input.
    pub async fn next(&mut self) -> std::io::Result<Chunk> {
        self.chunks.recv().await.unwrap_or(Ok(Chunk {
            bytes: Vec::new(),
            short: true,
        }))
    }
}

/// Up to `CHUNK` bytes of a regular file, read into fresh memory without zeroing it first;
/// short only at the end of the file.
fn whole_chunk(input: &mut dyn Read) -> std::io::Result<Chunk> {
    let mut bytes = Vec::with_capacity(CHUNK);
    input.take(CHUNK as u64).read_to_end(&mut bytes)?;
    let short = bytes.len() < CHUNK;
    Ok(Chunk { bytes, short })
}

/// One read of a pipe or terminal: what it has now, up to `PIPE_CHUNK` bytes.
fn one_read(input: &mut dyn Read) -> std::io::Result<Chunk> {
    let mut bytes = vec![0; PIPE_CHUNK];
    let n = loop {
        match input.read(&mut bytes) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => break other?,
        }
    };
    bytes.truncate(n);
    Ok(Chunk {
        bytes,
        short: n < PIPE_CHUNK,
    })
}
