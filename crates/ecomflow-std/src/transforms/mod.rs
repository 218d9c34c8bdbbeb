//! Built-in transforms: filter, map, validate, aggregate and window.

mod aggregate;
mod filter;
mod map;
mod validate;
mod window;
