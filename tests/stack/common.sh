# shellcheck shell=bash
# shellcheck disable=SC2034  # variables are used by the scripts that source this file
# Helpers shared by tests/stack/{build-pd,start,stop}. Source it after
# scripts/lib.sh; it sets variables and defines functions, nothing else.

STACK_SRC="$PGTIKV_ROOT/tests/stack"
PD_BIN_DIR="$PGTIKV_CACHE/bin"
PD_SERVER_BIN="$PD_BIN_DIR/pd-server"
PD_BOOTSTRAP_BIN="$PD_BIN_DIR/pd-bootstrap"

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
PG_OS_USER=postgres

STACK_RUN="$PGTIKV_STACK_DIR/run"      # pid files
STACK_LOGS="$PGTIKV_STACK_DIR/logs"    # one log per process
STACK_MARKER="$PGTIKV_STACK_DIR/.pgtikv-stack"

PD_DIR="$PGTIKV_STACK_DIR/pd"
PD_DATA="$PD_DIR/data"
PD_PID="$STACK_RUN/pd.pid"
PD_LOG="$STACK_LOGS/pd.log"
PD_URL="http://127.0.0.1:$PD_CLIENT_PORT"
# What identifies our pd-server in /proc/PID/cmdline (pid reuse guard). The
# trailing space makes it exact (see cmdline_has).
PD_ID="--data-dir $PD_DATA "

PG_DIR="$PGTIKV_STACK_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCKET_DIR="$PG_DIR/socket"
PG_PASSWORD_FILE="$PG_DIR/password"
PG_LOG="$STACK_LOGS/postgres.log"

# PGTIKV_DOUBLE_SRC: override for testing these scripts with another server.
DOUBLE_SRC="${PGTIKV_DOUBLE_SRC:-$PGTIKV_ROOT/tests/pgtikv_double/server.py}"
DOUBLE_DIR="$PGTIKV_STACK_DIR/double"
DOUBLE_PID="$STACK_RUN/double.pid"
DOUBLE_LOG="$STACK_LOGS/double.log"
DOUBLE_STATE="$DOUBLE_DIR/users.json"
DOUBLE_ID="--state-file $DOUBLE_STATE "

ENV_FILE="$PGTIKV_STACK_DIR/env.sh"
# Outside the stack dir so that `stop --purge` can hold it while deleting.
STACK_LOCK="${PGTIKV_STACK_DIR%/}.lock"

# take_lock: serialise start/stop runs (a second one waits up to 120 s).
# The lock is fd 9: every long-lived child must be started with `9>&-`,
# or it inherits the lock and keeps it after this script exits.
take_lock() {
  exec 9>"$STACK_LOCK"
  flock -w 120 9 || die "another tests/stack/start or stop holds $STACK_LOCK for >120s"
}

# log_tail FILE: the last lines of a log, for error messages.
log_tail() {
  local f="$1"
  if [ -s "$f" ]; then
    printf -- '----- last 30 lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" >&2
    printf -- '-----\n' >&2
  else
    printf -- '(log %s is empty or missing)\n' "$f" >&2
  fi
}

# http_status URL: print the HTTP status of a GET (000 if no answer).
# Uses python3 (always present: Python 3.11 is a CI prerequisite), not curl.
http_status() {
  python3 - "$1" <<'PY' 2>/dev/null || echo 000
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

# http_body URL: print the body of a GET (empty if no answer).
http_body() {
  python3 - "$1" <<'PY' 2>/dev/null || true
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    sys.stdout.write(e.read().decode())
except Exception:
    pass
PY
}

# port_open PORT: true if something accepts TCP on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# port_owner PORT: best-effort description of who listens on PORT.
port_owner() {
  ss -Hltnp "sport = :$1" 2>/dev/null | sed 's/^/    /' || true
}

# alive PID: the process exists and is not a zombie (an exited child that
# init has not reaped yet still answers kill -0).
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  local state
  state="$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  [ -n "$state" ] && [ "$state" != Z ]
}

# cmdline_has PID STRING: the process's command line (args joined by
# spaces, with a trailing space) contains STRING.
cmdline_has() {
  local cmd
  cmd="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmd " == *"$2"* ]]
}

