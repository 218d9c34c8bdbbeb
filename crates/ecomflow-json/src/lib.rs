//! ecomflow-json: JSON lines in and out: decodes bytes straight into a [`Record`] and encodes it back.
//!
//! Event streams repeat the same keys in the same order, so the decoder remembers the last
//! record's key order and compares each key with the expected one before interning it. Keys
//! are interned within bounds only; a record keeps the others aside, written back inline.

use ecomflow_core::{Field, Record, Value};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use std::fmt;

/// Decodes JSON objects into records, one decoder per source task.
#[derive(Default)]
pub struct JsonDecoder {
    shape: Vec<ShapeKey>,
}

/// One key of the remembered key order: its name, its field, and whether the field is the
/// first of its name in that order (true unless the input repeats a key). A record's keys so
/// far are always among the keys before it, so a first one is appended without a search.
type ShapeKey = (Box<str>, Field, bool);

/// Why a payload could not be decoded, with the position in it.
#[derive(Debug, thiserror::Error)]
#[error("invalid JSON: {0}")]
pub struct DecodeError(String);

impl JsonDecoder {
    /// A decoder with no remembered key order.
    pub fn new() -> JsonDecoder {
        JsonDecoder::default()
    }

    /// Decodes one JSON object. Anything else (an array, a number, broken JSON, trailing
    /// bytes) is an error that says what and where.
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Record, DecodeError> {
        // One check of the whole payload, so no string inside needs its own.
        let text = std::str::from_utf8(bytes)
            .map_err(|e| DecodeError(format!("not UTF-8 at byte {}", e.valid_up_to())))?;
        refuse_top_level_array(text)?;
        let mut de = sonic_rs::Deserializer::from_str(text);
        let record = RecordSeed {
            shape: &mut self.shape,
        }
        .deserialize(&mut de)
        .map_err(sonic_error)?;
        de.end().map_err(sonic_error)?;
        Ok(record)
    }
}

/// Refuses a payload that is an array before the parser sees it. sonic-rs reads a whole
/// value it was not asked for (to say what it was), recursively and without a depth limit:
/// an array nested 20,000 deep overflowed the stack and aborted the process, and on Kafka
/// every restart met the same message again.
fn refuse_top_level_array(text: &str) -> Result<(), DecodeError> {
    let Some(at) = text.find(|c| !matches!(c, ' ' | '\t' | '\n' | '\r')) else {
        return Ok(());
    };
    if text.as_bytes()[at] != b'[' {
        return Ok(());
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = at - before.rfind('\n').map_or(0, |n| n + 1) + 1;
    Err(DecodeError(format!(
        "expected a JSON object, found an array at line {line} column {column}"
    )))
}

/// sonic-rs's message without the excerpt of the payload it appends on further lines.
fn sonic_error(e: sonic_rs::Error) -> DecodeError {
    let message = e.to_string();
    DecodeError(message.lines().next().unwrap_or_default().to_string())
}

/// Appends `record` as one line of JSON (with a trailing newline) to `out`.
pub fn encode_line(record: &Record, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail and a Record always serializes.
    let _ = serde_json::to_writer(&mut *out, record);
    out.push(b'\n');
}

struct RecordSeed<'a> {
    shape: &'a mut Vec<ShapeKey>,
}

impl<'de> DeserializeSeed<'de> for RecordSeed<'_> {
    type Value = Record;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Record, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RecordSeed<'_> {
    type Value = Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record, A::Error> {
        // Room for the fields that maps usually add, so they need not move the record.
        let mut record = Record::with_capacity(self.shape.len() + 4);
        let mut i = 0;
        while let Some(key) = map.next_key_seed(KeySeed {
            shape: &mut *self.shape,
            index: i,
        })? {
            let value: Value = map.next_value()?;
            match key {
                Key::Field(field, true) => record.push(field, value),
                Key::Field(field, false) => record.set(field, value),
                Key::Rest(name) => record.push_rest(name, value),
            }
            i += 1;
        }
        self.shape.truncate(i);
        Ok(record)
    }
}

/// A decoded key: an interned field (and whether it is new to the record), or a name beyond
/// the interning bounds.
enum Key {
    Field(Field, bool),
    Rest(String),
}

