#!/usr/bin/env bash
# The fleet issue's must-show sequence, through the shipped playbooks run by
# FQCN, each step verified through other clients (verify.yml: raw HTTP to PD,
# plain psycopg2 logins). Every playbook runs at -vvv; at the end no password
# the run knew may appear in any of the logs.
set -euo pipefail
config="$(cd ../.. && pwd)/integration_config.yml"
tools="$(cd ../setup_verifiers/files && pwd)"
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
out="${OUTPUT_DIR:-$(mktemp -d)}"
work="$(mktemp -d "$out/fleet.XXXXXX")"
logs="$work/logs"; mkdir -p "$logs"
# Every secret the role writes is vault-encrypted with this password file.
head -c 24 /dev/urandom | base64 >"$work/vault-pass"; chmod 600 "$work/vault-pass"
export ANSIBLE_VAULT_PASSWORD_FILE="$work/vault-pass"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
# The playbooks take their connection from the modules' environment fallbacks,
# as under AWX with the credential type of docs/awx-credential-type.yml.
PD_ENDPOINTS="$("$py" -c "import yaml,sys; print(','.join(yaml.safe_load(open(sys.argv[1]))['pd_endpoints']))" "$config")"
PG_HOST="$("$py" -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['pg_host'])" "$config")"
PG_PORT="$("$py" -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['pg_port'])" "$config")"
export PD_ENDPOINTS PG_HOST PG_PORT
common=(-e "@$config" -e "work=$work" -e "tools=$tools")
n=0
step() { n=$((n + 1)); echo "== step $n: $*"; }
# run NAME ARGS...: ansible-playbook at -vvv into logs/NN-NAME.log; returns its rc.
run() {
  local name="$1"; shift
  local log; log="$logs/$(printf %02d "$n")-$name.log"
  local rc=0
  ansible-playbook -vvv "$@" "${common[@]}" >"$log" 2>&1 || rc=$?
  echo "   $name rc=$rc ($(grep -A1 'PLAY RECAP' "$log" | tail -1 | tr -s ' '))"
  LAST_LOG="$log"
  return $rc
}
ok() { run "$@" || { grep -E '^(fatal|failed):|msg' "$LAST_LOG" | tail -20; exit 1; }; }
recap_changed() { grep -A1 'PLAY RECAP' "$LAST_LOG" | tail -1 | sed -E 's/.*changed=([0-9]+).*/\1/'; }
report_lines() { grep -E '^ +"rt_[a-z0-9]+_[0-9] ' "$LAST_LOG" | sed -E 's/^ +"//; s/",?$//' || true; }
summary_line() { grep -E '^ +"[0-9]+ tenants: ' "$LAST_LOG" | tail -1 | sed -E 's/^ +"//; s/",?$//'; }
fail() { echo "FAIL: $*"; exit 1; }
tenants="$work/tenants.yml"
name_of() { "$py" -c "import yaml,sys; print(yaml.safe_load(open('$tenants'))['pgtikv_tenants'][$1-1]['name'])"; }

step "declare 5 tenants x 3 users"
ok make_fleet make_fleet.yml

step "provision from empty"
ok provision pgtikv.cloud.provision -e "pgtikv_tenants_file=$tenants"
summary_line
summary_line | grep -q '^5 tenants: 5 created, 0 changed, 0 unchanged, 0 failed; users: 15 created' || fail "not 5 created"
ok verify verify.yml -e '{"usable": [1, 2, 3, 4, 5]}'

step "re-run: nothing changes"
ok provision pgtikv.cloud.provision -e "pgtikv_tenants_file=$tenants"
summary_line
[ "$(recap_changed)" = 0 ] || fail "re-run reported changed=$(recap_changed)"
summary_line | grep -q '5 unchanged' || fail "re-run not unchanged"

step "the same list as a JSON file (read as data): still nothing changes"
"$py" -c "import json, sys, yaml; json.dump({'pgtikv_tenants': yaml.safe_load(open(sys.argv[1]))['pgtikv_tenants']}, open(sys.argv[2], 'w'))" \
  "$tenants" "$work/tenants.json"
