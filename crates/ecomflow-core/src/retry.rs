//! Trying again what failed for a reason that may pass (a server restarting, a cut network):
//! one policy of growing pauses that gives up after a while, shared by every sink.
//!
//! A failure is worth another try when it is [`ComponentError::Unavailable`]; any other error
//! ends the attempts at once. Each retry is logged as a warning saying what failed, why, and
//! how long the next wait is.

use crate::ComponentError;
use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// When and for how long a failed operation is tried again: the first pause is
/// `first_pause`, each next one twice the last, at most `max_pause`; no attempt starts once
/// `retry_for` has passed since the first failure (the last pause is shortened to end then),
/// so an outage shorter than `retry_for` is always waited out, however long the failing
/// attempt took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The pause after the first failure.
    pub first_pause: Duration,
    /// The longest pause.
    pub max_pause: Duration,
    /// How long, from the first failure, the operation is tried again.
    pub retry_for: Duration,
}

impl RetryPolicy {
    /// The pause after the first failure, unless a sink sets its own.
    pub const FIRST_PAUSE: Duration = Duration::from_millis(100);
    /// The longest pause, unless a sink sets its own.
    pub const MAX_PAUSE: Duration = Duration::from_secs(5);

    /// Retries for `retry_for`, with the default pauses.
    pub fn new(retry_for: Duration) -> RetryPolicy {
        RetryPolicy {
            first_pause: Self::FIRST_PAUSE,
            max_pause: Self::MAX_PAUSE,
            retry_for,
        }
    }

    /// The same policy starting with `first` (the longest pause is never shorter than it).
    pub fn with_first_pause(self, first: Duration) -> RetryPolicy {
        RetryPolicy {
            first_pause: first,
            max_pause: self.max_pause.max(first),
            ..self
        }
    }

    /// The pause before retry number `retry` (0 for the first), ignoring `retry_for`.
    pub fn pause(&self, retry: u32) -> Duration {
        self.first_pause
            .saturating_mul(1u32 << retry.min(20))
            .min(self.max_pause.max(self.first_pause))
    }

    /// Starts an operation's attempts.
    pub fn start(&self) -> Retrying {
        Retrying {
            policy: *self,
            first_failure: None,
            retries: 0,
            outage: None,
        }
    }

    /// Runs `attempt` until it succeeds, fails with an error not worth retrying (returned as
    /// it is), or fails once `retry_for` has passed (the last error, saying so).
    pub async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, ComponentError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ComponentError>>,
    {
        let mut retrying = self.start();
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) => retrying.failed(e).await?,
            }
        }
    }
}

/// The attempts of one operation under a [`RetryPolicy`].
#[derive(Debug)]
pub struct Retrying {
    policy: RetryPolicy,
    /// When the first attempt failed.
    first_failure: Option<Instant>,
    retries: u32,
    /// The component in an outage while these attempts fail (not ready, its retries
    /// counted), when they run in a component's task.
    outage: Option<std::sync::Arc<crate::telemetry::ComponentTelemetry>>,
}

impl Drop for Retrying {
    fn drop(&mut self) {
        if let Some(t) = self.outage.take() {
            t.outage_over();
        }
    }
}

impl Retrying {
    /// After a failed attempt: `Ok` once the pause before the next attempt is over, or the
    /// error to stop with (`error` itself when it is not worth retrying, or it with how long
    /// it was retried once `retry_for` has passed).
    pub async fn failed(&mut self, error: ComponentError) -> Result<(), ComponentError> {
        if error.is_retryable() && self.wait(&error).await {
            Ok(())
        } else if error.is_retryable() {
            Err(self.give_up(error))
        } else {
            Err(error)
        }
    }

    /// After an attempt that failed because of `why`: waits for the next pause (logging what
    /// failed and the wait) and returns true, or returns false at once when `retry_for` has
    /// passed.
    pub async fn wait(&mut self, why: &(dyn Display + Sync)) -> bool {
        let first_failure = *self.first_failure.get_or_insert_with(Instant::now);
        let Some(left) = self.policy.retry_for.checked_sub(first_failure.elapsed()) else {
            return false;
        };
        if left.is_zero() {
            return false;
        }
        let pause = self.policy.pause(self.retries).min(left);
        if self.retries == 0 {
            self.outage = crate::telemetry::current();
        }
        if let Some(t) = &self.outage {
            t.retrying(self.retries == 0, why.to_string());
        }
        self.retries += 1;
        tracing::warn!(
            retry = self.retries,
            "{why}; retrying in {} (gives up {} after the first failure)",
            shown(pause),
            shown(self.policy.retry_for)
        );
        tokio::time::sleep(pause).await;
        true
    }

    /// `error`, saying that it persisted for the whole `retry_for`.
    pub fn give_up(&self, error: ComponentError) -> ComponentError {
        ComponentError::Other(format!(
            "{error} (still failing after retrying for {})",
            shown(self.policy.retry_for)
        ))
    }

