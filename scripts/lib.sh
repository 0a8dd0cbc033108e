# shellcheck shell=bash
# Shared paths and helpers for scripts/, tests/stack/ and .ci/run.
# Source it; it sets variables and defines functions, nothing else.

PGTIKV_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PGTIKV_ROOT
export PGTIKV_CACHE="${PGTIKV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pgtikv-cloud}"
# Everything the running stack owns (data dirs, logs, pids, env file).
export PGTIKV_STACK_DIR="${PGTIKV_STACK_DIR:-/tmp/pgtikv-stack}"

# The venv is keyed by the requirement files, so a change rebuilds it and an
# unchanged checkout (CI on a warm machine) reuses it.
_req_hash="$(cat "$PGTIKV_ROOT/requirements.txt" "$PGTIKV_ROOT/requirements-dev.txt" | sha256sum | cut -c1-12)"
export PGTIKV_VENV="${PGTIKV_VENV:-$PGTIKV_CACHE/venv-$_req_hash}"
export PGTIKV_PYTHON="$PGTIKV_VENV/bin/python"

# Loopback ports of the local stack. Chosen away from the defaults (2379, 5432,
# 5433) so a developer's own services are never touched.
export PD_CLIENT_PORT="${PD_CLIENT_PORT:-23790}"
export PD_PEER_PORT="${PD_PEER_PORT:-23800}"
export POSTGRES_PORT="${POSTGRES_PORT:-25432}"
export PGTIKV_DOUBLE_PORT="${PGTIKV_DOUBLE_PORT:-25433}"

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
