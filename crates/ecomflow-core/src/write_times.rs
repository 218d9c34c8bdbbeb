//! How long a sink's writes take, counted in fixed buckets from 1 ms to about 16 s. The
//! metrics endpoint shows them as a Prometheus histogram (`ecomflow_sink_write_seconds`); the
//! core only counts, so plugins do not compile a metrics library.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets with an upper bound: 1 ms doubling up to 16.384 s; one more takes the rest.
const BOUNDED: usize = 15;

/// Write times in buckets, and their sum.
#[derive(Debug, Default)]
pub struct WriteTimes {
    buckets: [AtomicU64; BOUNDED + 1],
    sum_nanos: AtomicU64,
}

/// A histogram as read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The sum of every time, in seconds.
    pub sum: f64,
    /// How many times.
    pub count: u64,
    /// Each bucket's upper bound (seconds; the last is infinity) and how many times fell in
    /// it (not counting the buckets below).
    pub buckets: Vec<(f64, u64)>,
}

/// The upper bound of bucket `i`, in seconds.
fn bound(i: usize) -> f64 {
    match i {
        i if i < BOUNDED => 0.001 * f64::from(1u32 << i),
        _ => f64::INFINITY,
    }
}

impl WriteTimes {
    /// Counts one write that took `took`.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let at = (0..BOUNDED)
            .find(|&i| seconds <= bound(i))
            .unwrap_or(BOUNDED);
        self.buckets[at].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The times counted so far.
    pub fn histogram(&self) -> Histogram {
        let buckets: Vec<(f64, u64)> = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (bound(i), n.load(Ordering::Relaxed)))
            .collect();
        Histogram {
            sum: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_time_counts_in_the_first_bucket_that_holds_it() {
        let t = WriteTimes::default();
        t.observe(Duration::from_micros(500));
        t.observe(Duration::from_millis(1));
        t.observe(Duration::from_millis(3));
        t.observe(Duration::from_secs(60));
        let h = t.histogram();
        assert_eq!(h.count, 4);
        assert!((h.sum - 60.0045).abs() < 1e-9, "{}", h.sum);
        assert_eq!(h.buckets.len(), 16);
        assert_eq!(h.buckets[0], (0.001, 2), "500 µs and 1 ms: up to 1 ms");
        assert_eq!(h.buckets[1], (0.002, 0));
        assert_eq!(h.buckets[2], (0.004, 1));
        assert_eq!(h.buckets[14], (16.384, 0));
        assert_eq!(h.buckets[15], (f64::INFINITY, 1), "above every bound");
    }
}
