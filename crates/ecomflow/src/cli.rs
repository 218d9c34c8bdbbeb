//! The `ecomflow` command line: run, test, validate, list, graph, tap.

use crate::{list, run_command, tap_command, test_command};
use clap::{Parser, Subcommand, ValueEnum};
use ecomflow_runtime::{Diagnostics, GraphFormat, LoadOptions, Pipeline};
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit code for a pipeline that fails validation (sysexits EX_CONFIG).
pub const EXIT_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(
    name = "ecomflow",
    version,
    about = "Declarative stream-processing pipelines from TOML"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate, then run a pipeline until its sources end or SIGINT/SIGTERM (which drains).
    Run {
        /// Pipeline files; several files form one pipeline.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Override an option: --set sources.transactions.count=1000
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
        /// Worker threads (default: one per core).
        #[arg(long)]
        threads: Option<usize>,
        /// Start this component afresh: discard the state the last checkpoint kept for it
        /// (for a source, its position) while the others resume. Repeatable. For a
        /// checkpoint that cannot be restored: the error names the component. `all`: every
        /// component, which also sets a damaged checkpoint aside.
        #[arg(long = "reset-state", value_name = "COMPONENT")]
        reset_state: Vec<String>,
        /// No live view on the terminal (the end-of-run table is still printed).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print samples of the records leaving a component of a running pipeline, as JSON lines
    /// (with the run's token from ECOMFLOW_HTTP_TOKEN when it has one).
    Tap {
        /// Where the run serves (it prints it when it starts): http://127.0.0.1:8640/
        url: String,
        /// The component whose output to watch: transforms.paid
        component: String,
        /// Records a second at most (the pipeline never waits for the tap).
        #[arg(long, default_value_t = 10.0)]
        rate: f64,
        /// Stop after this many records.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Run the tests of `*.test.toml` files (exit 1 when one fails, 78 when a file is
    /// invalid).
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check pipeline files (or `*.test.toml` test files) offline and report every problem
    /// (exit 78 when invalid).
    Validate {
        /// Pipeline files; several files form one pipeline. Test files are checked each on
        /// its own.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Override an option: --set sources.transactions.count=1000
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
    /// List every plugin with its options.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
    },
    /// Draw a pipeline's components and wiring.
    Graph {
        /// Pipeline files; several files form one pipeline.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = GraphKind::Dot)]
        format: GraphKind,
        /// Override an option: --set sources.transactions.count=1000
        #[arg(long = "set", value_name = "PATH=VALUE")]
        sets: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ListFormat {
    Text,
    Json,
    /// The page docs/reference/plugins.md.
    Markdown,
}

#[derive(Clone, Copy, ValueEnum)]
enum GraphKind {
    Dot,
    Mermaid,
}

/// Runs the stock CLI with every plugin linked into this program. A third-party binary that
/// links its own plugin crate calls this from its `main`.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match cli.command {
        Command::Run {
            files,
            sets,
            threads,
            reset_state,
            quiet,
        } => match load(&files, &sets) {
            Ok(mut p) => {
                let known: Vec<String> = p.components.iter().map(|c| c.path()).collect();
                let reset_state = if reset_state.iter().any(|r| r == "all") {
                    known.clone()
                } else {
                    reset_state
                };
                if let Some(unknown) = reset_state.iter().find(|r| !known.contains(r)) {
                    tell!(
                        "error: --reset-state {unknown}: no such component (the pipeline has {}, \
                         or `all`)",
                        known.join(", ")
                    );
                    return ExitCode::from(EXIT_CONFIG);
                }
                p.reset_state = reset_state.into_iter().collect();
                run_command::run(p, threads, quiet)
            }
            Err(d) => config_error(&d),
        },
        Command::Test { files } => exit_code(test_command::test(&files)),
        Command::Validate { files, sets }
            if files.iter().all(|f| test_command::is_test_file(f)) =>
        {
            if !sets.is_empty() {
                tell!(
                    "error: --set does not go with test files: a test says its own overrides \
                     with `set = [...]`"
                );
                return ExitCode::from(EXIT_CONFIG);
            }
            exit_code(test_command::validate(&files))
        }
        Command::Validate { files, .. } if files.iter().any(|f| test_command::is_test_file(f)) => {
            tell!(
                "error: give test files (*.test.toml) and pipeline files to `ecomflow validate` separately"
            );
            ExitCode::from(EXIT_CONFIG)
        }
        Command::Validate { files, sets } => match load(&files, &sets) {
            // A pipeline file's own `[[tests]]` are checked too.
            Ok(_)
                if matches!(
                    test_command::validate(&files),
                    test_command::Verdict::Invalid
                ) =>
            {
                ExitCode::from(EXIT_CONFIG)
            }
            Ok(p) => crate::say::product(&validated(&p, &files)),
            Err(d) => config_error(&d),
        },
        Command::Tap {
            url,
            component,
            rate,
            limit,
        } => tap_command::tap(&url, &component, rate, limit),
        Command::List { format } => crate::say::product(&match format {
            ListFormat::Text => list::render_text(),
            ListFormat::Json => format!("{}\n", list::render_json()),
            ListFormat::Markdown => list::render_markdown(),
        }),
        Command::Graph {
            files,
            format,
            sets,
        } => match load(&files, &sets) {
            Ok(p) => {
                let format = match format {
                    GraphKind::Dot => GraphFormat::Dot,
                    GraphKind::Mermaid => GraphFormat::Mermaid,
                };
                crate::say::product(&ecomflow_runtime::render(&p, format))
            }
            Err(d) => config_error(&d),
        },
    }
}

/// The log levels when `ECOMFLOW_LOG` is not set: ecomflow's own at info; the state store's
/// disk engine (fjall, lsm-tree) reports its routine work at info, so only its warnings.
const DEFAULT_LOG: &str = "info,fjall=warn,lsm_tree=warn";

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ECOMFLOW_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::live_view::LogWriter)
        // A log line standard error cannot take is lost, not reported on standard error.
        .log_internal_errors(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn load(files: &[PathBuf], sets: &[String]) -> Result<Pipeline, Diagnostics> {
    let env = |name: &str| std::env::var(name).ok();
    ecomflow_runtime::load(files, &LoadOptions { sets, env: &env })
}

/// 0 when every test passed, 1 when one failed, 78 when a test file is invalid.
fn exit_code(verdict: test_command::Verdict) -> ExitCode {
    match verdict {
        test_command::Verdict::Passed => ExitCode::SUCCESS,
        test_command::Verdict::Failed => ExitCode::FAILURE,
        test_command::Verdict::Invalid => ExitCode::from(EXIT_CONFIG),
    }
}

fn config_error(d: &Diagnostics) -> ExitCode {
    tell!("{d}");
    ExitCode::from(EXIT_CONFIG)
}

/// What `validate` says of a valid pipeline: its size, and the sinks that write in the
/// checkpoint's transaction.
fn validated(p: &ecomflow_runtime::Pipeline, files: &[PathBuf]) -> String {
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let n = p.components.len();
    let mut said = format!(
        "ok: {n} component{} in {}\n",
        if n == 1 { "" } else { "s" },
        files.join(", ")
    );
    let linked: Vec<String> = p
        .components
        .iter()
        .filter(|c| c.in_checkpoint)
        .map(|c| c.path())
        .collect();
    if !linked.is_empty() {
        said.push_str(&format!(
            "exactly once: {} commit in the checkpoint's transaction (checkpoint.url)\n",
            linked.join(", ")
        ));
    }
    said
}