    /// How many pauses were taken so far.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// `retry_for` as configured, for messages.
    pub fn retry_for(&self) -> Duration {
        self.policy.retry_for
    }
}

/// A duration as configured (`3s`, `1m`, `250ms`), for messages.
pub fn shown(d: Duration) -> String {
    let millis = d.as_millis();
    if millis.is_multiple_of(60_000) && millis > 0 {
        format!("{}m", millis / 60_000)
    } else if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else if millis >= 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if millis > 0 {
        format!("{millis}ms")
    } else {
        format!("{d:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn pauses_double_up_to_the_cap_and_never_below_the_first() {
        let policy = RetryPolicy::new(Duration::from_secs(60));
        let pauses: Vec<_> = (0..9).map(|r| policy.pause(r).as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(policy.pause(u32::MAX), RetryPolicy::MAX_PAUSE);
        let slow = policy.with_first_pause(Duration::from_secs(30));
        assert_eq!(slow.pause(0), Duration::from_secs(30));
        assert_eq!(
            slow.pause(3),
            Duration::from_secs(30),
            "never below the first"
        );
    }

    #[test]
    fn durations_are_shown_as_configured() {
        assert_eq!(shown(Duration::from_secs(60)), "1m");
        assert_eq!(shown(Duration::from_secs(3)), "3s");
        assert_eq!(shown(Duration::from_millis(1600)), "1.6s");
        assert_eq!(shown(Duration::from_millis(250)), "250ms");
        assert_eq!(shown(Duration::ZERO), "0s");
    }

    fn unavailable() -> ComponentError {
        ComponentError::Unavailable("cannot connect to db: connection refused".into())
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_success_with_growing_pauses() {
        let tries = Cell::new(0);
        let started = tokio::time::Instant::now();
        let got = RetryPolicy::new(Duration::from_secs(60))
            .run(|| {
                tries.set(tries.get() + 1);
                let n = tries.get();
                async move { if n < 4 { Err(unavailable()) } else { Ok(n) } }
            })
            .await
            .expect("succeeds on the fourth try");
        assert_eq!(got, 4);
        assert_eq!(started.elapsed(), Duration::from_millis(100 + 200 + 400));
    }

    #[tokio::test(start_paused = true)]
    async fn an_error_not_worth_retrying_ends_at_once() {
        let tries = Cell::new(0);
        let e = RetryPolicy::new(Duration::from_secs(60))
            .run(|| {
                tries.set(tries.get() + 1);
                async { Err::<(), _>(ComponentError::Other("password refused".into())) }
            })
            .await
            .expect_err("fails");
        assert_eq!(tries.get(), 1);
        assert_eq!(e.to_string(), "password refused");
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_retry_for_with_the_last_error() {
        let tries = Cell::new(0);
        let started = tokio::time::Instant::now();
        let e = RetryPolicy::new(Duration::from_secs(3))
            .run(|| {
                tries.set(tries.get() + 1);
                async { Err::<(), _>(unavailable()) }
            })
            .await
            .expect_err("gives up");
        // 0.1 + 0.2 + 0.4 + 0.8 + 1.5 (the last pause shortened to end at 3s).
        assert_eq!(started.elapsed(), Duration::from_secs(3));
        assert_eq!(tries.get(), 6);
        assert_eq!(
            e.to_string(),
            "cannot connect to db: connection refused (still failing after retrying for 3s)"
        );
        assert!(!e.is_retryable());
    }

    #[tokio::test(start_paused = true)]
    async fn the_time_counts_from_the_first_failure_not_the_first_attempt() {
        let tries = Cell::new(0);
        let started = tokio::time::Instant::now();
        let e = RetryPolicy::new(Duration::from_secs(3))
            .run(|| {
                tries.set(tries.get() + 1);
                let slow = tries.get() == 1;
                async move {
                    if slow {
                        // An attempt that hangs until a timeout.
                        tokio::time::sleep(Duration::from_secs(10)).await;
                    }
                    Err::<(), _>(unavailable())
                }
            })
            .await
            .expect_err("gives up");
        assert_eq!(started.elapsed(), Duration::from_secs(13));
        assert_eq!(tries.get(), 6);
        assert!(
            e.to_string()
                .ends_with("(still failing after retrying for 3s)")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn zero_retry_for_tries_once() {
        let tries = Cell::new(0);
        let e = RetryPolicy::new(Duration::ZERO)
            .run(|| {
                tries.set(tries.get() + 1);
                async { Err::<(), _>(unavailable()) }
            })
            .await
            .expect_err("no retry");
        assert_eq!(tries.get(), 1);
        assert!(
            e.to_string()
                .ends_with("(still failing after retrying for 0s)")
        );
    }
}
