//! Checkpoints, owned by the runtime: the coordinator decides when each one is taken and
//! completes it, barrier alignment keeps each component's state consistent with its inputs'
//! positions, and the store writes and reads the completed checkpoint.

mod alignment;
mod coordinator;
mod keep;
mod store;

pub use alignment::{Alignment, Step};
pub use coordinator::{Coordination, ended, start};
pub use keep::Keep;
pub use store::{load, save, set_aside};
