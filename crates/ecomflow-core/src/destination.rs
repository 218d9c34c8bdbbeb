//! Where a sink writes, as the end of a run tells the user: a place (a database URL without
//! its password, a file, a cluster) and what in it (a table, an index, a topic).

/// Where a sink writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    /// The database, file or cluster, without credentials: `sqlite://ecomflow.db`,
    /// `dead-letter.jsonl`, `http://localhost:9200`.
    pub place: String,
    /// What in it: a table, an index, a topic; `None` for a file.
    pub name: Option<String>,
    /// What the user should know about it, such as that a file keeps what earlier runs
    /// wrote.
    pub note: Option<String>,
}

impl Destination {
    /// A place of its own, such as a file.
    pub fn place(place: impl Into<String>) -> Destination {
        Destination {
            place: place.into(),
            name: None,
            note: None,
        }
    }

    /// `name` (a table, an index, a topic) in `place`.
    pub fn named(place: impl Into<String>, name: impl Into<String>) -> Destination {
        Destination {
            place: place.into(),
            name: Some(name.into()),
            note: None,
        }
    }

    /// The same, with a note for the user.
    pub fn with_note(mut self, note: impl Into<String>) -> Destination {
        self.note = Some(note.into());
        self
    }
}

/// One line per place, its names listed: `sqlite://ecomflow.db: transactions, sales_per_day`.
/// Places keep the order they first appear in.
pub fn summarize(destinations: &[Destination]) -> Vec<String> {
    let mut places: Vec<(&str, Vec<&str>)> = Vec::new();
    for d in destinations {
        let at = match places.iter().position(|(p, _)| *p == d.place) {
            Some(at) => at,
            None => {
                places.push((&d.place, Vec::new()));
                places.len() - 1
            }
        };
        if let Some(name) = &d.name
            && !places[at].1.contains(&name.as_str())
        {
            places[at].1.push(name);
        }
    }
    places
        .into_iter()
        .map(|(place, names)| {
            if names.is_empty() {
                place.to_string()
            } else {
                format!("{place}: {}", names.join(", "))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_gathered_under_their_place_in_order() {
        let lines = summarize(&[
            Destination::named("sqlite://ecomflow.db", "transactions"),
            Destination::place("out.jsonl"),
            Destination::named("sqlite://ecomflow.db", "sales_per_day"),
            Destination::named("sqlite://ecomflow.db", "transactions"),
        ]);
        assert_eq!(
            lines,
            [
                "sqlite://ecomflow.db: transactions, sales_per_day",
                "out.jsonl"
            ]
        );
    }
}
