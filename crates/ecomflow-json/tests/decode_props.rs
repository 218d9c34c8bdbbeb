//! Property test of the record decoder: no input line makes `JsonDecoder::decode`, the
//! encoder or event-time parsing panic. It decodes arbitrary bytes, seed transactions
//! mutated byte- and token-wise, and generated JSON with huge numbers, deep nesting, invalid
//! UTF-8, lone surrogates, duplicate and very long keys, arrays and objects nested up to two
//! million deep from the first byte, all through one decoder per case (so
//! its remembered key order is exercised). On success the record encodes to JSON that
//! serde_json parses, decodes back to an equal record, and equals what a fresh decoder makes;
//! every value goes through the `seed`, `rfc3339`, epoch and strftime formats and the
//! event-time tracker. It runs for a bounded number of cases (about 15 s in a debug build).

use ecomflow_core::{EventTimeConfig, EventTimeTracker, Record, Value};
use ecomflow_json::{JsonDecoder, encode_line};
use ecomflow_time::{TimeFormat, parse_iso};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How many cases the property runs: about 15 s in a debug build on the 2-core machine.
const CASES: u32 = 2000;

/// Transactions in the seed's format, as the generator writes them, and variants of it.
const SEED_LINES: &[&str] = &[
    r#"{"transactionId":"3f1c2d4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f","productId":"product_3","productName":"keyboard","productCategory":"computer","productPrice":129.99,"productQuantity":2,"productBrand":"logitech","currency":"EUR","customerId":"amelia_smith","transactionDate":"2025-07-19T12:34:56.123456+0000","paymentMethod":"credit_card","paymentStatus":"success","totalAmount":259.98}"#,
    r#"{"transactionId":"a7b8c9d0-e1f2-4a3b-9c4d-5e6f7a8b9c0d","productId":"product_10","productName":"switch","productCategory":"software","productPrice":1000.0,"productQuantity":100,"productBrand":"nikon","currency":"ARS","customerId":"x","transactionDate":"2025-02-01T00:00:00.000000","paymentMethod":"cash","paymentStatus":"failed","totalAmount":100000.0}"#,
    r#"{"transactionId":"00000000-0000-4000-8000-000000000000","productId":"product_1","productName":"laptop","productCategory":"electronics","productPrice":10.01,"productQuantity":1,"productBrand":"apple","currency":"JPY","customerId":"bob","transactionDate":"2024-02-29T23:59:59.999999Z","paymentMethod":"paypal","paymentStatus":"pending","totalAmount":10.01}"#,
    r#"{"transactionId":"t","productPrice":"12.x","productQuantity":1.5,"transactionDate":1752928496123,"nested":{"a":[1,2,{"b":null}]},"ok":true}"#,
    r#"{"transactionId":"t2","transactionDate":"2025-07-19T12:34:56.123456+0000","productQuantity":3}"#,
];

/// Numbers at and past the edges of what i64, u64 and f64 hold.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "1e400",
    "-1e400",
    "1.7e308",
    "1.8e308",
    "-1.7976931348623157e308",
    "5e-324",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "9223372036854775807",
    "9223372036854775808",
    "123456789012345678901234567890",
    "0.1",
    "1E5",
    "1e+5",
    "2.5e-3",
    "01",
    "1.",
    ".5",
    "+1",
    "NaN",
    "Infinity",
    "-",
    "1e",
    "0x10",
];

/// Strings, mostly event times in the formats and just outside them.
const STRINGS: &[&str] = &[
    "",
    "2025-07-19T12:34:56.123456+0000",
    "2025-07-19T12:34:56.123456",
    "2025-07-19T12:34:56Z",
    "2025-07-19 12:34:56.1+00:00",
    "2025-07-19T12:34:56.1234567890Z",
    "2025-07-19T12:34:60Z",
    "2025-07-19T23:59:60.999999-2359",
    "0000-01-01T00:00:00+2359",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999-2359",
    "9999-99-99T99:99:99Z",
    "2025-02-29T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2025-07-19T12:34:56+25:00",
    "2025-07-19T12:34:56.+0000",
    "2025-07-19",
    "2025-07-19T",
    "é025-07-19T12:34:56Z",
    "2025-07-19T12:34:5é",
    "２０２５-07-19T12:34:56Z",
    "1752928496123",
    "-1752928496123",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1.5",
    "19/07/2025 12:34",
    "\\u0000",
    "\\ud800",
    "\\udc00\\ud800",
    "\\ud83e\\udd80",
    "\\uD800x",
    "\\x",
    "🦀",
];

