#!/usr/bin/env bash
# The flagship into PostgreSQL against psql loading the same rows (issue 11's sink goal): N
# generated transactions read from a file by the whole flagship (its analytics and its five
# PostgreSQL tables, `--threads 2`, no checkpoint store), against psql running what
# scripts/postgres_reference.py prepares from the rows the flagship's sql sinks received
# (captured by scripts/capture-sql-rows.sh): for each table, `\copy` of a CSV file into a
# staging table and one INSERT ... ON CONFLICT, all in one transaction. Each run gets two
# fresh databases of the server scripts/services.sh starts; the tables are compared row for
# row afterwards. Prints each one's median over RUNS (default 3) and the ratio.
#
#   scripts/bench-postgres.sh [N]          # N defaults to 1,000,000
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-1000000}"
runs="${RUNS:-3}"
scripts/services.sh start postgres >/dev/null
eval "$(scripts/services.sh env)"
bin="$PWD/target/release/ecomflow"
flagship="$PWD/pipelines/ecommerce.toml"
server="${ECOMFLOW_TEST_POSTGRES_URL%/*}"
id="bench_pg_$(date +%s)_$$"
work="$(mktemp -d)"
cleanup() {
  for db in "${id}_ours" "${id}_psql"; do
    psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
scripts/capture-sql-rows.sh "$work" "$n"
python3 scripts/postgres_reference.py "$flagship" "$work/captured" "$work/reference"

fresh() {
  psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" 2>/dev/null
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: >"$work/ecomflow.times"
: >"$work/reference.times"
for ((i = 1; i <= runs; i++)); do
  fresh "${id}_ours"
  (cd "$work" && DATABASE_URL="$server/${id}_ours" /usr/bin/time -f '%e' -o "$work/one.time" \
    "$bin" run "$flagship" "$work/from-file.toml" --threads 2 --quiet --set http.enabled=false \
    >/dev/null 2>"$work/run.log")
  cat "$work/one.time" >>"$work/ecomflow.times"
  fresh "${id}_psql"
  psql -q "$server/${id}_psql" -f migrations/0001_ecommerce_tables.sql
  /usr/bin/time -f '%e' -o "$work/one.time" psql -q "$server/${id}_psql" -f "$work/reference/upsert.sql"
  cat "$work/one.time" >>"$work/reference.times"
done
# Both hold the same tables: every row, compared as text.
for t in transactions sales_per_category sales_per_day sales_per_month payment_alerts; do
  for side in ours psql; do
    psql -tA "$server/${id}_$side" -c "SELECT t::text FROM $t t" | sort >"$work/$t.$side"
  done
  if ! cmp -s "$work/$t.ours" "$work/$t.psql"; then
    echo "$t: the flagship's $(wc -l <"$work/$t.ours") rows differ from psql's $(wc -l <"$work/$t.psql")" >&2
    diff "$work/$t.ours" "$work/$t.psql" | head -5 >&2
    exit 1
  fi
  echo "$t: $(wc -l <"$work/$t.ours") rows, the same in both"
done
ours="$(median <"$work/ecomflow.times")"
theirs="$(median <"$work/reference.times")"
echo "the flagship into PostgreSQL ($n transactions): $ours s (median of $runs)"
echo "the same rows by psql (\\copy + INSERT ... ON CONFLICT, one transaction): $theirs s"
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "ratio: %.2fx (goal: 1.3x)\n", a / b }'
