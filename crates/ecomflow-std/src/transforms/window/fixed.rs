//! Tumbling and hopping windows: fixed-length windows starting every `hop` (tumbling
//! windows are hopping windows whose hop is their size), aligned to 1970-01-01 UTC.
//!
//! Each key is stored once and shared by its windows, so a record looks its windows up by
//! its borrowed key parts and allocates nothing unless it opens a window.

use super::WindowState;
use crate::aggregation::{Accumulator, GroupKey, KeyMap, KeyPart, SharedKey};
use std::collections::BTreeMap;

/// The open windows of one key, by start.
struct KeyWindows {
    key: SharedKey,
    by_start: foldhash::HashMap<i64, WindowState>,
}

/// The open fixed windows of every key.
pub struct FixedWindows {
    size: i64,
    hop: i64,
    windows: KeyMap<SharedKey, KeyWindows>,
    /// Window (key, start) by end, to close and drop them in order.
    by_end: BTreeMap<i64, Vec<(SharedKey, i64)>>,
}

/// Puts window (`key`, `start`) into the index of windows by end.
fn index_by_end(
    by_end: &mut BTreeMap<i64, Vec<(SharedKey, i64)>>,
    end: i64,
    key: SharedKey,
    start: i64,
) {
    // Most ends hold one window (or one per key): room for one, not the four a first push
    // makes.
    by_end
        .entry(end)
        .or_insert_with(|| Vec::with_capacity(1))
        .push((key, start));
}

impl FixedWindows {
    /// Windows of `size` starting every `hop` (both in microseconds, both > 0).
    pub fn new(size: i64, hop: i64) -> FixedWindows {
        FixedWindows {
            size,
            hop,
            windows: KeyMap::default(),
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
        key: &[KeyPart],
        t: i64,
        closed_before: i64,
        empty: &[Accumulator],
        fits: impl Fn(&WindowState) -> Result<(), String>,
        mut add: impl FnMut(&mut WindowState),
    ) -> Result<usize, String> {
        let spans = self.spans(t, closed_before);
        if let Some(open) = self.windows.get(key) {
            for (start, _) in self.spans(t, closed_before) {
                if let Some(w) = open.by_start.get(&start) {
                    fits(w)?;
                }
            }
        }
        let open = match self.windows.get_mut(key) {
            Some(open) => open,
            None => {
                let shared: SharedKey = key.into();
                self.windows.entry(shared.clone()).or_insert(KeyWindows {
                    key: shared,
                    by_start: foldhash::HashMap::default(),
                })
            }
        };
        let mut applied = 0;
        for (start, end) in spans {
            let window = open.by_start.entry(start).or_insert_with(|| {
                index_by_end(&mut self.by_end, end, open.key.clone(), start);
                WindowState {
                    start,
                    end,
                    accumulators: empty.into(),
                    dirty: false,
                }
            });
            add(window);
            applied += 1;
        }
        if open.by_start.is_empty() {
            // Every window of the record had closed: the key keeps no entry of its own.
            self.windows.remove(key);
        }
        Ok(applied)
    }

    /// The open windows, for a checkpoint.
    pub fn snapshot(&self) -> serde_json::Value {
        let windows: Vec<(&[KeyPart], &WindowState)> = self
            .windows
            .values()
            .flat_map(|open| open.by_start.values().map(|w| (&*open.key, w)))
            .collect();
        serde_json::to_value(windows).unwrap_or_default()
    }

    /// Restores the windows a checkpoint kept.
    pub fn restore(&mut self, state: serde_json::Value) -> Result<(), String> {
        let windows: Vec<(GroupKey, WindowState)> =
            serde_json::from_value(state).map_err(|e| e.to_string())?;
        for (key, w) in windows {
            let open = self
                .windows
                .entry(SharedKey::from(key))
                .or_insert_with_key(|key| KeyWindows {
                    key: key.clone(),
                    by_start: foldhash::HashMap::default(),
                });
            index_by_end(&mut self.by_end, w.end, open.key.clone(), w.start);
            open.by_start.insert(w.start, w);
        }
        Ok(())
    }

    /// Calls `f` on every window.
    pub fn for_each(&mut self, mut f: impl FnMut(&[KeyPart], &mut WindowState)) {
        for open in self.windows.values_mut() {
            for w in open.by_start.values_mut() {
                f(&open.key, w);
            }
        }
    }

    /// Calls `f` on every window that ends at or before `until`, by its end (in the order
    /// the windows opened, within one end): only those, however many are open.
    pub fn for_each_ended(&mut self, until: i64, mut f: impl FnMut(&[KeyPart], &mut WindowState)) {
        for ids in self.by_end.range(..=until).map(|(_, ids)| ids) {
            for (key, start) in ids {
                if let Some(w) = self
                    .windows
                    .get_mut(&**key)
                    .and_then(|open| open.by_start.get_mut(start))
                {
                    f(key, w);
                }
            }
        }
    }

    /// Drops the windows that end at or before `horizon`.
    pub fn expire(&mut self, horizon: i64) {
        let ended: Vec<i64> = self.by_end.range(..=horizon).map(|(e, _)| *e).collect();
        for end in ended {
            for (key, start) in self.by_end.remove(&end).unwrap_or_default() {
                if let Some(open) = self.windows.get_mut(&*key) {
                    open.by_start.remove(&start);
                    if open.by_start.is_empty() {
                        self.windows.remove(&*key);
                    }
                }
            }
        }
    }
}
