//! What a sink refuses, said before the fan-out. A sink that knows once it is open which
//! records its table or index would refuse (a text longer than its column, a NUL character,
//! an integer out of range, a document id Elasticsearch cannot take) publishes an
//! [`Admission`]; a `storable` transform upstream refuses such a record once, with the sink's
//! reason, so that it reaches none of the tables and aggregates fed after it.

use crate::record::Record;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

/// What one sink would refuse.
pub trait Admission: Send + Sync {
    /// Why the sink would refuse `record`, or `None` when it would store it.
    fn refuses(&self, record: &Record) -> Option<String>;
}

/// The admissions of a pipeline's sinks, by id (`transactions_table`): each sink publishes
/// its own once open, and every sink is open before a source reads its first record.
#[derive(Clone, Default)]
pub struct Admissions(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// The ids of the pipeline's sinks, known when it is loaded.
    sinks: BTreeSet<String>,
    /// What each sink that opened said (`None`: nothing).
    published: RwLock<HashMap<String, Option<Arc<dyn Admission>>>>,
}

/// What a sink has said about what it refuses.
#[derive(Clone)]
pub enum Said {
    /// It opened and said this.
    Refuses(Arc<dyn Admission>),
    /// It opened and says nothing (it cannot tell in advance).
    Nothing,
    /// It has not opened: a sink `ecomflow test` does not run for real.
    NotOpen,
}

impl Admissions {
    /// The admissions of a pipeline whose sinks are `sinks` (their ids).
    pub fn new(sinks: impl IntoIterator<Item = String>) -> Admissions {
        Admissions(Arc::new(Shared {
            sinks: sinks.into_iter().collect(),
            published: RwLock::default(),
        }))
    }

    /// The ids of the pipeline's sinks.
    pub fn sinks(&self) -> &BTreeSet<String> {
        &self.0.sinks
    }

    /// Publishes what the sink `id`, now open, refuses (`None`: it cannot tell).
    pub fn publish(&self, id: &str, admission: Option<Arc<dyn Admission>>) {
        let mut published = self.0.published.write().unwrap_or_else(|p| p.into_inner());
        published.insert(id.to_string(), admission);
    }

    /// What the sink `id` has said.
    pub fn get(&self, id: &str) -> Said {
        let published = self.0.published.read().unwrap_or_else(|p| p.into_inner());
        match published.get(id) {
            Some(Some(a)) => Said::Refuses(a.clone()),
            Some(None) => Said::Nothing,
            None => Said::NotOpen,
        }
    }
}

impl fmt::Debug for Admissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admissions")
            .field("sinks", &self.0.sinks)
            .finish_non_exhaustive()
    }
}
