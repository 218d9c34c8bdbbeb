//! The `ecomflow` binary end to end: validate, list, graph and run, as a user calls them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{ecomflow, repo};
use ecomflow_std as _;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn pipelines() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("pipelines"))
        .expect("pipelines/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn every_shipped_pipeline_validates() {
    let files = pipelines();
    assert!(!files.is_empty());
    let flagship = repo().join("pipelines/ecommerce.toml");
    for f in files {
        // An overlay (it replaces components) is validated after the flagship it extends.
        let text = std::fs::read_to_string(&f).expect("read pipeline");
        let mut cmd = ecomflow();
        cmd.arg("validate");
        if text.contains("replace = true") {
            cmd.arg(&flagship);
        }
        let out = cmd.arg(&f).output().expect("runs");
        assert!(
            out.status.success(),
            "{} does not validate:\n{}",
            f.display(),
            text_of(&out.stderr)
        );
        assert!(text_of(&out.stdout).starts_with("ok: "));
    }
}

fn text_of(b: &[u8]) -> String {
    text(b)
}

/// 1-based line of the first occurrence of `needle` in `s`.
fn line_of(s: &str, needle: &str) -> usize {
    let at = s
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in file"));
    s[..at].matches('\n').count() + 1
}

#[test]
fn broken_copies_of_the_flagship_fail_with_every_error_located() {
    let original = std::fs::read_to_string(repo().join("pipelines/ecommerce.toml")).expect("read");
    let broken = original
        .replacen("condition = ", "conditon = ", 1)
        .replacen("type = \"validate\"", "type = \"validat\"", 1)
        .replacen("inputs = [\"failed\"]", "inputs = [\"faild\"]", 1)
        .replacen("inputs = [\"checked\"]", "inputs = [\"paid\"]", 1);
    let dir = tempfile::tempdir().expect("tempdir");
    // Beside a migrations folder, as in the repository (the sinks name `../migrations`).
    std::fs::create_dir_all(dir.path().join("migrations")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("pipelines")).expect("mkdir");
    let path = dir.path().join("pipelines/ecommerce.toml");
    std::fs::write(&path, &broken).expect("write");

    let out = ecomflow()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let file = path.display().to_string();
    let expect = [
        format!(
            "{file}:{}:1: transforms.paid: unknown field `conditon`",
            line_of(&broken, "conditon")
        ),
        format!("{file}:{}:", line_of(&broken, "[transforms.checked]")),
        "transforms.checked: unknown transform type `validat`".to_string(),
        "did you mean `validate`?".to_string(),
        format!("{file}:{}:", line_of(&broken, "[\"faild\"]")),
        "transforms.failures_per_minute: input `faild` names no component".to_string(),
        "cycle: ".to_string(),
    ];
    for e in &expect {
        assert!(err.contains(e.as_str()), "missing {e:?} in:\n{err}");
    }
    assert!(err.contains("4 errors found"), "{err}");
}

#[test]
fn list_shows_every_linked_built_in_with_its_options() {
    let out = ecomflow().arg("list").output().expect("runs");
    assert!(out.status.success());
    let listed = text(&out.stdout);
    let built_ins = ecomflow_core::Plugin::all();
    assert!(
        built_ins.len() >= 8,
        "expected the built-ins to be linked here"
    );
    for p in built_ins {
        let head = format!("{} {}: {}", p.kind().noun(), p.name, p.summary);
        assert!(listed.contains(&head), "`ecomflow list` lacks {head:?}");
    }
    assert!(
        listed.contains("  count (integer"),
        "generator options missing:\n{listed}"
    );
    let json = ecomflow()
        .args(["list", "--format", "json"])
        .output()
        .expect("runs");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(
        v.as_array()
            .is_some_and(|a| a.iter().any(|p| p["name"] == "filter"))
    );
}

#[test]
fn graph_draws_the_flagship() {
    let f = repo().join("pipelines/ecommerce.toml");
    let dot = ecomflow().arg("graph").arg(&f).output().expect("runs");
    assert!(dot.status.success());
    assert!(text(&dot.stdout).contains("\"storable\" -> \"paid\""));
    let mermaid = ecomflow()
        .args(["graph", "--format", "mermaid"])
        .arg(&f)
        .output()
        .expect("runs");
    assert!(text(&mermaid.stdout).contains("checked --> usd"));
}

