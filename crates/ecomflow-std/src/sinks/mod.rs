//! Built-in sinks: console, file and blackhole.

mod blackhole;
mod console;
mod file;
