#!/usr/bin/env bash
# Writes N seed transactions (the generator, seed 1, all good) to FILE as JSON lines, with the
# release build of ecomflow; the benchmarks' input. FILE is replaced, not appended to.
#
#   scripts/generate-transactions.sh N FILE
set -euo pipefail
cd "$(dirname "$0")/.."
n="$1"
file="$(realpath -m "$2")"
pipeline="$(mktemp --suffix=.toml)"
trap 'rm -f "$pipeline"' EXIT
cat >"$pipeline" <<TOML
[sources.g]
type = "generator"
count = $n
seed = 1

[sinks.f]
type = "file"
inputs = ["g"]
path = "$file"
append = false

[dead_letter]
type = "blackhole"
TOML
target/release/ecomflow run "$pipeline" --quiet --set http.enabled=false 2>/dev/null
