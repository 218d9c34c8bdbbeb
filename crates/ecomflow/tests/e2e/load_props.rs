//! Property test of the pipeline loader: no pipeline file, `--set` override or environment
//! variable makes `ecomflow_runtime::load` panic. It loads arbitrary bytes, TOML-like text
//! and, mostly, the shipped pipelines (`pipelines/*.toml`, read at test time) and a fixture
//! using every built-in plugin, mutated line by line (lines deleted, duplicated, swapped;
//! values, keys and tables replaced by random TOML of other types; text cut or spliced),
//! with random `--set` overrides on real option paths and random environment variables.
//! Loading builds every component (it does not run them); the property is that it returns
//! either a pipeline or diagnostics, each with a message. It runs for a bounded number of
//! cases (about 15 s in a debug build).

use ecomflow_elasticsearch as _;
use ecomflow_kafka as _;
use ecomflow_observe as _;
use ecomflow_sql as _;
use ecomflow_std as _;

use crate::common::repo;
use ecomflow_core::{Kind, Plugin};
use ecomflow_runtime::{GraphFormat, LoadOptions, load, render};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRunner};
use std::collections::BTreeSet;
use std::fmt;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// How many cases the property runs: about 15 s in a debug build on the 2-core machine.
const CASES: u32 = 3500;

/// A pipeline using the built-in plugins and options the shipped pipelines leave out.
const EVERY_PLUGIN: &str = r#"# every built-in plugin, for the loader's property test
[sources.lines]
type = "file"
path = "events.jsonl"
batch_size = 100

[sources.lines.event_time]
field = "at"
format = "epoch_millis"
max_out_of_orderness = "1s"
idle_timeout = "10s"
max_future = "0s"

[sources.made]
type = "generator"
count = 10
rate = 5.0
seed = 7
batch_size = 3

[sources.made.event_time]
field = "transactionDate"
format = "%Y-%m-%dT%H:%M:%S%.f%z"

[transforms.strict]
type = "validate"
inputs = ["lines", "made"]
unknown_fields = "reject"
fields = { at = "integer", name = "string", tags = "array", extra = "object", ok = "boolean", n = "number", x = "any" }

[transforms.renamed]
type = "map"
inputs = ["strict"]
set = { doubled = "n * 2", day = "event_time | date" }
rename = { name = "label" }
remove = ["x"]
lookups = { rates = { a = 1, b = 2.5 } }

[transforms.hops]
type = "window"
inputs = ["renamed"]
kind = "hopping"
size = "10m"
hop = "1m"
keys = { label = "label" }
aggregations = { c = "count()", s = "sum(n)", lo = "min(n)", hi = "max(n)", mean = "avg(n)", k = "count(label)" }
allowed_lateness = "30s"
early_updates = "5s"
late = "output"

[transforms.sessions]
type = "window"
inputs = ["renamed"]
kind = "session"
gap = "5m"
aggregations = { c = "count()" }
late = "drop"

[transforms.weekly]
type = "aggregate"
inputs = ["renamed", "hops.late"]
keys = { week = "week(event_time)", day = "day(event_time)", hour = "hour(event_time)" }
aggregations = { total = "sum(n)" }
time_zone = "Europe/Berlin"
allowed_lateness = "1h"
emit_interval = "2s"
late = "dead_letter"

[sinks.nothing]
type = "blackhole"
inputs = ["hops", "sessions"]

[sinks.screen]
type = "console"
inputs = ["weekly"]

[sinks.rows]
type = "file"
inputs = ["weekly"]
path = "rows.jsonl"
append = true

[sinks.db]
type = "sql"
inputs = ["weekly"]
url = "sqlite::memory:"
table = "weekly"
key = ["week", "day", "hour"]
batch_size = 10
flush_interval = "1s"
max_connections = 1
retry_for = "0s"

