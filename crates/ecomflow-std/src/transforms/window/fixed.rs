//! Tumbling and hopping windows: fixed-length windows starting every `hop` (tumbling
//! windows are hopping windows whose hop is their size), aligned to 1970-01-01 UTC.

use super::WindowState;
use crate::aggregation::{Accumulator, GroupKey};
use std::collections::{BTreeMap, HashMap};

/// The open fixed windows of every key.
pub struct FixedWindows {
    size: i64,
    hop: i64,
    windows: HashMap<(GroupKey, i64), WindowState>,
    /// Window (key, start) by end, to close and drop them in order.
    by_end: BTreeMap<i64, Vec<(GroupKey, i64)>>,
}

impl FixedWindows {
    /// Windows of `size` starting every `hop` (both in microseconds, both > 0).
    pub fn new(size: i64, hop: i64) -> FixedWindows {
        FixedWindows {
            size,
            hop,
            windows: HashMap::new(),
            by_end: BTreeMap::new(),
        }
    }

    /// The (start, end) of each window that contains `t` and ends after `closed_before`.
    fn spans(&self, t: i64, closed_before: i64) -> impl Iterator<Item = (i64, i64)> + use<> {
        let (size, hop) = (self.size, self.hop);
        let first = t.div_euclid(hop).checked_mul(hop);
        std::iter::successors(first, move |start| start.checked_sub(hop))
            .take_while(move |start| *start > t.saturating_sub(size))
            .map(move |start| (start, start.saturating_add(size)))
            .filter(move |(_, end)| *end > closed_before)
    }

    /// Applies `add` to each window of `key` that contains `t` and ends after
    /// `closed_before` (creating it as needed); returns how many there were. When `fits`
    /// refuses one of those windows, nothing is applied to any and its reason is returned.
    pub fn add(
        &mut self,
        key: GroupKey,
        t: i64,
        closed_before: i64,
        empty: &[Accumulator],
        fits: impl Fn(&WindowState) -> Result<(), String>,
        mut add: impl FnMut(&mut WindowState),
    ) -> Result<usize, String> {
        for (start, _) in self.spans(t, closed_before) {
            if let Some(w) = self.windows.get(&(key.clone(), start)) {
                fits(w)?;
            }
        }
        let mut applied = 0;
        for (start, end) in self.spans(t, closed_before) {
            let window = match self.windows.get_mut(&(key.clone(), start)) {
                Some(w) => w,
                None => {
                    self.by_end
                        .entry(end)
                        .or_default()
                        .push((key.clone(), start));
                    self.windows
                        .entry((key.clone(), start))
                        .or_insert(WindowState {
                            start,
                            end,
                            accumulators: empty.into(),
                            dirty: false,
                        })
                }
            };
            add(window);
            applied += 1;
        }
        Ok(applied)
    }

    /// The open windows, for a checkpoint.
    pub fn snapshot(&self) -> serde_json::Value {
        let windows: Vec<(&GroupKey, &WindowState)> =
            self.windows.iter().map(|((k, _), w)| (k, w)).collect();
        serde_json::to_value(windows).unwrap_or_default()
    }

    /// Restores the windows a checkpoint kept.
    pub fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let windows: Vec<(GroupKey, WindowState)> =
            serde_json::from_value(state).map_err(|e| e.to_string())?;
        for (key, w) in windows {
            self.by_end
                .entry(w.end)
                .or_default()
                .push((key.clone(), w.start));
            self.windows.insert((key, w.start), w);
        }
        Ok(())
    }

    /// Calls `f` on every window.
    pub fn for_each(&mut self, mut f: impl FnMut(&GroupKey, &mut WindowState)) {
        for ((key, _), w) in self.windows.iter_mut() {
            f(key, w);
        }
    }

    /// Calls `f` on every window that ends at or before `until`, by its end: only those,
    /// however many are open.
    pub fn for_each_ended(&mut self, until: i64, mut f: impl FnMut(&GroupKey, &mut WindowState)) {
        for ids in self.by_end.range(..=until).map(|(_, ids)| ids) {
            for id in ids {
                if let Some(w) = self.windows.get_mut(id) {
                    f(&id.0, w);
                }
            }
        }
    }

    /// Drops the windows that end at or before `horizon`.
    pub fn expire(&mut self, horizon: i64) {
        let ended: Vec<i64> = self.by_end.range(..=horizon).map(|(e, _)| *e).collect();
        for end in ended {
            for id in self.by_end.remove(&end).unwrap_or_default() {
                self.windows.remove(&id);
            }
        }
    }
}
