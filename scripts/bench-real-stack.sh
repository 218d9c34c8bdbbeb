#!/usr/bin/env bash
# The real stack end to end against its two databases (issue 11's sink goal), on the servers
# scripts/services.sh starts: N transactions (default 200000) are put on a fresh topic by
# pipelines/generate.toml; then, RUNS times (default 3), the flagship with the
# pipelines/real-stack.toml overlay (checkpoints every 5 s) consumes them to the end into a
# fresh PostgreSQL database and Elasticsearch index, and the references load the same data
# into another fresh database and index, both at the same time as the flagship's two sinks
# write theirs:
#   - psql: per table, `\copy` of the rows the flagship's run left (its tables dumped as CSV)
#     into a staging table and one INSERT ... ON CONFLICT, all in one transaction;
#   - curl: the very documents the elasticsearch sink sends (captured by a run with a file
#     sink in its place), in the sink's bodies of 1000, 2 requests in flight.
# Prints the flagship's wall time, CPU share and peak memory, each reference's time and the
# pair's (the slower one), the ratio, and checks that both sides hold the same tables and
# document count.
#
#   scripts/bench-real-stack.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-200000}"
runs="${RUNS:-3}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
scripts/services.sh start postgres kafka elasticsearch
eval "$(scripts/services.sh env)"
cargo build --release --locked -p ecomflow
bin="$PWD/target/release/ecomflow"
es="$ECOMFLOW_TEST_ELASTICSEARCH"
server="${ECOMFLOW_TEST_POSTGRES_URL%/*}"
tables="transactions sales_per_category_partials sales_per_day_partials sales_per_month_partials failures_per_minute_partials"