/// strftime patterns an `event_time.format` can hold.
const PATTERNS: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%d/%m/%Y %H:%M",
    "%s",
    "%Q",
    "%:z%#z%C%y%G%V%j%.3f",
];

// ---- generated JSON -------------------------------------------------------------------------

/// The text of a JSON string holding `s` (with escapes for what must be escaped).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec![
            "transactionId", "productId", "productPrice", "productQuantity", "currency",
            "transactionDate", "paymentStatus", "totalAmount", "a", "b", "",
        ])
        .prop_map(json_string),
        1 => any::<String>().prop_map(|s| json_string(&s)),
        // A raw escape, valid or not (lone surrogates).
        1 => select(STRINGS).prop_map(|s| format!("\"{s}\"")),
        1 => (1usize..20_000).prop_map(|n| json_string(&"k".repeat(n))),
    ]
}

/// The text of a JSON value, valid or nearly so.
fn json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        select(NUMBERS).prop_map(String::from),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|i| i.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        select(STRINGS).prop_map(|s| format!("\"{s}\"")),
        any::<String>().prop_map(|s| json_string(&s)),
        select(vec![
            "true", "false", "null", "nul", "tru", "\"", "\"\\\"", "[", "{"
        ])
        .prop_map(String::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| {
                let items: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", items.join(","))
            }),
        ]
    })
}

/// Numbers serde_json reads, at the edges of i64, u64 and f64.
const VALID_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "1.7e308",
    "-1.7976931348623157e308",
    "5e-324",
    "1e-400",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "9223372036854775807",
    "9223372036854775808",
    "123456789012345678901234567890",
    "1E5",
    "2.5e-3",
];

/// The text of a valid JSON value: every decoded record goes through the round trip.
fn valid_json_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        select(VALID_NUMBERS).prop_map(String::from),
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|i| i.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        select(STRINGS)
            .prop_filter("valid escapes", |s| serde_json::from_str::<String>(
                &format!("\"{s}\"")
            )
            .is_ok())
            .prop_map(|s| format!("\"{s}\"")),
        any::<String>().prop_map(|s| json_string(&s)),
        select(vec!["true", "false", "null"]).prop_map(String::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((valid_key(), inner), 0..6).prop_map(|kv| {
                let items: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", items.join(","))
            }),
        ]
    })
}

fn valid_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec!["transactionId", "productPrice", "transactionDate", "a", "b", ""])
            .prop_map(json_string),
        1 => any::<String>().prop_map(|s| json_string(&s)),
        1 => Just("\"\\ud83e\\udd80\\u0000\\n\"".to_string()),
        1 => (1usize..20_000).prop_map(|n| json_string(&"k".repeat(n))),
    ]
}

/// A JSON object, with keys repeated at will; `valid` makes every part of it valid JSON.
fn json_object(valid: bool) -> BoxedStrategy<Vec<u8>> {
    let pair = if valid {
        (valid_key().boxed(), valid_json_value().boxed())
    } else {
        (key().boxed(), json_value().boxed())
    };
    prop::collection::vec(pair, 0..16)
        .prop_map(|kv| {
            let items: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
            format!("{{{}}}", items.join(",")).into_bytes()
        })
        .boxed()
}

/// Nesting around a value, deeper than serde_json's limit at times.
fn deep() -> impl Strategy<Value = Vec<u8>> {
    (1usize..300, any::<bool>(), json_value()).prop_map(|(depth, arrays, inner)| {
        let (open, close) = if arrays { ("[", "]") } else { ("{\"a\":", "}") };
        format!(
            "{{\"deep\":{}{inner}{}}}",
            open.repeat(depth),
            close.repeat(depth)
        )
        .into_bytes()
    })
}

/// Nesting from the payload's first byte: arrays, arrays of objects and objects, a few levels
/// or up to two million (an array nested 20,000 deep once overflowed the stack and aborted).
fn deep_top_level() -> impl Strategy<Value = Vec<u8>> {
    let depth = prop_oneof![1usize..300, 1_000usize..2_000_000];
    let shape = select(&[("[", "]"), ("[{\"a\":", "}]"), ("{\"a\":", "}"), ("[", "")][..]);
    (depth, shape, json_value()).prop_map(|(depth, (open, close), inner)| {
        format!("{}{inner}{}", open.repeat(depth), close.repeat(depth)).into_bytes()
    })
}

// ---- mutations of seed lines ----------------------------------------------------------------

