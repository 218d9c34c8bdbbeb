#!/usr/bin/env bash
# Starts and stops the real servers the tests use, without Docker:
#   PostgreSQL 15 from the machine's binaries (installed with apt-get when missing);
#   Apache Kafka (KRaft, no ZooKeeper) from Maven Central, run with the machine's Java;
#   Elasticsearch (single node, plain HTTP) from Maven Central, run as an unprivileged user.
#
#   scripts/services.sh start [postgres|kafka|elasticsearch]...   start (idempotent)
#   scripts/services.sh stop [postgres|kafka|elasticsearch]...    stop
#   scripts/services.sh env                   print the variables the tests read
#
# State (data, logs) lives under $ECOMFLOW_SERVICES_DIR (default /tmp/ecomflow-services);
# downloads are cached under $ECOMFLOW_CACHE_DIR (default ~/.cache/ecomflow).
#
# Ports, all on 127.0.0.1 (`env` prints the URLs for the tests):
#   ECOMFLOW_PG_PORT                 PostgreSQL                      default 55432
#   ECOMFLOW_KAFKA_PORT              Kafka's clients                 default 19092
#   ECOMFLOW_KAFKA_CONTROLLER_PORT   Kafka's KRaft controller        default 19093
#   ECOMFLOW_ES_PORT                 Elasticsearch's HTTP            default 19200
#   ECOMFLOW_ES_TRANSPORT_PORT       Elasticsearch's node transport  default ECOMFLOW_ES_PORT + 100
# A second stack beside the first needs its own ECOMFLOW_SERVICES_DIR and other ports, such as
#   ECOMFLOW_SERVICES_DIR=/tmp/ecomflow-services-2 ECOMFLOW_PG_PORT=55433 ECOMFLOW_KAFKA_PORT=19192 \
#   ECOMFLOW_KAFKA_CONTROLLER_PORT=19193 ECOMFLOW_ES_PORT=19201 scripts/services.sh start
set -euo pipefail

SERVICES_DIR="${ECOMFLOW_SERVICES_DIR:-/tmp/ecomflow-services}"
CACHE_DIR="${ECOMFLOW_CACHE_DIR:-$HOME/.cache/ecomflow}"
PG_PORT="${ECOMFLOW_PG_PORT:-55432}"
KAFKA_VERSION="4.1.1"          # keep equal to docker-compose.yaml
KAFKA_PORT="${ECOMFLOW_KAFKA_PORT:-19092}"
KAFKA_CONTROLLER_PORT="${ECOMFLOW_KAFKA_CONTROLLER_PORT:-19093}"
ES_VERSION="8.17.4"            # keep equal to docker-compose.yaml
ES_PORT="${ECOMFLOW_ES_PORT:-19200}"
# Derived from the HTTP port, so that ECOMFLOW_ES_PORT alone moves both.
ES_TRANSPORT_PORT="${ECOMFLOW_ES_TRANSPORT_PORT:-$((ES_PORT + 100))}"
ES_USER="ecomflow-es"

log() { echo "services: $*" >&2; }

# ---- PostgreSQL --------------------------------------------------------------------------

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
  return 1
}

pg_install() {
  if pg_bin >/dev/null; then return; fi
  log "installing PostgreSQL server binaries (apt-get install postgresql)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq postgresql >/dev/null
}

# Runs a command as the postgres user (initdb refuses root).
as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The server runs as the postgres user, which must be able to enter every directory above its
# data: say which one it cannot, and what to do, rather than fail in mkdir.
pg_reachable() {
  local dir=$1 blocked=""
  while [ "$dir" != / ]; do
    if ! runuser -u postgres -- test -x "$dir"; then blocked=$dir; fi
    dir=$(dirname "$dir")
  done
  if [ -n "$blocked" ]; then
    log "PostgreSQL runs as the user postgres, who cannot enter $blocked ($(stat -c %A "$blocked"))."
    log "Set ECOMFLOW_SERVICES_DIR to a directory it can reach (the default is /tmp/ecomflow-services),"
    log "or let it in: chmod o+x $blocked"
    exit 1
  fi
}

