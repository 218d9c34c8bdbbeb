#!/usr/bin/env bash
# Measures the flagship as several processes of one consumer group on the servers
# scripts/services.sh starts, with checkpoints in PostgreSQL (checkpoint.url) and without the
# Elasticsearch sink:
#   1. throughput: N transactions (default 300000) on a topic of P partitions (default 6),
#      read to the end by 1, 2 and 3 processes started together: wall time, events/s, and
#      the CPU each process spends per event it read;
#   2. what exactly-once costs: one process, checkpoints in a directory (rows written as they
#      come, at-least-once) against checkpoints in PostgreSQL (rows in their transactions);
#   3. failover: while a generator writes, one of two members is killed with SIGKILL; the time
#      until its partitions are committed again by someone, without static membership (the
#      other member takes them once session.timeout.ms = 10 s has passed) and with it (a
#      process with the dead one's instance_id is started at once).
#
#   scripts/bench-scale-out.sh [N] [P]
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

n="${1:-300000}"
partitions="${2:-6}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
scripts/services.sh start postgres kafka
eval "$(scripts/services.sh env)"
command -v psql >/dev/null || PATH="$PATH:$(dirname "$(ls /usr/lib/postgresql/*/bin/psql | head -1)")"
command -v bc >/dev/null || { echo "bc is needed (apt-get install bc)" >&2; exit 1; }
cargo build --release --locked -p ecomflow
bin="$root/target/release/ecomflow"
kafka_home="$(ls -d "${ECOMFLOW_CACHE_DIR:-$HOME/.cache/ecomflow}"/kafka-* | head -1)"
# create_topic NAME PARTITIONS, with the Kafka client's admin API (the cached Kafka has no
# command-line tools).
create_topic() {
  cat >"$work/CreateTopic.java" <<'JAVA'
import java.util.*;
import org.apache.kafka.clients.admin.*;
public class CreateTopic {
  public static void main(String[] a) throws Exception {
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", a[0]))) {
      admin.createTopics(List.of(new NewTopic(a[1], Integer.parseInt(a[2]), (short) 1))).all().get();
    }
  }
}
JAVA
  java -Xmx256m -cp "$kafka_home/libs/*" "$work/CreateTopic.java" "$ECOMFLOW_TEST_KAFKA" "$1" "$2" 2>/dev/null
}
server="${ECOMFLOW_TEST_POSTGRES_URL%/*}"

id="scale_$(date +%s)_$$"
work="$(mktemp -d)"
databases=()
cleanup() {
  jobs -p | xargs -r kill -9 2>/dev/null || true
  for d in "${databases[@]}"; do
    psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true
  done
  if [ -n "${KEEP_WORK:-}" ]; then echo "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# The overlay without its Elasticsearch sink, which `storable` then does not name (its
# migrations path made absolute).
awk '/^\[sinks.transactions_index\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' \
  pipelines/real-stack.toml |
  sed -e "s|\.\./migrations/scale-out|$root/migrations/scale-out|" \
    -e 's|^sinks = \["transactions_table", "transactions_index"\]|sinks = ["transactions_table"]|' \
    >"$work/real-stack-no-es.toml"

# One member: member DIR TOPIC GROUP INSTANCE DATABASE STOP_AT_END [--set ...]
cat >"$work/member" <<EOF
#!/usr/bin/env bash
set -e
dir="\$1" topic="\$2" group="\$3" instance="\$4" database="\$5" end="\$6"
shift 6
mkdir -p "\$dir" && cd "\$dir"
export KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" DATABASE_URL="\$database"
export ECOMFLOW_DEAD_LETTER="\$dir/dead.jsonl" ECOMFLOW_STATE_DIR="\$dir/state"
exec "$bin" run "$root/pipelines/ecommerce.toml" "$work/real-stack-no-es.toml" \\
  --set "sources.transactions.topics=[\"\$topic\"]" \\
  --set "sources.transactions.group_id=\"\$group\"" \\
  --set "sources.transactions.stop_at_end=\$end" \\
  --set "sources.transactions.instance_id=\"\$instance\"" \\
  --set 'checkpoint.interval="1s"' "\$@"
EOF
chmod +x "$work/member"

fresh_database() {
  databases+=("$1")
  psql -q "$ECOMFLOW_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
}

seconds() { date +%s.%N; }

echo "== $n transactions (+1% broken) -> topic $id ($partitions partitions)"
create_topic "$id" "$partitions"
(cd "$work" && KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" ECOMFLOW_DEAD_LETTER="$work/generate.dead.jsonl" \
  "$bin" run "$root/pipelines/generate.toml" --set "sinks.kafka.topic=\"$id\"" \
  --set "sources.transactions.count=$n" >/dev/null 2>"$work/generate.log")
# The messages in the topic: what the kafka sink wrote (good ones and the broken ones).
messages=$(awk '$1 == "sinks.kafka" { print $3 }' "$work/generate.log")
echo "   $messages messages"

echo
echo "== 1. throughput: processes started together, checkpoints in PostgreSQL, no Elasticsearch"
printf '%-10s %9s %10s  %s\n' processes wall events/s "each process: events read, CPU us per event"
for procs in ${PROCESSES:-1 2 3}; do
  db="${id}_p$procs"
  fresh_database "$db"
  started=$(seconds)
  pids=()
  for i in $(seq 1 "$procs"); do
    /usr/bin/time -f "%U %S" -o "$work/p$procs-$i.time" "$work/member" "$work/p$procs-$i" \
      "$id" "${id}_g$procs" "m$i" "$server/$db" true --set "checkpoint.url=\"$server/$db\"" \
      >/dev/null 2>"$work/p$procs-$i.log" &
    pids+=($!)
  done
  wait "${pids[@]}"
  wall=$(echo "$(seconds) - $started" | bc -l)
  each=""
  for i in $(seq 1 "$procs"); do
    read -r user sys <"$work/p$procs-$i.time"
    got=$(awk '$1 == "sources.transactions" { print $2 }' "$work/p$procs-$i.log")
    each="$each  ${got:-0} ev $(echo "($user + $sys) * 1000000 / (${got:-0} + 1)" | bc -l | xargs printf '%.2f') us"
  done
  printf '%-10s %8.2fs %10.0f %s\n' "$procs" "$wall" "$(echo "$messages / $wall" | bc -l)" "$each"
  echo "           rows in transactions: $(psql -tA "$server/$db" -c 'SELECT count(*) FROM transactions')"
done

[ -n "${ONLY_THROUGHPUT:-}" ] && exit 0

echo
echo "== 2. exactly once against at-least-once (one process, same topic)"
for mode in dir url; do
  db="${id}_$mode"
  fresh_database "$db"
  extra=()
  if [ "$mode" = url ]; then extra=(--set "checkpoint.url=\"$server/$db\""); fi
  started=$(seconds)
  /usr/bin/time -f "%U %S" -o "$work/$mode.time" "$work/member" "$work/$mode" "$id" \
    "${id}_$mode" "m1" "$server/$db" true "${extra[@]}" >/dev/null 2>"$work/$mode.log"
  wall=$(echo "$(seconds) - $started" | bc -l)
  read -r user sys <"$work/$mode.time"
  printf '%-4s wall %6.2fs  CPU %6.2fs  rows %s\n' "$mode" "$wall" "$(echo "$user + $sys" | bc -l)" \
    "$(psql -tA "$server/$db" -c 'SELECT count(*) FROM transactions')"
done

echo
echo "== 3. failover: SIGKILL of one of two members while the topic is written"
for membership in dynamic static; do
  topic="${id}_f$membership"
  db="${id}_f$membership"
  fresh_database "$db"
  create_topic "$topic" "$partitions"
  (cd "$work" && KAFKA_BOOTSTRAP_SERVERS="$ECOMFLOW_TEST_KAFKA" ECOMFLOW_DEAD_LETTER="$work/generate.dead.jsonl" \
    "$bin" run "$root/pipelines/generate.toml" --set "sinks.kafka.topic=\"$topic\"" \
    --set "sources.transactions.count=60000" --set "sources.transactions.rate=1000" \
    >/dev/null 2>&1) &
  generator=$!
  session=(--set 'sources.transactions.options={ "session.timeout.ms" = 10000 }'
    --set "checkpoint.url=\"$server/$db\"")
  if [ "$membership" = dynamic ]; then ia=""; ib=""; else ia="a"; ib="b"; fi
  "$work/member" "$work/f$membership-a" "$topic" "${topic}_g" "$ia" "$server/$db" false \
    "${session[@]}" >/dev/null 2>"$work/f$membership-a.log" &
  a=$!
  "$work/member" "$work/f$membership-b" "$topic" "${topic}_g" "$ib" "$server/$db" false \
    "${session[@]}" >/dev/null 2>"$work/f$membership-b.log" &
  b=$!
  # Until both members hold and have committed partitions.
  for _ in $(seq 1 600); do
    owners=$(psql -tA "$server/$db" -c "SELECT count(DISTINCT owner) FROM ecomflow_partitions WHERE position IS NOT NULL" 2>/dev/null || echo 0)
    [ "${owners:-0}" -ge 2 ] && break
    sleep 0.1
  done
  sleep 3
  # a's partitions and where they stand; kill a.
  theirs=$(psql -tA "$server/$db" -c "SELECT string_agg(partition::text, ',') FROM ecomflow_partitions WHERE owner LIKE '%:$a'")
  before=$(psql -tA "$server/$db" -c "SELECT sum((position::text)::bigint) FROM ecomflow_partitions WHERE partition IN ($theirs)")
  kill -9 "$a"
  killed=$(seconds)
  if [ "$membership" = static ]; then
    "$work/member" "$work/f$membership-a2" "$topic" "${topic}_g" "$ia" "$server/$db" false \
      "${session[@]}" >/dev/null 2>"$work/f$membership-a2.log" &
  fi
  for _ in $(seq 1 1200); do
    now=$(psql -tA "$server/$db" -c "SELECT sum((position::text)::bigint) FROM ecomflow_partitions WHERE partition IN ($theirs)")
    [ "$now" -gt "$before" ] && break
    sleep 0.05
  done
  printf '%-8s membership: partitions %s committed again %.1f s after the SIGKILL\n' \
    "$membership" "$theirs" "$(echo "$(seconds) - $killed" | bc -l)"
  kill "$generator" 2>/dev/null || true
  jobs -p | xargs -r kill -TERM 2>/dev/null || true
  wait 2>/dev/null || true
done
