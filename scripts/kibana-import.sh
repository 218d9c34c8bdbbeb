#!/usr/bin/env bash
# Imports ecomflow's Kibana saved objects (a data view on `transactions` with transactionDate as
# its time field, four visualizations and a dashboard) into a running Kibana:
#   scripts/kibana-import.sh [KIBANA_URL]        (default http://localhost:5601)
set -euo pipefail
cd "$(dirname "$0")/.."
url="${1:-${KIBANA_URL:-http://localhost:5601}}"
curl -fsS -X POST "$url/api/saved_objects/_import?overwrite=true" \
  -H "kbn-xsrf: true" --form file=@kibana/saved-objects.ndjson
echo
echo "imported: open $url/app/dashboards#/view/ecomflow-dashboard"