struct KeySeed<'a> {
    shape: &'a mut Vec<ShapeKey>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        if let Some((name, field, first)) = self.shape.get(self.index)
            && **name == *key
        {
            return Ok(Key::Field(*field, *first));
        }
        self.shape.truncate(self.index);
        // Keys from input are interned only within bounds (see `Field::bounded`).
        let Some(field) = Field::bounded(key) else {
            return Ok(Key::Rest(key.to_string()));
        };
        let first = !self.shape.iter().any(|(_, f, _)| *f == field);
        self.shape.push((key.into(), field, first));
        Ok(Key::Field(field, first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"transactionId":"a1","productPrice":12.5,"productQuantity":3,"nested":{"x":[1,2]},"ok":true,"none":null}"#;

    #[test]
    fn decodes_and_encodes_back_byte_for_byte() {
        let mut d = JsonDecoder::new();
        let r = d.decode(LINE.as_bytes()).expect("valid");
        assert_eq!(r.get(Field::new("productPrice")), Some(&Value::Float(12.5)));
        assert_eq!(r.get(Field::new("productQuantity")), Some(&Value::Int(3)));
        let mut out = Vec::new();
        encode_line(&r, &mut out);
        assert_eq!(String::from_utf8(out).expect("utf8"), format!("{LINE}\n"));
    }

    #[test]
    fn remembered_shape_survives_a_different_key_order() {
        let mut d = JsonDecoder::new();
        d.decode(br#"{"a":1,"b":2}"#).expect("valid");
        let r = d.decode(br#"{"b":3,"a":4,"c":5}"#).expect("valid");
        assert_eq!(r.get(Field::new("a")), Some(&Value::Int(4)));
        assert_eq!(r.get(Field::new("b")), Some(&Value::Int(3)));
        let again = d.decode(br#"{"a":1,"b":2}"#).expect("valid");
        assert_eq!(again.len(), 2);
    }

    /// The reasons dead letters carry for the usual broken payloads.
    #[test]
    fn broken_payloads_are_explained() {
        let mut d = JsonDecoder::new();
        for (payload, want) in [
            (&b"{\"a\":"[..], "EOF while parsing"),
            (b"[1,2]", "expected a JSON object"),
            (b"not json", "at line 1 column "),
            (b"{\"a\":1} x", "trailing"),
            (b"{\"a\":\"\xff\"}", "not UTF-8 at byte 6"),
        ] {
            let e = d.decode(payload).expect_err("broken").to_string();
            assert!(e.starts_with("invalid JSON: ") && e.contains(want), "{e}");
            assert!(!e.contains('\n'), "one line: {e}");
        }
    }

    #[test]
    fn errors_name_the_problem_and_position() {
        let mut d = JsonDecoder::new();
        let e = d.decode(br#"{"a":1,"b":}"#).expect_err("broken");
        assert!(e.to_string().contains("column 12"), "{e}");
        let e = d.decode(b"[1,2]").expect_err("not an object");
        assert!(e.to_string().contains("a JSON object"), "{e}");
        let e = d.decode(b" \r\n\t [").expect_err("not an object");
        assert!(
            e.to_string().ends_with("found an array at line 2 column 3"),
            "{e}"
        );
        let e = d.decode(br#"{"a":1} x"#).expect_err("trailing");
        assert!(e.to_string().contains("trailing"), "{e}");
    }

    /// The decoder accepts exactly what serde_json accepts, and decodes it to the same values.
    #[test]
    fn agrees_with_serde_json_on_edge_cases() {
        let cases: &[&[u8]] = &[
            br#"{"a":"\u00e9\n\"x\\ \ud83d\ude00"}"#,
            br#"{"a":-0.0,"b":0.1,"c":1.7976931348623157e308,"d":5e-324,"e":2.2250738585072011e-308}"#,
            br#"{"a":123456789012345678901234567890,"b":18446744073709551615,"c":-9223372036854775808}"#,
            br#"{"a":9223372036854775808,"b":1E2,"c":1e-2,"d":0,"e":-1}"#,
            br#"{"a":1,"a":2}"#,
            br#" { "a" : [1, {"b": [null, true]}] , "c": {} } "#,
            b"{}",
            b"{\"a\":1}\r\n",
            br#"{"a":1e400}"#,
            br#"{"a":-1e400}"#,
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":.5}"#,
            br#"{"a":NaN}"#,
            br#"{"a":Infinity}"#,
            br#"{"a":"\ud800"}"#,
            br#"{"a":"\x"}"#,
            b"{\"a\":\"x\ty\"}",
            b"{\"a\":\"\xff\"}",
            b"{\"\xc3\":1}",
            br#"{"a" 1}"#,
            br#"{"a":1,}"#,
            br#"{"a":1}{"b":2}"#,
            br#"{"a":tru}"#,
            br#""a""#,
            b"",
            b"   ",
            br#"{"a":1"#,
        ];
        let mut shared = JsonDecoder::new();
        let twice = cases.iter().flat_map(|c| [(c, true), (c, false)]);
        let repeats: &[&[u8]] = &[
            br#"{"a":1,"b":2}"#,
            br#"{"a":1,"a":2}"#,
            br#"{"b":1,"a":2,"b":3}"#,
            br#"{"a":1,"b":2,"a":3,"b":4,"c":5}"#,
            br#"{"a":1,"b":2,"c":3}"#,
        ];
        for (case, fresh) in twice.chain(repeats.iter().cycle().take(15).map(|c| (c, false))) {
            let want = serde_json::from_slice::<serde_json::Value>(case);
            let got = if fresh {
                JsonDecoder::new().decode(case)
            } else {
                shared.decode(case)
            };
            let shown = String::from_utf8_lossy(case);
            match (want, got) {
                (Ok(serde_json::Value::Object(want)), Ok(got)) => {
                    // A repeated key is one field, as in serde_json's object.
                    assert_eq!(got.len(), want.len(), "{shown}");
                    // Through `Value`, as every decoded field is (a u64 beyond i64 is a float).
                    let want = want
                        .into_iter()
                        .map(|(k, v)| (k, Value::from_json(v).to_json()));
                    let want = serde_json::Value::Object(want.collect());
                    assert_eq!(got.to_json(), want, "{shown}");
                }
                (Ok(serde_json::Value::Object(want)), Err(e)) => {
                    panic!("{shown}: refused ({e}), serde_json gives {want:?}")
                }
                (_, Ok(got)) => panic!("{shown}: accepted as {got:?}, serde_json refuses it"),
                (_, Err(_)) => {}
            }
        }
    }

    /// Nesting is refused beyond serde_json's limit, with the reason. (On a big stack: a
    /// debug build of sonic-rs takes tens of kilobytes per level; a release build decodes
    /// 127 levels within 64 KiB.)
    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        // The record's object is a level: a field holds 126 more, as serde_json allows.
        let line =
            |depth: usize| format!("{{\"deep\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        let (deepest, too_deep) = (
            line(ecomflow_core::value::MAX_NESTING - 2),
            line(ecomflow_core::value::MAX_NESTING - 1),
        );
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&too_deep).is_err());
        let results = std::thread::Builder::new()
            .stack_size(256 << 20)
            .spawn(move || {
                let mut d = JsonDecoder::new();
                (
                    d.decode(deepest.as_bytes()).map(|r| r.len()),
                    d.decode(too_deep.as_bytes()),
                )
            })
            .expect("thread")
            .join()
            .expect("no panic");
        assert_eq!(results.0.expect("within the limit"), 1);
        let e = results.1.expect_err("too deep");
        assert!(e.to_string().contains("deeper than 128"), "{e}");
    }

    /// A top-level array is refused without being read, however deep it nests: on a thread
    /// with a 64 KiB stack, where reading even a few hundred levels would overflow it.
    #[test]
    fn a_deep_top_level_array_is_refused_without_reading_it() {
        let deep = |open: &str, close: &str| {
            let n = 1_000_000;
            format!("{}{}", open.repeat(n), close.repeat(n)).into_bytes()
        };
        let lines = [deep("[", "]"), deep("[{\"a\":", "}]"), deep("[", "")];
        let errors = std::thread::Builder::new()
            .stack_size(64 << 10)
            .spawn(move || {
                let mut d = JsonDecoder::new();
                lines.map(|l| d.decode(&l).map(|r| r.len()))
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
        for e in errors {
            let e = e.expect_err("an array").to_string();
            assert!(e.contains("expected a JSON object, found an array"), "{e}");
        }
    }
}