pg_start() {
  pg_install
  local bin base
  bin=$(pg_bin)
  base="$SERVICES_DIR/postgres"
  mkdir -p "$base"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$base"
    pg_reachable "$base"
  fi
  if [ ! -f "$base/data/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $base/data"
    as_postgres mkdir -p "$base/data" "$base/sock"
    as_postgres "$bin/initdb" -D "$base/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1
  fi
  as_postgres mkdir -p "$base/sock"
  # One role that must give a password, for the tests of refused credentials (pg_hba.conf
  # takes the first matching line).
  local hba="$base/data/pg_hba.conf" rule="host all ecomflow_password 127.0.0.1/32 scram-sha-256"
  if ! grep -qF "$rule" "$hba"; then
    as_postgres sh -c "{ echo '$rule'; cat '$hba'; } > '$hba.new' && mv '$hba.new' '$hba'"
    as_postgres "$bin/pg_ctl" -D "$base/data" reload >/dev/null 2>&1 || true
  fi
  if as_postgres "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    as_postgres "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
      -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $base/sock -c fsync=off -c max_connections=200" start >/dev/null
    log "PostgreSQL running on 127.0.0.1:$PG_PORT"
  fi
  as_postgres "$bin/psql" -h "$base/sock" -p "$PG_PORT" -U postgres -d postgres -qAt -c \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ecomflow_password') THEN CREATE ROLE ecomflow_password LOGIN PASSWORD 'the-right-one'; END IF; END \$\$" >/dev/null
}

pg_stop() {
  local bin base="$SERVICES_DIR/postgres"
  bin=$(pg_bin) || return 0
  if [ -f "$base/data/PG_VERSION" ] && as_postgres "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null
    log "PostgreSQL stopped"
  fi
}

# ---- common ------------------------------------------------------------------------------

# Waits until something listens on 127.0.0.1:$1, for at most $2 seconds.
wait_for_port() {
  local port=$1 seconds=$2 i
  for ((i = 0; i < seconds * 4; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.25
  done
  return 1
}

# Downloads Maven artifacts (with their dependencies) into $1/libs, once.
maven_libs() {
  local dir=$1 deps=$2
  if [ -f "$dir/.complete" ]; then return; fi
  command -v mvn >/dev/null || { log "Maven is needed to download $dir (apt-get install maven)"; exit 1; }
  mkdir -p "$dir"
  cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>ecomflow.services</groupId>
  <artifactId>$(basename "$dir")</artifactId>
  <version>1</version>
  <dependencies>$deps</dependencies>
</project>
POM
  log "downloading $(basename "$dir") from Maven Central (cached in $dir)"
  (cd "$dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs -DincludeScope=runtime)
  touch "$dir/.complete"
}

# ---- Kafka -------------------------------------------------------------------------------

kafka_pid_alive() {
  local pid_file="$SERVICES_DIR/kafka/pid"
  [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null
}

kafka_start() {
  local home="$CACHE_DIR/kafka-$KAFKA_VERSION" base="$SERVICES_DIR/kafka"
  maven_libs "$home" "
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>"
  if kafka_pid_alive && wait_for_port "$KAFKA_PORT" 1; then
    log "Kafka already running on 127.0.0.1:$KAFKA_PORT"
    return
  fi
  mkdir -p "$base"
  cat >"$base/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$base/data
num.partitions=3
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
  local java=(java -Xms256m -Xmx768m -cp "$home/libs/*")
  if [ ! -f "$base/data/meta.properties" ]; then
    "${java[@]}" kafka.tools.StorageTool format -t "$("${java[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -1)" \
      -c "$base/server.properties" >"$base/format.log" 2>&1 || { cat "$base/format.log" >&2; exit 1; }
  fi
  nohup "${java[@]}" kafka.Kafka "$base/server.properties" >"$base/server.log" 2>&1 &
  echo $! >"$base/pid"
  if ! wait_for_port "$KAFKA_PORT" 90; then
    tail -20 "$base/server.log" >&2
    log "Kafka did not start"; exit 1
  fi
  log "Kafka $KAFKA_VERSION running on 127.0.0.1:$KAFKA_PORT"
}

kafka_stop() {
  local base="$SERVICES_DIR/kafka"
  if kafka_pid_alive; then
    kill "$(cat "$base/pid")"
    for _ in $(seq 1 60); do kafka_pid_alive || break; sleep 0.5; done
    log "Kafka stopped"
  fi
}

# ---- Elasticsearch -----------------------------------------------------------------------

java17_home() {
  local j
  for j in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk* /usr/lib/jvm/*17*; do
    if [ -x "$j/bin/java" ]; then echo "$j"; return; fi
  done
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

es_up() { curl -fsS "http://127.0.0.1:$ES_PORT/_cluster/health" >/dev/null 2>&1; }

es_start() {
  local base="$SERVICES_DIR/elasticsearch" zip home
  zip="$CACHE_DIR/elasticsearch-$ES_VERSION.zip"
  if es_up; then log "Elasticsearch already running on 127.0.0.1:$ES_PORT"; return; fi
  if [ ! -f "$zip" ]; then
    command -v mvn >/dev/null || { log "Maven is needed to download Elasticsearch (apt-get install maven)"; exit 1; }
    log "downloading Elasticsearch $ES_VERSION from Maven Central (cached in $CACHE_DIR)"
    mvn -q -B dependency:copy -DoutputDirectory="$CACHE_DIR" \
      -Dartifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ES_VERSION:zip"
  fi
  home="$base/elasticsearch-$ES_VERSION"
  mkdir -p "$base"
  if [ ! -x "$home/bin/elasticsearch" ]; then
    command -v unzip >/dev/null || { apt-get update -qq >/dev/null; apt-get install -y -qq unzip >/dev/null; }
    unzip -q -o "$zip" -d "$base"
  fi
  local run=()
  if [ "$(id -u)" = 0 ]; then
    # Elasticsearch refuses to run as root.
    id "$ES_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$ES_USER"
    chown -R "$ES_USER": "$base"
    run=(runuser -u "$ES_USER" --)
  fi
  rm -f "$base/pid"
  ES_JAVA_HOME="$(java17_home)" ES_JAVA_OPTS="-Xms512m -Xmx512m" "${run[@]}" "$home/bin/elasticsearch" -d -p "$base/pid" \
    -Ediscovery.type=single-node -Enetwork.host=127.0.0.1 -Ehttp.port="$ES_PORT" \
    -Etransport.port="$ES_TRANSPORT_PORT" -Epath.data="$base/data" -Epath.logs="$base/logs" \
    -Ecluster.routing.allocation.disk.threshold_enabled=false -Expack.security.enabled=false \
    >"$base/start.log" 2>&1 || { cat "$base/start.log" >&2; exit 1; }
  for _ in $(seq 1 240); do
    if es_up; then
      curl -fsS "http://127.0.0.1:$ES_PORT/_cluster/health?wait_for_status=yellow&timeout=60s" >/dev/null
      log "Elasticsearch $ES_VERSION running on 127.0.0.1:$ES_PORT"
      return
    fi
    sleep 0.5
  done
  tail -30 "$base/logs/"*.log >&2 || true
  log "Elasticsearch did not start"; exit 1
}

es_stop() {
  local pid_file="$SERVICES_DIR/elasticsearch/pid"
  if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    kill "$(cat "$pid_file")"
    for _ in $(seq 1 120); do es_up || break; sleep 0.5; done
    log "Elasticsearch stopped"
  fi
}

# ---- commands ----------------------------------------------------------------------------

print_env() {
  echo "export ECOMFLOW_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  echo "export ECOMFLOW_TEST_KAFKA=127.0.0.1:$KAFKA_PORT"
  echo "export ECOMFLOW_TEST_ELASTICSEARCH=http://127.0.0.1:$ES_PORT"
}

main() {
  local cmd="${1:-}"
  shift || true
  local which=("$@")
  if [ ${#which[@]} -eq 0 ]; then which=(postgres kafka elasticsearch); fi
  mkdir -p "$SERVICES_DIR" "$CACHE_DIR"
  case "$cmd" in
    start) for s in "${which[@]}"; do "${s}_start_cmd"; done ;;
    stop) for s in "${which[@]}"; do "${s}_stop_cmd"; done ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|env [postgres|kafka|elasticsearch]..." >&2; exit 2 ;;
  esac
}

postgres_start_cmd() { pg_start; }
postgres_stop_cmd() { pg_stop; }
kafka_start_cmd() { kafka_start; }
kafka_stop_cmd() { kafka_stop; }
elasticsearch_start_cmd() { es_start; }
elasticsearch_stop_cmd() { es_stop; }

main "$@"
