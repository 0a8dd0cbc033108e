#!/usr/bin/env bash
# pgtikv.cloud.provision through ansible-runner, as an AWX job runs it:
# - a private data dir with project/ (a playbook that imports the collection's
#   playbook, and the tenants vars file), env/extravars, env/envvars, env/cmdline;
# - the connection only in env/envvars, rendered from the credential type's
#   injectors exactly (the empty TLS fields become empty variables, as AWX sets them);
# - no connection variable anywhere in the playbook or the extra vars.
# Then: the job status, the tenants checked through raw PD HTTP and a plain
# psycopg2 client, and no password in the job's -vvv stdout.
set -euo pipefail
config="$(cd ../.. && pwd)/integration_config.yml"
tools="$(cd ../setup_verifiers/files && pwd)"
# The credential type as shipped in the installed collection (docs/ is part of the build).
credtype=""
IFS=: read -r -a cpaths <<<"${ANSIBLE_COLLECTIONS_PATH:-}"
for d in "${cpaths[@]}"; do
  f="$d/ansible_collections/pgtikv/cloud/docs/awx-credential-type.yml"
  if [ -f "$f" ]; then credtype="$f"; break; fi
done
[ -n "$credtype" ] || { echo "docs/awx-credential-type.yml not found under ANSIBLE_COLLECTIONS_PATH=${ANSIBLE_COLLECTIONS_PATH:-}"; exit 1; }
py="$(sed -n 's/^pgtikv_python: "\(.*\)"$/\1/p' "$config")"
out="${OUTPUT_DIR:-$(mktemp -d)}"
pdd="$(mktemp -d "$out/runner.XXXXXX")"
mkdir -p "$pdd/project" "$pdd/env" "$pdd/inventory"

"$py" - "$config" "$credtype" "$pdd" <<'PY'
import json, secrets, sys, yaml
import jinja2
config, credtype, pdd = sys.argv[1:4]
cfg = yaml.safe_load(open(config))
ct = yaml.safe_load(open(credtype))
# The credential as an AWX admin would fill it in: a dead PD endpoint first
# (failover), no TLS material.
inputs = {"pd_endpoints": "127.0.0.1:1," + ",".join(cfg["pd_endpoints"]), "pd_ca_cert": "",
          "pd_client_cert": "", "pd_client_key": "", "pg_host": cfg["pg_host"], "pg_port": str(cfg["pg_port"])}
fields = {f["id"] for f in ct["inputs"]["fields"]}
assert set(inputs) == fields, (sorted(inputs), sorted(fields))
assert set(ct["inputs"]["required"]) <= {k for k, v in inputs.items() if v}
env = {}
for key, tmpl in ct["injectors"]["env"].items():
    assert not key.startswith("ANSIBLE_"), key
    env[key] = jinja2.Environment().from_string(tmpl).render(tower={"filename": {}}, **inputs)
# What the job's execution environment has: the installed collection.
import os
env["ANSIBLE_COLLECTIONS_PATH"] = os.environ.get("ANSIBLE_COLLECTIONS_PATH", "")
env["ANSIBLE_PYTHON_INTERPRETER"] = sys.executable
json.dump(env, open(pdd + "/env/envvars", "w"))
sfx = secrets.token_hex(4)
tenants = [{"name": "rp_%s_%d" % (sfx, i), "admin_password": secrets.token_urlsafe(18),
            "users": [{"name": "app", "password": secrets.token_urlsafe(18)}]} for i in (1, 2)]
yaml.safe_dump({"pgtikv_tenants": tenants}, open(pdd + "/project/tenants.yml", "w"))
# The secret store on storage of the job's own (under AWX: a persistent volume),
# not the default under the home directory, which another run may hold.
json.dump({"pgtikv_tenants_file": pdd + "/project/tenants.yml", "tenants_secrets_file": pdd + "/store/secrets.yml"},
          open(pdd + "/env/extravars", "w"))
