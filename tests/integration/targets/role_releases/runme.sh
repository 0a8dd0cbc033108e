#!/usr/bin/env bash
# Application releases wired to their tenants (the releases role through the
# shipped playbooks, by FQCN), on the kwok test cluster, once with helm v4
# (Python 3.12, ansible-core 2.21, kubernetes.core 6.6) and once with helm v3
# (Python 3.11, ansible-core 2.19, kubernetes.core 6.2):
#   check mode from empty (nothing created) -> three releases from empty ->
#   identical re-run (changed=0, no revision, no Secret write) -> rotation
#   (Secrets rewritten, pods rolled, old passwords refused) -> repair (a
#   Secret deleted, a password broken by hand: audit reports both, the next
#   run restores and proves them) -> a refused declaration -> the Koku
#   failure mode (a release whose tenant cannot be completed: the role fails
#   naming it, it is never installed) -> decommission (release gone, tenant
#   DISABLED, credentials refused) -> no password in any -vvv log, helm
#   values, manifests or release history.
#
# kwok fakes pods: nothing in a pod runs. Deployments roll out and become
# ready by kwok Stages; the credentials are proven from the controller
# against the local stack's PD and pg-tikv double (files/checks.py: kubectl,
# helm, raw HTTP to PD, psycopg2).
set -euo pipefail
# shellcheck source=../chart_pg_tikv/files/kube_env.sh
. ../chart_pg_tikv/files/kube_env.sh
here="$(pwd)"
# shellcheck source=../chart_pg_tikv/files/kube_flavors.sh
. ../chart_pg_tikv/files/kube_flavors.sh
total=$SECONDS

