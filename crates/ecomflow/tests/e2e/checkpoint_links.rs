//! Sinks that write in the checkpoint's transaction: `graph` draws the link, `validate` says
//! which sinks have it and refuses `exactly_once = true` where it cannot be made. All offline:
//! loading a pipeline connects to nothing.

use crate::common::{ecomflow, repo};
use std::process::{Command, Output};

/// Some PostgreSQL URL (not connected to).
const DATABASE: &str = "postgres://ecomflow@127.0.0.1:1/shop";

/// `ecomflow <args>` on the flagship with the real-stack overlay, its sinks writing to
/// `DATABASE` and its checkpoints kept in `state_url` (empty: in a directory).
fn real_stack(args: &[&str], state_url: &str, sets: &[&str]) -> Output {
    let mut c: Command = ecomflow();
    c.args(args)
        .arg(repo().join("pipelines/ecommerce.toml"))
        .arg(repo().join("pipelines/real-stack.toml"))
        .env("DATABASE_URL", DATABASE)
        .env("ECOMFLOW_STATE_URL", state_url);
    for set in sets {
        c.args(["--set", set]);
    }
    c.output().expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const TABLES: [&str; 5] = [
    "transactions_table",
    "sales_per_category_table",
    "sales_per_day_table",
    "sales_per_month_table",
    "payment_alerts_table",
];

#[test]
fn graph_and_validate_show_the_sinks_that_commit_with_the_checkpoints() {
    let dot = real_stack(&["graph"], DATABASE, &[]);
    assert!(dot.status.success(), "{}", text(&dot.stderr));
    let dot = text(&dot.stdout);
    for table in TABLES {
        assert!(
            dot.contains(&format!(
                "\"{table}\" -> \"checkpoint_store\" [style=dashed"
            )),
            "{table} is linked:\n{dot}"
        );
    }
    assert!(
        !dot.contains("\"transactions_index\" -> \"checkpoint_store\""),
        "Elasticsearch writes beside the checkpoints"
    );
    let mermaid = real_stack(&["graph", "--format", "mermaid"], DATABASE, &[]);
    assert!(
        text(&mermaid.stdout).contains("transactions_table -.->|"),
        "{}",
        text(&mermaid.stdout)
    );
    let ok = real_stack(&["validate"], DATABASE, &[]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("exactly once: sinks.transactions_table, "),
        "{}",
        text(&ok.stdout)
    );

    // Checkpoints in a directory: no link, and nothing said of one.
    let apart = real_stack(&["graph"], "", &[]);
    assert!(!text(&apart.stdout).contains("checkpoint_store"));
    let ok = real_stack(&["validate"], "", &[]);
    assert!(!text(&ok.stdout).contains("exactly once"));

    // `exactly_once = false`: that sink commits on its own, the others still link.
    let own = real_stack(
        &["graph"],
        DATABASE,
        &["sinks.transactions_table.exactly_once=false"],
    );
    let own = text(&own.stdout);
    assert!(!own.contains("\"transactions_table\" -> \"checkpoint_store\""));
    assert!(own.contains("\"sales_per_day_table\" -> \"checkpoint_store\""));
}

#[test]
fn exactly_once_that_cannot_be_made_is_an_error_at_the_sink() {
    let required = ["sinks.transactions_table.exactly_once=true"];
    // Linked: fine.
    let ok = real_stack(&["validate"], DATABASE, &required);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    // Checkpoints in a directory, or in another database: refused, at the sink's table.
    for (state_url, why) in [
        ("", "keeps no checkpoints in a database"),
        (
            "postgres://ecomflow@127.0.0.1:1/other",
            "`checkpoint.url` is another database",
        ),
    ] {
        let refused = real_stack(&["validate"], state_url, &required);
        assert_eq!(refused.status.code(), Some(78));
        let err = text(&refused.stderr);
        assert!(
            err.contains("real-stack.toml:") && err.contains("sinks.transactions_table:"),
            "located: {err}"
        );
        assert!(err.contains(why), "{why}: {err}");
        assert!(err.contains("1 error found"), "only that sink: {err}");
    }
    // SQLite: no checkpoint store can share its transactions.
    let sqlite = ecomflow()
        .arg("validate")
        .arg(repo().join("pipelines/ecommerce.toml"))
        .args(["--set", "sinks.transactions_table.exactly_once=true"])
        .output()
        .expect("runs");
    assert_eq!(sqlite.status.code(), Some(78));
    assert!(
        text(&sqlite.stderr).contains("exactly_once needs a PostgreSQL database"),
        "{}",
        text(&sqlite.stderr)
    );
}
