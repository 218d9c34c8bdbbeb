//! What the `aggregate` and `window` transforms share: aggregation functions
//! (`count()`, `sum(field)`, ...), their running state, and hashable group keys.

mod accumulator;
mod function;
mod group_key;
mod rejected;

pub use accumulator::Accumulator;
pub use function::{Aggregation, parse_aggregations};
pub use group_key::{GroupKey, KeyMap, KeyPart, SharedKey};
pub use rejected::{LateRecords, Rejected};
