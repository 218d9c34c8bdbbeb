//! The live view: drawn when standard error is a terminal (the test gives the run one with
//! `script`, from util-linux), absent when it is not and with `--quiet`; the end-of-run
//! table is printed in every case.

use common::stack::{ecomflow, pipeline};
use std::process::Command;

use crate::common;

const RUN: [&str; 6] = [
    "--set",
    "sources.transactions.count=30000",
    "--set",
    "sources.transactions.rate=10000",
    "--set",
    "http.port=0",
];

/// What `ecomflow run <flagship> RUN extra` writes to a terminal.
fn on_a_terminal(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let command = [
        env!("CARGO_BIN_EXE_ecomflow"),
        "run",
        &pipeline("ecommerce.toml"),
    ]
    .iter()
    .chain(RUN.iter())
    .chain(extra)
    .map(|a| format!("'{a}'"))
    .collect::<Vec<_>>()
    .join(" ");
    let typescript = dir.path().join("terminal.txt");
    let out = Command::new("script")
        .args(["-qfec", &command])
        .arg(&typescript)
        .current_dir(dir.path())
        .env("COLUMNS", "160")
        .output()
        .expect("script (util-linux) runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&typescript).expect("the terminal's text")
}

#[test]
fn a_terminal_gets_the_live_view_and_the_table() {
    let seen = on_a_terminal(&[]);
    assert!(
        seen.contains("records"),
        "the generator's progress bar:\n{seen}"
    );
    assert!(seen.contains("eta"), "with an estimate:\n{seen}");
    assert!(seen.contains("/s "), "records per second:\n{seen}");
    assert!(
        seen.contains("· watermark 2025-0"),
        "the watermark:\n{seen}"
    );
    assert!(
        seen.contains("dead-lettered"),
        "the end-of-run table:\n{seen}"
    );
    assert!(seen.contains("finished in"), "{seen}");
}

#[test]
fn quiet_or_no_terminal_gets_the_table_only() {
    let quiet = on_a_terminal(&["--quiet"]);
    assert!(
        !quiet.contains("· watermark"),
        "--quiet draws nothing:\n{quiet}"
    );
    assert!(
        quiet.contains("dead-lettered") && quiet.contains("finished in"),
        "{quiet}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = ["run", &pipeline("ecommerce.toml")]
        .iter()
        .map(|s| s.to_string())
        .chain(RUN.iter().map(|s| s.to_string()))
        .collect();
    let out = ecomflow(&args, &[], dir.path()).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("· watermark"),
        "no terminal, no view:\n{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "no terminal control codes:\n{stderr}"
    );
    assert!(
        stderr.contains("dead-lettered") && stderr.contains("finished in"),
        "{stderr}"
    );
}
