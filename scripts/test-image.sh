#!/usr/bin/env bash
# Builds the container image from the repository's Dockerfile and checks it inside real
# containers (podman; no Docker daemon needed):
#   1. `ecomflow validate` of every shipped pipeline and test file;
#   2. the flagship on its embedded defaults writes its tables to the mounted volume, equal to
#      a run of the same binary outside the container (every row of every table);
#   3. /health and /ready answer through a published port (and the token guards the data);
#   4. `podman stop` drains a run: exit 0, the final checkpoint written, and the run resumed
#      from it ends with the tables of the uninterrupted run (nothing lost, nothing twice).
#
#   scripts/test-image.sh [BINARY]
#
# This machine cannot pull from a registry, so the base image is made from Debian's own
# packages (debootstrap, cached under $ECOMFLOW_CACHE_DIR) and the image is built with
# `--target prebuilt`: the Dockerfile's runtime stage, the one users get, around BINARY
# (default: the debug build, `cargo build -p ecomflow`) instead of the Rust stage's binary.
# Installs podman, runc and debootstrap with apt when missing (needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

CACHE_DIR="${ECOMFLOW_CACHE_DIR:-$HOME/.cache/ecomflow}"
IMAGE="localhost/ecomflow:test"
BASE="docker.io/library/debian:bookworm-slim"
PORT="${ECOMFLOW_IMAGE_TEST_PORT:-18640}"
work="$root/target/image"
name="ecomflow-image-test-$$"

fail() { echo "test-image: FAILED: $*" >&2; exit 1; }
step() { echo "-- $*"; }

# ---- tools ---------------------------------------------------------------------------------
missing=()
for tool in podman runc debootstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    fail "needs ${missing[*]} (Debian: apt-get install podman runc debootstrap), or root to install them"
  fi
  step "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap >/dev/null \
    || fail "apt-get install podman runc debootstrap failed"
fi
command -v python3 >/dev/null 2>&1 || fail "needs python3 (to read the SQLite tables)"

# runc, not crun; and no raised RLIMIT_NOFILE, which this sandbox refuses.
mkdir -p "$work"
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$work/containers.conf"

# ---- the base image: Debian bookworm from Debian's packages --------------------------------
if ! podman image exists "$BASE"; then
  tarball="$CACHE_DIR/debian-bookworm-minbase-slim.tar"
  if [[ ! -s "$tarball" ]]; then
    step "debootstrap bookworm (cached in $tarball)"
    mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
    rootfs=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}" \
      >"$work/debootstrap.log" 2>&1 || fail "debootstrap failed: see $work/debootstrap.log"
    # What Debian's slim images leave out: package caches and lists, documentation, manuals.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
      "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/usr/share/locale/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
    mkdir -p "$CACHE_DIR"
    tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
    rm -rf "$rootfs"
  fi
  step "importing $BASE"
  podman import --quiet "$tarball" "$BASE" >/dev/null
fi

# ---- the image -----------------------------------------------------------------------------
binary="${1:+$(realpath "$1")}"
if [[ -z "$binary" ]]; then
  cargo build --quiet --locked -p ecomflow
  binary="$root/target/debug/ecomflow"
fi
objcopy --strip-debug "$binary" "$work/ecomflow"
step "podman build (Dockerfile, --target prebuilt)"
started=$SECONDS
podman build --quiet --format docker --target prebuilt -t "$IMAGE" . >/dev/null \
  || fail "podman build failed"
echo "   built in $((SECONDS - started)) s, $(podman image inspect "$IMAGE" --format '{{.Size}}' \
  | awk '{printf "%.0f MB", $1 / 1e6}')"

