//! Hashable group keys built from record values.

use compact_str::CompactString;
use ecomflow_core::Value;

/// One part of a group key.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum KeyPart {
    /// Null or an absent field.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float, by its bits (so 1.0 and 1 are different keys, as in JSON).
    Float(u64),
    /// A string.
    Str(CompactString),
}

/// A whole group key: one part per key field.
pub type GroupKey = Box<[KeyPart]>;

/// A group key shared by the tables that index one group (its state, its bucket's list,
/// the changed groups): a clone is a count, not a copy of the key.
pub type SharedKey = std::sync::Arc<[KeyPart]>;

/// A map keyed by group keys, hashed with foldhash: keys come from the input, and the
/// standard library's SipHash costs several times as much per key. foldhash is seeded per
/// process, so keys chosen to collide cannot be written in advance.
pub type KeyMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

impl KeyPart {
    /// The key part of a field value; arrays and objects cannot be keys.
    pub fn of(value: &Value) -> Result<KeyPart, String> {
        Ok(match value {
            Value::Null => KeyPart::Null,
            Value::Bool(b) => KeyPart::Bool(*b),
            Value::Int(i) => KeyPart::Int(*i),
            Value::Float(f) => KeyPart::Float(f.to_bits()),
            Value::Str(s) => KeyPart::Str(s.clone()),
            Value::Nested(_) => return Err("is an array or object and cannot be a key".into()),
        })
    }

    /// The value written to the output row.
    pub fn value(&self) -> Value {
        match self {
            KeyPart::Null => Value::Null,
            KeyPart::Bool(b) => Value::Bool(*b),
            KeyPart::Int(i) => Value::Int(*i),
            KeyPart::Float(bits) => Value::Float(f64::from_bits(*bits)),
            KeyPart::Str(s) => Value::Str(s.clone()),
        }
    }
}