id="bench_$(date +%s)_$$"
work="$(mktemp -d)"
cleanup() {
  for ((i = 1; i <= runs; i++)); do
    for side in ours ref; do
      psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS ${id}_${side}_$i" >/dev/null 2>&1 || true
    done
  done
  curl -s -X DELETE "$es/transactions_${id}_*" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
fresh() {
  psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now() { date +%s.%N; }
count() {
  curl -s -X POST "$es/$1/_refresh" >/dev/null
  curl -s "$es/$1/_count" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])'
}
# The flagship on the topic: flagship GROUP DATABASE_URL INDEX [a command to run it under];
# OVERLAY, when set, is one more pipeline file given after real-stack.toml, and an empty
# INDEX leaves the elasticsearch sink's index alone (the overlay may replace the sink).
flagship() {
  local group="$1" database="$2" index=()
  [ -z "$3" ] || index=(--set "sinks.transactions_index.index=\"$3\"")
  shift 3
  (cd "$work" && KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" DATABASE_URL="$database" \
    ELASTICSEARCH_URL="$es" ECOMFLOW_STATE_DIR="$work/state-$group" \
    "$@" "$bin" run "$OLDPWD/pipelines/ecommerce.toml" "$OLDPWD/pipelines/real-stack.toml" \
    ${OVERLAY:+"$OVERLAY"} \
    --set "sources.transactions.topics=[\"$id\"]" \
    --set "sources.transactions.group_id=\"$group\"" \
    --set "sources.transactions.stop_at_end=true" \
    "${index[@]}" --quiet --set http.enabled=false)
}

echo "== generate.toml: $n transactions (+1% broken) -> topic $id"
(cd "$work" && KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" \
  "$bin" run "$OLDPWD/pipelines/generate.toml" --quiet --set http.enabled=false \
  --set "sinks.kafka.topic=\"$id\"" --set "sources.transactions.count=$n")

echo "== the documents the elasticsearch sink sends (a run with a file sink in its place)"
{
  printf '%s\n' '[sinks.transactions_index]' 'replace = true' 'type = "file"' \
    'inputs = ["usd"]' "path = \"$work/documents.jsonl\"" ''
  for sink in transactions_table:usd sales_per_category_table:sales_per_category \
    sales_per_day_table:sales_per_day sales_per_month_table:sales_per_month \
    payment_alerts_table:failures_per_minute; do
    printf '%s\n' "[sinks.${sink%%:*}]" 'replace = true' 'type = "blackhole"' \
      "inputs = [\"${sink##*:}\"]" ''
  done
} >"$work/capture.toml"
OVERLAY="$work/capture.toml" flagship "${id}_capture" "sqlite://$work/unused.db" "" \
  >/dev/null 2>"$work/capture.log"
python3 scripts/elasticsearch_reference.py bodies "$work/documents.jsonl" "$work/bodies"
curl -s -X PUT "$es/_index_template/transactions-template" -H 'Content-Type: application/json' \
  --data-binary "@elasticsearch/transactions-template.json" >/dev/null

: >"$work/ours.times"
: >"$work/pair.times"
: >"$work/psql.times"
: >"$work/curl.times"
for ((i = 1; i <= runs; i++)); do
  ours="${id}_ours_$i"
  ref="${id}_ref_$i"
  echo "== run $i: the flagship + real-stack.toml: topic -> PostgreSQL + Elasticsearch"
  fresh "$ours"
  flagship "${id}_$i" "$server/$ours" "transactions_$ours" \
    /usr/bin/time -f "%e %P %M" -o "$work/one.time" >/dev/null 2>"$work/run.log"
  read -r wall cpu rss <"$work/one.time"
  echo "$wall" >>"$work/ours.times"
  echo "wall $wall s, CPU $cpu, max RSS $rss kB"

  # The reference loads what the flagship's run left in PostgreSQL.
  if [ "$i" = 1 ]; then
    script=("\\set ON_ERROR_STOP on" "BEGIN;")
    for t in $tables; do
      psql -q "$server/$ours" -c "\\copy (SELECT * FROM $t) TO '$work/$t.csv' CSV"
      key="$(psql -tA "$server/$ours" -c "SELECT string_agg(a.attname, ', ' ORDER BY array_position(i.indkey, a.attnum))
        FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
        WHERE i.indrelid = '$t'::regclass AND i.indisprimary")"
      update="$(psql -tA "$server/$ours" -c "SELECT string_agg(attname || ' = excluded.' || attname, ', ' ORDER BY attnum)
        FROM pg_attribute WHERE attrelid = '$t'::regclass AND attnum > 0 AND NOT attisdropped
        AND attname NOT IN (SELECT unnest(string_to_array('$key', ', ')))")"
      script+=("CREATE TEMPORARY TABLE stage_$t (LIKE $t) ON COMMIT DROP;"
        "\\copy stage_$t FROM '$work/$t.csv' CSV"
        "INSERT INTO $t SELECT * FROM stage_$t ON CONFLICT ($key) DO UPDATE SET $update;")
    done
    script+=("COMMIT;")
    printf '%s\n' "${script[@]}" >"$work/upsert.sql"
  fi
  fresh "$ref"
  psql -q "$server/$ref" -f migrations/scale-out/0001_scale_out_tables.sql
  python3 scripts/elasticsearch_reference.py config "$work/bodies" "$es" "transactions_$ref" >"$work/curl.config"
  start="$(now)"
  /usr/bin/time -f '%e' -o "$work/psql.time" psql -q "$server/$ref" -f "$work/upsert.sql" &
  /usr/bin/time -f '%e' -o "$work/curl.time" curl --parallel --parallel-max 2 -s -K "$work/curl.config" 2>/dev/null &
  wait
  awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f\n", b - a }' >>"$work/pair.times"
  cat "$work/psql.time" >>"$work/psql.times"
  cat "$work/curl.time" >>"$work/curl.times"
  echo "references at the same time: psql $(cat "$work/psql.time") s, curl $(cat "$work/curl.time") s"

  # Both sides hold the same.
  for t in $tables; do
    a="$(psql -tA "$server/$ours" -c "SELECT md5(string_agg(t::text, E'\n' ORDER BY t::text)) || ' ' || count(*) FROM $t t")"
    b="$(psql -tA "$server/$ref" -c "SELECT md5(string_agg(t::text, E'\n' ORDER BY t::text)) || ' ' || count(*) FROM $t t")"
    [ "$a" = "$b" ] || { echo "$t differs: the flagship's $a, the reference's $b" >&2; exit 1; }
    [ "$i" = 1 ] && echo "$t: ${a#* } rows, the same in both"
  done
  got="$(count "transactions_$ours")"
  theirs="$(count "transactions_$ref")"
  [ "$got" = "$theirs" ] || { echo "Elasticsearch: the flagship's $got documents, curl's $theirs" >&2; exit 1; }
  [ "$i" = 1 ] && echo "Elasticsearch: $got documents in both"
  curl -s -X DELETE "$es/transactions_$ours,transactions_$ref" >/dev/null
done

a="$(median <"$work/ours.times")"
b="$(median <"$work/pair.times")"
echo "the flagship, Kafka -> PostgreSQL + Elasticsearch ($n transactions): $a s (median of $runs; runs: $(paste -sd' ' "$work/ours.times"))"
echo "psql and curl at the same time: $b s (runs: $(paste -sd' ' "$work/pair.times")); psql alone in it $(median <"$work/psql.times") s, curl $(median <"$work/curl.times") s"
awk -v a="$a" -v b="$b" 'BEGIN { printf "ratio: %.2fx (goal: 1.3x)\n", a / b }'
echo "versions: $(basename "$(ls -d "${ECOMFLOW_CACHE_DIR:-$HOME/.cache/ecomflow}"/kafka-* | head -1)"), \
PostgreSQL $(psql -tA "$ECOMFLOW_TEST_POSTGRES_URL" -c 'SHOW server_version'), \
Elasticsearch $(curl -s "$es/_nodes/_local?filter_path=nodes.*.version" |
  grep -o '"version":"[^"]*"' | cut -d'"' -f4)"
