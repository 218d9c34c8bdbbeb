//! What every Kafka component takes (brokers, extra librdkafka settings), checked offline.

use ecomflow_core::BuildError;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// One librdkafka setting as written in the pipeline file: text, a number or a boolean.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OptionValue {
    /// Text, passed as is.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// Any other number.
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Text(s) => f.write_str(s),
            OptionValue::Integer(i) => write!(f, "{i}"),
            OptionValue::Float(x) => write!(f, "{x}"),
            OptionValue::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Extra librdkafka settings by name, such as `{ "message.timeout.ms" = 30000 }`.
pub type Options = BTreeMap<String, OptionValue>;

/// A librdkafka setting the component sets itself, with what to write instead.
pub struct Managed {
    /// The librdkafka name.
    pub key: &'static str,
    /// The hint shown when `options` sets it.
    pub hint: &'static str,
}

/// A librdkafka setting the component makes from one of its options.
pub struct Setting {
    /// The librdkafka name.
    pub key: &'static str,
    /// Its value.
    pub value: String,
    /// The component's option it comes from, for messages.
    pub option: &'static str,
}

impl Setting {
    /// `key` = `value`, from `option`.
    pub fn new(key: &'static str, value: impl Into<String>, option: &'static str) -> Setting {
        Setting {
            key,
            value: value.into(),
            option,
        }
    }
}

/// The librdkafka configuration of one client: `bootstrap_servers`, the component's own
/// `settings`, then the user's `options`, each checked by librdkafka without any network
/// access (unknown names and bad values are build errors).
pub fn client_config(
    component: &str,
    bootstrap_servers: &str,
    settings: &[Setting],
    options: &Options,
    managed: &[Managed],
) -> Result<ClientConfig, BuildError> {
    if bootstrap_servers.trim().is_empty() {
        return Err(
            BuildError::field("bootstrap_servers", "bootstrap_servers is empty")
                .with_hint("list the brokers as `host:port`, separated by commas"),
        );
    }
    for key in options.keys() {
        if let Some(m) = managed.iter().find(|m| m.key == key.as_str()) {
            return Err(BuildError::field(
                format!("options.{key}"),
                format!("`{key}` is set by the component itself"),
            )
            .with_hint(m.hint));
        }
    }
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers.trim());
    config.set("client.id", format!("ecomflow.{component}"));
    for s in settings {
        config.set(s.key, s.value.as_str());
    }
    for (key, value) in options {
        config.set(key.as_str(), value.to_string());
    }
    // Builds librdkafka's configuration object, which checks every name and value; no
    // client is created, so nothing connects.
    config.create_native_config().map_err(|e| match e {
        KafkaError::ClientConfig(_, description, key, _) => {
            let field = if options.contains_key(&key) {
                format!("options.{key}")
            } else if let Some(s) = settings.iter().find(|s| s.key == key) {
                s.option.to_string()
            } else {
                key
            };
            BuildError::field(field, description)
                .with_hint("see librdkafka's CONFIGURATION.md for the settings and their values")
        }
        other => BuildError::component(other.to_string()),
    })?;
    Ok(config)
}

/// Checks a topic name as Kafka does; with `pattern`, a name starting with `^` is a regular
/// expression (librdkafka checks it when subscribing).
pub fn check_topic(field: &str, topic: &str, pattern: bool) -> Result<(), BuildError> {
    let valid = (pattern && topic.starts_with('^'))
        || (!topic.is_empty()
            && topic.len() <= 249
            && topic != "."
            && topic != ".."
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')));
    if valid {
        return Ok(());
    }
    let mut hint = "topic names are letters, digits, `.`, `_` and `-`".to_string();
    if pattern {
        hint.push_str("; a regular expression starts with `^`");
    }
    Err(BuildError::field(field, format!("`{topic}` is not a topic name")).with_hint(hint))
}

/// A duration in milliseconds as librdkafka reads it (fractions allowed where it takes them).
pub fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    format!("{ms}")
}

