//! When a sink writes its buffer: as soon as it holds a full batch, and once its oldest
//! record has waited the flush interval (checked when records arrive and on the sink's timer).
//! While its previous write still runs, a sink may let a full buffer grow to a larger batch:
//! one write of many records costs a database less than many writes of few.

use std::time::{Duration, Instant};

/// The size-and-age rule of a sink's buffer. The sink keeps the records; this keeps the age
/// of the oldest one and says when to write.
#[derive(Debug)]
pub struct Batching {
    batch_size: usize,
    /// The most records one write takes when the buffer gathered while the previous write
    /// ran; `batch_size` when it never grows.
    max_batch_size: usize,
    flush_interval: Duration,
    /// When the oldest buffered record arrived; `None` when the buffer is empty.
    oldest: Option<Instant>,
}

impl Batching {
    /// Batches of `batch_size` records, none waiting longer than `flush_interval`.
    pub fn new(batch_size: usize, flush_interval: Duration) -> Batching {
        Batching {
            batch_size,
            max_batch_size: batch_size,
            flush_interval,
            oldest: None,
        }
    }

    /// The same rule, letting a full buffer grow to `max_batch_size` records (at least the
    /// batch size) while the previous write runs.
    pub fn growing_to(self, max_batch_size: usize) -> Batching {
        Batching {
            max_batch_size: max_batch_size.max(self.batch_size),
            ..self
        }
    }

    /// Records per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The most records one write takes.
    pub fn max_batch_size(&self) -> usize {
        self.max_batch_size
    }

    /// Whether a buffer of `len` records is written now: it holds a full batch, and either
    /// no write is `running` or it has grown to the largest batch.
    pub fn should_write(&self, len: usize, running: bool) -> bool {
        self.is_full(len) && (!running || len >= self.max_batch_size)
    }

    /// The longest a record waits; also the sink's tick interval.
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    /// `n` records were added to the buffer.
    pub fn added(&mut self, n: usize) {
        if n > 0 {
            self.oldest.get_or_insert_with(Instant::now);
        }
    }

    /// Whether a buffer of `len` records holds a full batch.
    pub fn is_full(&self, len: usize) -> bool {
        len >= self.batch_size
    }

    /// The full batches were written; `left` records remain, of which the last `arrived`
    /// came with the latest write.
    pub fn full_batches_written(&mut self, left: usize, arrived: usize) {
        if left == 0 {
            self.oldest = None;
        } else if left <= arrived {
            // Only records of the latest write are left.
            self.oldest = Some(Instant::now());
        }
    }

    /// Whether the oldest record has waited `flush_interval`: write everything.
    pub fn is_due(&self) -> bool {
        self.oldest
            .is_some_and(|t| t.elapsed() >= self.flush_interval)
    }

    /// Everything was written.
    pub fn emptied(&mut self) {
        self.oldest = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_batches_and_old_records_are_due() {
        let mut b = Batching::new(10, Duration::from_millis(50));
        assert!(!b.is_due(), "an empty buffer is never due");
        b.added(0);
        assert!(!b.is_due());
        b.added(3);
        assert!(!b.is_full(3) && b.is_full(10));
        assert!(!b.is_due(), "too young");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.is_due());
        b.emptied();
        assert!(!b.is_due());
    }

    #[test]
    fn a_buffer_gathers_while_a_write_runs_up_to_the_largest_batch() {
        let b = Batching::new(10, Duration::from_secs(1)).growing_to(30);
        assert_eq!(b.max_batch_size(), 30);
        assert!(!b.should_write(9, false), "not full");
        assert!(b.should_write(10, false), "full, no write running");
        assert!(!b.should_write(10, true), "full, a write running: gather");
        assert!(!b.should_write(29, true));
        assert!(b.should_write(30, true), "the largest batch");
        let never = Batching::new(10, Duration::from_secs(1));
        assert!(
            never.should_write(10, true),
            "without growth a full batch is written"
        );
        let smaller = Batching::new(10, Duration::from_secs(1)).growing_to(5);
        assert_eq!(smaller.max_batch_size(), 10, "never below the batch size");
    }

    #[test]
    fn what_is_left_of_the_latest_write_starts_a_new_age() {
        let mut b = Batching::new(10, Duration::from_millis(50));
        b.added(8);
        std::thread::sleep(Duration::from_millis(60));
        // 8 old + 5 new: one batch written, 3 new ones left.
        b.added(5);
        b.full_batches_written(3, 5);
        assert!(!b.is_due(), "the 3 left arrived just now");
        b.added(9);
        b.full_batches_written(2, 9);
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.is_due());
        b.full_batches_written(0, 0);
        assert!(!b.is_due(), "nothing left");
    }
}