fn generate(dir: &Path, n: u64, tag: &str) -> (Output, PathBuf, PathBuf) {
    let out = dir.join(format!("{tag}-out.jsonl"));
    let dead = dir.join(format!("{tag}-dead.jsonl"));
    let o = ecomflow()
        .arg("run")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/generate-to-file.toml"))
        .arg("--set")
        .arg(format!("sources.transactions.count={n}"))
        .env("OUT", &out)
        .env("DEAD", &dead)
        .output()
        .expect("runs");
    (o, out, dead)
}

const FIELDS: [&str; 13] = [
    "transactionId",
    "productId",
    "productName",
    "productCategory",
    "productPrice",
    "productQuantity",
    "productBrand",
    "currency",
    "customerId",
    "transactionDate",
    "paymentMethod",
    "paymentStatus",
    "totalAmount",
];

fn is_seed_date(s: &str) -> bool {
    // 2025-07-19T12:34:56.123456+0000
    let b = s.as_bytes();
    s.len() == 31
        && s.ends_with("+0000")
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'.'
        && s[20..26].bytes().all(|c| c.is_ascii_digit())
}

#[test]
fn bounded_run_writes_exactly_n_good_records_and_dead_letters_the_bad() {
    let dir = tempfile::tempdir().expect("tempdir");
    let n = 700;
    let (o, out, dead) = generate(dir.path(), n, "a");
    assert!(o.status.success(), "{}", text(&o.stderr));

    let good = std::fs::read_to_string(&out).expect("output");
    let lines: Vec<serde_json::Map<String, serde_json::Value>> = good
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is a JSON object"))
        .collect();
    assert_eq!(lines.len() as u64, n);
    for l in &lines {
        let keys: Vec<&str> = l.keys().map(String::as_str).collect();
        assert_eq!(keys, FIELDS);
        assert!(
            is_seed_date(l["transactionDate"].as_str().expect("date")),
            "{l:?}"
        );
        let id = l["transactionId"].as_str().expect("id");
        assert_eq!((id.len(), &id[14..15]), (36, "4"), "UUIDv4: {id}");
        let price = l["productPrice"].as_f64().expect("price");
        let qty = l["productQuantity"].as_i64().expect("qty");
        let total = l["totalAmount"].as_f64().expect("total");
        assert!((10.0..=1000.0).contains(&price) && (1..=100).contains(&qty));
        assert!((total - (price * qty as f64 * 100.0).round() / 100.0).abs() < 0.005);
    }

    let dead_text = std::fs::read_to_string(&dead).expect("dead letters");
    let letters: Vec<serde_json::Value> = dead_text
        .lines()
        .map(|l| serde_json::from_str(l).expect("dead letter is JSON"))
        .collect();
    assert!(
        !letters.is_empty(),
        "bad_ratio 0.05 must produce bad records"
    );
    let from = |c: &str| letters.iter().filter(|l| l["component"] == c).count();
    assert!(
        from("sources.transactions") > 0,
        "malformed JSON is dead-lettered at the source"
    );
    assert!(
        from("transforms.checked") > 0,
        "missing/mistyped fields at the check"
    );
    assert_eq!(
        from("sources.transactions") + from("transforms.checked"),
        letters.len()
    );
    for l in &letters {
        assert!(!l["reason"].as_str().unwrap_or("").is_empty());
        assert!(!l["payload"].is_null());
    }

    // Same seed, same bytes.
    let (o2, out2, dead2) = generate(dir.path(), n, "b");
    assert!(o2.status.success());
    assert_eq!(good, std::fs::read_to_string(out2).expect("output 2"));
    assert_eq!(dead_text, std::fs::read_to_string(dead2).expect("dead 2"));
}

#[test]
fn the_flagship_runs_on_embedded_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = ecomflow()
        .arg("run")
        .arg(repo().join("pipelines/ecommerce.toml"))
        .args(["--set", "sources.transactions.count=3000"])
        .env_remove("DATABASE_URL")
        .env_remove("ECOMFLOW_DEAD_LETTER")
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The console shows the payment alerts.
    let stdout = text(&o.stdout);
    let alerts: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("console prints JSON lines"))
        .collect();
    assert!(
        !alerts.is_empty(),
        "3000 transactions 2 s apart raise alerts"
    );
    for a in &alerts {
        assert!(a["failed_count"].as_i64().is_some_and(|n| n > 4), "{a}");
        assert!(
            a["payment_method"].is_string() && a["window_start"].is_string(),
            "{a}"
        );
    }
    // The tables live in ecomflow.db in the working directory; bad records in dead-letter.jsonl.
    let db = std::fs::metadata(dir.path().join("ecomflow.db")).expect("ecomflow.db");
    assert!(db.len() > 100_000, "the database holds the tables");
    let letters =
        std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).expect("dead letters");
    assert!(letters.lines().count() > 0);
}