/// The value of a librdkafka setting in `config`, for messages.
pub fn brokers(config: &ClientConfig) -> &str {
    config.get("bootstrap.servers").unwrap_or("?")
}

/// Where a group without a committed offset starts reading a partition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    /// The oldest message the topic keeps.
    #[default]
    Earliest,
    /// Only messages written from then on.
    Latest,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, OptionValue)]) -> Options {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    const MANAGED: &[Managed] = &[Managed {
        key: "linger.ms",
        hint: "set `flush_interval` instead",
    }];

    #[test]
    fn passes_settings_and_options_through_as_text() {
        let o = options(&[
            ("message.timeout.ms", OptionValue::Integer(1500)),
            ("socket.keepalive.enable", OptionValue::Bool(true)),
            ("client.id", OptionValue::Text("mine".into())),
        ]);
        let c = client_config(
            "sinks.out",
            " 127.0.0.1:1 ",
            &[Setting::new("batch.num.messages", "7", "batch_size")],
            &o,
            MANAGED,
        )
        .expect("valid");
        assert_eq!(c.get("bootstrap.servers"), Some("127.0.0.1:1"));
        assert_eq!(c.get("batch.num.messages"), Some("7"));
        assert_eq!(c.get("message.timeout.ms"), Some("1500"));
        assert_eq!(c.get("socket.keepalive.enable"), Some("true"));
        assert_eq!(c.get("client.id"), Some("mine"), "options win");
        assert_eq!(brokers(&c), "127.0.0.1:1");
    }

    #[test]
    fn librdkafka_checks_names_and_values_offline() {
        let bad_name = options(&[("no.such.setting", OptionValue::Text("x".into()))]);
        let e = client_config("s", "b:1", &[], &bad_name, MANAGED).expect_err("unknown name");
        assert_eq!(e.field.as_deref(), Some("options.no.such.setting"));
        assert!(e.message.contains("No such configuration property"), "{e}");

        let bad_value = options(&[("message.timeout.ms", OptionValue::Text("soon".into()))]);
        let e = client_config("s", "b:1", &[], &bad_value, MANAGED).expect_err("bad value");
        assert_eq!(e.field.as_deref(), Some("options.message.timeout.ms"));

        let managed = options(&[("linger.ms", OptionValue::Integer(1))]);
        let e = client_config("s", "b:1", &[], &managed, MANAGED).expect_err("managed");
        assert_eq!(e.field.as_deref(), Some("options.linger.ms"));
        assert_eq!(e.hint.as_deref(), Some("set `flush_interval` instead"));

        let e = client_config("s", " ", &[], &Options::new(), MANAGED).expect_err("no brokers");
        assert_eq!(e.field.as_deref(), Some("bootstrap_servers"));

        let setting = [Setting::new("linger.ms", "-1", "flush_interval")];
        let e = client_config("s", "b:1", &setting, &Options::new(), MANAGED).expect_err("range");
        assert_eq!(
            e.field.as_deref(),
            Some("flush_interval"),
            "named by the option: {e}"
        );
    }

    #[test]
    fn topic_names_are_checked() {
        check_topic("topic", "financial_transactions.v-2", false).expect("valid");
        check_topic("topics", "^orders-.*", true).expect("a pattern");
        for bad in ["", ".", "..", "a b", "ü", "^x"] {
            let e = check_topic("topic", bad, false).expect_err(bad);
            assert_eq!(e.field.as_deref(), Some("topic"));
        }
        assert!(check_topic("t", &"x".repeat(250), false).is_err());
    }

    #[test]
    fn millis_keeps_fractions() {
        assert_eq!(millis(Duration::from_millis(5)), "5");
        assert_eq!(millis(Duration::from_micros(500)), "0.5");
        assert_eq!(millis(Duration::ZERO), "0");
    }
}
