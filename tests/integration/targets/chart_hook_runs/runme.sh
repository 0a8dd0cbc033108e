#!/usr/bin/env bash
# The hook runs for real. On the kwok cluster nothing inside a pod runs (a
# hook Job "completes" by a kwok Stage), so this target takes the Job exactly
# as the chart renders it and runs it on the host: see files/run_hook.py.
set -euo pipefail
# shellcheck source=../chart_pg_tikv/files/kube_env.sh
. ../chart_pg_tikv/files/kube_env.sh
work="$(mktemp -d "$out/hook.XXXXXX")"
start=$SECONDS
"$py" files/run_hook.py --helm "$HELM_BIN" --chart "$chart" --config "$config" --tools "$tools" --work "$work"
echo "chart_hook_runs: all steps passed in $((SECONDS - start))s"