#[cfg(unix)]
#[test]
fn sigterm_drains_every_record_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out.jsonl");
    let pipeline = dir.path().join("endless.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[sources.transactions]\ntype = \"generator\"\ncount = 0\nrate = 5000\nseed = 1\n\n\
             [sinks.out]\ntype = \"file\"\ninputs = [\"transactions\"]\npath = {:?}\n\n\
             [dead_letter]\ntype = \"blackhole\"\n",
            out.display().to_string()
        ),
    )
    .expect("write");
    let child = ecomflow()
        .arg("run")
        .arg(&pipeline)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starts");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let o = child.wait_with_output().expect("exits");
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    let sent: u64 = err
        .lines()
        .find(|l| l.starts_with("sources.transactions"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in:\n{err}"));
    assert!(sent > 0);
    let written = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .count() as u64;
    assert_eq!(written, sent, "every record the source sent was written");
}

#[test]
fn wrong_types_missing_options_and_bad_expressions_are_located() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"[sources.t]
type = "generator"
count = "many"

[transforms.f]
type = "filter"
inputs = ["t"]
condition = "paymentStatus == "

[transforms.v]
type = "validate"
inputs = ["f"]

[transforms.m]
type = "map"
inputs = ["v"]
set.x = "a +"

[sinks.c]
type = "console"
inputs = ["m"]
"#,
    )
    .expect("write");
    let out = ecomflow()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78));
    let err = text(&out.stderr);
    let file = path.display().to_string();
    for e in [
        format!("{file}:3:9: sources.t: `count`: invalid type: string \"many\", expected u64"),
        format!(
            "{file}:8:13: transforms.f: `condition`: expression does not compile: syntax error"
        ),
        format!("{file}:10:1: transforms.v: missing field `fields`"),
        format!("{file}:17:9: transforms.m: `set.x`: expression does not compile"),
        "4 errors found".to_string(),
    ] {
        assert!(err.contains(&e), "missing {e:?} in:\n{err}");
    }
}

#[test]
fn run_starts_nothing_when_the_pipeline_is_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_file = dir.path().join("out.jsonl");
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        format!(
            "[sources.t]\ntype = \"generator\"\ncount = 5\n\n[sinks.o]\ntype = \"file\"\ninputs = [\"t\"]\npath = {:?}\n\n[sinks.bad]\ntype = \"file\"\ninputs = [\"nothing\"]\npath = \"x\"\n",
            out_file.display().to_string()
        ),
    )
    .expect("write");
    let out = ecomflow()
        .arg("run")
        .arg(&path)
        .current_dir(dir.path())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78));
    assert!(!out_file.exists(), "no component may start");
}

#[test]
fn a_file_source_resumes_from_its_checkpointed_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lines: Vec<String> = (0..10)
        .map(|n| {
            if n == 7 {
                "{broken".to_string()
            } else {
                format!("{{\"n\":{n}}}")
            }
        })
        .collect();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("input");
    let first_four: usize = lines[..4].iter().map(|l| l.len() + 1).sum();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(
        state.join("checkpoint.json"),
        format!(
            r#"{{"id":5,"sources":{{"sources.in":{{"offset":{first_four},"line":4}}}},"transforms":{{}}}}"#
        ),
    )
    .expect("checkpoint");
    let out = dir.path().join("out.jsonl");
    let dead = dir.path().join("dead.jsonl");
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[sources.in]\ntype = \"file\"\npath = {:?}\n\n[sinks.out]\ntype = \"file\"\ninputs = [\"in\"]\npath = {:?}\n\n\
             [dead_letter]\ntype = \"file\"\npath = {:?}\n\n[checkpoint]\ndir = {:?}\ninterval = \"1h\"\n",
            input.display().to_string(),
            out.display().to_string(),
            dead.display().to_string(),
            state.display().to_string()
        ),
    )
    .expect("pipeline");
    let o = ecomflow().arg("run").arg(&pipeline).output().expect("runs");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let got: Vec<String> = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .map(String::from)
        .collect();
    assert_eq!(
        got,
        [
            "{\"n\":4}",
            "{\"n\":5}",
            "{\"n\":6}",
            "{\"n\":8}",
            "{\"n\":9}"
        ]
    );
    let letters = std::fs::read_to_string(&dead).expect("dead letters");
    assert!(
        letters.contains(":8: invalid JSON"),
        "line numbers go on: {letters}"
    );
}

