//! Loads pipeline files into a [`Pipeline`]: parse with positions, interpolate variables,
//! apply `--set` overrides, build every component through its plugin, check the graph. Every
//! problem is collected; nothing is built half-way.
//!
//! Several files given together form one pipeline: their components are merged and ids must
//! be unique across all of them, except that a later file may replace a component of an
//! earlier one by declaring it again with `replace = true` (how an overlay swaps the source).

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, closest};
use crate::graph_check::{Node, check_graph};
use crate::interpolate::interpolate;
use crate::overrides::{Override, parse_overrides};
use crate::pipeline::{Built, Component, InputRef, Pipeline};
use ecomflow_core::registry::{Builder, ConfigTable};
use ecomflow_core::{BuildContext, BuildError, EventTimeConfig, EventTimeTracker, Kind, Plugin};
use std::borrow::Cow;
use std::ops::Range;
use std::path::PathBuf;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// The id and table of the pipeline's dead-letter output.
pub const DEAD_LETTER: &str = "dead_letter";
/// Where dead letters go when the pipeline does not say.
pub const DEFAULT_DEAD_LETTER_PATH: &str = "dead-letter.jsonl";

/// What else loading needs besides the files.
pub struct LoadOptions<'a> {
    /// `--set path=value` arguments.
    pub sets: &'a [String],
    /// Looks up environment variables (the process environment, or a map in tests).
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// A component as declared, before it is built.
struct Declared<'i> {
    file: usize,
    id: String,
    kind: Kind,
    key_span: Range<usize>,
    table: Spanned<DeTable<'i>>,
}

/// Loads and builds the pipeline in `paths`, or returns every problem found.
pub fn load(paths: &[PathBuf], options: &LoadOptions) -> Result<Pipeline, Diagnostics> {
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
    let overrides = parse_overrides(options.sets, &mut diags);

    let mut declared = Vec::new();
    let mut dead_letter = None;
    let mut checkpoint = None;
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
        interpolate_table(&mut root, file, options.env, &mut diags);
        if let Some(table) = root.remove("checkpoint") {
            checkpoint = checkpoint_config(file, table, &mut diags);
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

    let mut nodes = Vec::new();
    let mut built = Vec::new();
    for d in declared {
        let (node, b) = build(&files[d.file], d, &mut diags);
        nodes.push(node);
        built.push(b);
    }
    let dead_letter = match dead_letter {
        Some(d) => {
            let (node, b) = build(&files[d.file], d, &mut diags);
            b.map(|b| component(node, b))
        }
        None => build_default_dead_letter(&mut diags),
    };
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
            reset_state: Default::default(),
        }),
        _ => Err(Diagnostics(vec![Diagnostic::general(
            "ecomflow",
            "a component failed to build without saying why",
        )])),
    }
}

/// What building one component produced.
struct Parts {
    plugin: &'static Plugin,
    built: Built,
    event_time: Option<EventTimeConfig>,
}

fn component(node: Node<'_>, parts: Parts) -> Component {
    Component {
        id: node.id,
        kind: node.kind,
        plugin: parts.plugin,
        inputs: node.inputs.into_iter().map(|(i, _)| i).collect(),
        built: parts.built,
        event_time: parts.event_time,
    }
}

fn interpolate_table(
    table: &mut DeTable<'_>,
    file: &SourceFile,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    for (_, value) in table.iter_mut() {
        interpolate_value(value, file, env, diags);
    }
}

fn interpolate_value(
    value: &mut Spanned<DeValue<'_>>,
    file: &SourceFile,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => match interpolate(s, env) {
            Ok(Some(new)) => *s = Cow::Owned(new),
            Ok(None) => {}
            Err(e) => diags.push(
                Diagnostic::at(file, Some(span), e.to_string())
                    .with_hint(Some("set the variable, or give a default: ${NAME:-value}")),
            ),
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                interpolate_value(item, file, env, diags);
            }
        }
        DeValue::Table(t) => interpolate_table(t, file, env, diags),
        _ => {}
    }
}