cleanup() { podman rm -f -t 0 "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT

# A directory the image's user (uid 10001) can write, mounted as /data.
volume() {
  rm -rf "$1" && mkdir -p "$1" && chown 10001:10001 "$1"
}

# Every table of an SQLite file, each row as JSON, sorted: two runs compare equal or not.
dump() {
  python3 - "$1" <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
tables = [r[0] for r in db.execute(
    "select name from sqlite_master where type = 'table' and name not like '\\_sqlx%' escape '\\' order by name")]
for t in tables:
    rows = sorted(json.dumps(r) for r in db.execute(f'select * from "{t}"'))
    print(f"table {t}: {len(rows)} rows")
    for r in rows:
        print(f"  {r}")
EOF
}

# ---- 1. validate every shipped pipeline ----------------------------------------------------
step "validate every shipped pipeline inside the container"
for f in pipelines/*.toml; do
  base=$(basename "$f")
  if grep -q '^replace = true' "$f"; then
    files=(/pipelines/ecommerce.toml "/pipelines/$base") # an overlay on the flagship
  else
    files=("/pipelines/$base")
  fi
  podman run --rm --no-healthcheck "$IMAGE" validate "${files[@]}" >/dev/null \
    || fail "ecomflow validate ${files[*]} failed in the container"
done

# ---- 2. the flagship on its embedded defaults, into the volume ----------------------------
step "the flagship in the container, its tables compared with a run outside"
outside="$work/outside"
rm -rf "$outside" && mkdir -p "$outside"
(cd "$outside" && "$binary" run "$root/pipelines/ecommerce.toml" --quiet >run.log 2>&1) \
  || fail "the flagship failed outside the container: $outside/run.log"
dump "$outside/ecomflow.db" >"$outside/tables.txt"
grep '^table' "$outside/tables.txt" | sed 's/^/   outside: /'

inside="$work/inside"
volume "$inside"
podman run --rm --no-healthcheck -v "$inside:/data" "$IMAGE" >"$work/inside.log" 2>&1 \
  || fail "the flagship failed in the container: $work/inside.log"
[[ -s "$inside/ecomflow.db" ]] || fail "no ecomflow.db in the mounted volume"
dump "$inside/ecomflow.db" >"$inside/tables.txt"
diff -u "$outside/tables.txt" "$inside/tables.txt" >/dev/null \
  || fail "tables differ between the runs inside and outside the container: diff $outside/tables.txt $inside/tables.txt"
dead_outside=$(wc -l <"$outside/dead-letter.jsonl")
dead_inside=$(wc -l <"$inside/dead-letter.jsonl")
[[ $dead_outside -gt 0 && $dead_outside -eq $dead_inside ]] \
  || fail "dead letters: $dead_outside outside, $dead_inside inside"
echo "   equal tables; $dead_inside dead letters on both sides"

# ---- 3. the probes through a published port ------------------------------------------------
step "/health and /ready through a published port; podman stop drains"
stopped="$work/stopped"
volume "$stopped"
token="image-test-token-$RANDOM$RANDOM"
podman run -d --name "$name" -p "127.0.0.1:$PORT:8640" -v "$stopped:/data" \
  -e ECOMFLOW_HTTP_TOKEN="$token" "$IMAGE" \
  run /pipelines/ecommerce.toml --quiet --set sources.transactions.rate=1000 \
  --set checkpoint.dir=.ecomflow-state --set checkpoint.interval=1s >/dev/null 2>"$work/podman-run.log" \
  || fail "podman run -d failed: $work/podman-run.log"
ready=""
for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/ready" >/dev/null 2>&1; then ready=yes; break; fi
  sleep 0.1
done
[[ -n $ready ]] || { podman logs "$name" >&2 || true; fail "/ready never answered 200 on port $PORT"; }
curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null || fail "/health did not answer 200"
metrics=$(curl -fsS "http://127.0.0.1:$PORT/metrics") || fail "/metrics did not answer 200"
grep -q '^ecomflow_' <<<"$metrics" || fail "/metrics has no ecomflow_ series"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/api/charts" || true)
[[ $code == 401 ]] || fail "the dashboard's data answered $code without the token (expected 401)"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" \
  "http://127.0.0.1:$PORT/api/charts" || true)
[[ $code == 200 ]] || fail "the dashboard's data answered $code with the token (expected 200)"
# The image's own HEALTHCHECK (curl on /ready inside the container), run once by hand: no
# systemd here to run it on a timer.
podman healthcheck run "$name" >/dev/null 2>&1 || fail "the image's HEALTHCHECK does not pass"

# ---- 4. podman stop drains -----------------------------------------------------------------
sleep 3 # mid-run: the generator makes 20,000 transactions at 1,000 a second
started=$SECONDS
podman stop -t 30 "$name" >/dev/null 2>>"$work/podman-run.log" || fail "podman stop failed"
code=$(podman inspect "$name" --format '{{.State.ExitCode}}')
podman logs "$name" >"$work/stopped.log" 2>&1 || true
[[ $code == 0 ]] || fail "the stopped run exited with $code, not 0: $work/stopped.log"
[[ -s "$stopped/.ecomflow-state/checkpoint.json" ]] || fail "no final checkpoint after podman stop"
rows=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from transactions').fetchone()[0])" "$stopped/ecomflow.db")
((rows > 0 && rows < 20000)) || fail "podman stop did not stop mid-run ($rows transactions written)"
echo "   stopped mid-run after $((SECONDS - started)) s: exit 0, $rows transactions, a final checkpoint"
podman rm "$name" >/dev/null 2>>"$work/podman-run.log"
podman run --rm --no-healthcheck -v "$stopped:/data" "$IMAGE" run /pipelines/ecommerce.toml --quiet \
  --set checkpoint.dir=.ecomflow-state >"$work/resumed.log" 2>&1 \
  || fail "the resumed run failed: $work/resumed.log"
dump "$stopped/ecomflow.db" >"$stopped/tables.txt"
diff -u "$outside/tables.txt" "$stopped/tables.txt" >/dev/null \
  || fail "stopped and resumed, the tables differ from the uninterrupted run: diff $outside/tables.txt $stopped/tables.txt"
dead_stopped=$(wc -l <"$stopped/dead-letter.jsonl")
[[ $dead_stopped -eq $dead_outside ]] || fail "dead letters: $dead_outside uninterrupted, $dead_stopped stopped and resumed"
echo "   resumed from the checkpoint: the tables and dead letters of the uninterrupted run"
echo "test-image: ok"
