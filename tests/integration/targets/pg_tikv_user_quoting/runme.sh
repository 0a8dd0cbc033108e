#!/usr/bin/env bash
# Quoting and injection suite for pg_tikv_user, on the pg-tikv double and on
# real PostgreSQL:
#  1. generate >= 30 nasty user names and passwords (quotes, backslashes, $, %,
#     spaces, unicode, SQL keywords, comment markers, injection payloads);
#  2. provision them through the module (-vvv), re-run (no change);
#  3. verify with an independent psycopg2 client: each logs in with exactly its
#     password and with no near variant; nothing else was created or changed;
#  4. remove them, verify they are gone and PostgreSQL's catalog is as before;
#  5. grep the -vvv output for every password used.
# Steps 3 and 5 use the shared verifiers of setup_verifiers.
set -euo pipefail

cd "$(dirname "$0")"
config="$(cd ../.. && pwd)/integration_config.yml"
[ -f "$config" ] || { echo "missing $config (run through scripts/test integration)" >&2; exit 1; }
PY="$(sed -n 's/^pgtikv_python: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$config")"
[ -x "$PY" ] || { echo "pgtikv_python not found in $config" >&2; exit 1; }

tools="$(cd ../setup_verifiers/files && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cases="$work/cases.json"
state="$work/state.json"
log="$work/vvv.log"

"$PY" gen_cases.py "$cases"
echo "generated $("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cases"]))' "$cases") cases"

play() {
  ansible-playbook -i localhost, quoting.yml -e "@$config" -e "@$cases" -vvv --tags "$1" >> "$log" 2>&1 || {
    echo "playbook phase '$1' failed; failures (case passwords masked):" >&2
    grep -E '^(failed|fatal):|"msg":' "$log" | tail -n 40 | "$PY" -c '
import json, sys
data = json.load(open(sys.argv[1]))
secrets = [c["password"] for c in data["cases"]] + [data["admin_password"]]
text = sys.stdin.read()
for s in secrets:
    text = text.replace(s, "<case password>")
sys.stdout.write(text)' "$cases" >&2
    exit 1
  }
}

start=$SECONDS
play setup
"$PY" verify.py "$config" "$cases" "$state" snapshot
play provision
"$PY" verify.py "$config" "$cases" "$state" present
play cleanup
"$PY" verify.py "$config" "$cases" "$state" absent

# No password may appear in the -vvv output, in any of the forms a leak
# would take (setup_verifiers/files/leakcheck.py).
n_secrets="$("$PY" - "$cases" "$config" "$work/secrets.json" <<'PY'
import json, sys, yaml
data = json.load(open(sys.argv[1]))
cfg = yaml.safe_load(open(sys.argv[2]))
secrets = [c["password"] for c in data["cases"]] + [data["admin_password"], cfg["postgres_password"]]
json.dump(secrets, open(sys.argv[3], "w"))
print(len(secrets))
PY
)"
"$PY" "$tools/leakcheck.py" "$log" "$work/secrets.json" "$n_secrets" --expect pg_tikv_user
# Control: the log really holds the module invocations (the names are not secret).
"$PY" - "$cases" "$log" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
log = open(sys.argv[2], encoding="utf-8", errors="replace").read()
shown = sum(1 for c in data["cases"] if json.dumps(c["name"])[1:-1] in log or c["name"] in log)
print("control: %d of %d case names visible in the log" % (shown, len(data["cases"])))
if shown < len(data["cases"]) // 2:
    print("the -vvv log does not contain the module invocations; the leak check would prove nothing")
    sys.exit(1)
PY
echo "quoting suite passed in $((SECONDS - start))s"
