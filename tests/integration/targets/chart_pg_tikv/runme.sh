#!/usr/bin/env bash
# The pg-tikv chart, with helm v4 and again with helm v3 (no cluster needed):
# - helm lint --strict is clean on the chart's defaults and on a full example;
# - every case of files/schema_cases.yml is refused by helm template (and by
#   helm lint --strict, except the template-level checks) with its message;
# - the rendered manifests carry what the hook pattern needs (checked by
#   chart_checks.py on the parsed YAML).
set -euo pipefail
config="$(cd ../.. && pwd)/integration_config.yml"
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
stack_dir="$(sed -n 's/^pgtikv_stack_dir: "\(.*\)"$/\1/p' "$config")"
# shellcheck source=/dev/null
. "$stack_dir/env.sh"
chart="$(cd ../../../../charts/pg-tikv && pwd)"
start=$SECONDS
for helm in "$HELM_BIN" "$HELM3_BIN"; do
  "$py" "$(pwd)/chart_checks.py" "$helm" "$chart" "$(pwd)/files/schema_cases.yml"
done
echo "chart_pg_tikv: all checks passed in $((SECONDS - start))s"
