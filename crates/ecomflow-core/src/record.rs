//! The record that flows between components: an ordered list of (field, value) pairs.

use crate::field::Field;
use crate::value::Value;
use serde::ser::{Serialize, SerializeMap, Serializer};

/// One event. Fields keep their input order (so JSON output keeps it too); lookups compare
/// interned field ids, which for event-sized records beats hashing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record {
    fields: Vec<(Field, Value)>,
    /// Event time in microseconds since 1970 UTC, stamped by the source's `event_time`.
    time: Option<i64>,
}

/// A group of records moved between components in one channel send.
pub type Batch = Vec<Record>;

impl Record {
    /// An empty record with room for `n` fields.
    pub fn with_capacity(n: usize) -> Record {
        Record {
            fields: Vec::with_capacity(n),
            time: None,
        }
    }

    /// The event time (microseconds since 1970 UTC), when the source reads event time.
    #[inline]
    pub fn time(&self) -> Option<i64> {
        self.time
    }

    /// Sets the event time (microseconds since 1970 UTC).
    #[inline]
    pub fn set_time(&mut self, time: i64) {
        self.time = Some(time);
    }

    /// The value of `field`, if present.
    #[inline]
    pub fn get(&self, field: Field) -> Option<&Value> {
        self.fields
            .iter()
            .find_map(|(f, v)| (*f == field).then_some(v))
    }

    /// The value of `field`, looked for first at position `*hint` and then everywhere; `*hint`
    /// is left where it was found. Records of one stream keep their fields in one order, so a
    /// hint kept per reader finds a field at the first look.
    #[inline(always)]
    pub fn get_hinted(&self, field: Field, hint: &mut usize) -> Option<&Value> {
        if let Some((f, v)) = self.fields.get(*hint)
            && *f == field
        {
            return Some(v);
        }
        self.find_hinted(field, hint)
    }

    /// `get_hinted` when the hint missed: a search, and the hint moved.
    #[inline(never)]
    fn find_hinted(&self, field: Field, hint: &mut usize) -> Option<&Value> {
        let at = self.fields.iter().position(|(f, _)| *f == field)?;
        *hint = at;
        Some(&self.fields[at].1)
    }

    /// Sets `field`, replacing an existing value in place or appending it at the end.
    #[inline]
    pub fn set(&mut self, field: Field, value: Value) {
        match self.fields.iter_mut().find(|(f, _)| *f == field) {
            Some((_, v)) => *v = value,
            None => self.fields.push((field, value)),
        }
    }

    /// Appends a field without checking for an existing one (for decoders that know the keys
    /// are new).
    #[inline]
    pub fn push(&mut self, field: Field, value: Value) {
        self.fields.push((field, value));
    }

    /// Removes `field` and returns its value, keeping the order of the others.
    pub fn remove(&mut self, field: Field) -> Option<Value> {
        let at = self.fields.iter().position(|(f, _)| *f == field)?;
        Some(self.fields.remove(at).1)
    }

    /// Renames `from` to `to`, keeping the position of `from`; a field already named `to` is
    /// dropped. Returns false when `from` is absent.
    pub fn rename(&mut self, from: Field, to: Field) -> bool {
        let Some(at) = self.fields.iter().position(|(f, _)| *f == from) else {
            return false;
        };
        self.fields[at].0 = to;
        if let Some(old) = self
            .fields
            .iter()
            .enumerate()
            .position(|(i, (f, _))| i != at && *f == to)
        {
            self.fields.remove(old);
        }
        true
    }

