//! Keyed state that outgrows memory. A stateful transform keeps its groups in a
//! [`KeyedState`]: a map in memory while it fits, and once the process's [`MemoryBudget`] is
//! spent, the least recently used entries go to an embedded disk store ([`StateDb`], fjall,
//! an LSM tree) and come back when asked for.
//!
//! The runtime attaches each instance of a transform (the whole shard's, one per source
//! partition) to a [`Namespace`] of the process's store. At a checkpoint's barrier it takes
//! the instance's [`Delta`] (what changed since the previous barrier: its cost follows the
//! changes, not the size of the state), and once the checkpoint completes it commits every
//! delta with the checkpoint's document in one durable batch ([`StateDb::commit`]). A
//! restarted process opens the store in place and reads entries as they are asked for.
//!
//! Entries may carry an order (an event time): [`KeyedState::expire_through`] removes every
//! entry ordered at or before a time, in memory and on disk, without looking at the others.

mod budget;
mod database;
mod delta;
mod encoding;
mod keyed;
mod slot;

pub use budget::MemoryBudget;
pub use database::{Namespace, StateDb};
pub use delta::Delta;
pub use keyed::{KeyedState, StateHandle, StateStats, Tracking};
