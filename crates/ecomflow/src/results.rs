//! Where a run's results went, told at its end: the tables, files and indexes its sinks
//! wrote, and how many dead letters it wrote where.

use ecomflow_core::destination::{Destination, summarize};
use ecomflow_runtime::{Built, Pipeline, RunSummary};

/// What a pipeline's sinks and dead-letter output write to, read before it runs.
pub struct Results {
    sinks: Vec<Destination>,
    dead_letter: Option<Destination>,
    /// The dead-letter output's entry in the end-of-run summary.
    dead_letter_id: String,
}

impl Results {
    /// The destinations of `pipeline`'s sinks, in file order.
    pub fn of(pipeline: &Pipeline) -> Results {
        let destination = |built: &Built| match built {
            Built::Sink(sink) => sink.destination(),
            _ => None,
        };
        Results {
            sinks: pipeline
                .components
                .iter()
                .filter_map(|c| destination(&c.built))
                .collect(),
            dead_letter: destination(&pipeline.dead_letter.built),
            dead_letter_id: pipeline.dead_letter.id.clone(),
        }
    }

    /// The lines that end a run: where the sinks wrote, then the dead letters.
    pub fn report(&self, summary: &RunSummary) -> String {
        let mut lines: Vec<String> = summarize(&self.sinks)
            .into_iter()
            .map(|place| format!("results: {place}"))
            .collect();
        let written = summary.get(&self.dead_letter_id).map_or(0, |c| c.sent);
        let letters = match written {
            1 => "1 dead letter".to_string(),
            n => format!("{n} dead letters"),
        };
        match &self.dead_letter {
            Some(d) if written > 0 => {
                let note = d
                    .note
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                lines.push(format!("{letters} written to {}{note}", d.place));
            }
            Some(_) => lines.push("no dead letters".to_string()),
            None if written > 0 => lines.push(format!("{letters} (see the table above)")),
            None => {}
        }
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ecomflow_runtime::ComponentSummary;

    fn summary(dead: u64) -> RunSummary {
        RunSummary {
            components: vec![ComponentSummary {
                path: "dead_letter".into(),
                received: dead,
                sent: dead,
                dead_lettered: 0,
                dropped: 0,
            }],
        }
    }

    #[test]
    fn the_report_names_places_tables_and_the_dead_letter_file() {
        let results = Results {
            sinks: vec![
                Destination::named("sqlite://ecomflow.db", "transactions"),
                Destination::named("sqlite://ecomflow.db", "sales_per_day"),
            ],
            dead_letter: Some(Destination::place("dead-letter.jsonl").with_note("appended")),
            dead_letter_id: "dead_letter".into(),
        };
        assert_eq!(
            results.report(&summary(182)),
            "results: sqlite://ecomflow.db: transactions, sales_per_day\n\
             182 dead letters written to dead-letter.jsonl (appended)"
        );
        assert_eq!(
            results.report(&summary(0)),
            "results: sqlite://ecomflow.db: transactions, sales_per_day\nno dead letters"
        );
    }
}
