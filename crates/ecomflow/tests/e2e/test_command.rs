//! `ecomflow test` as a user calls it: every shipped test file (and pipeline file with tests
//! of its own) passes, the flagship's tests
//! fail when the behaviour they pin is changed, a failure names the step's line and shows
//! the expected and actual records, and `ecomflow validate` locates a broken test file's
//! problems.

use std::path::PathBuf;
use std::process::Output;

use crate::common::{ecomflow, repo};
use ecomflow_std as _;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn test_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("pipelines"))
        .expect("pipelines/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.to_string_lossy().ends_with(".test.toml")
                || std::fs::read_to_string(p).is_ok_and(|t| t.contains("\n[[tests]]\n"))
        })
        .collect();
    v.sort();
    v
}

/// Copies `pipeline` and its test file into a fresh `pipelines/` (beside a link to the
/// migrations), the pipeline changed by `edit`, and runs the tests there.
fn run_changed(pipeline: &str, edit: impl Fn(String) -> String) -> (Output, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).expect("mkdir");
    std::os::unix::fs::symlink(repo().join("migrations"), dir.path().join("migrations"))
        .expect("link");
    let original =
        std::fs::read_to_string(repo().join("pipelines").join(pipeline)).expect("read pipeline");
    let changed = edit(original.clone());
    assert_ne!(changed, original, "the edit must change the pipeline");
    std::fs::write(pipelines.join(pipeline), changed).expect("write pipeline");
    let tests = pipeline.replace(".toml", ".test.toml");
    std::fs::copy(
        repo().join("pipelines").join(&tests),
        pipelines.join(&tests),
    )
    .expect("copy tests");
    let out = ecomflow()
        .arg("test")
        .arg(pipelines.join(&tests))
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    (out, stdout)
}

/// The names of the tests that failed.
fn failed(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("FAILED  "))
        .map(|l| l.split_once(": ").map_or(l, |(_, name)| name).to_string())
        .collect()
}

#[test]
fn every_shipped_test_file_passes() {
    let files = test_files();
    assert!(
        files.len() >= 3,
        "the flagship's, the window's and the window pipeline's own: {files:?}"
    );
    for f in files {
        let out = ecomflow().arg("test").arg(&f).output().expect("runs");
        let stdout = text(&out.stdout);
        assert!(
            out.status.success(),
            "{}:\n{stdout}{}",
            f.display(),
            text(&out.stderr)
        );
        assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
        assert!(
            !stdout.lines().any(|l| l.starts_with("0 passed")),
            "no test ran: {stdout}"
        );
    }
}

#[test]
fn the_flagships_tests_fail_when_what_they_pin_changes() {
    let cases: [(&str, &str, &[&str], &str); 6] = [
        (
            "\ntotal_amount_usd = \"total_amount_usd\"",
            "\ntotal_usd = \"total_amount_usd\"",
            &[
                "each table holds one row per key, the last one written",
                "the transactions sink's columns are its table's: it writes to a real database",
            ],
            "has no column `total_usd`",
        ),
        (
            "failed_count > 4",
            "failed_count > 5",
            &[
                "more than 4 failed payments of one method in a minute is an alert, once its minute has passed",
                "the alert filter passes more than 4 failures, whatever sends them",
            ],
            "`expect = \"payment_alerts\"`: expected 1 record, 0 emitted",
        ),
        (
            "condition = \"paymentStatus == 'success'\"",
            "condition = \"paymentStatus != 'failed'\"",
            &["only successful payments are sales, and every amount is in USD"],
            "\"total_sales\":180.8",
        ),
        (
            "EUR = 1.08",
            "EUR = 1.10",
            &[
                "only successful payments are sales, and every amount is in USD",
                "the transactions sink's columns are its table's: it writes to a real database",
            ],
            "\"total_amount_usd\":11.0",
        ),
        (
            "keys = { transaction_date = \"day(event_time)\" }\naggregations = { total_sales = \"sum(total_amount_usd)\" }\ntime_zone = \"UTC\"",
            "keys = { transaction_date = \"day(event_time)\" }\naggregations = { total_sales = \"sum(total_amount_usd)\" }\ntime_zone = \"Europe/Paris\"",
            &[
                "days and months are event time's, in UTC, across a month boundary",
                "a late record counts while its day is open, and is a dead letter once it has closed",
                "a restart from a checkpoint ends with the same tables as a run without one",
            ],
            "\"transaction_date\":\"2025-02-01\",\"total_sales\":170.0",
        ),
        (
            "total_is_price_times_quantity = ",
            "# total_is_price_times_quantity = ",
            &[
                "a record that breaks a rule goes to the dead letters with the rule, and the run goes on",
            ],
            "expected: {\"component\":\"transforms.checked\"",
        ),
    ];
    for (from, to, test, shown) in cases {
        let (out, stdout) = run_changed("ecommerce.toml", |p| p.replacen(from, to, 1));
        assert_eq!(out.status.code(), Some(1), "{from} -> {to}:\n{stdout}");
        assert_eq!(failed(&stdout), test, "{from} -> {to}:\n{stdout}");
        assert!(
            stdout.contains(shown),
            "{from} -> {to}: no `{shown}` in\n{stdout}"
        );
        assert!(
            stdout.contains("ecommerce.test.toml:"),
            "the failing step's place:\n{stdout}"
        );
    }
}

