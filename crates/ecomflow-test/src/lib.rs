//! ecomflow-test: `ecomflow test`, declarative tests of pipelines. A test file names the
//! pipeline files it tests and lists tests of steps: records sent in place of a source's,
//! watermarks and the processing clock moved, restarts from a checkpoint, and expectations
//! on any output (named outputs and the dead letters too). The pipeline runs in a driver
//! that does exactly what the steps say (see `driver.rs`); no source or sink is run, so no
//! test needs a server.

mod compile;
pub mod driver;
mod expect;
mod real_sink;
mod records;
pub mod spec;

use compile::{Action, compile};
use driver::Driver;
use ecomflow_runtime::diagnostic::{Diagnostic, SourceFile};
use ecomflow_runtime::{Diagnostics, LoadOptions, Pipeline};
use std::path::{Path, PathBuf};

/// One step, ready to run, with where the file says it.
struct Compiled {
    action: Action,
    location: String,
}

/// One test, ready to run.
struct Test {
    name: String,
    sets: Vec<String>,
    real_sinks: Vec<String>,
    steps: Vec<Compiled>,
}

/// A test file, parsed and checked against its pipeline.
pub struct Suite {
    /// The test file's path as given.
    pub file: String,
    pipelines: Vec<PathBuf>,
    tests: Vec<Test>,
}

/// One test's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// The test's name.
    pub name: String,
    /// `file:line:column: what failed`, with the expected and actual records; `None` when
    /// it passed.
    pub failure: Option<String>,
}

fn load(
    paths: &[PathBuf],
    sets: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Pipeline, Diagnostics> {
    ecomflow_runtime::load(paths, &LoadOptions { sets, env })
}

/// Whether `path` is a test file (`*.test.toml`) rather than a pipeline file, which may hold
/// `[[tests]]` of its own.
pub fn is_test_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".test.toml"))
}

/// Reads the test file at `path` (or the `[[tests]]` of the pipeline file at `path`: none is
/// an empty suite), loads the pipeline it names and checks every step against it; every
/// problem found is returned with its position.
pub fn check(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Suite, Diagnostics> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::general(
            name.clone(),
            format!("cannot read the test file: {e}"),
        )])
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let source = SourceFile {
        name: name.clone(),
        text,
        base_dir: dir.clone(),
    };
    let parse_error =
        |e: toml::de::Error| Diagnostics(vec![Diagnostic::at(&source, e.span(), e.message())]);
    let (pipelines, cases) = if is_test_file(path) {
        let parsed: spec::TestFile = toml::from_str(&source.text).map_err(parse_error)?;
        if parsed.pipelines.get_ref().is_empty() {
            return Err(Diagnostics(vec![Diagnostic::at(
                &source,
                Some(parsed.pipelines.span()),
                "`pipelines` names at least one pipeline file",
            )]));
        }
        if parsed.tests.is_empty() {
            return Err(Diagnostics(vec![Diagnostic::general(
                name.clone(),
                "the file has no `[[tests]]`",
            )]));
        }
        let pipelines: Vec<PathBuf> = parsed
            .pipelines
            .get_ref()
            .iter()
            .map(|p| dir.join(p))
            .collect();
        (pipelines, parsed.tests)
    } else {
        // A pipeline file's own `[[tests]]` test that file alone.
        let parsed: spec::PipelineTests = toml::from_str(&source.text).map_err(parse_error)?;
        if parsed.tests.is_empty() {
            return Ok(Suite {
                file: name,
                pipelines: Vec::new(),
                tests: Vec::new(),
            });
        }
        (vec![path.to_path_buf()], parsed.tests)
    };
    let driver = Driver::new(load(&pipelines, &[], env)?, &[])
        .map_err(|e| Diagnostics(vec![Diagnostic::general(name.clone(), e)]))?;
    let at = |span: std::ops::Range<usize>| {
        let (line, column) = source.position(span.start);
        format!("{name}:{line}:{column}")
    };
    let mut problems = Vec::new();
    let mut tests = Vec::new();
    for test in cases {
        let span = test.span();
        let test = test.into_inner();
        if test.steps.is_empty() {
            problems.push(Diagnostic::at(
                &source,
                Some(span.clone()),
                format!("test `{}` has no steps", test.name),
            ));
        }
        // With overrides, the steps are checked against the pipeline they make.
        let with_sets = match test.set.is_empty() {
            true => None,
            false => match load(&pipelines, &test.set, env) {
                Ok(p) => Driver::new(p, &[]).ok(),
                Err(d) => {
                    problems.extend(
                        d.0.into_iter()
                            .map(|p| p.in_component(format!("test `{}`", test.name))),
                    );
                    None
                }
            },
        };
        let driver = with_sets.as_ref().unwrap_or(&driver);
        let sinks = driver.sinks();
        for real in test.real_sinks.iter().filter(|r| !sinks.contains(r)) {
            problems.push(
                Diagnostic::at(
                    &source,
                    Some(span.clone()),
                    format!(
                        "`real_sinks`: the pipeline has no sink `{real}` (its sinks: {})",
                        sinks.join(", ")
                    ),
                )
                .in_component(format!("test `{}`", test.name)),
            );
        }
        let mut steps = Vec::new();
        let mut ended = false;
        for step in test.steps {
            let span = step.span();
            let checked = compile(step.get_ref(), driver, &dir).and_then(|action| {
                match &action {
                    Action::Expect(_) => {}
                    _ if ended => {
                        return Err(
                            "after `end` only `expect` steps can follow: the sources have ended"
                                .into(),
                        );
                    }
                    Action::End => ended = true,
                    Action::Restart if !driver.keeps_state() => {
                        return Err("`restart`: the pipeline has no `[checkpoint]` table, so a \
                             restart would start it afresh; add one, or `set = \
                             [\"checkpoint.dir=...\"]` for the test"
                            .into());
                    }
                    _ => {}
                }
                Ok(action)
            });
            match checked {
                Ok(action) => steps.push(Compiled {
                    action,
                    location: at(span),
                }),
                Err(message) => problems.push(
                    Diagnostic::at(&source, Some(span), message)
                        .in_component(format!("test `{}`", test.name)),
                ),
            }
        }
        tests.push(Test {
            name: test.name,
            sets: test.set,
            real_sinks: test.real_sinks,
            steps,
        });
    }
    if problems.is_empty() {
        Ok(Suite {
            file: name,
            pipelines,
            tests,
        })
    } else {
        Err(Diagnostics(problems))
    }
}

