#!/usr/bin/env bash
# The rows the flagship's sql sinks receive, for the database references (issue 11's sink
# goal): N generated transactions in WORK/transactions.jsonl, WORK/from-file.toml (the
# flagship reading that file instead of generating), and WORK/captured/<sink>.jsonl for each
# sql sink, written by a first run with file sinks in their place. Builds the release binary.
#
#   scripts/capture-sql-rows.sh WORK N
set -euo pipefail
cd "$(dirname "$0")/.."

work="$1"
n="$2"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet -p ecomflow
bin="$PWD/target/release/ecomflow"
flagship="$PWD/pipelines/ecommerce.toml"
scripts/generate-transactions.sh "$n" "$work/transactions.jsonl"

printf '%s\n' \
  '[sources.transactions]' 'replace = true' 'type = "file"' \
  "path = \"$work/transactions.jsonl\"" '' \
  '[sources.transactions.event_time]' 'field = "transactionDate"' 'format = "seed"' \
  'max_out_of_orderness = "5m"' 'max_future = "1d"' >"$work/from-file.toml"

mkdir -p "$work/captured"
for sink in transactions_table:usd sales_per_category_table:sales_per_category \
  sales_per_day_table:sales_per_day sales_per_month_table:sales_per_month \
  payment_alerts_table:payment_alerts; do
  name="${sink%%:*}"
  printf '%s\n' "[sinks.$name]" 'replace = true' 'type = "file"' \
    "inputs = [\"${sink##*:}\"]" "path = \"$work/captured/$name.jsonl\"" ''
done >"$work/capture.toml"
(cd "$work" && "$bin" run "$flagship" "$work/from-file.toml" \
  "$work/capture.toml" --quiet --set http.enabled=false 2>"$work/capture.log")
