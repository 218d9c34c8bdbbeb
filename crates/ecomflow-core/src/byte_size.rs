//! Sizes in bytes in options: an integer of bytes or a string with a unit (`"16 MiB"`,
//! `"512 KB"`), read by the `bytesize` crate.

use std::borrow::Cow;

pub use bytesize::ByteSize;

/// The schema of a byte-size option: bytes, or a string such as `"16 MiB"`.
pub struct Bytes;

impl schemars::JsonSchema for Bytes {
    fn schema_name() -> Cow<'static, str> {
        "ByteSize".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["integer", "string"],
            "minimum": 1,
            "description": "bytes, or a number and a unit such as \"16 MiB\" or \"512 KB\""
        })
    }

    fn inline_schema() -> bool {
        true
    }
}

/// `size` in bytes as a `usize` (saturating on a 32-bit machine).
pub fn bytes(size: ByteSize) -> usize {
    usize::try_from(size.as_u64()).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct Options {
        size: ByteSize,
    }

    fn read(text: &str) -> Result<usize, String> {
        toml::from_str::<Options>(text)
            .map(|o| bytes(o.size))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn sizes_read_as_bytes_or_with_a_unit() {
        assert_eq!(read("size = 4096"), Ok(4096));
        assert_eq!(read("size = \"16 MiB\""), Ok(16 << 20));
        assert_eq!(read("size = \"2KB\""), Ok(2000));
        assert!(read("size = \"lots\"").is_err());
        assert!(read("size = -1").is_err());
    }
}
