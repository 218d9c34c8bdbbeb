//! Built-in transforms: filter, map, validate, storable, aggregate and window.

mod aggregate;
mod filter;
mod map;
mod storable;
mod validate;
mod window;
