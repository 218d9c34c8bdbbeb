//! Every duration option of every plugin and shared table that `ecomflow list` shows, set to
//! zero, negative and absurdly large values: `validate` refuses each value the option does not
//! take, pointing at its line, and a zero the option allows runs without a panic.

use std::path::Path;

use crate::common::ecomflow;
use ecomflow_std as _;

/// The smallest pipeline around each component (or table) that has duration options: the
/// component under test is the table `[<kind>.x]` (or the shared table itself), and the line
/// `@OPTION@` is where the option under test goes. Whether it runs without any server.
fn harness(kind: &str, name: &str) -> Option<(String, bool)> {
    let generator = "[sources.g]\ntype = \"generator\"\ncount = 50\nseed = 1\n";
    let blackhole =
        |input: &str| format!("[sinks.b]\ntype = \"blackhole\"\ninputs = [\"{input}\"]\n");
    let transform = |body: &str| {
        format!(
            "{generator}\n[transforms.x]\n{body}\n@OPTION@\n\n{}",
            blackhole("x")
        )
    };
    let sink = |body: &str| format!("{generator}\n[sinks.x]\ninputs = [\"g\"]\n{body}\n@OPTION@\n");
    let text = match (kind, name) {
        ("table", "sources.<id>.event_time") => (
            format!(
                "{generator}\n[sources.g.event_time]\nfield = \"transactionDate\"\n@OPTION@\n\n{}",
                blackhole("g")
            ),
            true,
        ),
        ("table", "http") => (
            format!("[http]\n@OPTION@\n\n{generator}\n{}", blackhole("g")),
            true,
        ),
        ("table", "checkpoint") => (
            format!(
                "[checkpoint]\ndir = \"state\"\n@OPTION@\n\n{generator}\n{}",
                blackhole("g")
            ),
            true,
        ),
        ("source", "kafka") => (
            format!(
                "[sources.x]\ntype = \"kafka\"\nbootstrap_servers = \"127.0.0.1:9\"\n\
                 topics = [\"t\"]\ngroup_id = \"g\"\n@OPTION@\n\n{}",
                blackhole("x")
            ),
            false,
        ),
        ("transform", "aggregate") => (
            transform(
                "type = \"aggregate\"\ninputs = [\"g\"]\nkeys = { c = \"productCategory\" }\n\
                 aggregations = { n = \"count()\" }",
            ),
            true,
        ),
        ("transform", "window") => (
            transform(
                "type = \"window\"\ninputs = [\"g\"]\nkind = \"tumbling\"\n\
                 keys = { m = \"paymentMethod\" }\naggregations = { n = \"count()\" }",
            )
            .replace("@OPTION@", "@OPTION@\n@SIZE@"),
            true,
        ),
        ("sink", "sql") => (
            sink("type = \"sql\"\nurl = \"sqlite://out.db\"\ntable = \"t\""),
            false,
        ),
        ("sink", "elasticsearch") => (
            sink("type = \"elasticsearch\"\nurl = \"http://127.0.0.1:9\"\nindex = \"i\""),
            false,
        ),
        ("sink", "kafka") => (
            sink("type = \"kafka\"\nbootstrap_servers = \"127.0.0.1:9\"\ntopic = \"t\""),
            false,
        ),
        _ => return None,
    };
    Some(text)
}

/// The pipeline text with `option = "value"` on the `@OPTION@` line.
fn with_option(template: &str, option: &str, value: &str) -> String {
    // A tumbling window needs a size; unless it is the option under test.
    let size = if option == "size" {
        ""
    } else {
        "size = \"1m\""
    };
    template
        .replace("@OPTION@", &format!("{option} = \"{value}\""))
        .replace("@SIZE@", size)
}

fn validate(dir: &Path, text: &str) -> (bool, String) {
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, text).expect("write pipeline");
    let out = ecomflow()
        .current_dir(dir)
        .arg("validate")
        .arg(&file)
        .output()
        .expect("runs");
    let code = out.status.code();
    assert!(
        code == Some(0) || code == Some(78),
        "validate exited {code:?}:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line_of_option(text: &str, option: &str) -> usize {
    let at = text
        .find(&format!("\n{option} = "))
        .unwrap_or_else(|| panic!("{option} not in the pipeline"));
    text[..at + 1].matches('\n').count() + 1
}

