//! The end-to-end tests: the `ecomflow` binary run as a user runs it, against SQLite files and
//! the real servers (restarts, SIGKILLs, rebalances, outages, the dashboard in Chromium, the
//! compose file, the docs), linked once into this one test binary. Each module is one area;
//! `common` holds their shared helpers. Run one area with `cargo test --test e2e <module>::`.

mod common;

mod checkpoint_links;
mod cli;
mod compose;
mod dashboard;
mod docs;
mod durations;
mod exactly_once;
mod flagship;
mod http_access;
mod kafka_metrics;
mod kafka_unreachable;
mod kibana;
mod live_view;
mod load_props;
mod metrics;
mod non_finite;
mod outages;
mod poison_pill;
mod real_stack;
mod real_stack_restart;
mod rebalance_kills;
mod restart;
mod scale_out;
mod sqlite_stall;
mod state_kills;
mod static_membership;
mod tables_agree;
mod tap;
mod test_command;
mod test_command_real_sinks;
mod two_sources_restart;
mod zombie;
