#!/usr/bin/env bash
# The platform role through the shipped playbook (ansible-playbook
# pgtikv.cloud.deploy_platform), on the kwok test cluster, once with helm v4
# (Python 3.12, ansible-core 2.21, kubernetes.core 6.6) and once with helm v3
# (Python 3.11, ansible-core 2.19, kubernetes.core 6.2):
#   schema cases refused before anything is applied -> install -> identical
#   re-run reports no change -> upgrade adding a tenant (the hook Job runs
#   again; a PD snapshot shows only the new tenant created) -> failure path (a
#   hook pod failed by the test Stage: readable message naming the release
#   and revision) -> the fix repairs -> uninstall (hook resources gone,
#   keyspaces untouched: PD cannot delete) -> a self-contained release
#   (pd.deploy: true: PD and TiKV StatefulSets with bound PVCs).
#
# kwok fakes pods: nothing in a pod runs. Deployments become ready and hook
# Jobs complete (or fail, with the test-fail annotation) by kwok Stages. So
# the tenants are created by the role's controller-side step (the tenants
# role) against the local stack's PD and pg-tikv double; the hook's own
# command runs for real in the chart_hook_runs target.
set -euo pipefail
# shellcheck source=../chart_pg_tikv/files/kube_env.sh
. ../chart_pg_tikv/files/kube_env.sh
here="$(pwd)"
# shellcheck source=../chart_pg_tikv/files/kube_flavors.sh
. ../chart_pg_tikv/files/kube_flavors.sh
cases="$(cd ../chart_pg_tikv/files && pwd)/schema_cases.yml"
total=$SECONDS

