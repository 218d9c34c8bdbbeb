#!/usr/bin/env bash
# Runs the whole ecomflow test suite: formatting, lints, and every crate's tests, the service
# tests against real servers that it starts itself (scripts/services.sh), so it works on a
# fresh clone and in CI. The servers keep running afterwards; `scripts/services.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo not found: install Rust from https://rustup.rs (stable, 1.85 or newer)" >&2
  exit 1
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== services (real PostgreSQL, Kafka and Elasticsearch)"
scripts/services.sh start postgres kafka elasticsearch
eval "$(scripts/services.sh env)"

echo "== test tools (Python's prometheus_client, the reference parser of scrapes; Chromium and"
echo "   playwright-core, for the dashboard's browser test)"
scripts/test-tools.sh
export ECOMFLOW_TEST_PYTHON="$PWD/target/test-tools/python/bin/python"
export ECOMFLOW_TEST_NODE_MODULES="$PWD/target/test-tools/node/node_modules"

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

echo "== ecomflow test (every shipped test file, and pipeline file with tests of its own)"
cargo run --quiet --locked -p ecomflow -- test pipelines/*.toml

echo "== the container image (the Dockerfile, built and run with podman)"
scripts/test-image.sh
