#!/usr/bin/env bash
# The hook runs for real. On the kwok cluster nothing inside a pod runs (a
# hook Job "completes" by a kwok Stage), so this target takes the Job exactly
# as the chart renders it and runs it on the host: see files/run_hook.py.
set -euo pipefail
config="$(cd ../.. && pwd)/integration_config.yml"
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
stack_dir="$(sed -n 's/^pgtikv_stack_dir: "\(.*\)"$/\1/p' "$config")"
# shellcheck source=/dev/null
. "$stack_dir/env.sh"
chart="$(cd ../../../../charts/pg-tikv && pwd)"
tools="$(cd ../setup_verifiers/files && pwd)"
out="${OUTPUT_DIR:-$(mktemp -d)}"
work="$(mktemp -d "$out/hook.XXXXXX")"
start=$SECONDS
"$py" files/run_hook.py --helm "$HELM_BIN" --chart "$chart" --config "$config" --tools "$tools" --work "$work"
echo "chart_hook_runs: all steps passed in $((SECONDS - start))s"