ok provision_json pgtikv.cloud.provision -e "pgtikv_tenants_file=$work/tenants.json" \
  -e "tenants_secrets_file=$work/secrets/tenants.yml" -e tenants_max_workers=4
summary_line
[ "$(recap_changed)" = 0 ] || fail "JSON re-run reported changed=$(recap_changed)"
summary_line | grep -q '^5 tenants: 0 created, 0 changed, 5 unchanged' || fail "JSON re-run not unchanged"
echo '{"pgtikv_tenants": [], "tenants_max_workers": 2}' >"$work/bad.json"
if run provision_bad_json pgtikv.cloud.provision -e "pgtikv_tenants_file=$work/bad.json"; then
  fail "a JSON file with other keys than pgtikv_tenants was accepted"
fi
grep -q 'must hold one JSON object with the single key pgtikv_tenants' "$LAST_LOG" || fail "no clear error for the bad JSON file"

step "audit after provision: zero drift"
ok audit pgtikv.cloud.audit -e "pgtikv_tenants_file=$tenants" -e "pgtikv_audit_report=$work/audit1.json"
"$py" - "$work/audit1.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["declared"] == 5 and r["checked"] == 5 and r["drifted"] == 0 and r["tenants"] == [], r
print("   audit: 0 drift in", r["checked"], "tenants")
PY

step "change one password (tenant 1 u1) and add one user (tenant 2 u4)"
ok edit edit_fleet.yml
ok provision pgtikv.cloud.provision -e "pgtikv_tenants_file=$tenants"
summary_line; report_lines
t1="$(name_of 1)"; t2="$(name_of 2)"
summary_line | grep -q '^5 tenants: 0 created, 2 changed, 3 unchanged, 0 failed; users: 1 created, 1 changed' \
  || fail "expected exactly 2 tenants changed (1 user changed, 1 created)"
[ "$(report_lines | wc -l)" = 2 ] || fail "expected 2 report lines"
report_lines | grep -qE "^$t1 +changed +users: u1 changed$" || fail "tenant 1 line"
report_lines | grep -qE "^$t2 +changed +users: u4 created$" || fail "tenant 2 line"
ok verify verify.yml -e '{"usable": [1, 2, 3, 4, 5]}'

step "break tenants 3 and 4 by hand (admin back to admin/admin; user u2 dropped)"
ok break break.yml

step "audit after the hand change: drift found, audit fails"
if run audit pgtikv.cloud.audit -e "pgtikv_tenants_file=$tenants" -e "pgtikv_audit_report=$work/audit2.json"; then
  fail "audit passed despite the hand changes"
fi
grep -q 'Drift found in 2 of 5 declared tenants' "$LAST_LOG" || fail "audit message"
"$py" - "$work/audit2.json" "$(name_of 3)" "$(name_of 4)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t3, t4 = sys.argv[2], sys.argv[3]
drift = {t["name"]: t["drift"] for t in r["tenants"]}
assert r["drifted"] == 2 and set(drift) == {t3, t4}, r
assert drift[t3] == ["admin: still has the bootstrap password admin/admin"], drift[t3]
assert drift[t4] == ["user u2 missing"], drift[t4]
print("   audit:", json.dumps(drift))
PY
grep -E '^ +"(TENANT|rt_)' "$LAST_LOG" | sed -E 's/^ +"//; s/",?$//'

step "re-run repairs exactly the broken parts"
ok provision pgtikv.cloud.provision -e "pgtikv_tenants_file=$tenants"
summary_line; report_lines
summary_line | grep -q '^5 tenants: 0 created, 2 changed, 3 unchanged, 0 failed; users: 1 created, 0 changed' \
  || fail "repair summary"
