//! Which sinks write in the checkpoint's transaction: those that can
//! ([`ecomflow_core::component::WritesInCheckpoint`]) and write to the database the pipeline
//! keeps its checkpoints in. A sink that must (`exactly_once = true`) and cannot is an error
//! at its line. The link is kept on the component, for `ecomflow graph` to draw and the run to
//! make.

use super::Parts;
use crate::diagnostic::Diagnostic;
use crate::graph_check::Node;
use crate::pipeline::Built;
use ecomflow_core::checkpoint::CheckpointConfig;
use ecomflow_core::component::Commit;
use ecomflow_core::shared_store::StorePlugin;

/// Marks the sinks of `built` that write in the checkpoint's transaction, and reports those
/// that must and cannot.
pub(super) fn link_sinks(
    nodes: &[Node<'_>],
    built: &mut [Option<Parts>],
    checkpoint: Option<&CheckpointConfig>,
    diags: &mut Vec<Diagnostic>,
) {
    // Checkpoints kept in a database a store plugin serves.
    let store = checkpoint
        .and_then(CheckpointConfig::url)
        .filter(|url| StorePlugin::for_url(url).is_some());
    for (node, parts) in nodes.iter().zip(built.iter_mut()) {
        let Some(Parts {
            built: Built::Sink(sink),
            in_checkpoint,
            ..
        }) = parts
        else {
            continue;
        };
        let Some(writes) = sink.in_checkpoint() else {
            continue;
        };
        let shared = store.is_some_and(|url| url == writes.database().trim());
        *in_checkpoint = shared && writes.commit() != Commit::Own;
        if writes.commit() == Commit::Required && !shared {
            let problem = match store {
                Some(_) => "`checkpoint.url` is another database",
                None => "the pipeline keeps no checkpoints in a database (`[checkpoint] url`)",
            };
            diags.push(
                Diagnostic::at(
                    node.file,
                    Some(node.span.clone()),
                    format!(
                        "the sink must write in the checkpoint's transaction \
                         (`exactly_once = true`), but {problem}: set `checkpoint.url` to the \
                         sink's `url`, or leave `exactly_once` out"
                    ),
                )
                .in_component(format!("sinks.{}", node.id)),
            );
        }
    }
}
