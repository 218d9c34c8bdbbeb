//! Building each declared component through its plugin, with every error located: its
//! options, `inputs`, `event_time`, the `[checkpoint]` table and the default dead-letter output.

use super::unknown::*;
use super::*;

/// Builds one declared component; returns its graph node and, when it built, the result.
pub(super) fn build<'f>(
    file: &'f SourceFile,
    d: Declared<'_>,
    admissions: &ecomflow_core::Admissions,
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
        admissions: admissions.clone(),
    };
    let config: ConfigTable<'_> = Spanned::new(table_span.clone(), table);
    let mut rebuild = None;
    let built = match plugin.builder {
        Builder::Source(b) => b(config, &cx).map(Built::Source),
        Builder::Transform(b) => {
            rebuild = rebuilder(b, &config, &cx);
            b(config, &cx).map(Built::Transform)
        }
        Builder::Sink(b) => b(config, &cx).map(Built::Sink),
    };
    match built {
        Ok(built) => (
            node,
            Some(Parts {
                plugin,
                built,
                event_time,
                rebuild,
                in_checkpoint: false,
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

/// How to build more instances of a transform (one per source partition): from an owned
/// copy of its options, which built once already.
fn rebuilder(
    build: ecomflow_core::registry::BuildFn<dyn ecomflow_core::Transform>,
    config: &ConfigTable<'_>,
    cx: &BuildContext,
) -> Option<crate::pipeline::Rebuild> {
    let owned: toml::Table =
        serde::Deserialize::deserialize(toml::de::Deserializer::from(config.clone())).ok()?;
    let text = toml::to_string(&owned).ok()?;
    let cx = cx.clone();
    Some(std::sync::Arc::new(move || {
        let table = DeTable::parse(&text).map_err(|e| e.to_string())?;
        build(table, &cx).map_err(|e| e.message)
    }))
}

use ecomflow_core::checkpoint::CheckpointConfig;
use ecomflow_core::shared_store::StorePlugin;
use ecomflow_core::{BuildErrorKind, DefaultDeadLetter};

/// Reads the `[checkpoint]` table, checking that it says where checkpoints go.
pub(super) fn checkpoint_config(
    file: &SourceFile,
    value: Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ecomflow_core::checkpoint::CheckpointConfig> {
    let span = value.span();
    let c: CheckpointConfig = top_table(file, CHECKPOINT, value, diags)?;
    let problem = match c.url() {
        Some(url) if StorePlugin::for_url(url).is_none() => Some(format!(
            "`checkpoint.url` must be a database a checkpoint store is linked in for: {}",
            StorePlugin::schemes()
                .iter()
                .map(|s| format!("`{s}://...`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Some(_) => None,
        None if c.dir.is_none() => Some(
            "`[checkpoint]` needs `dir` (a directory) or `url` (a PostgreSQL database)".to_string(),
        ),
        None => None,
    };
    match problem {
        Some(message) => {
            diags.push(Diagnostic::at(file, Some(span), message).in_component(CHECKPOINT));
            None
        }
        None => Some(c),
    }
}

/// Reads the top-level table `name` (`checkpoint`, `http`) as a `T`, every error located.
pub(super) fn top_table<T: serde::de::DeserializeOwned>(
    file: &SourceFile,
    name: &str,
    value: Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let span = value.span();
    let DeValue::Table(t) = value.into_inner() else {
        diags.push(Diagnostic::at(
            file,
            Some(span),
            format!("`{name}` must be a table"),
        ));
        return None;
    };
    match ecomflow_core::registry::deserialize_config::<T>(Spanned::new(span.clone(), t)) {
        Ok(c) => Some(c),
        Err(e) => {
            let message = match &e.field {
                Some(field) => format!("`{name}.{field}`: {}", e.message),
                None => e.message.clone(),
            };
            diags.push(
                Diagnostic::at(file, e.span.clone().or(Some(span)), message).in_component(name),
            );
            None
        }
    }
}

/// Reads a settings table of the pipeline (`[http]`, `[channels]`, `[state]`): `found` in
/// which file, with `--set` overrides applied and `problem` checked; its defaults when absent
/// or wrong (the error is in `diags`).
pub(super) fn settings<'i, T: serde::de::DeserializeOwned + Default>(
    files: &[SourceFile],
    found: Option<(usize, Spanned<DeValue<'i>>)>,
    name: &str,
    overrides: &[crate::overrides::Override<'i>],
    diags: &mut Vec<Diagnostic>,
    problem: fn(&T) -> Option<(&'static str, &'static str)>,
) -> T {
    let (index, mut table) = match found {
        Some((index, table)) => (index, Some(table)),
        None => (0, None),
    };
    super::declare::apply_table_overrides(overrides, name, &mut table, diags);
    let (Some(table), Some(file)) = (table, files.get(index)) else {
        return T::default();
    };
    let span = table.span();
    let config: Option<T> = top_table(file, name, table, diags);
    if let Some((option, message)) = config.as_ref().and_then(problem) {
        diags.push(
            Diagnostic::at(file, Some(span), format!("`{name}.{option}` {message}"))
                .in_component(name),
        );
    }
    config.unwrap_or_default()
}

/// Reads a source's `event_time` table, checking its format.
pub(super) fn event_time(value: Spanned<DeValue<'_>>) -> Result<EventTimeConfig, BuildError> {
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
    ecomflow_time::tracker(&config).map_err(|e| BuildError::field("event_time.format", e))?;
    Ok(config)
}

pub(super) fn parse_inputs(
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

pub(super) fn build_error(
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
    let about_options = matches!(
        e.kind,
        BuildErrorKind::UnknownOption | BuildErrorKind::MissingOption
    );
    let hint = e.hint.clone().or_else(|| {
        about_options.then(|| format!("see the options of `{}` with: ecomflow list", plugin.name))
    });
    Diagnostic::at(file, Some(span), message)
        .in_component(path)
        .with_hint(hint)
}

/// Dotted paths of every option in `table` with the span of its value.
pub(super) fn field_spans(table: &DeTable<'_>) -> Vec<(String, Range<usize>)> {
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

/// The dead-letter output of a pipeline without a `[dead_letter]` table: the one a plugin
/// crate declares ([`DefaultDeadLetter`]).
pub(super) fn build_default_dead_letter(diags: &mut Vec<Diagnostic>) -> Option<Component> {
    let declared = DefaultDeadLetter::declared();
    let [default] = declared.as_slice() else {
        let why = if declared.is_empty() {
            "no [dead_letter] table, and no plugin linked into this binary declares a default \
             dead-letter output"
                .to_string()
        } else {
            let sinks: Vec<&str> = declared.iter().map(|d| d.sink).collect();
            format!(
                "no [dead_letter] table, and several plugins declare a default dead-letter \
                 output ({}): give the pipeline a [dead_letter] table",
                sinks.join(", ")
            )
        };
        diags.push(Diagnostic::general(DEAD_LETTER, why));
        return None;
    };
    let Some(plugin) = Plugin::find(Kind::Sink, default.sink) else {
        diags.push(Diagnostic::general(
            DEAD_LETTER,
            format!(
                "the default dead-letter output is a `{}` sink, which is not linked",
                default.sink
            ),
        ));
        return None;
    };
    let mut table = DeTable::new();
    for (option, value) in default.options {
        table.insert(
            Spanned::new(0..0, Cow::Borrowed(*option)),
            Spanned::new(0..0, DeValue::String(Cow::Borrowed(*value))),
        );
    }
    let cx = BuildContext {
        component: DEAD_LETTER.into(),
        base_dir: PathBuf::from("."),
        admissions: Default::default(),
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
            rebuild: None,
            in_checkpoint: false,
        }),
        Err(e) => {
            diags.push(Diagnostic::general(DEAD_LETTER, e.message));
            None
        }
    }
}