with open(pdd + "/secrets.txt", "w") as fh:
    for t in tenants:
        fh.write(t["admin_password"] + "\n" + t["users"][0]["password"] + "\n")
print("envvars:", ", ".join("%s=%s" % (k, v if k.startswith("P") else "...") for k, v in sorted(env.items())))
PY
cat >"$pdd/project/provision.yml" <<'YAML'
---
# What an AWX project holds: the collection's playbook, by FQCN.
- name: Provision
  ansible.builtin.import_playbook: pgtikv.cloud.provision
YAML
printf 'localhost ansible_connection=local\n' >"$pdd/inventory/hosts"
printf -- '-vvv' >"$pdd/env/cmdline"
chmod 600 "$pdd/env/"*

start=$SECONDS
rc=0
(env -u PD_ENDPOINTS -u PG_HOST -u PG_PORT "$py" -m ansible_runner run "$pdd" -p provision.yml --ident job1 -j \
  >"$pdd/events.jsonl" 2>"$pdd/runner.err") || rc=$?
echo "ansible-runner rc=$rc in $((SECONDS - start))s; status: $(cat "$pdd/artifacts/job1/status" 2>/dev/null)"
if [ "$rc" != 0 ]; then tail -30 "$pdd/artifacts/job1/stdout" 2>/dev/null | cut -c1-400; cat "$pdd/runner.err"; exit 1; fi
[ "$(cat "$pdd/artifacts/job1/status")" = successful ] || exit 1

# The job's events: the role reported 2 created, proven usable.
"$py" - "$pdd" <<'PY'
import json, sys
pdd = sys.argv[1]
events = [json.loads(l) for l in open(pdd + "/events.jsonl") if l.startswith("{")]
msgs = []
for e in events:
    res = (e.get("event_data") or {}).get("res") or {}
    if e.get("event") == "runner_on_ok" and isinstance(res.get("msg"), list):
        msgs.extend(res["msg"])
summary = [m for m in msgs if " tenants: " in m]
assert summary and summary[0].startswith("2 tenants: 2 created") and "2 tenants verified" in summary[0], msgs
print("job events:", summary[0])
PY

# Independent checks: PD over raw HTTP, logins through plain psycopg2.
"$py" - "$config" "$pdd" "$tools" <<'PY'
import json, subprocess, sys, urllib.request, yaml
config, pdd, tools = sys.argv[1:4]
cfg = yaml.safe_load(open(config))
tenants = yaml.safe_load(open(pdd + "/project/tenants.yml"))["pgtikv_tenants"]
pd = cfg["pd_endpoints"][0]
pd = pd if "://" in pd else "http://" + pd
for t in tenants:
    meta = json.load(urllib.request.urlopen(pd + "/pd/api/v2/keyspaces/" + t["name"]))
    assert meta["state"] == "ENABLED", meta
checks = []
for t in tenants:
    checks += [{"login": t["name"] + ".admin", "password": t["admin_password"], "expect": "ok"},
               {"login": t["name"] + ".admin", "password": "admin", "expect": "refused"},
               {"login": t["name"] + ".app", "password": t["users"][0]["password"], "expect": "ok"}]
req = {"host": cfg["pg_host"], "port": cfg["pg_port"], "checks": checks}
res = json.loads(subprocess.run([sys.executable, tools + "/pgcheck.py", "logins"], input=json.dumps(req),
                                capture_output=True, text=True, check=True).stdout)
assert not res["mismatches"] and len(res["results"]) == 6, res
print("PD: both ENABLED; second client: %d logins as expected" % len(res["results"]))
PY

cp "$pdd/artifacts/job1/stdout" "$pdd/job-stdout.log"
"$py" "$tools/leakcheck.py" "$pdd/job-stdout.log" "$pdd/secrets.txt" 4 --expect pg_tikv_tenants
echo "runner_provision: passed"
