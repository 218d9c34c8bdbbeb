//! The plugin registry: every plugin registers itself with `inventory::submit!` beside its
//! type, and the runtime finds it by name. Nothing lists plugins centrally.

use crate::component::{Sink, Source, Transform};
use crate::error::BuildError;
pub use crate::kind::Kind;
use serde::de::DeserializeOwned;

/// One component's options as parsed from the pipeline file, with positions, minus `type`
/// and `inputs`.
pub type ConfigTable<'a> = toml::Spanned<toml::de::DeTable<'a>>;

/// What a plugin's `build` knows besides its options.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The component's path, such as `transforms.paid`.
    pub component: String,
    /// The directory of the pipeline file that declares it, for options that name files
    /// shipped beside the pipeline (such as the SQL sink's `migrations`).
    pub base_dir: std::path::PathBuf,
    /// What the pipeline's sinks refuse, as each says once open (see `storable`).
    pub admissions: crate::admission::Admissions,
}

/// A source plugin: its options type and how to build it from them.
pub trait SourcePlugin: 'static {
    /// The options, deserialized from the component's table.
    type Config: DeserializeOwned + schemars::JsonSchema;
    /// Builds the source. Must do no I/O, so `validate` can run offline.
    fn build(config: Self::Config, cx: &BuildContext) -> Result<Box<dyn Source>, BuildError>;
}

/// A transform plugin: its options type and how to build it from them.
pub trait TransformPlugin: 'static {
    /// The options, deserialized from the component's table.
    type Config: DeserializeOwned + schemars::JsonSchema;
    /// Named outputs besides the default one, readable as `inputs = ["<id>.<name>"]`.
    const OUTPUTS: &'static [&'static str] = &[];
    /// Builds the transform. Must do no I/O.
    fn build(config: Self::Config, cx: &BuildContext) -> Result<Box<dyn Transform>, BuildError>;
}

/// A sink plugin: its options type and how to build it from them.
pub trait SinkPlugin: 'static {
    /// The options, deserialized from the component's table.
    type Config: DeserializeOwned + schemars::JsonSchema;
    /// Builds the sink. Must do no I/O (connect or open files when it first runs).
    fn build(config: Self::Config, cx: &BuildContext) -> Result<Box<dyn Sink>, BuildError>;
}

/// A function that builds a component of type `T` from its options.
pub type BuildFn<T> = fn(ConfigTable<'_>, &BuildContext) -> Result<Box<T>, BuildError>;

/// Builds a component from its options.
#[derive(Clone, Copy)]
pub enum Builder {
    /// A source builder.
    Source(BuildFn<dyn Source>),
    /// A transform builder.
    Transform(BuildFn<dyn Transform>),
    /// A sink builder.
    Sink(BuildFn<dyn Sink>),
}

/// One registered plugin.
pub struct Plugin {
    /// The `type` that selects it in a pipeline file.
    pub name: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    /// Named outputs besides the default one.
    pub outputs: &'static [&'static str],
    /// The JSON schema of its options (their docs, types and defaults), for `ecomflow list`.
    pub schema: fn() -> schemars::Schema,
    /// How to build it.
    pub builder: Builder,
}

inventory::collect!(Plugin);

/// The dead-letter output of a pipeline without a `[dead_letter]` table: a sink plugin and
/// its options, declared with `inventory::submit!` by the crate that has the plugin, so the
/// runtime names no plugin. `ecomflow-std` declares its `file` sink writing
/// `dead-letter.jsonl`; a binary without it needs `[dead_letter]` in every pipeline.
#[derive(Debug)]
pub struct DefaultDeadLetter {
    /// The sink plugin's `type`.
    pub sink: &'static str,
    /// Its options, each a string, such as `("path", "dead-letter.jsonl")`.
    pub options: &'static [(&'static str, &'static str)],
}

inventory::collect!(DefaultDeadLetter);

impl DefaultDeadLetter {
    /// Every declaration linked into this binary (one, normally).
    pub fn declared() -> Vec<&'static DefaultDeadLetter> {
        inventory::iter::<DefaultDeadLetter>.into_iter().collect()
    }
}

impl Plugin {
    /// Registration of a source plugin; use with `inventory::submit!`.
    pub const fn source<P: SourcePlugin>(name: &'static str, summary: &'static str) -> Plugin {
        Plugin {
            name,
            summary,
            outputs: &[],
            schema: schema_of::<P::Config>,
            builder: Builder::Source(build_source::<P>),
        }
    }

    /// Registration of a transform plugin; use with `inventory::submit!`.
    pub const fn transform<P: TransformPlugin>(
        name: &'static str,
        summary: &'static str,
    ) -> Plugin {
        Plugin {
            name,
            summary,
            outputs: P::OUTPUTS,
            schema: schema_of::<P::Config>,
            builder: Builder::Transform(build_transform::<P>),
        }
    }

    /// Registration of a sink plugin; use with `inventory::submit!`.
    pub const fn sink<P: SinkPlugin>(name: &'static str, summary: &'static str) -> Plugin {
        Plugin {
            name,
            summary,
            outputs: &[],
            schema: schema_of::<P::Config>,
            builder: Builder::Sink(build_sink::<P>),
        }
    }

    /// The plugin's kind.
    pub fn kind(&self) -> Kind {
        match self.builder {
            Builder::Source(_) => Kind::Source,
            Builder::Transform(_) => Kind::Transform,
            Builder::Sink(_) => Kind::Sink,
        }
    }

    /// Every plugin linked into this program, sorted by kind and name.
    pub fn all() -> Vec<&'static Plugin> {
        let mut all: Vec<&'static Plugin> = inventory::iter::<Plugin>.into_iter().collect();
        all.sort_by_key(|p| (p.kind(), p.name));
        all
    }

    /// The plugin of `kind` named `name`.
    pub fn find(kind: Kind, name: &str) -> Option<&'static Plugin> {
        inventory::iter::<Plugin>
            .into_iter()
            .find(|p| p.kind() == kind && p.name == name)
    }
}

fn schema_of<C: schemars::JsonSchema>() -> schemars::Schema {
    schemars::schema_for!(C)
}

/// Deserializes a table of options into `C`. An error names the option at fault (its dotted
/// path, such as `event_time.max_future`) and carries its position when the file gave one.
pub fn deserialize_config<C: DeserializeOwned>(table: ConfigTable<'_>) -> Result<C, BuildError> {
    serde_path_to_error::deserialize(toml::de::Deserializer::from(table)).map_err(|e| {
        let path = e.path().to_string();
        let mut error = BuildError::from(e.into_inner());
        if !path.is_empty() && path != "." {
            error.field = Some(path);
        }
        error
    })
}

fn build_source<P: SourcePlugin>(
    t: ConfigTable<'_>,
    cx: &BuildContext,
) -> Result<Box<dyn Source>, BuildError> {
    P::build(deserialize_config(t)?, cx)
}

fn build_transform<P: TransformPlugin>(
    t: ConfigTable<'_>,
    cx: &BuildContext,
) -> Result<Box<dyn Transform>, BuildError> {
    P::build(deserialize_config(t)?, cx)
}

fn build_sink<P: SinkPlugin>(
    t: ConfigTable<'_>,
    cx: &BuildContext,
) -> Result<Box<dyn Sink>, BuildError> {
    P::build(deserialize_config(t)?, cx)
}
