#!/usr/bin/env bash
# The embedded flagship against SQLite's own time for the same rows (issue 11's sink goal):
# N generated transactions read from a file by the whole flagship (its analytics and its five
# SQLite tables, `--threads 2`), against scripts/sqlite_reference.py upserting exactly the
# rows the flagship's sql sinks received (captured by scripts/capture-sql-rows.sh in a first
# run with file sinks in their place) through Python's sqlite3, once in one transaction and
# once in transactions of 20,000 rows (the sink's default `max_batch_size`: a sink commits as
# it goes). Prints each one's median over RUNS (default 3) and the ratios.
#
#   scripts/bench-sqlite.sh [N]          # N defaults to 1,000,000
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-1000000}"
runs="${RUNS:-3}"
bin="$PWD/target/release/ecomflow"
flagship="$PWD/pipelines/ecommerce.toml"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
scripts/capture-sql-rows.sh "$work" "$n"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
: >"$work/ecomflow.times"
: >"$work/reference.times"
: >"$work/committing.times"
for ((i = 1; i <= runs; i++)); do
  rm -f "$work"/ecomflow.db* "$work"/reference.db* "$work"/committing.db*
  (cd "$work" && DATABASE_URL="sqlite://$work/ecomflow.db" /usr/bin/time -f '%e' -o "$work/one.time" \
    "$bin" run "$flagship" "$work/from-file.toml" --threads 2 --quiet --set http.enabled=false \
    >/dev/null 2>"$work/run.log")
  cat "$work/one.time" >>"$work/ecomflow.times"
  python3 scripts/sqlite_reference.py "$flagship" "$work/captured" "$work/reference.db" \
    | tee -a "$work/reference.log" | cut -d' ' -f1 >>"$work/reference.times"
  python3 scripts/sqlite_reference.py "$flagship" "$work/captured" "$work/committing.db" 20000 \
    | tee -a "$work/committing.log" | cut -d' ' -f1 >>"$work/committing.times"
done
# Both hold the same tables: every row, compared as text.
python3 - "$work/ecomflow.db" "$work/reference.db" <<'PY'
import sqlite3, sys
a, b = (sqlite3.connect(f) for f in sys.argv[1:3])
for t in ("transactions", "sales_per_category", "sales_per_day", "sales_per_month", "payment_alerts"):
    rows = [sorted(map(repr, db.execute(f"SELECT * FROM {t}"))) for db in (a, b)]
    if rows[0] != rows[1]:
        sys.exit(f"{t}: the flagship's {len(rows[0])} rows differ from the reference's {len(rows[1])}")
    print(f"{t}: {len(rows[0])} rows, the same in both")
PY
ours="$(median <"$work/ecomflow.times")"
theirs="$(median <"$work/reference.times")"
committing="$(median <"$work/committing.times")"
echo "the flagship into SQLite ($n transactions): $ours s (median of $runs)"
echo "the same upserts by Python's sqlite3, one transaction: $theirs s ($(tail -1 "$work/reference.log" | cut -d' ' -f3-))"
echo "the same upserts by Python's sqlite3, 20,000 rows a transaction: $committing s ($(tail -1 "$work/committing.log" | cut -d' ' -f3-))"
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "ratio to one transaction: %.2fx (goal: 1.3x)\n", a / b }'
awk -v a="$ours" -v b="$committing" 'BEGIN { printf "ratio to the same commits: %.2fx\n", a / b }'