[sinks.search]
type = "elasticsearch"
inputs = ["renamed"]
url = "http://localhost:9200"
index = "events"
id_field = "label"
batch_size = 10
flush_interval = "1s"
retry_for = "10s"
retry_backoff = "100ms"
request_timeout = "5s"
username = "elastic"
password = "secret"

[sinks.topic]
type = "kafka"
inputs = ["renamed"]
bootstrap_servers = "localhost:9092"
topic = "events"
key_field = "label"

[dead_letter]
type = "console"

[checkpoint]
dir = "state"
interval = "1s"
"#;

// ---- the corpus: files read at test time, names taken from the plugins ----------------------

/// What the mutations are made from.
struct Corpus {
    /// File name and text of each base pipeline.
    bases: Vec<(String, String)>,
    /// Sets of bases that load together without error (a pipeline, or one with its overlay).
    scenarios: Vec<Vec<usize>>,
    /// Component paths (`sources.transactions`) and `dead_letter`.
    components: Vec<String>,
    /// Per base: its component paths with the options of their plugins.
    base_components: Vec<Vec<(String, Vec<String>)>>,
    /// Component ids.
    ids: Vec<String>,
    /// Option names of every plugin (nested ones too) and the tables' own keys.
    options: Vec<String>,
    /// Plugin names.
    types: Vec<String>,
    /// Environment variables the files read.
    vars: Vec<String>,
    /// The directory holding `pipelines/` (the files of a case) beside `migrations/` and
    /// `elasticsearch/` (links to the repository's), so relative paths resolve.
    dir: tempfile::TempDir,
}

impl Corpus {
    fn new() -> Corpus {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("pipelines"))
            .expect("pipelines/ exists")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            // A `*.test.toml` is a test file for `ecomflow test`, not a pipeline.
            .filter(|p| !p.to_string_lossy().ends_with(".test.toml"))
            .collect();
        paths.sort();
        let mut bases: Vec<(String, String)> = paths
            .iter()
            .map(|p| {
                let name = p.file_name().expect("name").to_string_lossy().into_owned();
                (name, std::fs::read_to_string(p).expect("read pipeline"))
            })
            .collect();
        bases.push(("every-plugin.toml".into(), EVERY_PLUGIN.into()));

        // An overlay (it replaces components) loads after the flagship it extends.
        let flagship = bases.iter().position(|(n, _)| n == "ecommerce.toml");
        let mut scenarios = Vec::new();
        for (i, (_, text)) in bases.iter().enumerate() {
            match flagship {
                Some(f) if text.contains("replace = true") => scenarios.push(vec![f, i]),
                _ => scenarios.push(vec![i]),
            }
        }

