//! Writes that run beside a sink while it goes on taking records: at most a set number at a
//! time, each tagged with the keys it writes (hashes of document ids, say), so a write never
//! overtakes an earlier one of the same key. A write's failure is returned when the sink next
//! starts a write or waits for them all (at a checkpoint or the end).

use crate::ComponentError;
use std::collections::{HashSet, VecDeque};
use std::future::Future;
use tokio::task::JoinHandle;

/// One running write and the keys it writes.
struct Running {
    keys: HashSet<u64>,
    task: JoinHandle<Result<(), ComponentError>>,
}

/// The writes running beside one sink.
pub struct InFlight {
    limit: usize,
    /// Oldest first.
    running: VecDeque<Running>,
}

impl InFlight {
    /// At most `limit` writes at a time (at least one).
    pub fn new(limit: usize) -> InFlight {
        InFlight {
            limit: limit.max(1),
            running: VecDeque::new(),
        }
    }

    /// Whether a write is still running.
    pub fn is_busy(&self) -> bool {
        self.running.iter().any(|r| !r.task.is_finished())
    }

    /// Starts `write`, which writes `keys`, once every earlier write of one of its keys has
    /// ended and a place is free; returns an earlier write's failure instead (`write` is then
    /// not started).
    pub async fn start<W>(&mut self, keys: HashSet<u64>, write: W) -> Result<(), ComponentError>
    where
        W: Future<Output = Result<(), ComponentError>> + Send + 'static,
    {
        // Ended writes are collected first, so their failures show now.
        while self.running.front().is_some_and(|r| r.task.is_finished()) {
            self.wait_oldest().await?;
        }
        if let Some(last) = self
            .running
            .iter()
            .rposition(|r| !r.keys.is_disjoint(&keys))
        {
            // Waited for in order, up to the last write that shares a key.
            for _ in 0..=last {
                self.wait_oldest().await?;
            }
        }
        while self.running.len() >= self.limit {
            self.wait_oldest().await?;
        }
        self.running.push_back(Running {
            keys,
            task: tokio::spawn(write),
        });
        Ok(())
    }

    /// Waits for every running write; returns the first failure.
    pub async fn wait_all(&mut self) -> Result<(), ComponentError> {
        let mut first = Ok(());
        while !self.running.is_empty() {
            let result = self.wait_oldest().await;
            if first.is_ok() {
                first = result;
            }
        }
        first
    }

    async fn wait_oldest(&mut self) -> Result<(), ComponentError> {
        let Some(oldest) = self.running.pop_front() else {
            return Ok(());
        };
        oldest
            .task
            .await
            .map_err(|e| ComponentError::Other(format!("a write beside the sink failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;
    use tokio::sync::oneshot;

    fn keys(k: &[u64]) -> HashSet<u64> {
        k.iter().copied().collect()
    }

    #[tokio::test]
    async fn writes_run_side_by_side_up_to_the_limit_and_never_overtake_a_key() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut in_flight = InFlight::new(2);
        let (release_a, a) = oneshot::channel::<()>();
        let (release_b, b) = oneshot::channel::<()>();
        let write = |name: &'static str, gate: oneshot::Receiver<()>| {
            let log = log.clone();
            async move {
                let _ = gate.await;
                log.lock().expect("log").push(name);
                Ok(())
            }
        };
        in_flight
            .start(keys(&[1]), write("a", a))
            .await
            .expect("starts");
        in_flight
            .start(keys(&[2]), write("b", b))
            .await
            .expect("starts");
        assert!(in_flight.is_busy());
        // b ends first: writes of other keys do not wait for each other.
        release_b.send(()).expect("b waits");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(*log.lock().expect("log"), ["b"]);
        // c writes key 1: it starts only after a, whatever the free places.
        let (release_c, c) = oneshot::channel::<()>();
        release_c.send(()).expect("c's gate");
        {
            let started = in_flight.start(keys(&[1, 3]), write("c", c));
            tokio::pin!(started);
            assert!(
                tokio::time::timeout(Duration::from_millis(50), &mut started)
                    .await
                    .is_err(),
                "c waits for a"
            );
            release_a.send(()).expect("a waits");
            started.await.expect("starts after a");
        }
        in_flight.wait_all().await.expect("all end");
        assert_eq!(*log.lock().expect("log"), ["b", "a", "c"]);
        assert!(!in_flight.is_busy());
    }

    async fn a_bug() -> Result<(), ComponentError> {
        panic!("a bug")
    }

    #[tokio::test]
    async fn a_failure_is_returned_at_the_next_start_or_wait() {
        let mut in_flight = InFlight::new(1);
        let failing = async { Err(ComponentError::Other("the disk is full".into())) };
        in_flight
            .start(HashSet::new(), failing)
            .await
            .expect("starts");
        let e = in_flight
            .start(HashSet::new(), async { Ok(()) })
            .await
            .expect_err("the failure shows");
        assert!(e.to_string().contains("the disk is full"), "{e}");
        in_flight.wait_all().await.expect("nothing else runs");
        in_flight
            .start(HashSet::new(), a_bug())
            .await
            .expect("starts");
        let e = in_flight
            .wait_all()
            .await
            .expect_err("a panic is a failure");
        assert!(
            e.to_string().contains("a write beside the sink failed"),
            "{e}"
        );
    }
}