#[test]
fn the_windows_tests_pin_its_allowed_lateness_from_both_sides() {
    let test = "a minute's row comes when the watermark passes its end, and late records correct it or go to late";
    // Less lateness: the record 29 s after the minute's end no longer corrects it.
    // More: the record 31 s after it is not late yet.
    for (lateness, shown) in [
        ("25s", "\"failures\":4"),
        (
            "32s",
            "`expect = \"per_minute.late\"`: expected 1 record, 0 emitted",
        ),
    ] {
        let (out, stdout) = run_changed("late-payments.toml", |p| {
            p.replacen(
                "allowed_lateness = \"30s\"",
                &format!("allowed_lateness = \"{lateness}\""),
                1,
            )
        });
        assert_eq!(out.status.code(), Some(1), "{lateness}:\n{stdout}");
        assert_eq!(failed(&stdout), [test], "{lateness}:\n{stdout}");
        assert!(
            stdout.contains(shown),
            "{lateness}: no `{shown}` in\n{stdout}"
        );
    }
}

#[test]
fn a_wrong_expectation_on_a_window_names_its_line_and_shows_both_records() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original = std::fs::read_to_string(repo().join("pipelines/late-payments.test.toml"))
        .expect("read tests");
    let wrong = "window_end = \"2025-03-01 12:01:00.000000\", failures = 3 }";
    let at = original
        .find(wrong)
        .expect("the late record's correction is tested");
    let changed = original.replacen(wrong, &wrong.replace("3 }", "4 }"), 1);
    std::fs::write(
        dir.path().join("late-payments.test.toml"),
        changed.replace(
            "pipelines = [\"late-payments.toml\"]",
            &format!(
                "pipelines = [{:?}]",
                repo().join("pipelines/late-payments.toml")
            ),
        ),
    )
    .expect("write");
    let out = ecomflow()
        .arg("test")
        .arg(dir.path().join("late-payments.test.toml"))
        .output()
        .expect("runs");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    // The step is the `[[tests.steps]]` table holding the expectation.
    let step_line = original[..at]
        .rmatch_indices("[[tests.steps]]")
        .next()
        .map(|(i, _)| original[..i].matches('\n').count() + 1)
        .expect("a step");
    assert!(
        stdout.contains(&format!(
            "late-payments.test.toml:{step_line}:1: `expect = \"per_minute\"`"
        )),
        "line {step_line}:\n{stdout}"
    );
    assert!(
        stdout.contains("\"failures\":4"),
        "the expected record:\n{stdout}"
    );
    assert!(
        stdout.contains(r#"actual:   {"method":"card","window_start":"2025-03-01 12:00:00.000000","window_end":"2025-03-01 12:01:00.000000","failures":3}"#),
        "the actual record:\n{stdout}"
    );
}