        let mut components = BTreeSet::from(["dead_letter".to_string()]);
        let mut base_components = Vec::new();
        let mut ids = BTreeSet::new();
        let mut keys = BTreeSet::new();
        let mut vars = BTreeSet::new();
        for (_, text) in &bases {
            // (path, kind, plugin name) of each component, in order.
            let mut declared: Vec<(String, Option<Kind>, String)> = Vec::new();
            for line in text.lines().map(str::trim) {
                if let Some(header) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
                    let parts: Vec<&str> = header.split('.').collect();
                    let kind = match parts[0] {
                        "sources" => Some(Kind::Source),
                        "transforms" => Some(Kind::Transform),
                        "sinks" | "dead_letter" => Some(Kind::Sink),
                        _ => None,
                    };
                    let path = match parts[..] {
                        [table @ ("sources" | "transforms" | "sinks"), id, ..] => {
                            ids.insert(id.to_string());
                            format!("{table}.{id}")
                        }
                        [other, ..] => other.to_string(),
                        [] => continue,
                    };
                    if parts.len() <= 2 && !declared.iter().any(|(p, ..)| *p == path) {
                        declared.push((path.clone(), kind, String::new()));
                    }
                    components.insert(path);
                } else if let Some((key, value)) = line.split_once('=')
                    && !line.starts_with('#')
                {
                    keys.extend(key.trim().split('.').map(str::to_string));
                    if key.trim() == "type"
                        && let Some(last) = declared.last_mut()
                    {
                        last.2 = value.trim().trim_matches('"').to_string();
                    }
                }
                let mut rest = line;
                while let Some(at) = rest.find("${") {
                    rest = &rest[at + 2..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !name.is_empty() {
                        vars.insert(name);
                    }
                }
            }
            base_components.push(
                declared
                    .into_iter()
                    .filter(|(p, ..)| p != "checkpoint")
                    .map(|(path, kind, name)| {
                        let mut own = BTreeSet::new();
                        if let Some(plugin) = kind.and_then(|k| Plugin::find(k, &name)) {
                            collect_properties(&(plugin.schema)().to_value(), &mut own);
                        }
                        if path.starts_with("sources.") {
                            own.extend(
                                [
                                    "event_time.field",
                                    "event_time.format",
                                    "event_time.max_future",
                                ]
                                .map(String::from),
                            );
                        }
                        own.insert("type".into());
                        (path, own.into_iter().collect())
                    })
                    .collect(),
            );
        }
        let mut options: BTreeSet<String> = keys;
        for plugin in Plugin::all() {
            collect_properties(&(plugin.schema)().to_value(), &mut options);
        }
        for extra in [
            "type",
            "inputs",
            "replace",
            "event_time",
            "checkpoint",
            "dead_letter",
        ] {
            options.insert(extra.into());
        }

        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("pipelines")).expect("pipelines dir");
        for linked in ["migrations", "elasticsearch"] {
            std::os::unix::fs::symlink(repo().join(linked), dir.path().join(linked)).expect("link");
        }
        Corpus {
            bases,
            base_components,
            scenarios,
            components: components.into_iter().collect(),
            ids: ids.into_iter().collect(),
            options: options.into_iter().filter(|o| !o.is_empty()).collect(),
            types: Plugin::all().iter().map(|p| p.name.to_string()).collect(),
            vars: vars.into_iter().collect(),
            dir,
        }
    }
}

/// Every property name in a JSON schema, at any depth.
fn collect_properties(schema: &serde_json::Value, out: &mut BTreeSet<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            for v in map.values() {
                collect_properties(v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                collect_properties(v, out);
            }
        }
        _ => {}
    }
}

// ---- random TOML ----------------------------------------------------------------------------

