#!/usr/bin/env bash
# Runs the whole ecomflow test suite: formatting, lints, and every crate's tests, the service
# tests against real servers that it starts itself (scripts/services.sh), so it works on a
# fresh clone and in CI. The servers keep running afterwards; `scripts/services.sh stop`.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

echo "== what this machine must have (scripts/check-machine.sh)"
scripts/check-machine.sh
# What lies in the work tree before the tests, to find what they leave behind.
left_before=$(git status --porcelain --ignored --untracked-files=all 2>/dev/null | grep -Ev '^.. "?target/' || true)
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== services (real PostgreSQL, Kafka and Elasticsearch)"
scripts/services.sh start postgres kafka elasticsearch
eval "$(scripts/services.sh env)"
# The databases earlier runs' tests made (each names its own, ecomflow_...) would pile up on
# the server: gigabytes after a few hundred runs. Nothing else uses this server.
psql -qAt "$ECOMFLOW_TEST_POSTGRES_URL" -c \
  "SELECT datname FROM pg_database WHERE datname LIKE 'ecomflow\_%'" |
  while read -r db; do
    psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
  done

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

echo "== nothing left behind in the work tree"
left_after=$(git status --porcelain --ignored --untracked-files=all 2>/dev/null | grep -Ev '^.. "?target/' || true)
left=$(comm -13 <(sort <<<"$left_before") <(sort <<<"$left_after"))
if [ -n "$left" ]; then
  echo "the tests left these behind (write into a temporary directory instead):" >&2
  echo "$left" >&2
  exit 1
fi
