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
# The chart of the collection under test (ansible-test runs a copy of the
# targets, elsewhere): the first ANSIBLE_COLLECTIONS_PATH entry that has it,
# else the checkout around these targets.
chart=""
IFS=: read -r -a _cpaths <<<"${ANSIBLE_COLLECTIONS_PATH:-}"
for _d in "${_cpaths[@]}" "$targets/../../../.."; do
  if [ -n "$_d" ] && [ -f "$_d/ansible_collections/pgtikv/cloud/charts/pg-tikv/Chart.yaml" ]; then
    chart="$(cd "$_d/ansible_collections/pgtikv/cloud/charts/pg-tikv" && pwd)"; break
  fi
done
[ -n "$chart" ] || chart="$(cd "$targets/../../../charts/pg-tikv" 2>/dev/null && pwd)" \
  || { echo "charts/pg-tikv not found under ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-}"; exit 1; }
tools="$targets/setup_verifiers/files"
out="${OUTPUT_DIR:-$(mktemp -d)}"
export config py chart tools out