fn declare<'i>(
    index: usize,
    file: &SourceFile,
    root: DeTable<'i>,
    declared: &mut Vec<Declared<'i>>,
    dead_letter: &mut Option<Declared<'i>>,
    diags: &mut Vec<Diagnostic>,
) {
    for (key, value) in root {
        let key_span = key.span();
        let span = value.span();
        let kind = match key.get_ref().as_ref() {
            "sources" => Kind::Source,
            "transforms" => Kind::Transform,
            "sinks" => Kind::Sink,
            DEAD_LETTER => {
                match value.into_inner() {
                    DeValue::Table(t) => {
                        *dead_letter = Some(Declared {
                            file: index,
                            id: DEAD_LETTER.into(),
                            kind: Kind::Sink,
                            key_span,
                            table: Spanned::new(span, t),
                        })
                    }
                    other => diags.push(Diagnostic::at(
                        file,
                        Some(span),
                        format!("`dead_letter` must be a table, found {}", other.type_str()),
                    )),
                }
                continue;
            }
            other => {
                let known = ["sources", "transforms", "sinks", DEAD_LETTER, "checkpoint"];
                diags.push(
                    Diagnostic::at(file, Some(key_span), format!("unknown table `{other}`"))
                        .with_hint(Some(did_you_mean(other, &known, "expected one of"))),
                );
                continue;
            }
        };
        let DeValue::Table(components) = value.into_inner() else {
            diags.push(Diagnostic::at(
                file,
                Some(key_span),
                format!("`{}` must be a table of components", kind.table()),
            ));
            continue;
        };
        for (id, value) in components {
            let path = format!("{}.{}", kind.table(), id.get_ref());
            let id_span = id.span();
            let span = value.span();
            let DeValue::Table(t) = value.into_inner() else {
                diags.push(
                    Diagnostic::at(file, Some(id_span), "a component must be a table")
                        .in_component(path)
                        .with_hint(Some(format!("write it as [{}.<id>]", kind.table()))),
                );
                continue;
            };
            let id = id.into_inner().into_owned();
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                diags.push(
                    Diagnostic::at(file, Some(id_span), format!("invalid component id `{id}`"))
                        .in_component(path)
                        .with_hint(Some(
                            "use letters, digits, `_` and `-` (a `.` selects an output port)",
                        )),
                );
                continue;
            }
            let mut t = t;
            // A later file may replace a component of an earlier one, saying so explicitly.
            let replace = match t.remove("replace").map(Spanned::into_inner) {
                Some(DeValue::Boolean(b)) => b,
                Some(other) => {
                    diags.push(
                        Diagnostic::at(
                            file,
                            Some(id_span.clone()),
                            format!(
                                "`replace` must be true or false, found {}",
                                other.type_str()
                            ),
                        )
                        .in_component(path.clone()),
                    );
                    false
                }
                None => false,
            };
            match declared.iter().position(|d| d.id == id) {
                Some(at) if replace && declared[at].file != index => {
                    declared.remove(at);
                }
                Some(at) => {
                    let first = &declared[at];
                    let hint = if first.file == index {
                        format!(
                            "ids must be unique across sources, transforms and sinks; `{id}` is already a {}",
                            first.kind.noun()
                        )
                    } else {
                        format!(
                            "`{id}` is already a {} in an earlier file; add `replace = true` here to replace it",
                            first.kind.noun()
                        )
                    };
                    diags.push(
                        Diagnostic::at(
                            file,
                            Some(id_span),
                            format!("duplicate component id `{id}`"),
                        )
                        .in_component(path)
                        .with_hint(Some(hint)),
                    );
                    continue;
                }
                None if replace => {
                    diags.push(
                        Diagnostic::at(
                            file,
                            Some(id_span.clone()),
                            format!("`replace = true`, but no earlier file declares `{id}`"),
                        )
                        .in_component(path.clone())
                        .with_hint(Some(
                            "remove `replace`, or list the file that declares it first",
                        )),
                    );
                }
                None => {}
            }
            declared.push(Declared {
                file: index,
                id,
                kind,
                key_span: id_span,
                table: Spanned::new(span, t),
            });
        }
    }
}