/// One change to a line, at a byte.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index, usize),
    Insert(Index, Vec<u8>),
    Flip(Index, u8),
    Truncate(Index),
    /// Replace the value after the `n`-th `:` up to the next `,` or `}`.
    Value(Index, String),
    /// Repeat the first field at the end (a duplicate key).
    DuplicateKey,
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<Index>(), 1usize..20).prop_map(|(i, n)| Mutation::Delete(i, n)),
        1 => (
            any::<Index>(),
            prop_oneof![
                prop::collection::vec(any::<u8>(), 1..8),
                // Invalid UTF-8: continuation bytes alone, overlong forms, a surrogate.
                select(vec![
                    vec![0x80],
                    vec![0xc0, 0xaf],
                    vec![0xed, 0xa0, 0x80],
                    vec![0xf4, 0x90, 0x80, 0x80],
                    vec![0xff],
                    b"\\ud800".to_vec(),
                    b"\\".to_vec(),
                    b"\"".to_vec(),
                    b",".to_vec(),
                    b"}".to_vec(),
                ]),
                json_value().prop_map(String::into_bytes),
            ]
        )
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        4 => (any::<Index>(), json_value()).prop_map(|(i, v)| Mutation::Value(i, v)),
        1 => Just(Mutation::DuplicateKey),
    ]
}

fn apply(line: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = line.to_vec();
    for m in mutations {
        match m {
            Mutation::Delete(i, n) => {
                let at = i.index(b.len() + 1);
                let end = (at + n).min(b.len());
                b.drain(at..end);
            }
            Mutation::Insert(i, bytes) => {
                let at = i.index(b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Flip(i, x) => {
                if !b.is_empty() {
                    let at = i.index(b.len());
                    b[at] ^= x;
                }
            }
            Mutation::Truncate(i) => b.truncate(i.index(b.len() + 1)),
            Mutation::Value(i, v) => {
                let colons: Vec<usize> = (0..b.len()).filter(|&k| b[k] == b':').collect();
                if !colons.is_empty() {
                    let start = colons[i.index(colons.len())] + 1;
                    let end = (start..b.len())
                        .find(|&k| b[k] == b',' || b[k] == b'}')
                        .unwrap_or(b.len());
                    b.splice(start..end, v.bytes());
                }
            }
            Mutation::DuplicateKey => {
                let first = b.iter().position(|&c| c == b',');
                if let (Some(comma), Some(close)) = (first, b.iter().rposition(|&c| c == b'}'))
                    && comma > 1
                    && comma < close
                {
                    let field = b[1..comma].to_vec();
                    let mut insert = vec![b','];
                    insert.extend(field);
                    b.splice(close..close, insert);
                }
            }
        }
    }
    b
}

fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => (select(SEED_LINES), prop::collection::vec(mutation(), 0..5))
            .prop_map(|(l, m)| apply(l.as_bytes(), &m)),
        2 => json_object(false),
        3 => json_object(true),
        1 => deep(),
        1 => deep_top_level(),
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => json_value().prop_map(String::into_bytes),
    ]
}

// ---- the property ---------------------------------------------------------------------------

/// Lines decoded one after another by one decoder.
#[derive(Clone)]
struct Case(Vec<Vec<u8>>);

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Each line as text where it is UTF-8 (readable), as bytes where it is not.
        let mut list = f.debug_list();
        for l in &self.0 {
            match std::str::from_utf8(l) {
                Ok(s) => list.entry(&s),
                Err(_) => list.entry(l),
            };
        }
        list.finish()
    }
}

fn formats() -> Vec<TimeFormat> {
    let mut v = vec![
        TimeFormat::Seed,
        TimeFormat::Rfc3339,
        TimeFormat::EpochMillis,
        TimeFormat::EpochSeconds,
    ];
    v.extend(
        PATTERNS
            .iter()
            .map(|p| TimeFormat::parse(p).expect("a pattern")),
    );
    v
}

fn tracker(field: &str, format: &str) -> EventTimeTracker {
    let config = EventTimeConfig {
        field: field.into(),
        format: format.into(),
        max_out_of_orderness: ecomflow_core::duration::ZeroAllowed::new(Duration::from_secs(300)),
        idle_timeout: ecomflow_core::duration::Positive::new(Duration::from_secs(30)),
        max_future: ecomflow_core::duration::ZeroAllowed::new(Duration::MAX),
    };
    ecomflow_time::tracker(&config).expect("a known format")
}