#[test]
fn every_duration_option_refuses_what_it_cannot_take_at_its_line() {
    let list = ecomflow()
        .args(["list", "--format", "json"])
        .output()
        .expect("runs");
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).expect("json");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut checked = 0;
    for entry in &entries {
        let kind = entry["kind"].as_str().expect("kind");
        let name = entry["name"].as_str().expect("name");
        let durations: Vec<(&str, bool)> = entry["options"]
            .as_array()
            .expect("options")
            .iter()
            .filter_map(|o| {
                let ty = o["type"].as_str()?;
                let zero_allowed = match ty {
                    "duration" => false,
                    "duration, 0 allowed" => true,
                    _ => return None,
                };
                Some((o["name"].as_str()?, zero_allowed))
            })
            .collect();
        if durations.is_empty() {
            continue;
        }
        let (template, runs_offline) = harness(kind, name).unwrap_or_else(|| {
            panic!("{kind} {name} has duration options: give it a harness in this test")
        });
        let (ok, stderr) = validate(dir.path(), &with_option(&template, "# none", "x"));
        assert!(
            ok,
            "{kind} {name}: the harness itself is invalid:\n{stderr}"
        );
        for (option, zero_allowed) in durations {
            let what = format!("{kind} {name}: {option}");
            for (value, refused, reason) in [
                ("0s", !zero_allowed, "must be longer than zero"),
                ("-1s", true, "cannot be negative"),
                ("11years", true, "too long"),
                ("later", true, "not a duration"),
            ] {
                let text = with_option(&template, option, value);
                let (ok, stderr) = validate(dir.path(), &text);
                if !refused {
                    assert!(ok, "{what} = {value:?} is refused:\n{stderr}");
                    continue;
                }
                assert!(!ok, "{what} = {value:?} passes validate");
                let line = line_of_option(&text, option);
                assert!(
                    stderr.contains(&format!("pipeline.toml:{line}:")) && stderr.contains(reason),
                    "{what} = {value:?}: expected line {line} and {reason:?} in:\n{stderr}"
                );
                checked += 1;
            }
            if zero_allowed && runs_offline {
                let text = with_option(&template, option, "0s");
                let file = dir.path().join("pipeline.toml");
                std::fs::write(&file, &text).expect("write pipeline");
                let out = ecomflow()
                    .current_dir(dir.path())
                    .arg("run")
                    .arg(&file)
                    .output()
                    .expect("runs");
                assert!(
                    out.status.success(),
                    "{what} = \"0s\" does not run:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    assert!(checked >= 60, "only {checked} refusals checked");
}

#[test]
fn the_longest_duration_runs_without_overflowing_a_timer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[sources.g]\ntype = \"generator\"\ncount = 10\n\n\
                [transforms.a]\ntype = \"aggregate\"\ninputs = [\"g\"]\n\
                keys = { c = \"productCategory\" }\naggregations = { n = \"count()\" }\n\
                emit_interval = \"10years\"\nallowed_lateness = \"10years\"\n\n\
                [sinks.s]\ntype = \"sql\"\ninputs = [\"a\"]\nurl = \"sqlite://out.db\"\n\
                table = \"t\"\nflush_interval = \"10years\"\nretry_for = \"10years\"\n";
    std::fs::write(dir.path().join("p.toml"), text).expect("write");
    let setup = "CREATE TABLE t (c TEXT PRIMARY KEY, n INTEGER);";
    std::fs::create_dir_all(dir.path().join("m")).expect("dir");
    std::fs::write(dir.path().join("m/1_t.sql"), setup).expect("write");
    let text = text.replace(
        "table = \"t\"",
        "table = \"t\"\nkey = [\"c\"]\nmigrations = \"m\"",
    );
    std::fs::write(dir.path().join("p.toml"), text).expect("write");
    let out = ecomflow()
        .current_dir(dir.path())
        .args(["run", "p.toml"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