#[test]
fn validate_finds_an_unknown_time_zone_and_a_missing_migrations_folder_offline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    let pipeline = r#"[sources.t]
type = "generator"
count = 5

[transforms.per_category]
type = "aggregate"
inputs = ["t"]
keys = { category = "productCategory" }
aggregations = { n = "count()" }
time_zone = "Mars/Olympus"

[sinks.db]
type = "sql"
inputs = ["per_category"]
url = "sqlite://out.db"
table = "per_category"
migrations = "no-such-folder"
"#;
    std::fs::write(&path, pipeline).expect("write");
    let out = ecomflow()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    let file = path.display().to_string();
    for e in [
        format!(
            "{file}:{}:13: transforms.per_category: `time_zone`: unknown time zone `Mars/Olympus`",
            line_of(pipeline, "time_zone")
        ),
        format!(
            "{file}:{}:14: sinks.db: `migrations`: the migrations folder",
            line_of(pipeline, "migrations")
        ),
        "2 errors found".to_string(),
    ] {
        assert!(err.contains(&e), "missing {e:?} in:\n{err}");
    }
}

/// The end-of-run table's rows: (component, received, sent, dead-lettered, dropped).
fn summary_rows(stderr: &str) -> Vec<(String, [u64; 4])> {
    stderr
        .lines()
        .skip_while(|l| !l.starts_with("component "))
        .skip(1)
        .map_while(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let [name, a, b, c, d] = cols.as_slice() else {
                return None;
            };
            let n = |s: &str| s.parse::<u64>().ok();
            Some((name.to_string(), [n(a)?, n(b)?, n(c)?, n(d)?]))
        })
        .collect()
}

#[test]
fn every_record_read_is_counted_and_the_end_of_run_table_adds_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"a\": 1}\n\n   \n{\"a\": 2}\nnot json\n{\"a\": 3}\n\t\r\n{\"b\": 4}\n",
    )
    .expect("write");
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        format!(
            "[sources.lines]\ntype = \"file\"\npath = {:?}\n\n\
             [transforms.big]\ntype = \"filter\"\ninputs = [\"lines\"]\ncondition = \"a > 1\"\n\n\
             [sinks.out]\ntype = \"file\"\ninputs = [\"big\"]\npath = \"out.jsonl\"\n",
            input.display().to_string()
        ),
    )
    .expect("write");
    let out = ecomflow()
        .current_dir(dir.path())
        .arg("run")
        .arg(&path)
        .output()
        .expect("runs");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let rows = summary_rows(&err);
    let row = |name: &str| {
        rows.iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
            .unwrap_or_else(|| panic!("no row {name} in:\n{err}"))
    };
    // Eight lines: three good with `a`, one good without, three blank, one undecodable.
    assert_eq!(row("sources.lines"), [8, 4, 4, 0], "{err}");
    // `a > 1` keeps two, drops one, and cannot be told for the record without `a`.
    assert_eq!(row("transforms.big"), [4, 2, 1, 1], "{err}");
    assert_eq!(row("sinks.out"), [2, 2, 0, 0], "{err}");
    for (name, [received, sent, dead, dropped]) in &rows {
        assert_eq!(
            *received,
            sent + dead + dropped,
            "{name} does not add up:\n{err}"
        );
    }
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).expect("dead");
    assert_eq!(
        dead.matches("invalid JSON: empty line").count(),
        3,
        "{dead}"
    );
}