/// Strings options take, and strings they should refuse.
const STRINGS: &[&str] = &[
    "",
    " ",
    "0s",
    "0",
    "-5m",
    "1ms",
    "1us",
    "1ns",
    "250ms",
    "30s",
    "5m",
    "2h",
    "1d",
    "1w",
    "10y",
    "3650d",
    "3651d",
    "1000000000d",
    "18446744073709551615s",
    "99999999999999999999999h",
    "1.5h",
    "1e400s",
    "5 m",
    "seed",
    "rfc3339",
    "epoch_millis",
    "epoch_seconds",
    "%",
    "%Q",
    "%s",
    "%Y-%m-%d %H:%M:%S%.f",
    "%z%z%z",
    "%-",
    "UTC",
    "Europe/Paris",
    "America/Sao_Paulo",
    "Mars/Olympus_Mons",
    "+05:00",
    "2025-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "+275760-09-13T00:00:00Z",
    "2025-02-30T00:00:00Z",
    "1970-01-01T00:00:00-23:59",
    "paymentStatus == 'success'",
    "a +",
    "{{",
    "}}",
    "{% for %}",
    "x | round(400)",
    "1 / 0",
    "0 / 0",
    "1.7e308 * 10",
    "9223372036854775807 + 1",
    "-9223372036854775808 // -1",
    "totalAmount | round(2)",
    "event_time | timestamp",
    "event_time | date",
    "usd_per_unit[currency]",
    "range(1000000000) | length",
    "sum(total_amount_usd)",
    "count()",
    "count(x)",
    "avg()",
    "sum(",
    "median(x)",
    "day(event_time)",
    "month(event_time)",
    "year(event_time)",
    "hour(event_time)",
    "week(event_time)",
    "minute(event_time)",
    "day()",
    "day(x)",
    "string",
    "number",
    "integer",
    "keep",
    "drop",
    "reject",
    "output",
    "dead_letter",
    "tumbling",
    "hopping",
    "session",
    "earliest",
    "latest",
    "gzip",
    "zstd",
    "all",
    "-",
    ".",
    "..",
    "/",
    "/nonexistent/dir/file",
    "../migrations",
    "../elasticsearch/transactions-template.json",
    "../pipelines",
    "sqlite://ecomflow.db",
    "sqlite::memory:",
    "sqlite://",
    "sqlite:///",
    "postgres://postgres:postgres@localhost:5433/postgres",
    "postgres://",
    "postgres://u:p@[::1",
    "postgresql://h:99999/db",
    "mysql://localhost/db",
    "http://localhost:9200",
    "http://[::1",
    "http://user:pw@host:0/",
    "https://",
    "localhost:9092",
    ":",
    ",",
    "a,b,,c",
    "financial_transactions",
    "bad topic name!",
    "__consumer_offsets",
    "transactionId",
    "productId",
    "currency",
    "${DATABASE_URL}",
    "${UNSET_VARIABLE_FOR_PROPTEST}",
    "${UNSET_VARIABLE_FOR_PROPTEST:-}",
    "$${literal",
    "${",
    "${}",
    "${:-x}",
    "é",
    "日本語",
    "🦀",
    "\u{0}",
    "\u{feff}",
    "\u{10ffff}",
    "a\nb",
    "\\",
    "\"",
    "'",
];

fn interesting_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(STRINGS).prop_map(String::from),
        2 => any::<String>(),
        1 => "[a-zA-Z_%$:/.{}() |'0-9-]{0,30}",
        1 => (select(STRINGS), 1usize..20_000).prop_map(|(s, n)| {
            let unit = if s.is_empty() { "x" } else { s };
            unit.repeat(n.min(20_000 / unit.len().max(1)).max(1))
        }),
    ]
}

/// A TOML basic string holding `s`.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `f` as TOML writes it.
fn toml_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{f:?}")
    }
}

/// A TOML key: an option name, a made-up one or a quoted one.
fn key(corpus: &Corpus) -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(corpus.options.clone()),
        1 => "[a-z_]{1,12}",
        1 => any::<String>().prop_map(|s| quote(&s)),
    ]
    .boxed()
}

/// The text of a random TOML value, nested up to three levels.
fn toml_value(corpus: &Corpus) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        select(vec![
            "0",
            "-1",
            "1",
            "2",
            "1000",
            "4294967296",
            "9223372036854775807",
            "-9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "-9223372036854775809",
            "0x7fffffffffffffff",
            "0o777",
            "0b101",
            "1_000_000",
        ])
        .prop_map(String::from),
        any::<f64>().prop_map(toml_float),
        select(vec![
            "nan", "+nan", "-nan", "inf", "+inf", "-inf", "-0.0", "0.0", "0.5", "1.0", "1e-3",
            "1.7e308", "1.8e308", "5e-324", "1e400", "-1e400", "0.001", "0.0009",
        ])
        .prop_map(String::from),
        any::<bool>().prop_map(|b| b.to_string()),
        interesting_string().prop_map(|s| quote(&s)),
        select(corpus.types.clone()).prop_map(|s| quote(&s)),
        select(corpus.ids.clone()).prop_map(|s| quote(&s)),
        select(vec![
            "1979-05-27T07:32:00Z",
            "1979-05-27T00:32:00.999999-07:00",
            "1979-05-27 07:32:00",
            "1979-05-27",
            "07:32:00",
            "'literal ${X}'",
            "'''multi\nline'''",
            "\"\"\"multi\nline\"\"\"",
        ])
        .prop_map(String::from),
    ];
    let key = key(corpus);
    leaf.prop_recursive(3, 24, 5, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key.clone(), inner), 0..5).prop_map(|kv| {
                let items: Vec<String> = kv.iter().map(|(k, v)| format!("{k} = {v}")).collect();
                format!("{{ {} }}", items.join(", "))
            }),
        ]
    })
    .boxed()
}

