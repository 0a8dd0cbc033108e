#!/usr/bin/env bash
# Runs harness.py (see its docstring) against the local stack, then checks the
# -vvv logs of every run it made for every password it stored. Two passes:
# the file backend, then the Kubernetes Secret backend on the kwok cluster's
# API server (fewer tenants and kill points: a killed run's Lease takes
# lease_duration, 30 s, to expire).
#   CRASH_TENANTS (default 100), CRASH_KILLS (kills of each signal, default 5
#   per operation: 10 per provision, 10 per rotation), CRASH_SEED;
#   CRASH_K8S_TENANTS (default 20), CRASH_K8S_KILLS (default 1), CRASH_BACKENDS
#   (default "file kubernetes").
set -euo pipefail
config="$(cd ../.. && pwd)/integration_config.yml"
tools="$(cd ../setup_verifiers/files && pwd)"
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
out="${OUTPUT_DIR:-$(mktemp -d)}"
seed="${CRASH_SEED:-$(( $(date +%s) % 100000 ))}"
rc=0
for backend in ${CRASH_BACKENDS:-file kubernetes}; do
  work="$(mktemp -d "$out/crash-$backend.XXXXXX")"
  if [ "$backend" = kubernetes ]; then
    args=(--tenants "${CRASH_K8S_TENANTS:-20}" --kills "${CRASH_K8S_KILLS:-1}" --backend kubernetes
          --namespace pgtikv-crash)
    min_secrets=50
  else
    args=(--tenants "${CRASH_TENANTS:-100}" --kills "${CRASH_KILLS:-5}")
    min_secrets=100
  fi
  "$py" harness.py "$config" "$work" --seed "$seed" "${args[@]}" || rc=$?
  cat "$work"/logs/*.log >"$work/all.log"
  "$py" "$tools/leakcheck.py" "$work/all.log" "$work/all-secrets.json" "$min_secrets" --expect pg_tikv_tenants || rc=$?
done
exit "$rc"
