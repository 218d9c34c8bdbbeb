#!/usr/bin/env bash
# Measures the real stack end to end on the servers scripts/services.sh starts: N transactions
# (default 200000) are put on a fresh topic by pipelines/generate.toml, then the flagship with
# the pipelines/real-stack.toml overlay (checkpoints every 5 s) consumes them to the end into a
# fresh PostgreSQL database and Elasticsearch index. Prints the run summary, its wall time,
# CPU share and peak memory, and what PostgreSQL and Elasticsearch hold afterwards.
#
#   scripts/bench-real-stack.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-200000}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
scripts/services.sh start postgres kafka elasticsearch
eval "$(scripts/services.sh env)"
cargo build --release --locked -p ecomflow
bin="$PWD/target/release/ecomflow"

id="bench_$(date +%s)_$$"
work="$(mktemp -d)"
database="${ECOMFLOW_TEST_POSTGRES_URL%/*}/$id"
index="transactions_$id"
cleanup() {
  psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $id" >/dev/null || true
  curl -s -X DELETE "$ECOMFLOW_TEST_ELASTICSEARCH/$index" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "CREATE DATABASE $id"

echo "== generate.toml: $n transactions (+1% broken) -> topic $id"
(cd "$work" && KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" \
  "$bin" run "$OLDPWD/pipelines/generate.toml" \
  --set "sinks.kafka.topic=\"$id\"" --set "sources.transactions.count=$n")

echo "== flagship + real-stack.toml: topic -> PostgreSQL + Elasticsearch"
(cd "$work" && KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" DATABASE_URL="$database" \
  ELASTICSEARCH_URL="$ECOMFLOW_TEST_ELASTICSEARCH" \
  /usr/bin/time -f "wall %e s, CPU %P, max RSS %M kB" \
  "$bin" run "$OLDPWD/pipelines/ecommerce.toml" "$OLDPWD/pipelines/real-stack.toml" \
  --set "sources.transactions.topics=[\"$id\"]" \
  --set "sources.transactions.group_id=\"$id\"" \
  --set "sources.transactions.stop_at_end=true" \
  --set "sinks.transactions_index.index=\"$index\"" >/dev/null)

curl -s -X POST "$ECOMFLOW_TEST_ELASTICSEARCH/$index/_refresh" >/dev/null
echo "Elasticsearch $index: $(curl -s "$ECOMFLOW_TEST_ELASTICSEARCH/$index/_count")"
echo "PostgreSQL transactions: $(psql -tA "$database" -c 'SELECT COUNT(*) FROM transactions')"
echo "versions: $(basename "$(ls -d "${ECOMFLOW_CACHE_DIR:-$HOME/.cache/ecomflow}"/kafka-* | head -1)"), \
PostgreSQL $(psql -tA "$ECOMFLOW_TEST_POSTGRES_URL" -c 'SHOW server_version'), \
Elasticsearch $(curl -s "$ECOMFLOW_TEST_ELASTICSEARCH/_nodes/_local?filter_path=nodes.*.version" |
  grep -o '"version":"[^"]*"' | cut -d'"' -f4)"
