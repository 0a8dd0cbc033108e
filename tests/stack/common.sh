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

PG_DIR="$PGTIKV_STACK_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_SOCKET_DIR="$PG_DIR/socket"
PG_PASSWORD_FILE="$PG_DIR/password"
PG_LOG="$STACK_LOGS/postgres.log"

DOUBLE_SRC="$PGTIKV_ROOT/tests/pgtikv_double/server.py"
DOUBLE_DIR="$PGTIKV_STACK_DIR/double"
DOUBLE_PID="$STACK_RUN/double.pid"
DOUBLE_LOG="$STACK_LOGS/double.log"

ENV_FILE="$PGTIKV_STACK_DIR/env.sh"
# Outside the stack dir so that `stop --purge` can hold it while deleting.
STACK_LOCK="${PGTIKV_STACK_DIR%/}.lock"

# take_lock: serialise start/stop runs (a second one waits up to 120 s).
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

# pid_of PIDFILE EXE_SUBSTRING: print the pid if the pid file names a live
# process whose command line contains EXE_SUBSTRING (guards against a pid
# reused by an unrelated process). Returns 1 otherwise.
pid_of() {
  local file="$1" want="$2" pid
  [ -s "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$want" || return 1
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

# stop_pid PIDFILE EXE_SUBSTRING NAME GRACE: SIGTERM the process, wait up to
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
  while kill -0 "$pid" 2>/dev/null; do
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
# to run as root). Runs from the stack dir so the cwd is readable.
as_pg() {
  (cd "$PGTIKV_STACK_DIR" && runuser -u "$PG_OS_USER" -- "$@")
}