fn apply_overrides<'i>(
    overrides: &[Override<'i>],
    declared: &mut [Declared<'i>],
    dead_letter: &mut Option<Declared<'i>>,
    diags: &mut Vec<Diagnostic>,
) {
    for o in overrides {
        let target = if o.table == DEAD_LETTER {
            dead_letter.as_mut()
        } else {
            declared
                .iter_mut()
                .find(|d| d.kind.table() == o.table && d.id == o.id)
        };
        let Some(d) = target else {
            diags.push(Diagnostic::general(
                format!("--set {}", o.arg),
                format!("no component `{}.{}` to set an option of", o.table, o.id),
            ));
            continue;
        };
        let span = d.key_span.clone();
        let mut table = d.table.get_mut();
        let Some((last, parents)) = o.path.split_last() else {
            continue;
        };
        for p in parents {
            let entry = table
                .entry(Spanned::new(span.clone(), Cow::Owned(p.clone())))
                .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
            match entry.get_mut() {
                DeValue::Table(t) => table = t,
                _ => {
                    diags.push(Diagnostic::general(
                        format!("--set {}", o.arg),
                        format!("`{p}` is not a table"),
                    ));
                    return;
                }
            }
        }
        table.insert(
            Spanned::new(span.clone(), Cow::Owned(last.clone())),
            Spanned::new(span, o.value.clone()),
        );
    }
}

/// Builds one declared component; returns its graph node and, when it built, the result.
fn build<'f>(
    file: &'f SourceFile,
    d: Declared<'_>,
    diags: &mut Vec<Diagnostic>,
) -> (Node<'f>, Option<Parts>) {
    let path = format!("{}.{}", d.kind.table(), d.id);
    let at = |span: Range<usize>, msg: String| {
        Diagnostic::at(file, Some(span), msg).in_component(path.clone())
    };
    let table_span = d.table.span();
    let mut table = d.table.into_inner();

    let plugin = match table.remove("type").map(Spanned::into_inner) {
        Some(DeValue::String(name)) => match Plugin::find(d.kind, &name) {
            Some(p) => Some(p),
            None => {
                diags.push(unknown_plugin(
                    d.kind,
                    &name,
                    at(d.key_span.clone(), String::new()),
                ));
                None
            }
        },
        Some(other) => {
            diags.push(at(
                d.key_span.clone(),
                format!("`type` must be a string, found {}", other.type_str()),
            ));
            None
        }
        None => {
            diags.push(
                at(d.key_span.clone(), "missing field `type`".into()).with_hint(Some(format!(
                    "one of the {} plugins: {}",
                    d.kind.noun(),
                    names_of(d.kind)
                ))),
            );
            None
        }
    };

    let inputs = table.remove("inputs");
    let inputs = match (d.kind, inputs) {
        (Kind::Source, None) => Vec::new(),
        (Kind::Source, Some(v)) => {
            if d.id != DEAD_LETTER {
                diags.push(
                    at(v.span(), "a source takes no `inputs`".into())
                        .with_hint(Some("remove `inputs`, or make this a transform")),
                );
            }
            Vec::new()
        }
        (_, None) if d.id == DEAD_LETTER => Vec::new(),
        (_, Some(v)) if d.id == DEAD_LETTER => {
            diags.push(at(
                v.span(),
                "the dead-letter output takes no `inputs`: every component feeds it".into(),
            ));
            Vec::new()
        }
        (kind, None) => {
            diags.push(
                at(
                    d.key_span.clone(),
                    format!("a {} needs `inputs`", kind.noun()),
                )
                .with_hint(Some(
                    "add `inputs = [\"<id>\"]` naming the components it reads",
                )),
            );
            Vec::new()
        }
        (_, Some(v)) => parse_inputs(v, &at, diags),
    };

    let mut node = Node {
        id: d.id,
        kind: d.kind,
        file,
        span: d.key_span,
        inputs,
        plugin,
    };
    let Some(plugin) = plugin else {
        return (node, None);
    };
    let spans = field_spans(&table);
    let event_time = match (d.kind, table.remove("event_time")) {
        (Kind::Source, Some(v)) => match event_time(v) {
            Ok(config) => Some(config),
            Err(e) => {
                diags.push(build_error(
                    file,
                    &path,
                    e,
                    &spans,
                    node.span.clone(),
                    plugin,
                ));
                None
            }
        },
        (_, Some(v)) => {
            diags.push(
                at(v.span(), "only sources read `event_time`".into())
                    .with_hint(Some("move it to the source that reads the events")),
            );
            None
        }
        (_, None) => None,
    };
    let cx = BuildContext {
        component: path.clone(),
        base_dir: file.base_dir.clone(),
    };
    let config: ConfigTable<'_> = Spanned::new(table_span.clone(), table);
    let built = match plugin.builder {
        Builder::Source(b) => b(config, &cx).map(Built::Source),
        Builder::Transform(b) => b(config, &cx).map(Built::Transform),
        Builder::Sink(b) => b(config, &cx).map(Built::Sink),
    };
    match built {
        Ok(built) => (
            node,
            Some(Parts {
                plugin,
                built,
                event_time,
            }),
        ),
        Err(e) => {
            diags.push(build_error(
                file,
                &path,
                e,
                &spans,
                node.span.clone(),
                plugin,
            ));
            node.plugin = Some(plugin);
            (node, None)
        }
    }
}

