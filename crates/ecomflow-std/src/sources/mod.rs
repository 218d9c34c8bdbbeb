//! Built-in sources: the transaction generator and JSON-lines files.

mod catalog;
mod file;
mod generator;
mod lines;
