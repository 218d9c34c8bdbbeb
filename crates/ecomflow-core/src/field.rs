//! Field names interned once for the life of the process, so records compare keys by
//! pointer and a field's name costs nothing to read.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{LazyLock, RwLock};

static NAMES: LazyLock<RwLock<HashMap<&'static str, &'static String>>> =
    LazyLock::new(Default::default);

/// An interned field name: one pointer, cheap to copy and compare (by address); read it with
/// [`Field::name`].
#[derive(Clone, Copy)]
pub struct Field(&'static String);

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
        let interned: &'static String = Box::leak(Box::new(name.to_owned()));
        names.insert(interned.as_str(), interned);
        Field(interned)
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
        self.0.as_str()
    }
}

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
        self.0.as_str().cmp(other.0.as_str())
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
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
