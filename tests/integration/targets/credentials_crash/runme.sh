#!/usr/bin/env bash
# Runs harness.py (see its docstring) against the local stack, then checks the
# -vvv logs of every run it made for every password it stored.
#   CRASH_TENANTS (default 100), CRASH_KILLS (kills of each signal, default 5
#   per operation: 10 per provision, 10 per rotation), CRASH_SEED.
set -euo pipefail
config="$(cd ../.. && pwd)/integration_config.yml"
tools="$(cd ../setup_verifiers/files && pwd)"
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
out="${OUTPUT_DIR:-$(mktemp -d)}"
work="$(mktemp -d "$out/crash.XXXXXX")"
seed="${CRASH_SEED:-$(( $(date +%s) % 100000 ))}"
rc=0
"$py" harness.py "$config" "$work" --seed "$seed" --tenants "${CRASH_TENANTS:-100}" --kills "${CRASH_KILLS:-5}" || rc=$?
cat "$work"/logs/*.log >"$work/all.log"
"$py" "$tools/leakcheck.py" "$work/all.log" "$work/all-secrets.json" 100 --expect pg_tikv_tenants
exit "$rc"