/// Reads the `[checkpoint]` table.
fn checkpoint_config(
    file: &SourceFile,
    value: Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ecomflow_core::checkpoint::CheckpointConfig> {
    let span = value.span();
    let DeValue::Table(t) = value.into_inner() else {
        diags.push(Diagnostic::at(
            file,
            Some(span),
            "`checkpoint` must be a table",
        ));
        return None;
    };
    match ecomflow_core::registry::deserialize_config(Spanned::new(span.clone(), t)) {
        Ok(c) => Some(c),
        Err(e) => {
            let message = match &e.field {
                Some(field) => format!("`checkpoint.{field}`: {}", e.message),
                None => e.message.clone(),
            };
            diags.push(
                Diagnostic::at(file, e.span.clone().or(Some(span)), message)
                    .in_component("checkpoint"),
            );
            None
        }
    }
}

/// Reads a source's `event_time` table, checking its format.
fn event_time(value: Spanned<DeValue<'_>>) -> Result<EventTimeConfig, BuildError> {
    let span = value.span();
    let DeValue::Table(t) = value.into_inner() else {
        return Err(BuildError::field(
            "event_time",
            "`event_time` must be a table with at least `field`",
        ));
    };
    let config: EventTimeConfig =
        ecomflow_core::registry::deserialize_config(Spanned::new(span, t)).map_err(|mut e| {
            e.field = Some(match e.field.take() {
                Some(field) => format!("event_time.{field}"),
                None => "event_time".into(),
            });
            e
        })?;
    EventTimeTracker::new(&config).map_err(|e| BuildError::field("event_time.format", e))?;
    Ok(config)
}

fn parse_inputs(
    value: Spanned<DeValue<'_>>,
    at: &dyn Fn(Range<usize>, String) -> Diagnostic,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(InputRef, Range<usize>)> {
    let span = value.span();
    let DeValue::Array(items) = value.into_inner() else {
        diags.push(at(span, "`inputs` must be a list of component ids".into()));
        return Vec::new();
    };
    if items.is_empty() {
        diags.push(at(span.clone(), "`inputs` is empty".into()));
    }
    let mut out = Vec::new();
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => out.push((InputRef::parse(s), item.span())),
            other => diags.push(at(
                item.span(),
                format!(
                    "an input must be a component id string, found {}",
                    other.type_str()
                ),
            )),
        }
    }
    out
}

