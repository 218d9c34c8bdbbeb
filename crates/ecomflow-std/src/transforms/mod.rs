//! Built-in transforms: filter, map and validate.

mod filter;
mod map;
mod validate;
