//! Input with ever-new keys cannot grow the interned names without end: past the bounds, a
//! record keeps the keys it could not intern aside, reads them back and writes them inline.
//! (Its own process: filling the interner would change what other tests decode.)

use ecomflow_core::field::{LIMIT_BYTES, LIMIT_NAMES};
use ecomflow_core::{Field, Value};
use ecomflow_json::{JsonDecoder, encode_line};

#[test]
fn ever_new_keys_stay_within_the_interning_bounds_and_round_trip() {
    // A field the pipeline reads is interned at build time, before any input.
    let amount = Field::new("amount");
    let mut decoder = JsonDecoder::new();
    let records = LIMIT_NAMES + 50_000;
    let mut last = None;
    for i in 0..records {
        let line = format!(r#"{{"id":{i},"key_{i:07}":"v{i}","amount":1.5}}"#);
        let record = decoder.decode(line.as_bytes()).expect("valid");
        assert_eq!(record.get(amount), Some(&Value::Float(1.5)), "record {i}");
        let mut out = Vec::new();
        encode_line(&record, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            format!("{line}\n"),
            "record {i} is written back as it came, key order included"
        );
        last = Some(record);
    }
    let (names, bytes) = Field::interned();
    assert!(names <= LIMIT_NAMES + 8, "{names} names interned");
    assert!(bytes <= LIMIT_BYTES, "{bytes} bytes interned");
    // The last record's new key was not interned, and is kept aside.
    let last = last.expect("decoded");
    assert!(Field::existing(&format!("key_{:07}", records - 1)).is_none());
    assert!(last.iter().any(|(f, _)| f.is_rest()));
    // A decoded record's JSON holds every key.
    assert_eq!(
        last.to_json()[format!("key_{:07}", records - 1)],
        serde_json::json!(format!("v{}", records - 1))
    );
}

#[test]
fn one_huge_key_cannot_take_the_byte_bound() {
    let mut decoder = JsonDecoder::new();
    let huge = "k".repeat(LIMIT_BYTES + 1);
    let record = decoder
        .decode(format!(r#"{{"{huge}":1}}"#).as_bytes())
        .expect("valid");
    assert!(Field::existing(&huge).is_none());
    assert_eq!(record.to_json()[&huge], serde_json::json!(1));
}
