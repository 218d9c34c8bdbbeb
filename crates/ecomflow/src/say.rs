//! Messages and output that never panic. Standard error that cannot be written (a full disk,
//! a closed pipe) loses the message, and the command goes on to its own exit code; standard
//! output that is the command's product (`list`, `graph`, `validate`) ends it with code 1.

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

/// Writes `args` to standard error, losing them if it cannot be written.
pub fn to_stderr(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().write_fmt(args);
}

/// Writes `args` to standard output, losing them if it cannot be written (progress lines).
pub fn to_stdout(args: fmt::Arguments<'_>) {
    let _ = std::io::stdout().write_fmt(args);
}

/// Writes `text`, the command's product, to standard output: success, or code 1 with the
/// reason on standard error.
pub fn product(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            to_stderr(format_args!(
                "error: cannot write to standard output: {e}\n"
            ));
            ExitCode::FAILURE
        }
    }
}

/// `eprintln!` that never panics.
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::say::to_stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics.
macro_rules! tell_part {
    ($($arg:tt)*) => {
        $crate::say::to_stderr(format_args!($($arg)*))
    };
}

/// `println!` that never panics (for progress lines, not a command's product).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::say::to_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}
