#!/usr/bin/env bash
# Runs the whole pg_tikv_tenant target at -vvv into a log, then proves that the
# log holds none of the passwords the run used (given, rotated, generated), in
# any form they could take in output (raw, JSON-escaped, percent-encoded,
# SQL-literal). Variables: ansible-test copies tests/integration/integration_config.yml
# two levels above this target's working directory; extra arguments are passed on
# (e.g. ./runme.sh -e @my_config.yml when run by hand).
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
secrets="$out/pg_tikv_tenant-secrets.txt"
rm -f "$log" "$secrets"
start=$SECONDS

rc=0
ansible-playbook -vvv playbook.yml "${extra[@]}" -e "secrets_file=$secrets" "$@" >"$log" 2>&1 || rc=$?
echo "playbook rc=$rc in $((SECONDS - start))s; log: $log ($(wc -l <"$log") lines)"

python3 - "$log" "$secrets" <<'PY'
import json, re, sys
from urllib.parse import quote
log_path, secrets_path = sys.argv[1], sys.argv[2]
log = open(log_path, encoding="utf-8", errors="replace").read()
try:
    secrets = [s for s in open(secrets_path, encoding="utf-8").read().split("\n") if s]
except FileNotFoundError:
    secrets = None
leaks = []
for n, s in enumerate(secrets or [], 1):
    for form in {s, json.dumps(s)[1:-1], quote(s, safe=""), s.replace("'", "''")}:
        if len(form) >= 6 and form in log:
            leaks.append("password #%d (%s form)" % (n, "raw" if form == s else "encoded"))
# Failures that were not ignored: task name and result (shown only when no leak).
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
    if not leaks:
        print(block[:3000])
if secrets is None:
    sys.exit("no secrets file: the playbook did not record the passwords it used")
# Positive controls: this is the real -vvv output of this target.
assert "pg_tikv_tenant" in log and "<127.0.0.1> EXEC" in log, "the log is not -vvv output of this target"
assert len(secrets) >= 4, "expected at least 4 recorded passwords, got %d" % len(secrets)
if leaks:
    sys.exit("LEAK: the -vvv log contains " + ", ".join(sorted(set(leaks))))
print("no leak: %d passwords x 4 forms checked against %d bytes of -vvv output" % (len(secrets), len(log)))
PY
echo "target runtime: $((SECONDS - start))s"
exit "$rc"
