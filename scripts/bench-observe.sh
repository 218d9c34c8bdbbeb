#!/usr/bin/env bash
# What watching a run costs: the flagship's analytics (file -> event time -> validate -> USD ->
# filters -> three calendar aggregates -> the alert window -> blackhole, the section of
# pipelines/ecommerce.toml) over N generated transactions on one core, timed as whole
# processes with /usr/bin/time, in turns:
#   served     the HTTP server on (the default), nobody asking
#   scraped    the same, while a client asks for /metrics, /api/status and /api/charts every
#              half second (a Prometheus scrape and an open dashboard, ten times as often)
#   off        --set http.enabled=false (the telemetry counters still run: they are the
#              end-of-run table's)
#   base       BASE_BIN, an ecomflow built before the telemetry existed, if given
# and prints each one's median wall and CPU time over RUNS turns (default 5).
#
#   scripts/bench-observe.sh [N]                      # N defaults to 1,000,000
#   BASE_BIN=/path/to/old/ecomflow RUNS=7 scripts/bench-observe.sh
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-1000000}"
runs="${RUNS:-5}"
bin="$PWD/target/release/ecomflow"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet -p ecomflow
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

scripts/generate-transactions.sh "$n" "$work/transactions.jsonl"

{
  echo '[sources.transactions]'
  echo 'type = "file"'
  echo "path = \"$work/transactions.jsonl\""
  echo 'event_time = { field = "transactionDate", max_out_of_orderness = "5m" }'
  sed -n '/^# ---- analytics/,/^# ---- outputs/p' pipelines/ecommerce.toml
  # Named as the flagship's table, which the analytics' `storable` asks what it refuses.
  echo '[sinks.transactions_table]'
  echo 'type = "blackhole"'
  echo 'inputs = ["storable", "sales_per_category", "sales_per_day", "sales_per_month", "payment_alerts"]'
  echo '[dead_letter]'
  echo 'type = "blackhole"'
} >"$work/analytics.toml"

# One run of ecomflow: "wall cpu" seconds of that process alone.
measure() {
  /usr/bin/time -f '%e %U %S' -o "$work/one.time" "$@" >/dev/null 2>"$work/run.log"
  awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$work/one.time"
}

# The same, with a client asking every half second while it runs.
scraped() {
  /usr/bin/time -f '%e %U %S' -o "$work/one.time" \
    "$bin" run "$work/analytics.toml" --threads 1 --quiet --set http.port=0 2>"$work/scraped.log" &
  local pid=$! url=""
  while [ -z "$url" ] && kill -0 "$pid" 2>/dev/null; do
    url="$(grep -o 'http://127.0.0.1:[0-9]*/' "$work/scraped.log" | head -1 || true)"
    sleep 0.05
  done
  while kill -0 "$pid" 2>/dev/null; do
    curl -s "${url}metrics" "${url}api/status" "${url}api/charts" >/dev/null || true
    sleep 0.5
  done
  wait "$pid"
  awk '{ printf "%.3f %.3f\n", $1, $2 + $3 }' "$work/one.time"
}

kinds=(served scraped off)
[ -n "${BASE_BIN:-}" ] && kinds+=(base)
for kind in "${kinds[@]}"; do : >"$work/$kind.times"; done
for ((i = 1; i <= runs; i++)); do
  for kind in "${kinds[@]}"; do
    case "$kind" in
      served) measure "$bin" run "$work/analytics.toml" --threads 1 --quiet --set http.port=0 ;;
      scraped) scraped ;;
      off) measure "$bin" run "$work/analytics.toml" --threads 1 --quiet --set http.enabled=false ;;
      base) measure "$BASE_BIN" run "$work/analytics.toml" --threads 1 ;;
    esac >>"$work/$kind.times"
  done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
printf '%-8s %10s %10s   (%s transactions, median of %s runs)\n' run wall cpu "$n" "$runs"
for kind in "${kinds[@]}"; do
  wall="$(cut -d' ' -f1 "$work/$kind.times" | median)"
  cpu="$(cut -d' ' -f2 "$work/$kind.times" | median)"
  printf '%-8s %9.2fs %9.2fs\n' "$kind" "$wall" "$cpu"
done
