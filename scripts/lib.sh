# shellcheck shell=bash
# Shared paths and helpers for scripts/, tests/stack/ and .ci/run.
# Source it; it sets variables and defines functions, nothing else.

PGTIKV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGTIKV_ROOT
export PGTIKV_CACHE="${PGTIKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgtikv-cloud}"
# Everything the running stack owns (data dirs, logs, pids, env file). On
# tmpfs when there is one: PD fsyncs every keyspace create into its etcd, and
# on this VM's disk that alone capped creates at ~80/s (~390/s on tmpfs); the
# stack's data is throwaway anyway.
if [ -z "${PGTIKV_STACK_DIR:-}" ]; then
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then
    PGTIKV_STACK_DIR=/dev/shm/pgtikv-stack
  else
    PGTIKV_STACK_DIR=/tmp/pgtikv-stack
  fi
fi
export PGTIKV_STACK_DIR

# The venv is keyed by the requirement files, so a change rebuilds it and an
# unchanged checkout (CI on a warm machine) reuses it.
_req_hash="$(cat "$PGTIKV_ROOT/requirements.txt" "$PGTIKV_ROOT/requirements-dev.txt" | sha256sum | cut -c1-12)"
export PGTIKV_VENV="${PGTIKV_VENV:-$PGTIKV_CACHE/venv-$_req_hash}"
export PGTIKV_PYTHON="$PGTIKV_VENV/bin/python"
# The second interpreter: Python 3.12 with ansible-core 2.21 (sanity and units
# on the newest supported ansible-core; the helm v4 run of the Kubernetes
# tier). The venv above is Python 3.11 with ansible-core 2.19.
_req312_hash="$(cat "$PGTIKV_ROOT/requirements.txt" "$PGTIKV_ROOT/requirements-py312.txt" | sha256sum | cut -c1-12)"
export PGTIKV_VENV312="${PGTIKV_VENV312:-$PGTIKV_CACHE/venv312-$_req312_hash}"
export PGTIKV_PYTHON312="$PGTIKV_VENV312/bin/python"
# kubernetes.core, extracted from the `ansible` wheels (no Galaxy): 6.6 for
# Python 3.12 / ansible-core 2.21 / helm v4, 6.2 for Python 3.11 /
# ansible-core 2.19 / helm v3. Each is an ANSIBLE_COLLECTIONS_PATH entry.
export PGTIKV_K8S_COLLECTIONS_PY312="$PGTIKV_CACHE/collections/kubernetes.core-6.6.0"
export PGTIKV_K8S_COLLECTIONS_PY311="$PGTIKV_CACHE/collections/kubernetes.core-6.2.0"
# tests/stack/build-kube: helm (v4), helm3, kubectl, kwokctl, the control plane.
export PGTIKV_KUBE_BIN="$PGTIKV_CACHE/kube/bin"

# Loopback ports of the local stack. Chosen away from the defaults (2379, 5432,
# 5433) so a developer's own services are never touched.
export PD_CLIENT_PORT="${PD_CLIENT_PORT:-23790}"
export PD_PEER_PORT="${PD_PEER_PORT:-23800}"
export POSTGRES_PORT="${POSTGRES_PORT:-25432}"
export PGTIKV_DOUBLE_PORT="${PGTIKV_DOUBLE_PORT:-25433}"
# The Kubernetes test cluster takes 6 loopback ports from KUBE_PORT_BASE on
# (apiserver, etcd, etcd peer, controller-manager, scheduler, kwok). The
# default follows POSTGRES_PORT, so a stack with its own ports gets its own
# cluster ports too. tests/stack/start recreates a cluster whose ports changed.
export KUBE_PORT_BASE="${KUBE_PORT_BASE:-$((POSTGRES_PORT + 8))}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# phase NAME CMD...: run a command and print how long it took.
phase() {
  local name="$1"; shift
  local start=$SECONDS
  log "phase $name: start"
  "$@"
  local rc=$?
  log "phase $name: $([ $rc -eq 0 ] && echo ok || echo "FAILED rc=$rc") in $((SECONDS - start))s"
  return $rc
}

# stack_up: install what is missing, start the local stack (both idempotent
# and cached) and load its environment, with the venv first on PATH.
stack_up() {
  phase setup "$PGTIKV_ROOT/scripts/setup" || return
  phase stack "$PGTIKV_ROOT/tests/stack/start" || return
  # shellcheck source=/dev/null
  . "$PGTIKV_STACK_DIR/env.sh"
  export PATH="$PGTIKV_VENV/bin:$PATH"
}

# install_collection DEST: build the tarball from this checkout and install it
# under DEST, exactly as users install it from Galaxy.
install_collection() {
  local dest="$1" build_dir rc=0
  build_dir="$(mktemp -d)"
  phase build ansible-galaxy collection build --force --output-path "$build_dir" "$PGTIKV_ROOT" >/dev/null \
    && phase install ansible-galaxy collection install --force -p "$dest" "$build_dir"/pgtikv-cloud-*.tar.gz >/dev/null \
    || rc=$?
  rm -rf "$build_dir"
  return "$rc"
}