report_lines | grep -qE "^$(name_of 3) +changed +admin rotated$" || fail "tenant 3 not repaired"
report_lines | grep -qE "^$(name_of 4) +changed +users: u2 created$" || fail "tenant 4 not repaired"
ok verify verify.yml -e '{"usable": [1, 2, 3, 4, 5]}'
ok audit pgtikv.cloud.audit -e "pgtikv_tenants_file=$tenants" -e "pgtikv_audit_report=$work/audit3.json"
"$py" -c "import json; r = json.load(open('$work/audit3.json')); assert r['drifted'] == 0, r; print('   audit: 0 drift again')"

step "decommission tenant 5"
ok decommission pgtikv.cloud.decommission -e "pgtikv_tenants_file=$tenants" -e "{\"pgtikv_decommission\": [\"$(name_of 5)\"]}"
summary_line
summary_line | grep -q '^1 tenants: 0 created, 1 changed' || fail "decommission summary"
ok verify verify.yml -e '{"usable": [1, 2, 3, 4], "locked": [5]}'

step "rotate the stored credentials of tenant 2"
cp "$work/secrets/tenants.yml" "$work/secrets-before-rotation.yml"
ok rotate pgtikv.cloud.rotate_credentials -e "pgtikv_tenants_file=$tenants" -e "{\"pgtikv_rotate_only\": [\"$t2\"]}"
summary_line
ok verify verify.yml -e '{"usable": [1, 2, 3, 4], "locked": [5]}'
"$py" - "$work" "$t2" <<'PY'
import subprocess, sys, yaml
work, t2 = sys.argv[1], sys.argv[2]
def load(path):
    text = subprocess.run(["ansible-vault", "view", path], capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(text)["tenants"]
before, after = load(work + "/secrets-before-rotation.yml"), load(work + "/secrets/tenants.yml")
assert after[t2]["admin"]["current"] != before[t2]["admin"]["current"], "admin not rotated"
assert after[t2]["admin"]["previous"] == before[t2]["admin"]["current"]
assert "pending" not in after[t2]["admin"], "the rotation left a pending admin password"
assert after[t2]["users"]["u2"]["current"] != before[t2]["users"]["u2"]["current"], "u2 not rotated"
others = [t for t in before if t != t2]
assert all(after[t] == before[t] for t in others), "other tenants' secrets changed"
with open(work + "/all-secrets.txt", "a") as fh:
    fh.write(before[t2]["admin"]["current"] + "\n" + before[t2]["users"]["u2"]["current"] + "\n")
print("   rotated: admin and u2 of", t2, "(declared passwords untouched)")
PY
# The old stored admin password of tenant 2 no longer logs in; the new one does.
"$py" - "$config" "$work" "$t2" "$tools" <<'PY'
import json, subprocess, sys, yaml
config, work, t2, tools = sys.argv[1:5]
cfg = yaml.safe_load(open(config))
def load(path):
    text = subprocess.run(["ansible-vault", "view", path], capture_output=True, text=True, check=True).stdout
    return yaml.safe_load(text)["tenants"][t2]
old, new = load(work + "/secrets-before-rotation.yml"), load(work + "/secrets/tenants.yml")
req = {"host": cfg["pg_host"], "port": cfg["pg_port"], "checks": [
    {"login": t2 + ".admin", "password": old["admin"]["current"], "expect": "refused"},
    {"login": t2 + ".admin", "password": new["admin"]["current"], "expect": "ok"},
    {"login": t2 + ".u2", "password": old["users"]["u2"]["current"], "expect": "refused"}]}
out = subprocess.run([sys.executable, tools + "/pgcheck.py", "logins"], input=json.dumps(req),
                     capture_output=True, text=True, check=True).stdout
res = json.loads(out)
assert not res["mismatches"] and len(res["results"]) == 3, res
print("   old credentials of", t2, "refused, new admin logs in (second client)")
PY

step "leak check over every log"
cat "$logs"/*.log >"$work/all.log"
"$py" "$tools/leakcheck.py" "$work/all.log" "$work/all-secrets.txt" 20 --expect pg_tikv_tenants
echo "role_tenants: all steps passed"
