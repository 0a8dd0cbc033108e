# shellcheck shell=bash
# Sourced by the chart and platform targets' runme.sh: the local stack's
# settings from integration_config.yml, then its env.sh (KUBECONFIG, HELM_BIN,
# HELM3_BIN, KUBECTL_BIN, the Python 3.12 venv and the kubernetes.core paths).
# Sets: config, py (the test venv's python), chart, tools, out.
targets="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
config="$(cd "$targets/.." && pwd)/integration_config.yml"
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
stack_dir="$(sed -n 's/^pgtikv_stack_dir: "\(.*\)"$/\1/p' "$config")"
# shellcheck source=/dev/null
. "$stack_dir/env.sh"
chart="$(cd "$targets/../../../charts/pg-tikv" && pwd)"
tools="$targets/setup_verifiers/files"
out="${OUTPUT_DIR:-$(mktemp -d)}"
export config py chart tools out