impl Suite {
    /// How many tests the file holds.
    pub fn len(&self) -> usize {
        self.tests.len()
    }

    /// Whether the file holds no test (a pipeline file without `[[tests]]`; `check` refuses a
    /// test file without them).
    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// Runs every test, each on a freshly built pipeline.
    pub fn run(&self, env: &dyn Fn(&str) -> Option<String>) -> Vec<Outcome> {
        self.tests
            .iter()
            .map(|test| Outcome {
                name: test.name.clone(),
                failure: self.run_one(test, env).err(),
            })
            .collect()
    }

    fn run_one(&self, test: &Test, env: &dyn Fn(&str) -> Option<String>) -> Result<(), String> {
        let build = || load(&self.pipelines, &test.sets, env).map_err(|d| d.to_string());
        let mut driver = Driver::new(build()?, &test.real_sinks)?;
        for step in &test.steps {
            let failed = |message: String| format!("{}: {message}", step.location);
            match &step.action {
                Action::Send {
                    target,
                    from,
                    partition,
                    records,
                    undecodable,
                } => driver
                    .send(
                        target,
                        from.as_deref(),
                        *partition,
                        records.clone(),
                        undecodable.clone(),
                    )
                    .map_err(failed)?,
                Action::Watermark {
                    source,
                    partition,
                    at,
                } => driver
                    .watermark(source.as_deref(), *partition, *at)
                    .map_err(failed)?,
                Action::Advance(by) => driver.advance(*by).map_err(failed)?,
                Action::Restart => driver.restart(build()?, &test.real_sinks).map_err(failed)?,
                Action::End => driver.end().map_err(failed)?,
                Action::Expect(expectation) => {
                    let emitted = driver
                        .take(&expectation.output)
                        .map_err(failed)?
                        .unwrap_or_default();
                    expectation.check(emitted).map_err(|m| {
                        failed(format!("`expect = \"{}\"`: {m}", expectation.output))
                    })?;
                }
            }
            if let Some(e) = driver.failure() {
                return Err(failed(e));
            }
        }
        driver.finish()
    }
}
