#!/usr/bin/env bash
# Checks that this machine has what scripts/test.sh needs and cannot install itself, and says
# what to install for each thing missing. Everything else (PostgreSQL's server, Chromium,
# podman, runc, debootstrap, Kafka, Elasticsearch, Python and npm packages) the suite
# installs: with apt as root, the rest under target/ and ~/.cache/ecomflow.
set -uo pipefail

missing=0
need() { # need WHAT HOW-TO-GET-IT
  echo "missing: $1 -- $2" >&2
  missing=$((missing + 1))
}

command -v cargo >/dev/null 2>&1 || need "cargo" "install Rust from https://rustup.rs (stable, 1.89 or newer)"
if [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
  need "root" "the suite installs Debian packages with apt-get (PostgreSQL, Chromium, podman): run it as root or with password-less sudo"
fi
command -v apt-get >/dev/null 2>&1 || need "apt-get" "the suite installs its servers' and tools' packages from Debian (bookworm)"
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
if [ -z "$java_major" ]; then
  need "Java 17" "Kafka and Elasticsearch run on it: apt-get install openjdk-17-jre-headless"
elif [ "$java_major" -lt 17 ]; then
  need "Java 17 (found $java_major)" "apt-get install openjdk-17-jre-headless"
fi
command -v mvn >/dev/null 2>&1 || need "Maven" "it downloads Kafka and Elasticsearch from Maven Central: apt-get install maven"
command -v npm >/dev/null 2>&1 || need "Node.js with npm" "the dashboard's browser test runs playwright-core: Node.js 20 or newer"
if ! command -v python3 >/dev/null 2>&1; then
  need "Python 3" "apt-get install python3 python3-venv"
elif ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  need "Python's venv" "apt-get install python3-venv"
fi
command -v curl >/dev/null 2>&1 || need "curl" "apt-get install curl"
command -v objcopy >/dev/null 2>&1 || need "objcopy" "apt-get install binutils"

if [ "$missing" -gt 0 ]; then
  echo "scripts/test.sh cannot run here: $missing thing(s) missing (see above)." >&2
  exit 1
fi
echo "machine: cargo, root, apt-get, Java $java_major, Maven, npm, Python with venv, curl, objcopy"
