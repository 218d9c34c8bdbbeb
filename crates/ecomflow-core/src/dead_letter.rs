//! Dead letters: records a component could not handle, kept with the reason instead of lost.

use crate::record::Record;
use serde::ser::{Serialize, SerializeMap, Serializer};
use std::sync::Arc;

/// What a component could not handle: a decoded record, or the raw bytes it could not decode.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A record that failed a check or an expression.
    Record(Record),
    /// Bytes that could not be decoded (kept as text when they are valid UTF-8).
    Raw(Vec<u8>),
}

/// One dead letter: which component gave up, why, and the original payload.
#[derive(Clone, Debug, PartialEq)]
pub struct DeadLetter {
    /// The component id, such as `transforms.paid`.
    pub component: Arc<str>,
    /// Why it could not be handled, such as `missing field `currency``.
    pub reason: String,
    /// The original payload.
    pub payload: Payload,
}

impl DeadLetter {
    /// The dead letter as a record, as dead-letter sinks write it: `component`, `reason`,
    /// and `payload` (the original record as an object, or undecodable bytes as a string).
    pub fn to_record(&self) -> Record {
        use crate::{field::Field, value::Value};
        let mut r = Record::with_capacity(3);
        r.push(Field::new("component"), Value::from(&*self.component));
        r.push(Field::new("reason"), Value::from(self.reason.as_str()));
        let payload = match &self.payload {
            Payload::Record(rec) => Value::Nested(Arc::new(rec.to_json())),
            Payload::Raw(bytes) => Value::Str(String::from_utf8_lossy(bytes).as_ref().into()),
        };
        r.push(Field::new("payload"), payload);
        r
    }
}

impl Serialize for DeadLetter {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("component", &*self.component)?;
        m.serialize_entry("reason", &self.reason)?;
        match &self.payload {
            Payload::Record(r) => m.serialize_entry("payload", r)?,
            Payload::Raw(b) => m.serialize_entry("payload", &String::from_utf8_lossy(b))?,
        }
        m.end()
    }
}
