#!/usr/bin/env bash
# What keyed state costs: N generated transactions (each its own transactionId) through one
# aggregate keyed by transactionId and day(event_time) with allowed_lateness = "400d", so every
# transaction stays an open group to the end (as a per-order total, a deduplication or a join
# buffer would), file -> aggregate -> blackhole, release build, --threads 1. Each N runs without
# checkpoints and with a checkpoint directory every INTERVAL, and prints the wall time, the peak
# resident memory, and what the checkpoint directory holds at the end (checkpoint.json and the
# keyed-state store). MEMORY sets `[state] memory` (default: the pipeline's default).
#
#   scripts/bench-state.sh [N...]                      # N defaults to 100000 300000
#   INTERVALS="1s 10s" TIMEOUT=600 scripts/bench-state.sh 1000000
#   MEMORY=256MiB INTERVALS=10s scripts/bench-state.sh 10000000
#
# KEYS replaces the aggregate's keys (default: transactionId and day(event_time)). With
# KEYS='{ transaction_id = "transactionId" }' no group ever closes (10,000,000 transactions:
# 10,000,000 groups; the source then reads no event time, since the generator's dates run
# 19 years ahead and the far future is refused); with KEYS='{ p = "productId", b = "productBrand", m = "paymentMethod",
# c = "currency", s = "paymentStatus" }' the same pipeline holds 1,500 groups.
#
# A run that takes longer than TIMEOUT seconds (default 600) is stopped and reported as such,
# with the records it had read by then.
set -euo pipefail
cd "$(dirname "$0")/.."

sizes=("${@:-100000 300000}")
read -r -a sizes <<<"${sizes[*]}"
intervals="${INTERVALS:-1s 10s}"
timeout_s="${TIMEOUT:-600}"
keys="${KEYS:-{ transaction_id = \"transactionId\", day = \"day(event_time)\" \}}"
memory=()
[ -z "${MEMORY:-}" ] || memory=(--set "state.memory=\"$MEMORY\"")
bin="$PWD/target/release/ecomflow"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet -p ecomflow
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The pipeline over $1, keeping checkpoints in $2 every $3 (no [checkpoint] table when $2 is
# empty).
pipeline() {
  cat <<TOML
[sources.transactions]
type = "file"
path = "$1"
$(case "$keys" in *event_time*) echo 'event_time = { field = "transactionDate", max_out_of_orderness = "5m" }' ;; esac)

[transforms.per_transaction]
type = "aggregate"
inputs = ["transactions"]
keys = $keys
aggregations = { total = "sum(totalAmount)", items = "count()" }
allowed_lateness = "400d"

[sinks.out]
type = "blackhole"
inputs = ["per_transaction"]

[dead_letter]
type = "blackhole"
TOML
  if [ -n "$2" ]; then
    printf '\n[checkpoint]\ndir = "%s"\ninterval = "%s"\n' "$2" "$3"
  fi
}

printf '%-10s %-12s %10s %12s %14s %s\n' "groups" "checkpoints" "wall s" "peak MB" "state dir MB" "note"
for n in "${sizes[@]}"; do
  input="$work/transactions-$n.jsonl"
  scripts/generate-transactions.sh "$n" "$input"
  for interval in none $intervals; do
    state=""
    [ "$interval" = none ] || state="$work/state-$n-$interval"
    rm -rf "$state"
    pipeline "$input" "$state" "$interval" >"$work/state.toml"
    note=""
    set +e
    timeout --signal=KILL "$timeout_s" /usr/bin/time -f '%e %M' -o "$work/one.time" \
      "$bin" run "$work/state.toml" --threads 1 --set http.enabled=false "${memory[@]}" \
      >"$work/run.out" 2>&1
    code=$?
    set -e
    if [ "$code" -ne 0 ]; then
      read_so_far="$(grep -o 'sources.transactions *[0-9]*' "$work/run.out" | tail -1 || true)"
      note="stopped after ${timeout_s}s (exit $code) ${read_so_far}"
      wall="$timeout_s"
      peak="-"
    else
      read -r wall kb <"$work/one.time"
      peak=$((kb / 1024))
    fi
    size="-"
    if [ -n "$state" ] && [ -f "$state/checkpoint.json" ]; then
      size="$(du -sm "$state" | cut -f1)"
    fi
    printf '%-10s %-12s %10s %12s %14s %s\n' "$n" "$interval" "$wall" "$peak" "$size" "$note"
  done
done