run_flavor() {
  local flavor="$1" helm="$2" venv_bin="$3" kcoll="$4" core="$5"
  local t0=$SECONDS sfx work ns release=pt job=pt-pg-tikv-tenant-bootstrap n=0
  sfx="$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  work="$(mktemp -d "$out/platform-$flavor.XXXXXX")"; chmod 700 "$work"
  ns="pgtikv-it-$flavor-$sfx"
  mkdir -p "$work/logs"
  local apb="$venv_bin/ansible-playbook" vpy="$venv_bin/python"
  flavor_begin "$kcoll" "$core" "namespace $ns"
  deploy() { play "deploy-$1" pgtikv.cloud.deploy_platform -e "pgtikv_platform_file=$work/platform-$1.yml"; }
  revision() { "$helm" --kubeconfig "$KUBECONFIG" status "$release" -n "$ns" -o json | "$vpy" -c 'import json,sys; r=json.load(sys.stdin); print(r["version"], r["info"]["status"])'; }
  completed_events() {
    "${kubectl[@]}" get events -n "$ns" -o json \
      --field-selector "involvedObject.kind=Job,involvedObject.name=$job,reason=Completed" |
      "$vpy" -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))'
  }
  # deployed STEP REVISION: deploy the declaration STEP; it must pass, print its
  # proof line, and leave the release deployed at REVISION.
  deployed() {
    deploy "$1" || { grep -E 'fatal|msg' "$LAST_LOG" | tail -30; fail "deploy $1"; }
    grep -oE 'Release pt revision [0-9]+: deployed, [^"]*' "$LAST_LOG" | tail -1 | sed 's/^/   /'
    [ "$(revision)" = "$2 deployed" ] || fail "after deploy $1: $(revision), expected revision $2 deployed"
  }

  step "schema cases: the role refuses each before anything is applied"
  play schema "$here/files/schema_cases.yml" -e "cases_file=$cases" -e "helm_bin=$helm" \
    -e "refused_namespace=refused-$flavor-$sfx" || { grep -E 'fatal|FAILED|msg' "$LAST_LOG" | tail -20; fail "schema cases"; }
  grep -c '"msg": "refused ' "$LAST_LOG" | sed 's/^/   cases refused with their message: /'
  [ "$(grep -c '"msg": "refused ' "$LAST_LOG")" = "$("$vpy" -c "import yaml; print(len(yaml.safe_load(open('$cases'))['cases']))")" ] \
    || fail "not every case refused"
  if "${kubectl[@]}" get namespace "refused-$flavor-$sfx" >/dev/null 2>&1; then fail "a refused run created its namespace"; fi
  echo "   namespace refused-$flavor-$sfx does not exist: nothing was applied"

  step "Secrets for the tenants (kubectl, from 0600 files)"
  "${kubectl[@]}" create namespace "$ns" >/dev/null
  created_ns+=("$ns")
  "$vpy" - "$work" <<'PY'
import json, os, secrets, sys
work = sys.argv[1]
data = {"pk-a": ["admin", "app"], "pk-b": ["admin", "app", "report"], "pk-c": ["admin", "app"]}
data = {name: {key: secrets.token_urlsafe(18) for key in keys} for name, keys in data.items()}
data["pk-b"]["report"] = "q'" + secrets.token_urlsafe(15)
for name, keys in data.items():
    os.makedirs(os.path.join(work, "sec", name), mode=0o700)
    for key, value in keys.items():
        with open(os.path.join(work, "sec", name, key), "w", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(value)
with open(os.path.join(work, "secret-data.json"), "w", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
    json.dump(data, fh)
with open(os.path.join(work, "secrets.json"), "w") as fh:
    json.dump([v for d in data.values() for v in d.values()], fh)
PY
  for s in pk-a pk-b pk-c; do
    "${kubectl[@]}" create secret generic "$s" -n "$ns" --from-file="$work/sec/$s" >/dev/null
  done
  cat >"$work/state.json" <<JSON
{"config": "$config", "sfx": "$sfx", "release": "$release", "namespace": "$ns", "helm": "$helm"}
JSON
  for s in install upgrade fail; do "$vpy" "$here/files/checks.py" declare "$work" "$s"; done
  "$vpy" "$here/files/checks.py" declare "$work" install
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-0.json"

  step "install"
  deployed install 1
  [ "$(completed_events)" = 1 ] || fail "expected 1 Completed event of $job, got $(completed_events)"
  echo "   kubectl: 1 Completed event of Job $job (helm deleted the Job: hook-succeeded)"
  if "${kubectl[@]}" get job "$job" -n "$ns" >/dev/null 2>&1; then fail "the succeeded hook Job is still there"; fi
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-1.json"
  "$vpy" "$here/files/checks.py" pd-diff "$work/pd-0.json" "$work/pd-1.json" "pk_${sfx}_" "pk_${sfx}_a" "pk_${sfx}_b"
  "$vpy" "$here/files/checks.py" logins "$config" "$work" "$tools"

  step "identical re-run: no change"
  deploy install || fail "re-run"
  [ "$(recap_changed)" = 0 ] || fail "re-run reported changed=$(recap_changed)"
  [ "$(revision)" = "1 deployed" ] || fail "re-run made a revision: $(revision)"
  [ "$(completed_events)" = 1 ] || fail "the hook ran on a no-op re-run"
  echo "   changed=0, still revision 1, the hook did not run"

  step "tenants the controller cannot prove: the role fails naming the release, its revision and each tenant"
  "$vpy" "$here/files/checks.py" declare "$work" unreachable
  if play deploy-unreachable pgtikv.cloud.deploy_platform -e "pgtikv_platform_file=$work/platform-unreachable.yml"; then
    fail "tenants that cannot be proven passed"
  fi
  grep -qE "Release pt \\(namespace $ns\\) revision 1 deployed, but its tenants are NOT complete" "$LAST_LOG" \
    || fail "no headline naming the release and revision"
  for t in a b; do
    grep -qE "^ +\"pk_${sfx}_$t[: ]" "$LAST_LOG" || fail "tenant pk_${sfx}_$t not listed as incomplete"
  done
  grep -oE "Release pt \\(namespace [^)]*\\) revision 1 deployed, but its tenants are NOT complete:" "$LAST_LOG" \
    | head -1 | sed 's/^/   /'
  grep -oE "\"pk_${sfx}_[ab]: [^\"]{0,140}" "$LAST_LOG" | sort -u | sed 's/^"/     /'
  [ "$(revision)" = "1 deployed" ] || fail "the release changed: $(revision)"

  step "check mode with diff: the upgrade adding tenant c, nothing applied"
  "$vpy" "$here/files/checks.py" declare "$work" upgrade
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-check-0.json"
  play check pgtikv.cloud.deploy_platform -e "pgtikv_platform_file=$work/platform-upgrade.yml" --check --diff \
    || { grep -E 'fatal|msg' "$LAST_LOG" | tail -30; fail "check mode"; }
  grep -qE "a run would upgrade it from revision 1 \(values or chart changed\); tenants not yet in the release: pk_${sfx}_c" "$LAST_LOG" \
    || fail "check mode did not report the planned upgrade"
  grep -qE "^\+ +- adminPasswordSecret:|^\+ +name: pk_${sfx}_c" "$LAST_LOG" || fail "diff mode did not show the new tenant"
  grep -qE "helm upgrade --install|'--dry-run=server'" "$LAST_LOG" || fail "no server dry run"
  grep -oE ': a run would [^"]*' "$LAST_LOG" | head -1 | sed 's/^: /   /'
  grep -E "^\+ +name: pk_${sfx}_c" "$LAST_LOG" | head -1 | sed 's/^/   diff: /'
  [ "$(revision)" = "1 deployed" ] || fail "check mode changed the release: $(revision)"
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-check-1.json"
  "$vpy" "$here/files/checks.py" pd-diff "$work/pd-check-0.json" "$work/pd-check-1.json" "pk_${sfx}_"
  echo "   still revision 1; no keyspace created"

  step "upgrade adding tenant c"
  deployed upgrade 2
  [ "$(completed_events)" = 2 ] || fail "the hook did not run again ($(completed_events) Completed events)"
  echo "   kubectl: the hook Job ran again (2 Completed events)"
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-2.json"
  "$vpy" "$here/files/checks.py" pd-diff "$work/pd-1.json" "$work/pd-2.json" "pk_${sfx}_" "pk_${sfx}_c"
  "$vpy" "$here/files/checks.py" logins "$config" "$work" "$tools"

  step "failure path: the hook pod fails (kwok Stage, annotation pgtikv.cloud/test-fail)"
  "$vpy" "$here/files/checks.py" declare "$work" fail
  if deploy fail; then fail "a failing hook passed"; fi
  grep -E 'Release pt \(namespace [^)]*\) revision 3 is NOT complete' "$LAST_LOG" | head -1 | sed -E 's/^ +"//; s/",?$//; s/^/   /'
  grep -qE "Release pt \\(namespace $ns\\) revision 3 is NOT complete" "$LAST_LOG" || fail "message without release and revision"
  grep -qE "tenant-bootstrap Job $job of revision 3: failed: BackoffLimitExceeded" "$LAST_LOG" || fail "message without the failed Job"
  grep -E '^ +"(tenant-bootstrap Job|  pod |  event |  logs)' "$LAST_LOG" | sed -E 's/^ +"//; s/",?$//; s/^/   /' | sort -u | head -8
  [ "$(revision)" = "3 failed" ] || fail "after the failure: $(revision)"
  "${kubectl[@]}" get job "$job" -n "$ns" >/dev/null || fail "the failed Job was not kept for debugging"
  echo "   helm: revision 3 failed; the failed Job is kept for debugging"

  step "the fix (annotation removed): a re-run repairs"
  "$vpy" "$here/files/checks.py" declare "$work" upgrade
  deployed upgrade 4
  if "${kubectl[@]}" get job "$job" -n "$ns" >/dev/null 2>&1; then fail "hook Job left after success"; fi
  "$vpy" "$here/files/checks.py" logins "$config" "$work" "$tools"

  step "uninstall: hook resources gone, keyspaces untouched"
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-3.json"
  "$helm" --kubeconfig "$KUBECONFIG" uninstall "$release" -n "$ns" --wait --timeout 2m >/dev/null
  left="$("${kubectl[@]}" get jobs,configmaps,deployments,services,pods -n "$ns" \
          -l app.kubernetes.io/instance=$release -o name | wc -l)"
  [ "$left" = 0 ] || fail "$left release objects left after uninstall"
  echo "   kubectl: no Job, ConfigMap, Deployment, Service or Pod of the release left"
  "$vpy" "$here/files/checks.py" snapshot "$config" "$work/pd-4.json"
  "$vpy" "$here/files/checks.py" pd-diff "$work/pd-3.json" "$work/pd-4.json" "pk_${sfx}_"
  "$vpy" "$here/files/checks.py" pd-enabled "$config" "pk_${sfx}_a" "pk_${sfx}_b" "pk_${sfx}_c"

  step "self-contained release (pd.deploy: true): PD and TiKV StatefulSets with PVCs"
  "$vpy" "$here/files/checks.py" declare "$work" selfcontained
  deploy selfcontained || { grep -E 'fatal|msg' "$LAST_LOG" | tail -30; fail "self-contained"; }
  grep -qE 'Release pt-sc revision 1: deployed, 3 workloads ready' "$LAST_LOG" || fail "3 workloads not proven ready"
  grep -oE 'Release pt-sc revision [0-9]+: deployed, [^"]*' "$LAST_LOG" | tail -1 | sed 's/^/   /'
  bound="$("${kubectl[@]}" get pvc -n "$ns" -l app.kubernetes.io/instance=pt-sc -o json |
           "$vpy" -c 'import json,sys; print(sum(p["status"]["phase"] == "Bound" for p in json.load(sys.stdin)["items"]))')"
  [ "$bound" = 6 ] || fail "expected 6 Bound PVCs (3 PD + 3 TiKV), got $bound"
  echo "   kubectl: 6 PVCs Bound (3 PD, 3 TiKV)"
  "$helm" --kubeconfig "$KUBECONFIG" uninstall pt-sc -n "$ns" --wait --timeout 2m >/dev/null
  "${kubectl[@]}" delete namespace "$ns" --wait=false >/dev/null

  step "leak check over every -vvv log"
  cat "$work"/logs/*.log >"$work/all.log"
  "$py" "$tools/leakcheck.py" "$work/all.log" "$work/secrets.json" 7 --expect pg_tikv_tenants --expect "Helm upgrade --install with wait"
  echo "=== $flavor: all steps passed in $((SECONDS - t0))s"
}

# PLATFORM_FLAVORS narrows the run while iterating (default: both).
# shellcheck disable=SC2086 # PLATFORM_FLAVORS is a list
run_flavors ${PLATFORM_FLAVORS:-helm4 helm3}
echo "platform_kwok: all steps passed in $((SECONDS - total))s"
