//! Loads pipeline files into a [`Pipeline`]: parse with positions, interpolate variables,
//! apply `--set` overrides, build every component through its plugin, check the graph. Every
//! problem is collected; nothing is built half-way.
//!
//! Several files given together form one pipeline: their components are merged and ids must
//! be unique across all of them, except that a later file may replace a component of an
//! earlier one by declaring it again with `replace = true` (how an overlay swaps the source).

mod build;
mod checkpoint_links;
mod declare;
mod secrets;
mod unknown;

use crate::channels_config::ChannelsConfig;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, closest};
use crate::graph_check::{Node, check_graph};
use crate::http_config::HttpConfig;
use crate::interpolate::interpolate;
use crate::overrides::{Override, parse_overrides};
use crate::pipeline::{Built, Component, InputRef, Pipeline};
use crate::state_config::StateConfig;
use build::*;
use declare::*;
use ecomflow_core::registry::{Builder, ConfigTable};
use ecomflow_core::{BuildContext, BuildError, EventTimeConfig, Kind, Plugin};
use std::borrow::Cow;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The id and table of the pipeline's dead-letter output.
pub const DEAD_LETTER: &str = "dead_letter";
/// The `[checkpoint]` table.
pub const CHECKPOINT: &str = "checkpoint";
/// The `[http]` table.
pub const HTTP: &str = "http";
/// The `[channels]` table.
pub const CHANNELS: &str = "channels";
/// The `[state]` table.
pub const STATE: &str = "state";
/// The `[[tests]]` of a pipeline file (run by `ecomflow test`, ignored by `ecomflow run`).
pub const TESTS: &str = "tests";

/// What else loading needs besides the files.
pub struct LoadOptions<'a> {
    /// `--set path=value` arguments.
    pub sets: &'a [String],
    /// Looks up environment variables (the process environment, or a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A component as declared, before it is built.
pub(super) struct Declared<'i> {
    pub(super) file: usize,
    pub(super) id: String,
    pub(super) kind: Kind,
    pub(super) key_span: Range<usize>,
    pub(super) table: Spanned<DeTable<'i>>,
}

/// Loads and builds the pipeline in `paths`, or returns every problem found. A value taken
/// from the environment (`${VAR}`) is shown in them as `${VAR}`.
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Result<Pipeline, Diagnostics> {
    let recording = secrets::Recording::new(options.env);
    let env = |name: &str| recording.get(name);
    load_with(paths, options.sets, &env).map_err(|mut d| {
        recording.hide(&mut d.0);
        d
    })
}

