#!/usr/bin/env bash
# pg_tikv_tenants end to end at -vvv, then prove that the log holds none of the
# passwords the run used. Connection variables: tests/integration/integration_config.yml
# (written by scripts/test from the running stack).
set -euo pipefail
out="${OUTPUT_DIR:-$(mktemp -d)}"
log="$out/pg_tikv_tenants-vvv.log"
secrets="$out/pg_tikv_tenants-secrets.txt"
tools="$(cd ../setup_verifiers/files && pwd)"
config="$(cd ../.. && pwd)/integration_config.yml"
rm -f "$log" "$secrets"
start=$SECONDS
rc=0
ansible-playbook -vvv playbook.yml -e "secrets_file=$secrets" -e "tools=$tools" -e "@$config" "$@" >"$log" 2>&1 || rc=$?
echo "playbook rc=$rc in $((SECONDS - start))s; log: $log ($(wc -l <"$log") lines)"
grep -E '^(fatal|failed):' "$log" | grep -v '\.\.\.ignoring' | cut -c1-1500 | head -20 || true
grep -A2 'PLAY RECAP' "$log" || true
python3 "$tools/leakcheck.py" "$log" "$secrets" 10 --expect pg_tikv_tenants
exit "$rc"