    /// Keeps only the fields for which `keep` is true, in order.
    pub fn retain(&mut self, mut keep: impl FnMut(Field, &Value) -> bool) {
        self.fields.retain(|(f, v)| keep(*f, v));
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (Field, &Value)> {
        self.fields.iter().map(|(f, v)| (*f, v))
    }

    /// About how many bytes the record takes in memory: itself, its fields' room and what its
    /// values keep on the heap. What a channel bounded in bytes counts.
    pub fn size_in_memory(&self) -> usize {
        std::mem::size_of::<Record>()
            + self.fields.capacity() * std::mem::size_of::<(Field, Value)>()
            + self
                .fields
                .iter()
                .map(|(_, v)| v.heap_bytes())
                .sum::<usize>()
    }

    /// How many fields the record has.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when the record has no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The record as a JSON object (for tests and dead-letter payloads).
    pub fn to_json(&self) -> serde_json::Value {
        let mut object = serde_json::Map::with_capacity(self.fields.len());
        for (f, v) in &self.fields {
            match rest_entries(*f, v) {
                Some(rest) => object.extend(rest.iter().map(|(k, v)| (k.clone(), v.clone()))),
                None => {
                    object.insert(f.name().to_string(), v.to_json());
                }
            }
        }
        serde_json::Value::Object(object)
    }

    /// Adds a field whose name could not be interned (see [`Field::bounded`]): it is kept in
    /// [`Field::rest`] and written back inline.
    pub fn push_rest(&mut self, name: String, value: Value) {
        let entry = (name, value.to_json());
        match self.fields.iter_mut().find(|(f, _)| f.is_rest()) {
            Some((_, Value::Nested(rest))) => {
                if let serde_json::Value::Object(o) = std::sync::Arc::make_mut(rest) {
                    o.insert(entry.0, entry.1);
                }
            }
            _ => {
                let object = serde_json::Map::from_iter([entry]);
                self.fields.push((
                    Field::rest(),
                    Value::Nested(std::sync::Arc::new(serde_json::Value::Object(object))),
                ));
            }
        }
    }
}

/// The entries kept in `v` when `f` is [`Field::rest`].
fn rest_entries(f: Field, v: &Value) -> Option<&serde_json::Map<String, serde_json::Value>> {
    match v {
        Value::Nested(n) if f.is_rest() => n.as_object(),
        _ => None,
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let has_rest = self.fields.iter().any(|(f, _)| f.is_rest());
        let mut map = s.serialize_map((!has_rest).then_some(self.fields.len()))?;
        for (f, v) in &self.fields {
            match rest_entries(*f, v) {
                Some(rest) => {
                    for (k, v) in rest {
                        map.serialize_entry(k, v)?;
                    }
                }
                None => map.serialize_entry(f.name(), v)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pairs: &[(&str, i64)]) -> Record {
        let mut r = Record::default();
        for (k, v) in pairs {
            r.push(Field::new(k), Value::Int(*v));
        }
        r
    }

    fn names(r: &Record) -> Vec<&'static str> {
        r.iter().map(|(f, _)| f.name()).collect()
    }

    #[test]
    fn a_hinted_get_finds_fields_wherever_they_are_and_remembers_where() {
        let r = rec(&[("a", 1), ("b", 2), ("c", 3)]);
        let mut hint = 0;
        assert_eq!(
            r.get_hinted(Field::new("c"), &mut hint),
            Some(&Value::Int(3))
        );
        assert_eq!(hint, 2);
        assert_eq!(
            r.get_hinted(Field::new("c"), &mut hint),
            Some(&Value::Int(3))
        );
        assert_eq!(
            r.get_hinted(Field::new("a"), &mut hint),
            Some(&Value::Int(1))
        );
        assert_eq!(hint, 0);
        let mut far = 99;
        assert_eq!(r.get_hinted(Field::new("zz"), &mut far), None);
        assert_eq!(
            r.get_hinted(Field::new("b"), &mut far),
            Some(&Value::Int(2))
        );
        assert_eq!(far, 1);
    }

    #[test]
    fn set_replaces_in_place_and_appends_new() {
        let mut r = rec(&[("a", 1), ("b", 2)]);
        r.set(Field::new("a"), Value::Int(9));
        r.set(Field::new("c"), Value::Int(3));
        assert_eq!(names(&r), ["a", "b", "c"]);
        assert_eq!(r.get(Field::new("a")), Some(&Value::Int(9)));
    }

    #[test]
    fn rename_keeps_position_and_drops_the_old_target() {
        let mut r = rec(&[("a", 1), ("b", 2), ("c", 3)]);
        assert!(r.rename(Field::new("c"), Field::new("a")));
        assert_eq!(names(&r), ["b", "a"]);
        assert_eq!(r.get(Field::new("a")), Some(&Value::Int(3)));
        assert!(!r.rename(Field::new("zz"), Field::new("y")));
    }

    #[test]
    fn remove_keeps_order() {
        let mut r = rec(&[("a", 1), ("b", 2), ("c", 3)]);
        assert_eq!(r.remove(Field::new("b")), Some(Value::Int(2)));
        assert_eq!(names(&r), ["a", "c"]);
        assert_eq!(r.remove(Field::new("b")), None);
    }
}