/// A line to insert: an option, a table header, a type or inputs.
fn toml_line(corpus: &Corpus) -> impl Strategy<Value = String> + use<> {
    let tables = select(vec!["sources", "transforms", "sinks"]);
    prop_oneof![
        4 => (key(corpus), toml_value(corpus)).prop_map(|(k, v)| format!("{k} = {v}")),
        1 => (key(corpus), key(corpus), toml_value(corpus))
            .prop_map(|(a, b, v)| format!("{a}.{b} = {v}")),
        1 => (tables.clone(), select(corpus.ids.clone()))
            .prop_map(|(t, id)| format!("[{t}.{id}]")),
        1 => (tables, select(corpus.ids.clone()), key(corpus))
            .prop_map(|(t, id, k)| format!("[{t}.{id}.{k}]")),
        1 => select(vec!["[dead_letter]", "[checkpoint]", "[[sources]]", "[sinks]", "[]"])
            .prop_map(String::from),
        1 => select(corpus.types.clone()).prop_map(|t| format!("type = {}", quote(&t))),
        1 => prop::collection::vec(select(corpus.ids.clone()), 0..4).prop_map(|ids| {
            let ids: Vec<String> = ids.iter().map(|i| quote(i)).collect();
            format!("inputs = [{}]", ids.join(", "))
        }),
        1 => Just("replace = true".to_string()),
    ]
}

// ---- mutations ------------------------------------------------------------------------------

/// One change to a pipeline file.
#[derive(Debug, Clone)]
enum Mutation {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    /// The value after `=` on the line (or the next line that has one).
    Value(Index, String),
    /// The value after `=` on the line (or the next line that has one) replaced by one of
    /// the same TOML type, so that it passes deserialization and reaches the plugin's checks.
    SameType(Index, Box<SameType>),
    /// The key before `=` on the line (or the next line that has one).
    Key(Index, String),
    Insert(Index, String),
    /// Cut the text at a byte.
    Truncate(Index),
    /// Insert text at a byte.
    Splice(Index, String),
}

/// A replacement of each TOML type; the one of the value's type is used.
#[derive(Debug, Clone)]
struct SameType {
    integer: String,
    float: String,
    string: String,
    boolean: bool,
}

fn same_type() -> impl Strategy<Value = SameType> {
    let integer = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        select(vec![
            "0",
            "-1",
            "1",
            "9223372036854775807",
            "-9223372036854775808",
            "4294967296",
            "86400000",
            "253402300799999",
        ])
        .prop_map(String::from),
    ];
    let float = prop_oneof![
        any::<f64>().prop_map(toml_float),
        select(vec![
            "nan", "inf", "-inf", "-0.0", "0.0", "1.0", "1e-3", "1.7e308", "5e-324", "0.0009",
        ])
        .prop_map(String::from),
    ];
    (integer, float, interesting_string(), any::<bool>()).prop_map(
        |(integer, float, string, boolean)| SameType {
            integer,
            float,
            string: quote(&string),
            boolean,
        },
    )
}