fn load_with(
    paths: &[PathBuf],
    sets: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Pipeline, Diagnostics> {
    let mut diags = Vec::new();
    let files: Vec<SourceFile> = paths
        .iter()
        .filter_map(|p| match std::fs::read_to_string(p) {
            Ok(text) => Some(SourceFile {
                name: p.display().to_string(),
                text,
                base_dir: match p.parent() {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
                    _ => PathBuf::from("."),
                },
            }),
            Err(e) => {
                diags.push(Diagnostic::general(
                    p.display().to_string(),
                    format!("cannot read the pipeline file: {e}"),
                ));
                None
            }
        })
        .collect();
    let mut overrides = parse_overrides(sets, &mut diags);
    interpolate_overrides(&mut overrides, env, &mut diags);

    let mut declared = Vec::new();
    let mut dead_letter = None;
    let mut checkpoint = None;
    let mut http = None;
    let mut channels = None;
    let mut state = None;
    for (index, file) in files.iter().enumerate() {
        let (root, errors) = DeTable::parse_recoverable(&file.text);
        if !errors.is_empty() {
            for e in errors {
                diags.push(Diagnostic::at(
                    file,
                    e.span(),
                    format!("invalid TOML: {}", e.message().trim_end()),
                ));
            }
            continue;
        }
        let mut root = root.into_inner();
        interpolate_table(&mut root, file, env, &mut diags);
        if let Some(table) = root.remove(CHECKPOINT) {
            checkpoint = Some((index, table));
        }
        if let Some(table) = root.remove(HTTP) {
            http = Some((index, table));
        }
        if let Some(table) = root.remove(CHANNELS) {
            channels = Some((index, table));
        }
        if let Some(table) = root.remove(STATE) {
            state = Some((index, table));
        }
        declare(
            index,
            file,
            root,
            &mut declared,
            &mut dead_letter,
            &mut diags,
        );
    }
    if files.is_empty() && diags.is_empty() {
        diags.push(Diagnostic::general("ecomflow", "no pipeline file given"));
    }
    apply_overrides(&overrides, &mut declared, &mut dead_letter, &mut diags);
    let (checkpoint_file, mut checkpoint_table) = match checkpoint {
        Some((file, table)) => (file, Some(table)),
        None => (0, None),
    };
    apply_table_overrides(&overrides, CHECKPOINT, &mut checkpoint_table, &mut diags);
    let checkpoint = checkpoint_table.and_then(|table| {
        let file = files.get(checkpoint_file)?;
        checkpoint_config(file, table, &mut diags)
    });
    let http: HttpConfig = settings(&files, http, HTTP, &overrides, &mut diags, |_| None);
    let channels: ChannelsConfig = settings(
        &files,
        channels,
        CHANNELS,
        &overrides,
        &mut diags,
        ChannelsConfig::problem,
    );
    let state: StateConfig = settings(
        &files,
        state,
        STATE,
        &overrides,
        &mut diags,
        StateConfig::problem,
    );

    let admissions = ecomflow_core::Admissions::new(
        declared
            .iter()
            .filter(|d| d.kind == Kind::Sink)
            .map(|d| d.id.to_string()),
    );
    let mut nodes = Vec::new();
    let mut built = Vec::new();
    for d in declared {
        let (node, b) = build(&files[d.file], d, &admissions, &mut diags);
        nodes.push(node);
        built.push(b);
    }
    let dead_letter = match dead_letter {
        Some(d) => {
            let (node, b) = build(&files[d.file], d, &admissions, &mut diags);
            b.map(|b| component(node, b))
        }
        None => build_default_dead_letter(&mut diags),
    };
    checkpoint_links::link_sinks(&nodes, &mut built, checkpoint.as_ref(), &mut diags);
    check_graph(&nodes, &mut diags);
    if !diags.is_empty() {
        return Err(Diagnostics(diags));
    }
    let components: Option<Vec<Component>> = nodes
        .into_iter()
        .zip(built)
        .map(|(n, b)| b.map(|b| component(n, b)))
        .collect();
    match (components, dead_letter) {
        (Some(components), Some(dead_letter)) => Ok(Pipeline {
            components,
            dead_letter,
            checkpoint,
            http,
            channels,
            state,
            reset_state: Default::default(),
            admissions,
        }),
        _ => Err(Diagnostics(vec![Diagnostic::general(
            "ecomflow",
            "a component failed to build without saying why",
        )])),
    }
}

/// What building one component produced.
pub(super) struct Parts {
    pub(super) plugin: &'static Plugin,
    pub(super) built: Built,
    pub(super) event_time: Option<EventTimeConfig>,
    pub(super) rebuild: Option<crate::pipeline::Rebuild>,
    /// A sink that writes in the checkpoint's transaction (see `checkpoint_links.rs`).
    pub(super) in_checkpoint: bool,
}

pub(super) fn component(node: Node<'_>, parts: Parts) -> Component {
    Component {
        id: node.id,
        kind: node.kind,
        plugin: parts.plugin,
        inputs: node.inputs.into_iter().map(|(i, _)| i).collect(),
        built: parts.built,
        event_time: parts.event_time,
        rebuild: parts.rebuild,
        in_checkpoint: parts.in_checkpoint,
    }
}
