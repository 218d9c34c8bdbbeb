//! Lines read but not decoded yet, and their decoding: the `file` source hands a batch's
//! lines to the runtime's other worker threads to decode, in order, when it has some.

use ecomflow_core::{Batch, Payload};
use ecomflow_json::JsonDecoder;
use std::collections::VecDeque;
use tokio::task::JoinHandle;

/// Batches being decoded beside the source, at most, before it waits for the oldest.
const AHEAD: usize = 2;

/// A batch's lines, copied out of the read buffer.
pub struct Lines {
    bytes: Vec<u8>,
    /// Where each line ends in `bytes`.
    ends: Vec<usize>,
    /// How many lines of the input came before these.
    before: u64,
}

impl Lines {
    /// No lines yet, `before` lines of the input before them.
    pub fn new(before: u64) -> Lines {
        Lines {
            bytes: Vec::new(),
            ends: Vec::new(),
            before,
        }
    }

    /// The lines after these, with room for as many as these hold, up to `cap` bytes (so
    /// that a batch's lines are copied once, not moved as the buffer grows, and one huge
    /// line does not size every batch after it).
    pub fn next(&self, cap: usize) -> Lines {
        Lines {
            bytes: Vec::with_capacity(self.bytes.capacity().min(cap)),
            ends: Vec::with_capacity(self.ends.capacity()),
            before: self.through(),
        }
    }

    pub fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// How many lines of the input these end: the number of the last one.
    pub fn through(&self) -> u64 {
        self.before + self.ends.len() as u64
    }
}

/// Decoded lines: the records, and the lines that are not JSON objects with their reason
/// (`input:line: ...`).
pub struct Decoded {
    pub batch: Batch,
    pub dead: Vec<(String, Payload)>,
}

/// Decodes `lines` of the input `name`.
pub fn decode(lines: &Lines, name: &str, decoder: &mut JsonDecoder) -> Decoded {
    let mut batch = Vec::with_capacity(lines.len());
    let mut dead = Vec::new();
    let mut start = 0;
    for (i, &end) in lines.ends.iter().enumerate() {
        let raw = &lines.bytes[start..end];
        start = end;
        let line_no = lines.before + i as u64 + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        // Not a JSON object either: dead-lettered like an empty Kafka message, so every
        // line read is accounted for.
        if line.iter().all(u8::is_ascii_whitespace) {
            let reason = format!("{name}:{line_no}: invalid JSON: empty line");
            dead.push((reason, Payload::Raw(line.to_vec())));
            continue;
        }
        match decoder.decode(line) {
            Ok(r) => batch.push(r),
            Err(e) => {
                let reason = format!("{name}:{line_no}: {e}");
                dead.push((reason, Payload::Raw(line.to_vec())));
            }
        }
    }
    Decoded { batch, dead }
}

/// Decodes batches of lines in order: beside the source on the runtime's worker threads
/// when it has more than one, in place otherwise.
pub struct Decoding {
    name: std::sync::Arc<str>,
    /// The decoder of batches decoded in place.
    decoder: JsonDecoder,
    beside: bool,
    running: VecDeque<JoinHandle<Decoded>>,
    /// The batch decoded in place, not taken yet.
    done: Option<Decoded>,
}

impl Decoding {
    pub fn new(name: &str) -> Decoding {
        let beside = tokio::runtime::Handle::current().metrics().num_workers() > 1;
        Decoding {
            name: name.into(),
            decoder: JsonDecoder::new(),
            beside,
            running: VecDeque::new(),
            done: None,
        }
    }

    /// Starts decoding `lines`.
    pub fn start(&mut self, lines: Lines) {
        if self.beside {
            let name = self.name.clone();
            self.running.push_back(tokio::spawn(async move {
                // A decoder of its own: it learns the key order at the batch's first record.
                decode(&lines, &name, &mut JsonDecoder::new())
            }));
        } else {
            self.done = Some(decode(&lines, &self.name, &mut self.decoder));
        }
    }

    /// Whether the oldest batch should be taken before another one starts.
    pub fn full(&self) -> bool {
        self.running.len() >= AHEAD || self.done.is_some()
    }

    /// Whether no batch is under way or waiting.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty() && self.done.is_none()
    }

    /// The oldest batch started, once decoded; call it only when not [`is_empty`](Self::is_empty).
    /// `None` when its decoding was cancelled (the runtime is shutting down): its lines are
    /// lost to this run, so the source must stop without a checkpoint past them.
    pub async fn next(&mut self) -> Option<Decoded> {
        if let Some(decoded) = self.done.take() {
            return Some(decoded);
        }
        match self.running.pop_front()?.await {
            Ok(decoded) => Some(decoded),
            // Decoding does not panic; should it ever, that is a bug to show, not to hide.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => None,
        }
    }
}
