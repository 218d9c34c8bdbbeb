//! The channels of a run: one bounded input per component that reads, each output sending to
//! every reader (tagged with its position among the reader's inputs), and the dead-letter
//! sink's input, on which every component is one input.

use crate::pipeline::Component;
use crate::telemetry::RunTelemetry;
use ecomflow_core::channel::{Capacity, InputReceiver, InputSender};
use ecomflow_core::{Message, Output};
use std::collections::HashMap;

/// Dead letters waiting before the components sending them wait.
const DEAD_LETTER_MESSAGES: usize = 64;

/// A component's outputs: the default one and each named one.
pub(super) type Outputs = (Output, Vec<(&'static str, Output)>);

/// The channels of a run.
pub(super) struct Wiring {
    /// Each reading component's input, by id.
    pub(super) inputs: HashMap<String, InputReceiver<Message>>,
    /// Each component's outputs, in the order of the components.
    pub(super) outputs: Vec<Outputs>,
    /// Where every component sends its dead letters (component number `n` is input `n`).
    pub(super) dead_letters: InputSender<Message>,
    /// The dead-letter sink's input.
    pub(super) dead_letter_input: InputReceiver<Message>,
}

/// Wires `components` with inputs of `capacity`, each watched by `telemetry`.
pub(super) fn wire(
    components: &[Component],
    capacity: Capacity,
    telemetry: &RunTelemetry,
) -> Wiring {
    let mut senders = HashMap::new();
    let mut inputs = HashMap::new();
    for c in components.iter().filter(|c| !c.inputs.is_empty()) {
        let (tx, rx) = ecomflow_core::channel::input(capacity);
        telemetry.watch_input(c.path().into(), tx.downgrade());
        senders.insert(c.id.clone(), tx);
        inputs.insert(c.id.clone(), rx);
    }
    let output_of = |id: &str, port: Option<&str>| {
        Output::new(
            components
                .iter()
                .filter_map(|c| {
                    let at = c
                        .inputs
                        .iter()
                        .position(|i| i.component == id && i.port.as_deref() == port)?;
                    Some((senders.get(&c.id)?.clone(), at))
                })
                .collect(),
        )
    };
    let outputs = components
        .iter()
        .map(|c| {
            let named = c
                .plugin
                .outputs
                .iter()
                .map(|p| (*p, output_of(&c.id, Some(p))))
                .collect();
            (output_of(&c.id, None), named)
        })
        .collect();
    let (dead_letters, dead_letter_input) = ecomflow_core::channel::input(Capacity {
        messages: DEAD_LETTER_MESSAGES,
        ..capacity
    });
    Wiring {
        inputs,
        outputs,
        dead_letters,
        dead_letter_input,
    }
}