fn unknown_plugin(kind: Kind, name: &str, base: Diagnostic) -> Diagnostic {
    let other_kind = [Kind::Source, Kind::Transform, Kind::Sink]
        .into_iter()
        .find(|k| *k != kind && Plugin::find(*k, name).is_some());
    let mut d = base;
    if let Some(other) = other_kind {
        d.message = format!(
            "`{name}` is a {} plugin, not a {}",
            other.noun(),
            kind.noun()
        );
        d.hint = Some(format!(
            "declare it under [{}.<id>], or use one of the {} plugins: {}",
            other.table(),
            kind.noun(),
            names_of(kind)
        ));
        return d;
    }
    d.message = format!("unknown {} type `{name}`", kind.noun());
    let known: Vec<&str> = Plugin::all()
        .into_iter()
        .filter(|p| p.kind() == kind)
        .map(|p| p.name)
        .collect();
    d.hint = Some(did_you_mean(
        name,
        &known,
        &format!("the {} plugins are", kind.noun()),
    ));
    d
}

fn did_you_mean(name: &str, known: &[&str], listing: &str) -> String {
    let close = closest(name, known.iter().copied());
    let all = known.join(", ");
    match close.first() {
        Some(best) => format!("did you mean `{best}`? ({listing}: {all})"),
        None => format!("{listing}: {all}"),
    }
}

fn names_of(kind: Kind) -> String {
    Plugin::all()
        .into_iter()
        .filter(|p| p.kind() == kind)
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn build_error(
    file: &SourceFile,
    path: &str,
    e: BuildError,
    spans: &[(String, Range<usize>)],
    key_span: Range<usize>,
    plugin: &Plugin,
) -> Diagnostic {
    let span = e
        .span
        .clone()
        .or_else(|| {
            let field = e.field.as_deref()?;
            spans
                .iter()
                .find(|(p, _)| p == field)
                .map(|(_, s)| s.clone())
        })
        .unwrap_or(key_span);
    // The option is named unless the message already names it (`unknown field `x``).
    let named = |f: &str| {
        let last = f.rsplit('.').next().unwrap_or(f);
        e.message.contains(&format!("`{f}`")) || e.message.contains(&format!("field `{last}`"))
    };
    let message = match &e.field {
        Some(f) if !named(f) => format!("`{f}`: {}", e.message),
        _ => e.message.clone(),
    };
    let hint = e.hint.clone().or_else(|| {
        (message.contains("unknown field") || message.contains("missing field"))
            .then(|| format!("see the options of `{}` with: ecomflow list", plugin.name))
    });
    Diagnostic::at(file, Some(span), message)
        .in_component(path)
        .with_hint(hint)
}

/// Dotted paths of every option in `table` with the span of its value.
fn field_spans(table: &DeTable<'_>) -> Vec<(String, Range<usize>)> {
    let mut out = Vec::new();
    fn walk(prefix: &str, t: &DeTable<'_>, out: &mut Vec<(String, Range<usize>)>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            if let DeValue::Table(inner) = v.get_ref() {
                walk(&path, inner, out);
            }
            out.push((path, v.span()));
        }
    }
    walk("", table, &mut out);
    out
}

fn build_default_dead_letter(diags: &mut Vec<Diagnostic>) -> Option<Component> {
    let Some(plugin) = Plugin::find(Kind::Sink, "file") else {
        diags.push(Diagnostic::general(
            DEAD_LETTER,
            "no [dead_letter] table and no `file` sink plugin linked to write the default",
        ));
        return None;
    };
    let mut table = DeTable::new();
    table.insert(
        Spanned::new(0..0, Cow::Borrowed("path")),
        Spanned::new(
            0..0,
            DeValue::String(Cow::Borrowed(DEFAULT_DEAD_LETTER_PATH)),
        ),
    );
    let cx = BuildContext {
        component: DEAD_LETTER.into(),
        base_dir: PathBuf::from("."),
    };
    let Builder::Sink(b) = plugin.builder else {
        return None;
    };
    match b(Spanned::new(0..0, table), &cx) {
        Ok(sink) => Some(Component {
            id: DEAD_LETTER.into(),
            kind: Kind::Sink,
            plugin,
            inputs: Vec::new(),
            built: Built::Sink(sink),
            event_time: None,
        }),
        Err(e) => {
            diags.push(Diagnostic::general(DEAD_LETTER, e.message));
            None
        }
    }
}
