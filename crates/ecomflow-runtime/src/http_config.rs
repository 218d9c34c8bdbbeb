//! The `[http]` table of a pipeline: where `ecomflow run` serves its metrics, health checks,
//! tap and dashboard, and who may read them.

use serde::{Deserialize, Deserializer};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

/// The port tried first when the pipeline does not say.
pub const DEFAULT_PORT: u16 = 8640;

/// The `[http]` table of a pipeline. Every option can be set with `--set http.<option>=...`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Whether `ecomflow run` serves `/metrics`, `/health`, `/ready`, the tap and the
    /// dashboard at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The IP address to listen on. The default answers this machine only; `0.0.0.0`
    /// answers every network (in a container, say). The tap and the dashboard's data show
    /// record contents to whoever can reach them: beyond loopback, set a `token` (a run
    /// bound beyond loopback without one says so in a warning).
    #[serde(default = "loopback")]
    pub address: IpAddr,
    /// The port tried first. When it is taken (another run, say) the next ones are tried, up
    /// to `port + 99`, and the one used is printed. `0` lets the system choose one.
    #[serde(default = "default_port")]
    pub port: u16,
    /// After the run ends, how long to go on answering with its final figures, so that a
    /// Prometheus scrape or a person at the dashboard sees the end of a short run. `0s`: stop
    /// with the run.
    #[serde(default)]
    pub linger: ecomflow_core::duration::ZeroAllowed,
    /// A bearer token that every path but `open_paths` and the dashboard's page requires
    /// (`Authorization: Bearer <token>`): the dashboard's data (`/api/...`) and the tap,
    /// which streams whole records. Take it from an environment variable, as the shipped
    /// pipelines do with `token = "${ECOMFLOW_HTTP_TOKEN:-}"`, not from the file. At least
    /// 16 characters; empty: no token. It is never printed.
    #[serde(default, deserialize_with = "token")]
    #[schemars(with = "Option<String>")]
    pub token: Option<Token>,
    /// The paths that answer without the token: the probes and the metrics, which
    /// Kubernetes and Prometheus ask for without credentials. `[]` puts them behind the token
    /// too. Only `/health`, `/ready` and `/metrics` can be listed.
    #[serde(default = "all_open")]
    pub open_paths: Vec<OpenPath>,
    /// How many taps may stream at once; one more is refused (429 Too Many Requests).
    #[serde(default = "default_max_taps")]
    pub max_taps: u32,
    /// The highest `rate` (records a second) a tap may ask for; a higher one is refused (400).
    #[serde(default = "default_max_tap_rate")]
    pub max_tap_rate: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            address: loopback(),
            port: DEFAULT_PORT,
            linger: ecomflow_core::duration::ZeroAllowed::default(),
            token: None,
            open_paths: all_open(),
            max_taps: DEFAULT_MAX_TAPS,
            max_tap_rate: DEFAULT_MAX_TAP_RATE,
        }
    }
}

/// Taps streaming at once unless the pipeline says.
pub const DEFAULT_MAX_TAPS: u32 = 4;

/// The highest tap rate unless the pipeline says, records a second.
pub const DEFAULT_MAX_TAP_RATE: u32 = 1000;

/// The fewest characters a token may have.
pub const MIN_TOKEN_LENGTH: usize = 16;

/// A bearer token. Its `Debug` hides it, and it is never part of a message.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// The token's text, to compare a request's with.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(hidden)")
    }
}

/// A path that can answer without the token. (`Serialize` puts the default list in the
/// option's schema, so the reference shows it.)
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
pub enum OpenPath {
    /// Liveness.
    #[serde(rename = "/health")]
    Health,
    /// Readiness.
    #[serde(rename = "/ready")]
    Ready,
    /// Prometheus metrics.
    #[serde(rename = "/metrics")]
    Metrics,
}

impl OpenPath {
    /// The path, as requested.
    pub fn path(self) -> &'static str {
        match self {
            OpenPath::Health => "/health",
            OpenPath::Ready => "/ready",
            OpenPath::Metrics => "/metrics",
        }
    }
}

/// Reads `token`: empty is none; a short one, or one with spaces or control characters, is
/// refused without showing it.
fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Token>, D::Error> {
    let text = String::deserialize(d)?;
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() < MIN_TOKEN_LENGTH {
        return Err(serde::de::Error::custom(format_args!(
            "a token needs at least {MIN_TOKEN_LENGTH} characters (this one has {})",
            text.chars().count()
        )));
    }
    if !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(serde::de::Error::custom(
            "a token is printable ASCII without spaces (it travels in an HTTP header)",
        ));
    }
    Ok(Some(Token(text)))
}

fn all_open() -> Vec<OpenPath> {
    vec![OpenPath::Health, OpenPath::Ready, OpenPath::Metrics]
}

fn default_max_taps() -> u32 {
    DEFAULT_MAX_TAPS
}

fn default_max_tap_rate() -> u32 {
    DEFAULT_MAX_TAP_RATE
}

fn yes() -> bool {
    true
}

fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn default_port() -> u16 {
    DEFAULT_PORT
}
