#!/usr/bin/env bash
# The pg-tikv chart, with helm v4 and again with helm v3 (no cluster needed):
# - helm lint --strict is clean on the chart's defaults and on full examples;
# - every case of files/schema_cases.yml is refused by helm template (and by
#   helm lint --strict, except the template-level checks) with its message;
# - the rendered manifests carry what the hook pattern needs (checked by
#   chart_checks.py on the parsed YAML).
set -euo pipefail
# shellcheck source=files/kube_env.sh
. files/kube_env.sh
start=$SECONDS
for helm in "$HELM_BIN" "$HELM3_BIN"; do
  "$py" chart_checks.py "$helm" "$chart" files/schema_cases.yml
done
echo "chart_pg_tikv: all checks passed in $((SECONDS - start))s"