# pid_of PIDFILE ID: print the pid if the pid file names a live process
# whose command line contains ID (guards against a pid reused by an
# unrelated process). Returns 1 otherwise.
pid_of() {
  local file="$1" want="$2" pid
  [ -s "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] || return 1
  alive "$pid" || return 1
  cmdline_has "$pid" "$want" || return 1
  echo "$pid"
}

# adopt_listener PORT PIDFILE ID: if the process listening on
# 127.0.0.1:PORT is ours (its command line contains ID, e.g. our data dir)
# but its pid file is lost, rewrite the pid file and print the pid.
adopt_listener() {
  local port="$1" file="$2" want="$3" pid
  pid="$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)" || return 1
  [ -n "$pid" ] || return 1
  cmdline_has "$pid" "$want" || return 1
  echo "$pid" >"$file"
  echo "$pid"
}

# wait_for SECONDS DESCRIPTION CMD...: poll CMD every 0.5 s until it
# succeeds; return 1 after SECONDS.
wait_for() {
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  while ! "$@"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# stop_pid PIDFILE ID NAME GRACE: SIGTERM the process, wait up to
# GRACE seconds, then SIGKILL. Removes the pid file.
stop_pid() {
  local file="$1" want="$2" name="$3" grace="$4" pid
  if ! pid="$(pid_of "$file" "$want")"; then
    [ -e "$file" ] && log "$name: stale pid file removed"
    rm -f "$file"
    log "$name: not running"
    return 0
  fi
  log "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$name: still alive after ${grace}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
  log "$name: stopped"
}

# as_pg CMD...: run a command as the postgres OS user (PostgreSQL refuses
# to run as root; as a non-root user, run it directly). Runs from the stack
# dir so the cwd is readable. Closes fd 9 (the stack lock, see take_lock) so
# that a server started by pg_ctl does not hold the lock forever.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$PGTIKV_STACK_DIR" && runuser -u "$PG_OS_USER" -- "$@" 9>&-)
  else
    (cd "$PGTIKV_STACK_DIR" && "$@" 9>&-)
  fi
}

# ------------------------------------------------------------- PostgreSQL
pg_ctl_() { as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" "$@"; }
# pg_postmaster_pid: the pid in postmaster.pid, or nothing (never fails).
pg_postmaster_pid() {
  [ -s "$PG_DATA/postmaster.pid" ] || return 0
  head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9'
}

# pg_running: a live (not zombie) postmaster owns our data dir.
pg_running() {
  local pid
  pid="$(pg_postmaster_pid)"
  [ -n "$pid" ] && alive "$pid" && pg_ctl_ status >/dev/null 2>&1
}

# has_children PID: some process still has PID as its parent.
has_children() {
  grep -qsE "^PPid:[[:space:]]+$1\$" /proc/[0-9]*/status
}

# clear_stale_pg_pid: after a crash (kill -9) postmaster.pid and the socket
# lock file stay behind; a dead postmaster that init has not reaped yet still
# passes PostgreSQL's own kill(pid, 0) check and blocks the next start. Wait
# for its backends to go, then remove both files.
clear_stale_pg_pid() {
  local file pid
  for file in "$PG_DATA/postmaster.pid" "$PG_SOCKET_DIR/.s.PGSQL.$POSTGRES_PORT.lock"; do
    [ -s "$file" ] || continue
    pid="$(head -n1 "$file" | tr -dc '0-9')"
    if [ -n "$pid" ] && alive "$pid"; then continue; fi
    log "PostgreSQL: removing stale $(basename "$file") (pid ${pid:-?} is gone)"
    if [ -n "$pid" ] && ! wait_for 30 "the backends of the dead postmaster $pid to exit" eval "! has_children $pid"; then
      die "backends of the crashed PostgreSQL (postmaster $pid) are still running; stop them and retry"
    fi
    rm -f "$file"
    [ "$file" = "$PG_DATA/postmaster.pid" ] || rm -f "${file%.lock}"
  done
}

# pg_stop: fast shutdown, immediate if that takes more than 30 s.
pg_stop() {
  if ! pg_running; then
    clear_stale_pg_pid
    return 0
  fi
  log "PostgreSQL: pg_ctl stop -m fast"
  if ! pg_ctl_ stop -m fast -w -t 30 >/dev/null 2>&1; then
    log "PostgreSQL: fast stop did not finish in 30s; stop -m immediate"
    pg_ctl_ stop -m immediate -w -t 30 >/dev/null 2>&1 || true
  fi
  ! pg_running || die "PostgreSQL did not stop (data dir $PG_DATA, log $PG_LOG)"
  clear_stale_pg_pid
}

# ------------------------------------------------------- Kubernetes test tier
# Binaries (tests/stack/build-kube) and the Go caches that make rebuilds warm.
KUBE_CACHE="$PGTIKV_CACHE/kube"
KUBE_BIN_DIR="$PGTIKV_KUBE_BIN"
KUBE_BUILD_DIR="$KUBE_CACHE/build"
KUBE_GOMODCACHE="$PGTIKV_CACHE/go/mod"
KUBE_GOCACHE="$PGTIKV_CACHE/go/cache"
KWOK_VERSION=v0.8.0
# kwok's own Stage definitions, read by tests/stack/kube/stages.py.
KWOK_STAGE_SRC="$KUBE_GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"

# The cluster: everything kwokctl writes stays in the stack dir.
KUBE_DIR="$PGTIKV_STACK_DIR/kube"
KUBE_HOME="$KUBE_DIR/home"
KWOK_WORKDIR="$KUBE_DIR/kwok"
KUBE_CLUSTER=pgtikv
KUBE_CLUSTER_DIR="$KWOK_WORKDIR/clusters/$KUBE_CLUSTER"
KUBE_KUBECONFIG="$KUBE_DIR/kubeconfig"
KUBE_LOG="$STACK_LOGS/kube.log"
KUBE_APISERVER_PORT=$KUBE_PORT_BASE
KUBE_ETCD_PORT=$((KUBE_PORT_BASE + 1))
KUBE_ETCD_PEER_PORT=$((KUBE_PORT_BASE + 2))
KUBE_CONTROLLER_MANAGER_PORT=$((KUBE_PORT_BASE + 3))
KUBE_SCHEDULER_PORT=$((KUBE_PORT_BASE + 4))
KUBE_KWOK_PORT=$((KUBE_PORT_BASE + 5))

# kwokctl_ ARGS...: kwokctl on this stack's cluster, with HOME, KWOK_WORKDIR
# and KUBECONFIG inside the stack dir and only the cached binaries on PATH
# first. Output goes to the kube log: the control-plane processes it starts
# inherit its stdout, which must not be a caller's pipe. fd 9 (the stack
# lock) is closed for the same reason.
kwokctl_() {
  mkdir -p "$KUBE_HOME" "$STACK_LOGS"
  printf '\n===== %s kwokctl %s =====\n' "$(date -Is)" "$*" >>"$KUBE_LOG"
  HOME="$KUBE_HOME" KWOK_WORKDIR="$KWOK_WORKDIR" KUBECONFIG="$KUBE_KUBECONFIG" \
    PATH="$KUBE_BIN_DIR:$PATH" \
    setsid "$KUBE_BIN_DIR/kwokctl" --name "$KUBE_CLUSTER" "$@" </dev/null >>"$KUBE_LOG" 2>&1 9>&-
}

kubectl_() { HOME="$KUBE_HOME" "$KUBE_BIN_DIR/kubectl" --kubeconfig "$KUBE_KUBECONFIG" "$@"; }

# kube_pids: the pids in kwokctl's pid files (the control-plane processes).
kube_pids() {
  local f
  for f in "$KUBE_CLUSTER_DIR"/pids/*.pid; do
    [ -s "$f" ] && tr -dc '0-9\n' <"$f" && echo
  done | grep . || true
}

# kube_wait_gone PIDS...: wait up to 30 s for the processes to exit, then
# SIGTERM and, 10 s later, SIGKILL what is left (only pids from kwokctl's own
# pid files, checked against its binary dir).
kube_wait_gone() {
  local deadline=$((SECONDS + 30)) pid left signal=TERM
  while :; do
    left=()
    for pid in "$@"; do alive "$pid" && cmdline_has "$pid" "$KUBE_CLUSTER_DIR" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "Kubernetes: still alive: ${left[*]}; SIG$signal"
      kill "-$signal" "${left[@]}" 2>/dev/null || true
      [ "$signal" = KILL ] && return 0
      signal=KILL deadline=$((SECONDS + 10))
    fi
    sleep 0.2
  done
}

KUBE_NODES=2

# kube_delete: remove the cluster (processes and data); wait for its processes.
kube_delete() {
  local pids
  pids="$(kube_pids)"
  kwokctl_ delete cluster --kubeconfig "$KUBE_KUBECONFIG" || true
  # shellcheck disable=SC2086  # one pid per word
  kube_wait_gone $pids
  rm -rf "$KUBE_CLUSTER_DIR"
}