fn mutation(corpus: &Corpus) -> BoxedStrategy<Mutation> {
    prop_oneof![
        6 => (any::<Index>(), same_type()).prop_map(|(i, t)| Mutation::SameType(i, Box::new(t))),
        2 => any::<Index>().prop_map(Mutation::Delete),
        1 => any::<Index>().prop_map(Mutation::Duplicate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        6 => (any::<Index>(), toml_value(corpus)).prop_map(|(i, v)| Mutation::Value(i, v)),
        1 => (any::<Index>(), key(corpus)).prop_map(|(i, k)| Mutation::Key(i, k)),
        3 => (any::<Index>(), toml_line(corpus)).prop_map(|(i, l)| Mutation::Insert(i, l)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop_oneof![
            select(vec!["\"", "'", "[", "]", "{", "}", "=", "\n", ".", ",", "#", "\\", "${"])
                .prop_map(String::from),
            any::<String>(),
        ])
        .prop_map(|(i, s)| Mutation::Splice(i, s)),
    ]
    .boxed()
}

/// The line at `i` or the next one (wrapping) that has a `=`, as (line, byte of the `=`).
fn line_with_eq(lines: &[String], i: &Index) -> Option<(usize, usize)> {
    let start = i.index(lines.len());
    (0..lines.len())
        .map(|k| (start + k) % lines.len())
        .find_map(|l| lines[l].find('=').map(|at| (l, at)))
}

/// The largest char boundary of `s` at or before `at`.
fn boundary(s: &str, mut at: usize) -> usize {
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut text = text.to_string();
    for m in mutations {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match m {
            Mutation::Delete(i) => {
                lines.remove(i.index(n));
            }
            Mutation::Duplicate(i) => {
                let at = i.index(n);
                lines.insert(at, lines[at].clone());
            }
            Mutation::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            Mutation::Value(i, v) => {
                if let Some((l, at)) = line_with_eq(&lines, i) {
                    lines[l] = format!("{}= {v}", &lines[l][..at]);
                }
            }
            Mutation::SameType(i, t) => {
                if let Some((l, at)) = line_with_eq(&lines, i) {
                    let old = lines[l][at + 1..].trim();
                    let new = match old.chars().next() {
                        Some('"' | '\'') => Some(t.string.clone()),
                        Some('t' | 'f') => Some(t.boolean.to_string()),
                        Some('0'..='9' | '-' | '+') if old.contains(['.', 'e']) => {
                            Some(t.float.clone())
                        }
                        Some('0'..='9' | '-' | '+') => Some(t.integer.clone()),
                        _ => None,
                    };
                    if let Some(new) = new {
                        lines[l] = format!("{}= {new}", &lines[l][..at]);
                    }
                }
            }
            Mutation::Key(i, k) => {
                if let Some((l, at)) = line_with_eq(&lines, i) {
                    lines[l] = format!("{k} {}", &lines[l][at..]);
                }
            }
            Mutation::Insert(i, line) => lines.insert(i.index(n + 1), line.clone()),
            Mutation::Truncate(i) | Mutation::Splice(i, _) => {
                let at = boundary(&text, i.index(text.len() + 1));
                match m {
                    Mutation::Splice(_, s) => text.insert_str(at, s),
                    _ => text.truncate(at),
                }
                continue;
            }
        }
        text = lines.join("\n");
        text.push('\n');
    }
    text
}

// ---- cases ----------------------------------------------------------------------------------

/// One file of a case.
#[derive(Clone)]
enum FileText {
    Bytes(Vec<u8>),
    Text(String),
}

impl fmt::Debug for FileText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileText::Bytes(b) => write!(f, "bytes {b:?}"),
            // The text as it reads, so a failure shows the file.
            FileText::Text(t) => write!(f, "text:\n{t}\n"),
        }
    }
}

/// One load: files (in order), `--set` arguments and environment variables.
#[derive(Debug, Clone)]
struct Case {
    files: Vec<(String, FileText)>,
    sets: Vec<String>,
    env: Vec<(String, String)>,
}

