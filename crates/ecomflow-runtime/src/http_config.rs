//! The `[http]` table of a pipeline: where `ecomflow run` serves its metrics, health checks,
//! tap and dashboard.

use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

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
    /// answers every network (in a container, say). The tap shows record contents to whoever
    /// can reach it: there is no authentication.
    #[serde(default = "loopback")]
    pub address: IpAddr,
    /// The port tried first. When it is taken (another run, say) the next ones are tried, up
    /// to `port + 99`, and the one used is printed. `0` lets the system choose one.
    #[serde(default = "default_port")]
    pub port: u16,
    /// After the run ends, how long to go on answering with its final figures, so that a
    /// Prometheus scrape or a person at the dashboard sees the end of a short run. `0s`: stop
    /// with the run.
    #[serde(default, with = "ecomflow_core::duration::zero_allowed")]
    #[schemars(with = "ecomflow_core::duration::ZeroAllowed")]
    pub linger: Duration,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            enabled: true,
            address: loopback(),
            port: DEFAULT_PORT,
            linger: Duration::ZERO,
        }
    }
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
