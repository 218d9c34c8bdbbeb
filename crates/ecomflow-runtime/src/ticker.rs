//! The timers of the runtime: a tick every `period`, the first one a period from now, late
//! ticks delayed rather than bunched.

use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

/// A timer that ticks every `period`, starting one period from now.
pub fn every(period: Duration) -> Interval {
    let mut t = interval_at(Instant::now() + period, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}
