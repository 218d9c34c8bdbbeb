#!/usr/bin/env bash
# Installs what the tests use besides the servers: Python's prometheus_client (the reference
# parser of the Prometheus text format) in a virtual environment under target/test-tools.
# Safe to run again: what is there already is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/test-tools
if ! "$tools/python/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  mkdir -p "$tools"
  python3 -m venv "$tools/python"
  "$tools/python/bin/pip" install --quiet --disable-pip-version-check 'prometheus_client==0.26.0'
fi
"$tools/python/bin/python" -c 'import prometheus_client; print("prometheus_client", prometheus_client.__version__ if hasattr(prometheus_client, "__version__") else "installed")'