/// A `--set` argument: mostly an option of one of `components` (its own options, or any
/// option name), sometimes malformed.
fn set_arg(corpus: &Corpus, components: Vec<(String, Vec<String>)>) -> BoxedStrategy<String> {
    let all = corpus.options.clone();
    let value = prop_oneof![
        2 => toml_value(corpus),
        2 => interesting_string(),
    ];
    let path = select(components).prop_flat_map(move |(c, own)| {
        let option = if own.is_empty() {
            select(all.clone()).boxed()
        } else {
            prop_oneof![4 => select(own), 1 => select(all.clone())].boxed()
        };
        (
            Just(c),
            option,
            prop::option::weighted(0.15, select(all.clone())),
        )
    });
    prop_oneof![
        8 => (path, value).prop_map(|((c, o, sub), v)| match sub {
            Some(sub) => format!("{c}.{o}.{sub}={v}"),
            None => format!("{c}.{o}={v}"),
        }),
        1 => "[a-z_.=]{0,40}",
        1 => any::<String>(),
    ]
    .boxed()
}

/// The `--set` arguments of a case (up to three, mostly none or one).
fn sets(corpus: &Corpus, components: Vec<(String, Vec<String>)>) -> BoxedStrategy<Vec<String>> {
    prop_oneof![
        3 => Just(Vec::new()),
        3 => prop::collection::vec(set_arg(corpus, components), 1..4),
    ]
    .boxed()
}

/// How many mutations a file gets: none to three, mostly one.
fn mutations(corpus: &Corpus) -> BoxedStrategy<Vec<Mutation>> {
    prop_oneof![
        1 => Just(Vec::new()),
        4 => prop::collection::vec(mutation(corpus), 1..2),
        2 => prop::collection::vec(mutation(corpus), 2..4),
    ]
    .boxed()
}

fn case(corpus: &Corpus) -> impl Strategy<Value = Case> + use<> {
    let bases = corpus.bases.clone();
    let n = bases.len();
    let all_components: Vec<(String, Vec<String>)> = corpus
        .components
        .iter()
        .map(|c| (c.clone(), Vec::new()))
        .collect();
    let scenarios: Vec<(Vec<usize>, BoxedStrategy<Vec<String>>)> = corpus
        .scenarios
        .iter()
        .map(|scenario| {
            let mut components: Vec<(String, Vec<String>)> = Vec::new();
            for &b in scenario {
                for c in &corpus.base_components[b] {
                    if !components.iter().any(|(p, _)| *p == c.0) {
                        components.push(c.clone());
                    }
                }
            }
            (scenario.clone(), sets(corpus, components))
        })
        .collect();
    let files_and_sets = prop_oneof![
        // A pipeline that loads, mutated, with `--set`s on its components: the useful part.
        12 => select((0..scenarios.len()).collect::<Vec<_>>()).prop_flat_map({
            let mutations = mutations(corpus);
            let bases = bases.clone();
            move |i| {
                let (scenario, sets) = scenarios[i].clone();
                let k = scenario.len();
                let bases = bases.clone();
                (prop::collection::vec(mutations.clone(), k), sets).prop_map(
                    move |(mutations, sets)| {
                        let files = scenario
                            .iter()
                            .zip(&mutations)
                            .map(|(&b, m)| {
                                (bases[b].0.clone(), FileText::Text(apply(&bases[b].1, m)))
                            })
                            .collect();
                        (files, sets)
                    },
                )
            }
        }),
        // Any files of the corpus together, mutated (duplicate ids across files, overlays
        // without their base).
        2 => (
            prop::collection::vec((0..n, mutations(corpus)), 1..4),
            sets(corpus, all_components.clone()),
        )
            .prop_map(move |(picks, sets)| {
                let files = picks
                    .iter()
                    .map(|(b, m)| (bases[*b].0.clone(), FileText::Text(apply(&bases[*b].1, m))))
                    .collect();
                (files, sets)
            }),
        1 => (
            "[\\[\\]a-z_.=\"' \n0-9{},#$-]{0,200}",
            sets(corpus, all_components.clone()),
        )
            .prop_map(|(t, sets)| (vec![("toml-like.toml".to_string(), FileText::Text(t))], sets)),
        1 => (prop::collection::vec(any::<u8>(), 0..300), sets(corpus, all_components))
            .prop_map(|(b, sets)| (vec![("bytes.toml".to_string(), FileText::Bytes(b))], sets)),
    ];
    let env = prop_oneof![
        1 => Just(Vec::new()),
        1 => prop::collection::vec(
            (
                select(corpus.vars.clone()),
                prop_oneof![interesting_string(), toml_value(corpus)],
            ),
            1..3,
        ),
    ];
    (files_and_sets, env).prop_map(|((files, sets), env)| Case { files, sets, env })
}

