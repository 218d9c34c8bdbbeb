#!/usr/bin/env bash
# Installs what the tests use besides the servers, under target/test-tools:
# - Python's prometheus_client (the reference parser of the Prometheus text format) in a
#   virtual environment, target/test-tools/python;
# - Debian's Chromium (/usr/bin/chromium, from apt) and the npm package playwright-core in
#   target/test-tools/node, which drive the real-browser test of the dashboard
#   (crates/ecomflow/tests/e2e/dashboard.rs). Playwright's own browser download is never used.
# Safe to run again: what is there already is kept, and a second run takes about a second.
# It exports nothing: scripts/test.sh names the tools to the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/test-tools
if ! "$tools/python/bin/python" -c 'import prometheus_client' 2>/dev/null; then
  mkdir -p "$tools"
  python3 -m venv "$tools/python"
  "$tools/python/bin/pip" install --quiet --disable-pip-version-check 'prometheus_client==0.26.0'
fi
"$tools/python/bin/python" -c 'import prometheus_client; print("prometheus_client", prometheus_client.__version__ if hasattr(prometheus_client, "__version__") else "installed")'

# Chromium from Debian (root is needed to install it; sudo when not root).
if [ ! -x /usr/bin/chromium ]; then
  as_root=()
  [ "$(id -u)" -eq 0 ] || as_root=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  if ! "${as_root[@]}" apt-get install -y -q chromium; then
    "${as_root[@]}" apt-get update -q
    "${as_root[@]}" apt-get install -y -q chromium
  fi
fi
# (Its version from dpkg: Debian's /usr/bin/chromium wrapper prints a shell warning on some
# machines, harmless, when it runs.)
dpkg-query -W -f='chromium ${Version}\n' chromium 2>/dev/null || echo 'chromium: /usr/bin/chromium'

# playwright-core, pinned: the library only (it downloads no browser on install).
playwright_version=1.65.1
node_dir="$tools/node"
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: install Node.js 20 or newer with npm" >&2
  exit 1
fi
installed=$(node -p "require('./$node_dir/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$playwright_version" ]; then
  mkdir -p "$node_dir"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --prefix "$node_dir" --no-audit --no-fund \
    --loglevel=error "playwright-core@$playwright_version"
fi
echo "playwright-core $(node -p "require('./$node_dir/node_modules/playwright-core/package.json').version")"
