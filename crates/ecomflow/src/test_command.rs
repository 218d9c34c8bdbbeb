//! `ecomflow test`: runs the tests of `*.test.toml` files and reports each one, with the
//! failing step's line and the expected and actual records; `ecomflow validate` checks such
//! files without running them.

use std::path::{Path, PathBuf};

/// How a call ended, for the exit code.
pub enum Verdict {
    /// Every test passed, or every file is valid.
    Passed,
    /// A test failed.
    Failed,
    /// A test file is invalid.
    Invalid,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether `path` is a test file rather than a pipeline.
pub fn is_test_file(path: &Path) -> bool {
    ecomflow_test::is_test_file(path)
}

/// Runs every test of every file (test files, and pipeline files with `[[tests]]`); finding
/// no test at all fails.
pub fn test(files: &[PathBuf]) -> Verdict {
    let (mut passed, mut failed, mut invalid) = (0, 0, false);
    for file in files {
        let suite = match ecomflow_test::check(file, &env) {
            Ok(suite) => suite,
            Err(d) => {
                tell!("{d}");
                invalid = true;
                continue;
            }
        };
        if suite.is_empty() {
            say!("no tests  {}", suite.file);
            continue;
        }
        for outcome in suite.run(&env) {
            match outcome.failure {
                None => {
                    passed += 1;
                    say!("ok      {}: {}", suite.file, outcome.name);
                }
                Some(failure) => {
                    failed += 1;
                    say!("FAILED  {}: {}\n{failure}\n", suite.file, outcome.name);
                }
            }
        }
    }
    say!(
        "{passed} passed, {failed} failed{}",
        if invalid {
            ", and a test file is invalid"
        } else {
            ""
        }
    );
    if invalid {
        Verdict::Invalid
    } else if failed > 0 || passed == 0 {
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}

/// Checks test files (or the `[[tests]]` of pipeline files) without running them.
pub fn validate(files: &[PathBuf]) -> Verdict {
    let mut verdict = Verdict::Passed;
    for file in files {
        match ecomflow_test::check(file, &env) {
            Ok(suite) if suite.is_empty() => {}
            Ok(suite) => say!(
                "ok: {} test{} in {}",
                suite.len(),
                if suite.len() == 1 { "" } else { "s" },
                file.display()
            ),
            Err(d) => {
                tell!("{d}");
                verdict = Verdict::Invalid;
            }
        }
    }
    verdict
}