/// Reads every value of `record` in every time format, and stamps it with trackers.
fn event_times(record: &Record, formats: &[TimeFormat], trackers: &mut [EventTimeTracker]) {
    for (_, value) in record.iter() {
        for format in formats {
            let _ = format.read(value);
        }
        if let Value::Str(s) = value {
            let _ = parse_iso(s, false);
            let _ = parse_iso(s, true);
        }
    }
    for t in trackers.iter_mut() {
        let mut batch = vec![record.clone()];
        let mut dead = Vec::new();
        t.stamp(0, &mut batch, &mut dead);
        let _ = t.advance();
    }
}

fn check(case: &Case, decoded: &AtomicUsize) -> Result<(), TestCaseError> {
    let formats = formats();
    let mut trackers: Vec<EventTimeTracker> = ["seed", "rfc3339", "epoch_millis", "%s"]
        .iter()
        .map(|f| tracker("transactionDate", f))
        .collect();
    let mut decoder = JsonDecoder::new();
    let mut again = JsonDecoder::new();
    for line in &case.0 {
        let result = decoder.decode(line);
        // The remembered key order changes nothing: a fresh decoder agrees.
        let fresh = JsonDecoder::new().decode(line);
        match (&result, &fresh) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "decoders disagree: {result:?} / {fresh:?}"),
        }
        let record = match result {
            Ok(record) => record,
            Err(e) => {
                prop_assert!(e.to_string().starts_with("invalid JSON: "), "{e}");
                continue;
            }
        };
        decoded.fetch_add(1, Ordering::Relaxed);
        let mut out = Vec::new();
        encode_line(&record, &mut out);
        prop_assert_eq!(out.pop(), Some(b'\n'));
        prop_assert!(!out.contains(&b'\n'), "a newline inside the encoded line");
        let json: serde_json::Value = serde_json::from_slice(&out).map_err(|e| {
            TestCaseError::fail(format!(
                "serde_json cannot read the encoded record: {e}: {}",
                String::from_utf8_lossy(&out)
            ))
        })?;
        prop_assert!(json.is_object());
        let back = again.decode(&out).map_err(|e| {
            TestCaseError::fail(format!(
                "the encoded record does not decode: {e}: {}",
                String::from_utf8_lossy(&out)
            ))
        })?;
        prop_assert_eq!(&back, &record, "{}", String::from_utf8_lossy(&out));
        event_times(&record, &formats, &mut trackers);
    }
    Ok(())
}

/// The runner's configuration: `cases`, no failure files, and a seed written to stderr
/// before the first case, past the test harness's capture, so that it is there even when a
/// case aborts the process (a stack overflow); `PROPTEST_RNG_SEED=<seed>` runs the same
/// cases again.
fn config(test: &str, cases: u32) -> (Config, u64) {
    let default = Config::default();
    let seed = match default.rng_seed {
        RngSeed::Fixed(seed) => seed,
        RngSeed::Random => rand_seed(),
    };
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_time: 120_000,
        // Much cheaper than the default ChaCha in a debug build, where generating the
        // inputs took most of the time.
        rng_algorithm: RngAlgorithm::XorShift,
        rng_seed: RngSeed::Fixed(seed),
        ..default
    };
    let _ = writeln!(
        std::io::stderr(),
        "{test}: {cases} cases from seed {seed} (PROPTEST_RNG_SEED={seed} runs them again)"
    );
    (config, seed)
}

/// A seed from the clock, hashed with a random key (the runner's own seed is not printed).
fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[test]
fn decoding_any_line_never_panics_and_round_trips() {
    // A debug build of sonic-rs takes tens of kilobytes of stack per nesting level (a release
    // build, under 0.5 KiB), more than a test thread has for the deepest lines.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(decode_any_line)
        .expect("thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
}

fn decode_any_line() {
    let (config, seed) = config("decoding_any_line_never_panics_and_round_trips", CASES);
    let decoded = AtomicUsize::new(0);
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let strategy = prop::collection::vec(line(), 1..8).prop_map(Case);
    let result = runner.run(&strategy, |case| check(&case, &decoded));
    if let Err(e) = result {
        panic!("{e}\n(rerun these cases with PROPTEST_RNG_SEED={seed})");
    }
    eprintln!(
        "{CASES} cases in {:.1?}, {} lines decoded into records, the rest refused (seed {seed})",
        started.elapsed(),
        decoded.load(Ordering::Relaxed)
    );
}

#[test]
fn the_seed_lines_decode() {
    let mut d = JsonDecoder::new();
    for l in SEED_LINES {
        assert!(d.decode(l.as_bytes()).is_ok(), "{l}");
    }
}
