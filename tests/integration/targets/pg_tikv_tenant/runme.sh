#!/usr/bin/env bash
# Runs the whole pg_tikv_tenant target at -vvv into a log, then proves that the
# log holds none of the passwords the run used (given, rotated, generated), in
# any form they could take in output (raw, JSON-escaped, percent-encoded,
# SQL-literal: setup_verifiers/files/leakcheck.py). Variables: ansible-test
# copies tests/integration/integration_config.yml two levels above this
# target's working directory; extra arguments are passed on (e.g.
# ./runme.sh -e @my_config.yml when run by hand).
set -euo pipefail

extra=()
if [ -f ../../integration_config.yml ]; then
  extra+=(-e @../../integration_config.yml)
fi
if [ -n "${INVENTORY_PATH:-}" ]; then
  extra+=(-i "$INVENTORY_PATH")
fi

out="${OUTPUT_DIR:-$(mktemp -d)}"
mkdir -p "$out"
log="$out/pg_tikv_tenant-vvv.log"
tools="$(cd ../setup_verifiers/files && pwd)"
secrets="$out/pg_tikv_tenant-secrets.txt"
rm -f "$log" "$secrets"
start=$SECONDS

rc=0
ansible-playbook -vvv playbook.yml "${extra[@]}" -e "secrets_file=$secrets" "$@" >"$log" 2>&1 || rc=$?
echo "playbook rc=$rc in $((SECONDS - start))s; log: $log ($(wc -l <"$log") lines)"

# The leak check first: the failed tasks' output is shown only when it passed.
leak=0
python3 "$tools/leakcheck.py" "$log" "$secrets" 4 --expect pg_tikv_tenant --expect "<127.0.0.1> EXEC" || leak=$?
python3 - "$log" "$leak" <<'PY'
import re, sys
log = open(sys.argv[1], encoding="utf-8", errors="replace").read()
show = sys.argv[2] == "0"
# Failures that were not ignored: task name and result.
failures, task, lines = [], "?", log.split("\n")
i = 0
while i < len(lines):
    line = lines[i]
    if line.startswith("TASK ["):
        task = line[6:line.rfind("]")]
    elif line.startswith("fatal: ") or line.startswith("failed: "):
        j = i
        if not line.endswith("}"):  # a multi-line JSON result closes with "}" in column 0
            while j < len(lines) and lines[j] != "}":
                j += 1
        if j + 1 >= len(lines) or lines[j + 1] != "...ignoring":
            failures.append((task, "\n".join(lines[i:j + 1])))
        i = j
    i += 1
recap = re.search(r"PLAY RECAP.*", log, re.S)
print(recap.group(0).strip() if recap else "(no PLAY RECAP)")
for name, block in failures:
    print("FAILED TASK [%s]" % name)
    if show:
        print(block[:3000])
PY
[ "$leak" = 0 ] || exit "$leak"
echo "target runtime: $((SECONDS - start))s"
exit "$rc"
