//! What a test reads back from the driver: what each output emitted since the last read, and
//! for a sink that writes a table the rows it holds (read back from its database when it runs
//! for real).

use super::*;

impl Driver {
    /// What `output` (`id`, `id.port`, or `dead_letter`) emitted since the last call for it,
    /// or `None` when the pipeline has no such output. For a sink that writes a table: the
    /// rows its table holds now (read back from its database when it runs for real).
    pub fn take(&mut self, output: &str) -> Result<Option<Vec<Record>>, String> {
        if let Some(rows) = self.real_rows(output)? {
            return Ok(Some(rows));
        }
        let view = self.nodes.iter().find_map(|n| match &n.role {
            Role::Sink {
                view: Some(view), ..
            } if n.id == output => Some(view.clone()),
            _ => None,
        });
        let Some((records, seen)) = self.emitted.get_mut(output) else {
            return Ok(None);
        };
        if let Some(view) = view {
            return Ok(Some(view.table(records)));
        }
        let new = Driver::records_from(records, *seen);
        *seen = records.len();
        Ok(Some(new))
    }

    /// The rows of real sink `id`'s table, read back from its database; `None` when `id` is
    /// not a real sink or writes no table.
    fn real_rows(&mut self, id: &str) -> Result<Option<Vec<Record>>, String> {
        let Some(rt) = &self.runtime else {
            return Ok(None);
        };
        let real = self.nodes.iter_mut().find_map(|n| match &mut n.role {
            Role::Sink {
                real: Some(real), ..
            } if n.id == id => Some(real),
            _ => None,
        });
        let Some(real) = real else {
            return Ok(None);
        };
        let (rows, letters) = real.rows(rt)?;
        self.keep_letters(letters);
        Ok(rows)
    }

    /// Whether `output` names something `take` can read.
    pub fn has_output(&self, output: &str) -> bool {
        self.emitted.contains_key(output)
    }

    /// The outputs `take` can read, for an error message.
    pub fn outputs(&self) -> Vec<String> {
        let mut names: Vec<String> = self.emitted.keys().cloned().collect();
        names.sort();
        names
    }
}
