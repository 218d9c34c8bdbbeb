//! Field names interned once for the life of the process, so records compare keys by
//! pointer and a field's name costs nothing to read.
//!
//! Interned names are never freed, so what input can intern is bounded: decoders intern a key
//! they meet with [`Field::bounded`], which refuses new names once [`LIMIT_NAMES`] names or
//! [`LIMIT_BYTES`] bytes are interned (the names the pipeline reads are interned at build time,
//! long before). A record keeps the keys it could not intern in its [`Field::rest`] field.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{LazyLock, RwLock};

static NAMES: LazyLock<RwLock<HashMap<&'static str, &'static str>>> =
    LazyLock::new(Default::default);

/// Bytes of every interned name, for the bound.
static BYTES: AtomicUsize = AtomicUsize::new(0);

/// The most names input can intern (build time interns beyond it).
pub const LIMIT_NAMES: usize = 65_536;
/// The most bytes of names input can intern.
pub const LIMIT_BYTES: usize = 4 << 20;

/// An interned field name: one pointer, cheap to copy and compare (by address); read it with
/// [`Field::name`].
#[derive(Clone, Copy)]
pub struct Field(&'static str);

impl Field {
    /// The field named `name`, interning it on first use. Call this at build time, not per
    /// record (decoders call it only for keys they have not seen).
    pub fn new(name: &str) -> Field {
        if let Some(f) = Field::existing(name) {
            return f;
        }
        let mut names = NAMES
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(interned) = names.get(name) {
            return Field(interned);
        }
        let interned: &'static str = Box::leak(name.to_owned().into_boxed_str());
        names.insert(interned, interned);
        BYTES.fetch_add(name.len(), Ordering::Relaxed);
        Field(interned)
    }

    /// The field named `name`, interning it only while the bounds allow: for names that come
    /// from input (record keys), so input with ever-new keys cannot grow memory without end.
    /// `None` once the bounds are reached and the name is new.
    pub fn bounded(name: &str) -> Option<Field> {
        if let Some(f) = Field::existing(name) {
            return Some(f);
        }
        if name == REST_NAME {
            return None;
        }
        let full = {
            let names = NAMES
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            names.len() >= LIMIT_NAMES || BYTES.load(Ordering::Relaxed) + name.len() > LIMIT_BYTES
        };
        (!full).then(|| Field::new(name))
    }

    /// How many names are interned, and their bytes.
    pub fn interned() -> (usize, usize) {
        let names = NAMES
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (names.len(), BYTES.load(Ordering::Relaxed))
    }

    /// The field where a record keeps, as one JSON object, the keys that could not be
    /// interned; written back inline, as if they were fields of their own.
    pub fn rest() -> Field {
        Field(REST_NAME)
    }

    /// Whether this is [`Field::rest`]: one pointer compare, as every record's serialization
    /// asks it of every field.
    #[inline]
    pub fn is_rest(self) -> bool {
        std::ptr::eq(self.0, REST_NAME)
    }

    /// The field named `name` if it was ever interned, without interning it.
    pub fn existing(name: &str) -> Option<Field> {
        let names = NAMES
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        names.get(name).map(|interned| Field(interned))
    }

    /// The field's name.
    #[inline]
    pub fn name(self) -> &'static str {
        self.0
    }
}

/// The name of [`Field::rest`]; input never interns it, so no key of a record is it. A static,
/// so that every use sees the same address.
static REST_NAME: &str = "\u{0}rest";

impl PartialEq for Field {
    #[inline]
    fn eq(&self, other: &Field) -> bool {
        // Interned: one allocation per name, so equal names have equal addresses.
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Field {}

impl Hash for Field {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.0, state);
    }
}

impl PartialOrd for Field {
    fn partial_cmp(&self, other: &Field) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Field {
    /// By name, so sorted fields read alphabetically.
    fn cmp(&self, other: &Field) -> std::cmp::Ordering {
        self.0.cmp(other.0)
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_field_and_round_trip() {
        let a = Field::new("productPrice");
        let b = Field::new(&String::from("productPrice"));
        assert_eq!(a, b);
        assert_ne!(a, Field::new("productQuantity"));
        assert_eq!(a.name(), "productPrice");
        assert_eq!(Field::existing("productPrice"), Some(a));
        assert_eq!(Field::existing("never-interned-name-xyz"), None);
        assert!(Field::new("a") < Field::new("b"));
    }
}
