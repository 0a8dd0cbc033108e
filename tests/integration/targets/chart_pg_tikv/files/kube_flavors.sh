# shellcheck shell=bash
# Sourced by the Kubernetes targets that drive the collection's playbooks
# (platform_kwok, role_releases) after kube_env.sh: the same run once per Helm
# flavor, helm v4 on ansible-core 2.21 (Python 3.12, kubernetes.core 6.6) and
# helm v3 on ansible-core 2.19 (Python 3.11, kubernetes.core 6.2).
#
# Gives: kubectl (an array), fail, created_ns (namespaces uninstalled and
# deleted at exit, whatever happens), flavor_begin, step, play, recap_changed
# and run_flavors. A target defines run_flavor FLAVOR HELM VENV_BIN KCOLL CORE,
# which calls flavor_begin first.

# ansible-test puts its own ansible-core on PYTHONPATH; each flavor runs the
# ansible-core of its own venv.
unset PYTHONPATH
base_cpath="${ANSIBLE_COLLECTIONS_PATH:-}"
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_DEPRECATION_WARNINGS=false
kubectl=("$KUBECTL_BIN" --kubeconfig "$KUBECONFIG")
fail() { echo "FAIL: $*"; exit 1; }

created_ns=()
cleanup_created_namespaces() {
  local ns rel
  for ns in "${created_ns[@]}"; do
    for rel in $("$HELM_BIN" --kubeconfig "$KUBECONFIG" list -n "$ns" -q 2>/dev/null); do
      "$HELM_BIN" --kubeconfig "$KUBECONFIG" uninstall "$rel" -n "$ns" >/dev/null 2>&1 || true
    done
    "${kubectl[@]}" delete namespace "$ns" --wait=false --ignore-not-found >/dev/null 2>&1 || true
  done
}
trap cleanup_created_namespaces EXIT

# flavor_begin KCOLL CORE: the flavor's collections path, and a check that
# its ansible-playbook ($apb, set by the caller) is the ansible-core wanted.
# Prints the versions, with ABOUT after them.
flavor_begin() {
  local kcoll="$1" core="$2" about="$3" version
  export ANSIBLE_COLLECTIONS_PATH="$base_cpath:$kcoll"
  version="$("$apb" --version)"; version="${version%%$'\n'*}"
  echo "=== $flavor: $("$helm" version --short), $version, $about"
  [[ "$version" == *"[core $core."* ]] || fail "$flavor must run on ansible-core $core, not: $version"
}

# The helpers below use the caller's locals (bash scoping): flavor, n, work,
# venv_bin, apb.
step() { n=$((n + 1)); echo "== $flavor step $n: $*"; }
# play NAME ARGS...: ansible-playbook -vvv into logs/NN-NAME.log; returns its rc.
play() {
  local name="$1"; shift
  LAST_LOG="$work/logs/$(printf %02d "$n")-$name.log"
  local rc=0 s=$SECONDS
  PATH="$venv_bin:$PATH" "$apb" -vvv "$@" >"$LAST_LOG" 2>&1 || rc=$?
  echo "   $name rc=$rc in $((SECONDS - s))s ($(grep -A1 'PLAY RECAP' "$LAST_LOG" | tail -1 | tr -s ' '))"
  return $rc
}
recap_changed() { grep -A1 'PLAY RECAP' "$LAST_LOG" | tail -1 | sed -E 's/.*changed=([0-9]+).*/\1/'; }

# run_flavors FLAVORS...: run_flavor for each (helm4, helm3).
run_flavors() {
  local flavor
  for flavor in "$@"; do
    case "$flavor" in
      helm4) run_flavor helm4 "$HELM_BIN" "$(dirname "$PGTIKV_PYTHON312")" "$PGTIKV_K8S_COLLECTIONS_PY312" 2.21 ;;
      helm3) run_flavor helm3 "$HELM3_BIN" "$(dirname "$py")" "$PGTIKV_K8S_COLLECTIONS_PY311" 2.19 ;;
      *) fail "unknown flavor $flavor" ;;
    esac
  done
}
