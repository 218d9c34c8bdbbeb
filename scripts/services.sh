#!/usr/bin/env bash
# Starts and stops the real servers the tests use, without Docker:
#   PostgreSQL 15 from the machine's binaries (installed with apt-get when missing).
#
#   scripts/services.sh start [postgres]...   start (idempotent: a running one is kept)
#   scripts/services.sh stop [postgres]...    stop
#   scripts/services.sh env                   print the variables the tests read
#
# State (data, logs) lives under $ECOMFLOW_SERVICES_DIR (default /tmp/ecomflow-services);
# downloads are cached under $ECOMFLOW_CACHE_DIR (default ~/.cache/ecomflow).
set -euo pipefail

SERVICES_DIR="${ECOMFLOW_SERVICES_DIR:-/tmp/ecomflow-services}"
CACHE_DIR="${ECOMFLOW_CACHE_DIR:-$HOME/.cache/ecomflow}"
PG_PORT="${ECOMFLOW_PG_PORT:-55432}"

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

pg_start() {
  pg_install
  local bin base
  bin=$(pg_bin)
  base="$SERVICES_DIR/postgres"
  mkdir -p "$base"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$base"; fi
  if [ ! -f "$base/data/PG_VERSION" ]; then
    log "initialising a PostgreSQL cluster in $base/data"
    as_postgres mkdir -p "$base/data" "$base/sock"
    as_postgres "$bin/initdb" -D "$base/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$base/initdb.log" 2>&1
  fi
  as_postgres mkdir -p "$base/sock"
  if as_postgres "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
    return
  fi
  as_postgres "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $base/sock -c fsync=off -c max_connections=200" start >/dev/null
  log "PostgreSQL running on 127.0.0.1:$PG_PORT"
}

pg_stop() {
  local bin base="$SERVICES_DIR/postgres"
  bin=$(pg_bin) || return 0
  if [ -f "$base/data/PG_VERSION" ] && as_postgres "$bin/pg_ctl" -D "$base/data" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$base/data" -m fast -w stop >/dev/null
    log "PostgreSQL stopped"
  fi
}

# ---- commands ----------------------------------------------------------------------------

print_env() {
  echo "export ECOMFLOW_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PG_PORT/postgres"
}

main() {
  local cmd="${1:-}"
  shift || true
  local which=("$@")
  if [ ${#which[@]} -eq 0 ]; then which=(postgres); fi
  mkdir -p "$SERVICES_DIR" "$CACHE_DIR"
  case "$cmd" in
    start) for s in "${which[@]}"; do "${s}_start_cmd"; done ;;
    stop) for s in "${which[@]}"; do "${s}_stop_cmd"; done ;;
    env) print_env ;;
    *) echo "usage: $0 start|stop|env [postgres]..." >&2; exit 2 ;;
  esac
}

postgres_start_cmd() { pg_start; }
postgres_stop_cmd() { pg_stop; }

main "$@"
