//! Records an aggregate or a window could not take: late ones go where `late` says, the
//! others to the dead-letter output.

use ecomflow_core::{Emitter, Record};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What happens to records that arrive after their bucket or window was closed and dropped.
/// (`Serialize` puts its default in the option's schema, so the reference shows it.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LateRecords {
    /// Send them to the dead-letter output with the reason.
    #[default]
    DeadLetter,
    /// Send them to the `late` output (`inputs = ["<id>.late"]`); dropped and counted when
    /// nothing reads it.
    Output,
    /// Drop them, counted in the run summary.
    Drop,
}

/// Why a record was not taken.
#[derive(Debug)]
pub enum Rejected {
    /// Its bucket or window is gone (the reason says when it ended).
    Late(String),
    /// It lacks what the aggregation needs (a key, a number, an event time).
    Invalid(String),
}

impl From<String> for Rejected {
    fn from(reason: String) -> Rejected {
        Rejected::Invalid(reason)
    }
}

impl From<&str> for Rejected {
    fn from(reason: &str) -> Rejected {
        Rejected::Invalid(reason.to_string())
    }
}

impl Rejected {
    /// Sends `record` where this rejection says: late records as `late` says, the others to
    /// the dead-letter output.
    pub fn route(self, record: &Record, late: LateRecords, out: &mut Emitter) {
        match (self, late) {
            (Rejected::Late(reason), LateRecords::DeadLetter) | (Rejected::Invalid(reason), _) => {
                out.dead_letter(reason, record.clone())
            }
            (Rejected::Late(_), LateRecords::Output) => out.emit_to("late", record.clone()),
            (Rejected::Late(_), LateRecords::Drop) => out.drop_record(),
        }
    }
}