run_flavor() {
  local flavor="$1" helm="$2" venv_bin="$3" kcoll="$4" core="$5"
  local t0=$SECONDS sfx work n=0 store_ns
  sfx="$(head -c 3 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  work="$(mktemp -d "$out/releases-$flavor.XXXXXX")"; chmod 700 "$work"
  mkdir -p "$work/logs"
  store_ns="rr-store-$flavor-$sfx"
  local apb="$venv_bin/ansible-playbook" vpy="$venv_bin/python"
  flavor_begin "$kcoll" "$core" "suffix $sfx"
  for k in a b c d bad dup; do created_ns+=("rr-$flavor-$sfx-$k"); done
  created_ns+=("$store_ns")
  must() { play "$@" || { grep -E '^(fatal|failed)|"msg"' "$LAST_LOG" | tail -30; fail "$1"; }; }
  report() { grep -E '^ +"Release rr-[a-z]+ \(namespace [^)]*\): ' "$LAST_LOG" | sed -E 's/^ +"//; s/",?$//; s/^/   /' | sort -u; }
  ck() { "$vpy" "$here/files/checks.py" "$1" "$work" "${@:2}"; }
  file() { echo "pgtikv_releases_file=$work/releases-$1.yml"; }
  cat >"$work/state.json" <<JSON
{"config": "$config", "sfx": "$sfx", "flavor": "$flavor", "helm": "$helm", "store_ns": "$store_ns",
 "chart": "$here/files/app-chart", "kubectl": "$KUBECTL_BIN", "kubeconfig": "$KUBECONFIG"}
JSON
  "$helm" lint --strict "$here/files/app-chart" --set database.existingSecret=x >/dev/null || fail "helm lint of the test chart"
  for s in base koku bad; do ck declare "$s"; done
  local ta="rr${flavor: -1}_${sfx}_a" tb="rr${flavor: -1}_${sfx}_b" tc="rr${flavor: -1}_${sfx}_c" td="rr${flavor: -1}_${sfx}_d"
  "${kubectl[@]}" create namespace "$store_ns" >/dev/null

  step "check mode with diff from empty: nothing created"
  must check pgtikv.cloud.deploy_releases -e "$(file base)" --check --diff
  grep -qE 'a run would install it' "$LAST_LOG" || fail "check mode did not report the installs"
  grep -qE '^\+replicaCount: 2$' "$LAST_LOG" || fail "diff mode did not show the declared values"
  [ "$(recap_changed)" -gt 0 ] || fail "check mode reported no change"
  ck pd NONE "$ta" "$tb" "$tc"
  for k in a b c; do
    if "${kubectl[@]}" get namespace "rr-$flavor-$sfx-$k" >/dev/null 2>&1; then fail "check mode created a namespace"; fi
  done
  [ "$("${kubectl[@]}" get secrets -n "$store_ns" -o name | grep -c pgtikv-tenant || true)" = 0 ] || fail "check mode wrote the store"
  echo "   no keyspace, no namespace, no store Secret"

  step "three releases from empty"
  must deploy pgtikv.cloud.deploy_releases -e "$(file base)"
  report
  [ "$(report | grep -c 'revision 1 deployed (installed)')" = 3 ] || fail "not 3 installed"
  ck pd ENABLED "$ta" "$tb" "$tc"
  echo "   kubectl: $("${kubectl[@]}" get secrets -n "$store_ns" -o name | grep -c pgtikv-tenant) store Secrets in $store_ns (write-ahead store, backend kubernetes)"
  ck secrets 1
  ck releases 1 1 1
  ck rollout 0 1 rr-a

  step "identical re-run: no helm upgrade, no Secret write, changed=0"
  must rerun pgtikv.cloud.deploy_releases -e "$(file base)"
  [ "$(recap_changed)" = 0 ] || fail "re-run reported changed=$(recap_changed)"
  [ "$(grep -c 'AnsiballZ_helm.py' "$LAST_LOG" || true)" = 0 ] || fail "the re-run called kubernetes.core.helm"
  report
  ck secrets 2
  ck same-rv 1 2
  ck releases 1 1 1
  echo "   changed=0; kubernetes.core.helm never ran (no AnsiballZ_helm.py in the -vvv log)"

  step "audit: no drift"
  must audit pgtikv.cloud.audit -e "$(file base)" -e "pgtikv_releases_audit_report=$work/audit-1.json"
  grep -q 'No drift: 3 releases and their tenants match their declaration' "$LAST_LOG" || fail "audit"
  echo "   No drift: 3 releases and their tenants match their declaration"

  step "rotation (rotate_credentials with the releases): Secrets rewritten, pods rolled, old passwords refused"
  must rotate pgtikv.cloud.rotate_credentials -e "$(file base)"
  report
  [ "$(report | grep -c 'revision 2 deployed (upgraded)')" = 3 ] || fail "not 3 upgraded"
  ck secrets 3
  ck rotated 2 3
  ck releases 2 2 2
  ck rollout 1 3 rr-a

  step "repair: a Secret deleted and a password broken by hand"
  "${kubectl[@]}" delete secret db-a -n "rr-$flavor-$sfx-a" >/dev/null
  echo "   kubectl: Secret db-a deleted"
  ck break rr-b api
  if play audit-drift pgtikv.cloud.audit -e "$(file base)" -e "pgtikv_releases_audit_report=$work/audit-2.json"; then
    fail "audit passed with drift"
  fi
  grep -qE 'Secret db-a missing' "$work/audit-2.json" || fail "audit did not report the missing Secret"
  grep -qE 'Secret db-b: its password does not log in' "$work/audit-2.json" || fail "audit did not report the broken login"
  grep -E '^ +"(Release rr-|  )' "$LAST_LOG" | grep -E 'DRIFT|Secret db-|tenant' | sed -E 's/^ +"//; s/",?$//; s/^/   audit: /' | sort -u | head -8
  must repair pgtikv.cloud.deploy_releases -e "$(file base)"
  report
  ck secrets 4
  ck releases 2 2 2
  must audit-after pgtikv.cloud.audit -e "$(file base)" -e "pgtikv_releases_audit_report=$work/audit-3.json"
  echo "   audit after the repair: no drift"

  step "a refused declaration: clear message, nothing changed"
  if play bad pgtikv.cloud.deploy_releases -e "$(file bad)"; then fail "a bad declaration passed"; fi
  grep -qE 'The declared releases are refused; nothing was changed' "$LAST_LOG" || fail "no refusal headline"
  grep -qE 'credentials.values_path must be a dotted path' "$LAST_LOG" || fail "bad values_path not named"
  grep -qE "tenant $tb belongs to another release already" "$LAST_LOG" || fail "shared tenant not named"
  for k in bad dup; do
    if "${kubectl[@]}" get namespace "rr-$flavor-$sfx-$k" >/dev/null 2>&1; then fail "a refused run created a namespace"; fi
  done
  echo "   refused before anything: bad values_path and a tenant shared by two releases named"

  step "Koku failure mode: a release whose tenant cannot be completed (PD unreachable)"
  if play koku pgtikv.cloud.deploy_releases -e "$(file koku)"; then fail "the role reported success"; fi
  grep -qE '4 of 4 releases are NOT complete' "$LAST_LOG" || fail "no headline"
  grep -qE "Release rr-d \\(namespace rr-$flavor-$sfx-d\\): tenant $td was not reconciled" "$LAST_LOG" || fail "release rr-d not named"
  grep -oE "\"4 of 4 releases are NOT complete:\"|\"Release rr-d \\(namespace [^)]*\\): [^\"]{0,150}" "$LAST_LOG" | sort -u | sed 's/^"/   /'
  if grep -qE 'releases complete and proven' "$LAST_LOG"; then fail "success reported"; fi
  if "$helm" --kubeconfig "$KUBECONFIG" status rr-d -n "rr-$flavor-$sfx-d" >/dev/null 2>&1; then fail "rr-d was installed"; fi
  ck pd NONE "$td"
  ck releases 2 2 2
  echo "   helm: rr-d never installed; the others untouched at revision 2"

  step "decommission rr-c: release uninstalled first, then its tenant locked and DISABLED"
  must decommission pgtikv.cloud.decommission -e "$(file base)" -e '{"pgtikv_decommission": ["rr-c"]}'
  grep -qE '1 releases decommissioned: rr-c uninstalled' "$LAST_LOG" || fail "no decommission message"
  awk '/Helm uninstall with wait/{u=NR} /Run the bulk module/{if(!b)b=NR} END{exit !(u && b && u < b)}' "$LAST_LOG" \
    || fail "the tenant was closed before the release was uninstalled"
  ck gone rr-c
  ck pd DISABLED "$tc"
  ck refused 4 rr-c
  ck pd ENABLED "$ta" "$tb"

  step "no password in the release history, values, manifests (releases rr-a, rr-b)"
  ck helm-leaks rr-a rr-b

  step "leak check over every -vvv log"
  cat "$work"/logs/*.log >"$work/all.log"
  "$py" "$tools/leakcheck.py" "$work/all.log" "$work/secrets.json" 8 --expect pg_tikv_tenants --expect AnsiballZ_k8s.py
  echo "=== $flavor: all steps passed in $((SECONDS - t0))s"
}

# shellcheck disable=SC2086 # RELEASES_FLAVORS is a list
run_flavors ${RELEASES_FLAVORS:-helm4 helm3}
echo "role_releases: all steps passed in $((SECONDS - total))s"
