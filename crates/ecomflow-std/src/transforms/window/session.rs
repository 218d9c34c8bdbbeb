//! Session windows: per key, records less than `gap` apart belong to one session, which
//! ends `gap` after its last record. A record between two sessions merges them.

use super::WindowState;
use crate::aggregation::{Accumulator, GroupKey, KeyMap, KeyPart};

/// The open sessions of every key, each sorted by start.
pub struct Sessions {
    gap: i64,
    sessions: KeyMap<GroupKey, Vec<WindowState>>,
}

impl Sessions {
    /// Sessions that end after `gap` microseconds (> 0) without a record.
    pub fn new(gap: i64) -> Sessions {
        Sessions {
            gap,
            sessions: KeyMap::default(),
        }
    }

    /// Applies `add` to the session of `key` that `t` belongs to, after merging the
    /// sessions it joins; returns 0 (and applies nothing) when that session would have ended
    /// at or before `closed_before`, 1 otherwise.
    pub fn add(
        &mut self,
        key: &[KeyPart],
        t: i64,
        closed_before: i64,
        empty: &[Accumulator],
        fits: impl Fn(&WindowState) -> Result<(), String>,
        mut add: impl FnMut(&mut WindowState),
    ) -> Result<usize, String> {
        let gap = self.gap;
        let list = match self.sessions.get_mut(key) {
            Some(list) => list,
            None => self.sessions.entry(key.into()).or_default(),
        };
        // Sessions this record touches: [start, end) overlapping [t, t + gap).
        let touching: Vec<usize> = (0..list.len())
            .filter(|&i| list[i].start < t.saturating_add(gap) && t < list[i].end)
            .collect();
        let end = touching
            .iter()
            .map(|&i| list[i].end)
            .max()
            .unwrap_or(0)
            .max(t.saturating_add(gap));
        if touching.is_empty() && end <= closed_before {
            return Ok(0);
        }
        // The session the record would join, as it would be: refused whole, or applied.
        match touching.as_slice() {
            [] => {}
            [one] => fits(&list[*one])?,
            several => {
                let mut joined = WindowState {
                    start: t,
                    end,
                    accumulators: empty.into(),
                    dirty: false,
                };
                for &i in several {
                    for (into, from) in joined.accumulators.iter_mut().zip(&list[i].accumulators) {
                        into.merge(from);
                    }
                }
                if !joined.accumulators.iter().all(Accumulator::is_finite) {
                    return Err("would merge sessions whose sum is not a finite number".into());
                }
                fits(&joined)?;
            }
        }
        let mut merged = WindowState {
            start: t,
            end,
            accumulators: empty.into(),
            dirty: false,
        };
        for &i in touching.iter().rev() {
            let s = list.remove(i);
            merged.start = merged.start.min(s.start);
            merged.dirty |= s.dirty;
            for (into, from) in merged.accumulators.iter_mut().zip(s.accumulators.iter()) {
                into.merge(from);
            }
        }
        if !touching.is_empty() {
            // A merge changes the session's start: its earlier row is replaced.
            merged.dirty = true;
        }
        let at = list.partition_point(|s| s.start < merged.start);
        list.insert(at, merged);
        add(&mut list[at]);
        Ok(1)
    }

    /// The open sessions, for a checkpoint.
    pub fn snapshot(&self) -> serde_json::Value {
        let sessions: Vec<(&GroupKey, &Vec<WindowState>)> = self.sessions.iter().collect();
        serde_json::to_value(sessions).unwrap_or_default()
    }

    /// Restores the sessions a checkpoint kept.
    pub fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let sessions: Vec<(GroupKey, Vec<WindowState>)> =
            serde_json::from_value(state).map_err(|e| e.to_string())?;
        self.sessions.extend(sessions);
        Ok(())
    }

    /// Calls `f` on every session.
    pub fn for_each(&mut self, mut f: impl FnMut(&[KeyPart], &mut WindowState)) {
        for (key, list) in self.sessions.iter_mut() {
            for w in list {
                f(key, w);
            }
        }
    }

    /// Drops the sessions that end at or before `horizon`.
    pub fn expire(&mut self, horizon: i64) {
        self.sessions.retain(|_, list| {
            list.retain(|s| s.end > horizon);
            !list.is_empty()
        });
    }
}
