#!/usr/bin/env bash
# The elasticsearch sink against curl sending the same bulk bodies (issue 11's sink goal): N
# generated transactions read from a file and indexed by the sink (`id_field`, the flagship's
# template, batches of 1000, CONCURRENCY requests in flight, default 2), against curl sending
# the very documents the sink sends (captured by a first run with a file sink in its place),
# cut into the same bodies of 1000, with as many requests in flight (`curl --parallel`). Each
# run writes two fresh indices of the server scripts/services.sh starts; both must hold N
# documents. Prints each one's median over RUNS (default 3), the ratio, and the sink's time
# with gzip-compressed bodies (`compression = true`).
#
#   scripts/bench-elasticsearch.sh [N]          # N defaults to 1,000,000
set -euo pipefail
cd "$(dirname "$0")/.."

n="${1:-1000000}"
runs="${RUNS:-3}"
concurrency="${CONCURRENCY:-2}"
scripts/services.sh start elasticsearch >/dev/null
eval "$(scripts/services.sh env)"
es="$ECOMFLOW_TEST_ELASTICSEARCH"
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}" cargo build --release --quiet -p ecomflow
bin="$PWD/target/release/ecomflow"
template="$PWD/elasticsearch/transactions-template.json"
work="$(mktemp -d)"
id="bench_es_$(date +%s)_$$"
cleanup() {
  curl -s -X DELETE "$es/transactions_${id}_*" >/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
scripts/generate-transactions.sh "$n" "$work/transactions.jsonl"

# The sink's pipeline; `sink.toml` is given after it to swap the sink.
printf '%s\n' '[sources.transactions]' 'type = "file"' \
  "path = \"$work/transactions.jsonl\"" '' \
  '[sinks.index]' 'type = "elasticsearch"' 'inputs = ["transactions"]' "url = \"$es\"" \
  'index = "INDEX"' 'id_field = "transactionId"' "template = \"$template\"" \
  'batch_size = 1000' "concurrency = $concurrency" >"$work/es.toml"
printf '%s\n' '[sinks.index]' 'replace = true' 'type = "file"' 'inputs = ["transactions"]' \
  "path = \"$work/documents.jsonl\"" >"$work/capture.toml"
"$bin" run "$work/es.toml" "$work/capture.toml" --quiet --set http.enabled=false 2>/dev/null

# The same documents as bulk bodies of 1000, sent by curl to an index (curl_config INDEX).
python3 scripts/elasticsearch_reference.py bodies "$work/documents.jsonl" "$work/bodies"
curl_config() { python3 scripts/elasticsearch_reference.py config "$work/bodies" "$es" "$1"; }
curl -s -X PUT "$es/_index_template/transactions-template" -H 'Content-Type: application/json' \
  --data-binary "@$template" >/dev/null

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
count() {
  curl -s -X POST "$es/$1/_refresh" >/dev/null
  curl -s "$es/$1/_count" | python3 -c 'import json, sys; print(json.load(sys.stdin)["count"])'
}
timed() { /usr/bin/time -f '%e' -o "$work/one.time" "$@"; cat "$work/one.time"; }
: >"$work/ours.times"
: >"$work/curl.times"
: >"$work/gzip.times"
for ((i = 1; i <= runs; i++)); do
  for side in ours gzip curl; do
    index="transactions_${id}_${side}_$i"
    case "$side" in
      ours) timed "$bin" run "$work/es.toml" --quiet --set http.enabled=false \
        --set "sinks.index.index=\"$index\"" >>"$work/ours.times" 2>/dev/null ;;
      gzip) timed "$bin" run "$work/es.toml" --quiet --set http.enabled=false \
        --set "sinks.index.index=\"$index\"" --set sinks.index.compression=true \
        >>"$work/gzip.times" 2>/dev/null ;;
      curl)
        curl_config "$index" >"$work/curl.config"
        timed curl --parallel --parallel-max "$concurrency" -s -K "$work/curl.config" \
          >>"$work/curl.times" 2>/dev/null ;;
    esac
    got="$(count "$index")"
    if [ "$got" != "$n" ]; then
      echo "$index holds $got documents, not $n" >&2
      exit 1
    fi
    curl -s -X DELETE "$es/$index" >/dev/null
  done
done
ours="$(median <"$work/ours.times")"
theirs="$(median <"$work/curl.times")"
echo "the elasticsearch sink ($n documents, concurrency $concurrency): $ours s (median of $runs; runs: $(paste -sd' ' "$work/ours.times"))"
echo "curl, the same bodies, $concurrency in flight: $theirs s (runs: $(paste -sd' ' "$work/curl.times"))"
echo "the sink with compression = true: $(median <"$work/gzip.times") s (runs: $(paste -sd' ' "$work/gzip.times"))"
awk -v a="$ours" -v b="$theirs" 'BEGIN { printf "ratio: %.2fx (goal: 1.3x)\n", a / b }'
