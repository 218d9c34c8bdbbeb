//! Field names interned once into small copyable ids, so records compare keys by integer.

use lasso::{Spur, ThreadedRodeo};
use std::sync::LazyLock;

static NAMES: LazyLock<ThreadedRodeo> = LazyLock::new(ThreadedRodeo::new);

/// An interned field name. Cheap to copy and compare; resolve it with [`Field::name`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Field(Spur);

impl Field {
    /// The id of `name`, interning it on first use. Call this at build time, not per record.
    pub fn new(name: &str) -> Field {
        Field(NAMES.get_or_intern(name))
    }

    /// The id of `name` if it was ever interned, without interning it.
    pub fn existing(name: &str) -> Option<Field> {
        NAMES.get(name).map(Field)
    }

    /// The field's name.
    pub fn name(self) -> &'static str {
        // The interner lives for the whole process, so its strings do too.
        let rodeo: &'static ThreadedRodeo = &NAMES;
        rodeo.resolve(&self.0)
    }
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_same_id_and_round_trip() {
        let a = Field::new("productPrice");
        let b = Field::new("productPrice");
        assert_eq!(a, b);
        assert_ne!(a, Field::new("productQuantity"));
        assert_eq!(a.name(), "productPrice");
        assert_eq!(Field::existing("productPrice"), Some(a));
        assert_eq!(Field::existing("never-interned-name-xyz"), None);
    }
}