/// Writes the case's files into the corpus directory, returning their paths.
fn write(corpus: &Corpus, case: &Case) -> Vec<PathBuf> {
    let dir = corpus.dir.path().join("pipelines");
    case.files
        .iter()
        .enumerate()
        .map(|(i, (name, text))| {
            let path = dir.join(format!("{i}-{name}"));
            let bytes = match text {
                FileText::Bytes(b) => b.as_slice(),
                FileText::Text(t) => t.as_bytes(),
            };
            std::fs::write(&path, bytes).expect("write case file");
            path
        })
        .collect()
}

/// Loads the case: a pipeline (rendered as a graph), or diagnostics that each say something.
fn check(corpus: &Corpus, case: &Case, loaded: &AtomicUsize) -> Result<(), TestCaseError> {
    let paths = write(corpus, case);
    let env = |name: &str| {
        case.env
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let options = LoadOptions {
        sets: &case.sets,
        env: &env,
    };
    match load(&paths, &options) {
        Ok(pipeline) => {
            loaded.fetch_add(1, Ordering::Relaxed);
            prop_assert!(!render(&pipeline, GraphFormat::Dot).is_empty());
            prop_assert!(!render(&pipeline, GraphFormat::Mermaid).is_empty());
        }
        Err(diags) => {
            prop_assert!(!diags.0.is_empty(), "an error without a diagnostic");
            for d in &diags.0 {
                prop_assert!(
                    !d.message.trim().is_empty(),
                    "a diagnostic without a message: {d:?}"
                );
                prop_assert!(
                    !d.location.is_empty(),
                    "a diagnostic without a location: {d:?}"
                );
            }
            prop_assert!(!diags.to_string().is_empty());
        }
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

/// A seed from the clock and the process id (the runner's own seed would not be printed).
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
fn every_base_pipeline_loads_unmutated() {
    let corpus = Corpus::new();
    for scenario in &corpus.scenarios {
        let case = Case {
            files: scenario
                .iter()
                .map(|&b| {
                    let (name, text) = &corpus.bases[b];
                    (name.clone(), FileText::Text(text.clone()))
                })
                .collect(),
            sets: Vec::new(),
            env: Vec::new(),
        };
        let paths = write(&corpus, &case);
        let env = |_: &str| None;
        let options = LoadOptions {
            sets: &[],
            env: &env,
        };
        if let Err(e) = load(&paths, &options) {
            panic!("{:?} does not load:\n{e}", case.files[0].0);
        }
    }
}

#[test]
fn loading_any_pipeline_text_never_panics() {
    let corpus = Corpus::new();
    let (config, seed) = config("loading_any_pipeline_text_never_panics", CASES);
    let loaded = AtomicUsize::new(0);
    let started = Instant::now();
    let mut runner = TestRunner::new(config);
    let result = runner.run(&case(&corpus), |case| check(&corpus, &case, &loaded));
    if let Err(e) = result {
        panic!("{e}\n(rerun these cases with PROPTEST_RNG_SEED={seed})");
    }
    eprintln!(
        "{CASES} cases in {:.1?}, {} loaded as a pipeline, the rest refused with diagnostics (seed {seed})",
        started.elapsed(),
        loaded.load(Ordering::Relaxed)
    );
}