#[test]
fn validate_locates_every_problem_of_a_broken_test_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("broken.test.toml");
    let text_of_file = format!(
        "pipelines = [{:?}]\n\n[[tests]]\nname = \"broken\"\nreal_sinks = [\"minute\"]\n\n[[tests.steps]]\nsend = \"payment\"\nlines = \"{{}}\"\n\n[[tests.steps]]\nexpect = \"per_minte\"\ncount = 1\n\n[[tests.steps]]\nend = true\nrestart = true\n\n[[tests.steps]]\nwatermark = \"soon\"\n\n[[tests.steps]]\nsend = \"per_minute\"\nfrom = \"payments\"\nrecords = []\n\n[[tests.steps]]\nrestart = true\n\n[[tests.steps]]\nend = true\n\n[[tests.steps]]\nsend = \"payments\"\npartition = 2\nrecords = []\n\n[[tests.steps]]\nadvance = \"1s\"\n",
        repo().join("pipelines/late-payments.toml")
    );
    std::fs::write(&file, text_of_file).expect("write");
    let out = ecomflow()
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    for (line, message) in [
        (
            3,
            "`real_sinks`: the pipeline has no sink `minute` (its sinks: minutes, too_late)",
        ),
        (
            7,
            "the pipeline has no component `payment` (did you mean `payments`?)",
        ),
        (
            11,
            "the pipeline has no output `per_minte` (did you mean `per_minute`?)",
        ),
        (15, "a step does one thing; this one says restart and end"),
        (19, "`watermark`"),
        (
            22,
            "`per_minute` has no input `payments` (its inputs: failed)",
        ),
        (27, "`restart`: the pipeline has no `[checkpoint]` table"),
        (
            33,
            "`partition`: no source that keeps state per partition (a `kafka` source) feeds `payments`",
        ),
        (38, "after `end` only `expect` steps can follow"),
    ] {
        assert!(
            stderr.contains(&format!("broken.test.toml:{line}:1")) && stderr.contains(message),
            "line {line}, {message}:\n{stderr}"
        );
    }
    let out = ecomflow().arg("test").arg(&file).output().expect("runs");
    assert_eq!(out.status.code(), Some(78), "an invalid file runs no test");
}

#[test]
fn a_pipeline_files_own_tests_run_and_validate_checks_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let original =
        std::fs::read_to_string(repo().join("pipelines/late-payments.toml")).expect("read");
    let wrong = original.replace("failures = 1 }]", "failures = 2 }]");
    assert_ne!(wrong, original);
    let file = dir.path().join("late-payments.toml");
    std::fs::write(&file, &wrong).expect("write");
    let out = ecomflow().arg("test").arg(&file).output().expect("runs");
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED") && stdout.contains("only failed payments are counted"),
        "{stdout}"
    );
    assert!(
        stdout.contains("\"failures\":1"),
        "the actual row:\n{stdout}"
    );

    let broken = original.replace("expect = \"per_minute\"", "expect = \"per_hour\"");
    std::fs::write(&file, &broken).expect("write");
    let line = broken[..broken.find("expect = \"per_hour\"").expect("there")]
        .rmatch_indices("[[tests.steps]]")
        .next()
        .map(|(i, _)| broken[..i].matches('\n').count() + 1)
        .expect("a step");
    let out = ecomflow()
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains(&format!("late-payments.toml:{line}:1"))
            && stderr.contains("no output `per_hour`"),
        "line {line}:\n{stderr}"
    );

    // `ecomflow run` takes the file with its tests: it fails only on the missing input.
    // (In the temporary directory: the outputs it opens land there, not in the crate.)
    let out = ecomflow()
        .current_dir(dir.path())
        .arg("run")
        .arg(repo().join("pipelines/late-payments.toml"))
        .args(["--quiet", "--set", "http.enabled=false", "--set"])
        .arg(format!(
            "sources.payments.path={}",
            dir.path().join("none.jsonl").display()
        ))
        .output()
        .expect("runs");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("none.jsonl") && !stderr.contains("unknown table"),
        "{stderr}"
    );
}