#[test]
fn the_flagship_refuses_amounts_that_are_not_sales_and_leap_seconds_at_their_check() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = serde_json::json!({
        "transactionId": "t-good", "productId": "p1", "productName": "laptop",
        "productCategory": "electronic", "productPrice": 10.5, "productQuantity": 2,
        "productBrand": "apple", "currency": "USD", "customerId": "c1",
        "transactionDate": "2025-07-19T12:34:56.123456+0000", "paymentMethod": "credit_card",
        "paymentStatus": "success", "totalAmount": 21.0
    });
    let with = |id: &str, field: &str, value: serde_json::Value| {
        let mut v = good.clone();
        v["transactionId"] = id.into();
        v[field] = value;
        v.to_string()
    };
    let lines = [
        good.to_string(),
        with("t-negative", "totalAmount", (-21.0).into()),
        with("t-zero-quantity", "productQuantity", 0.into()),
        with("t-inconsistent", "totalAmount", 99.0.into()),
        with(
            "t-leap",
            "transactionDate",
            "2016-12-31T23:59:60.000000+0000".into(),
        ),
    ];
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").expect("write");
    let overlay = dir.path().join("file.toml");
    std::fs::write(
        &overlay,
        format!(
            "[sources.transactions]\nreplace = true\ntype = \"file\"\npath = {:?}\n\n\
             [sources.transactions.event_time]\nfield = \"transactionDate\"\nmax_future = \"10years\"\n",
            input.display().to_string()
        ),
    )
    .expect("write");
    let out = ecomflow()
        .current_dir(dir.path())
        .arg("run")
        .arg(repo().join("pipelines/ecommerce.toml"))
        .arg(&overlay)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("t.db").display()),
        )
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dead = std::fs::read_to_string(dir.path().join("dead-letter.jsonl")).expect("dead");
    let letters: Vec<serde_json::Value> = dead
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let reason_of = |id: &str| {
        letters
            .iter()
            .find(|l| {
                l["payload"]["transactionId"] == id
                    || l["payload"].as_str().is_some_and(|p| p.contains(id))
            })
            .and_then(|l| {
                Some(format!(
                    "{} {}",
                    l["component"].as_str()?,
                    l["reason"].as_str()?
                ))
            })
            .unwrap_or_else(|| panic!("no dead letter for {id} in:\n{dead}"))
    };
    assert_eq!(letters.len(), 4, "{dead}");
    assert!(reason_of("t-negative").contains("transforms.checked check `positive_total` fails"));
    assert!(reason_of("t-zero-quantity").contains("check `positive_quantity` fails"));
    assert!(reason_of("t-inconsistent").contains("check `total_is_price_times_quantity` fails"));
    assert!(
        reason_of("t-leap").starts_with("sources.transactions ")
            && reason_of("t-leap").contains("second 60 (a leap second)"),
        "{}",
        reason_of("t-leap")
    );
}

#[test]
fn a_source_position_that_does_not_read_back_stops_the_start_instead_of_reading_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("in.jsonl"), "{\"a\": 1}\n{\"a\": 2}\n").expect("write");
    std::fs::create_dir_all(dir.path().join("state")).expect("dir");
    std::fs::write(
        dir.path().join("state/checkpoint.json"),
        r#"{"id":3,"sources":{"sources.lines":{"offset":"far","line":1}},"transforms":{}}"#,
    )
    .expect("write");
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[checkpoint]\ndir = \"state\"\n\n[sources.lines]\ntype = \"file\"\npath = \"in.jsonl\"\n\n\
         [sinks.out]\ntype = \"file\"\ninputs = [\"lines\"]\npath = \"out.jsonl\"\n",
    )
    .expect("write");
    let run = |extra: &[&str]| {
        ecomflow()
            .current_dir(dir.path())
            .arg("run")
            .arg(&path)
            .args(extra)
            .output()
            .expect("runs")
    };
    let out = run(&[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("sources.lines: cannot resume from the checkpoint's position")
            && err.contains("--reset-state sources.lines"),
        "{err}"
    );
    assert!(
        !dir.path().join("out.jsonl").exists()
            || std::fs::read_to_string(dir.path().join("out.jsonl"))
                .unwrap_or_default()
                .is_empty()
    );
    let out = run(&["--reset-state", "sources.lines"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.jsonl"))
            .expect("out")
            .lines()
            .count(),
        2
    );
}

#[test]
fn a_bad_http_table_is_refused_at_validation_with_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[sources.t]\ntype = \"generator\"\ncount = 5\n\n[sinks.o]\ntype = \"blackhole\"\ninputs = [\"t\"]\n\n[http]\naddress = \"localhost\"\nprot = 1\n",
    )
    .expect("write");
    let out = ecomflow()
        .arg("validate")
        .arg(&path)
        .output()
        .expect("runs");
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(
        err.contains("p.toml:10:") && err.contains("`http.address`"),
        "{err}"
    );

    let out = ecomflow()
        .args(["validate", "--set", "http.port=70000"])
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out.stderr));
}

/// Standard error on a full disk loses the messages, not the run: the flagship writes its
/// tables and ends with success. Standard output that is a command's product, on a full disk,
/// ends that command with code 1.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_under_standard_error_loses_messages_but_not_the_run() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full")
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("t.db");
    let out = ecomflow()
        .current_dir(dir.path())
        .args(["run", "--set", "sources.transactions.count=1000"])
        .arg(repo().join("pipelines/ecommerce.toml"))
        .env("DATABASE_URL", format!("sqlite://{}", db.display()))
        .stderr(full())
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "no panic (101), the run's own code"
    );
    let rows: (i64,) = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await?;
            sqlx::query_as("SELECT count(*) FROM transactions")
                .fetch_one(&pool)
                .await
        })
        .expect("the table");
    assert_eq!(rows.0, 1000);

    for args in [&["list"][..], &["graph"][..]] {
        let mut cmd = ecomflow();
        cmd.args(args);
        if args[0] == "graph" {
            cmd.arg(repo().join("pipelines/ecommerce.toml"));
        }
        let out = cmd.stdout(full()).output().expect("runs");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("cannot write to standard output"), "{err}");
    }
}

/// A checkpoint file that cannot be read (cut short, or garbage) stops the start with what to
/// do; `--reset-state all` then starts every component afresh, keeping the damaged file aside.
#[test]
fn a_damaged_checkpoint_says_what_to_do_and_reset_state_all_starts_afresh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[sources.t]\ntype = \"generator\"\ncount = 10\nbad_ratio = 0.0\n\n\
             [sinks.o]\ntype = \"blackhole\"\ninputs = [\"t\"]\n\n\
             [checkpoint]\ndir = {:?}\ninterval = \"1h\"\n",
            state.display().to_string()
        ),
    )
    .expect("write");
    for damage in [&b"{\"id\": 3, \"sources\": {"[..], b"\x00garbage\xff"] {
        std::fs::write(state.join("checkpoint.json"), damage).expect("damage");
        let out = ecomflow()
            .current_dir(dir.path())
            .args(["run", "--quiet"])
            .arg(&pipeline)
            .output()
            .expect("runs");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains("the file is damaged") && err.contains("--reset-state all"),
            "{err}"
        );

        let out = ecomflow()
            .current_dir(dir.path())
            .args(["run", "--quiet", "--reset-state", "all"])
            .arg(&pipeline)
            .output()
            .expect("runs");
        let err = text(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains("every component starts afresh"), "{err}");
        let kept: Vec<_> = std::fs::read_dir(&state)
            .expect("state")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("checkpoint.json.damaged-")
            })
            .collect();
        assert!(!kept.is_empty(), "the damaged file is kept aside");
        let fresh = std::fs::read(state.join("checkpoint.json")).expect("a new checkpoint");
        serde_json::from_slice::<serde_json::Value>(&fresh).expect("readable");
        for k in kept {
            std::fs::remove_file(k.path()).expect("remove");
        }
    }
}

/// Rows a sink's database refuses are dead letters and not written: the end-of-run table
/// still adds up (received = sent + dead-lettered + dropped), with duplicate keys counted as
/// written (the table holds the last of each).
#[test]
fn rows_a_database_refuses_are_not_counted_as_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let migrations = dir.path().join("migrations");
    std::fs::create_dir_all(&migrations).expect("migrations");
    std::fs::write(
        migrations.join("0001_t.sql"),
        "CREATE TABLE t (k INTEGER PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0));\n",
    )
    .expect("write");
    let input = dir.path().join("in.jsonl");
    let lines: Vec<String> = [(1, 5), (2, -1), (3, 7), (4, -2), (1, 6), (5, 0), (6, -3)]
        .iter()
        .map(|(k, n)| format!("{{\"k\": {k}, \"n\": {n}}}"))
        .collect();
    std::fs::write(&input, lines.join("\n") + "\n").expect("write");
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        format!(
            "[sources.lines]\ntype = \"file\"\npath = {:?}\n\n\
             [sinks.db]\ntype = \"sql\"\ninputs = [\"lines\"]\nurl = \"sqlite://t.db\"\n\
             table = \"t\"\nkey = [\"k\"]\nmigrations = \"migrations\"\n",
            input.display().to_string()
        ),
    )
    .expect("write");
    let out = ecomflow()
        .current_dir(dir.path())
        .args(["run", "--quiet"])
        .arg(&path)
        .output()
        .expect("runs");
    let err = text(&out.stderr);
    assert!(out.status.success(), "{err}");
    let rows = summary_rows(&err);
    let sink = rows
        .iter()
        .find(|(n, _)| n == "sinks.db")
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("no row in:\n{err}"));
    // Seven records: three refused by the CHECK, key 1 twice (the second is the row).
    assert_eq!(sink, [7, 4, 3, 0], "{err}");
}
