#!/usr/bin/env bash
# pg_tikv_tenant / pg_tikv_tenant_info over mutual TLS against a real pd-server.
#
# The local stack's PD is plain http, so this target starts a second pd-server
# (the same binary) with [security] certificates: first plain, to bootstrap it
# with the stack's pd-bootstrap (which speaks plain gRPC), then restarted on
# the same data dir and ports with TLS. Only that process is stopped at the end
# (by its pid). Certificates come from openssl: a CA, a server certificate with
# SAN IP:127.0.0.1 (also PD's own client certificate, reference §7), a client
# certificate, and an unrelated CA for the mismatch case.
set -euo pipefail

out="${OUTPUT_DIR:-$(mktemp -d)}"
work="$out/pd-tls"
cfg=../../integration_config.yml
extra=()
[ -f "$cfg" ] && extra+=(-e "@$cfg")
[ -n "${INVENTORY_PATH:-}" ] && extra+=(-i "$INVENTORY_PATH")
start=$SECONDS

stack_dir="${PGTIKV_STACK_DIR:-}"
if [ -z "$stack_dir" ] && [ -f "$cfg" ]; then
  stack_dir="$(sed -n 's/^pgtikv_stack_dir: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$cfg")"
fi
if [ -z "$stack_dir" ]; then  # scripts/lib.sh's default
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then stack_dir=/dev/shm/pgtikv-stack; else stack_dir=/tmp/pgtikv-stack; fi
fi
pd_bin="$(readlink "/proc/$(cat "$stack_dir/run/pd.pid" 2>/dev/null || echo 0)/exe" 2>/dev/null || true)"
[ -x "$pd_bin" ] || pd_bin="${PGTIKV_CACHE:-$HOME/.cache/pgtikv-cloud}/bin/pd-server"
boot_bin="$(dirname "$pd_bin")/pd-bootstrap"
if [ ! -x "$pd_bin" ] || [ ! -x "$boot_bin" ]; then
  echo "needs the local stack's pd-server and pd-bootstrap (scripts/setup)"
  exit 1
fi
command -v openssl >/dev/null || { echo "needs openssl"; exit 1; }

rm -rf "$work"
mkdir -p "$work"
cd_target="$PWD"
read -r client_port peer_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
for s in socks: s.close()')

# -- certificates ------------------------------------------------------------
(
  cd "$work"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 2 -subj "/CN=pgtikv-test-ca" 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca-key.pem -out other-ca.pem -days 2 -subj "/CN=unrelated-ca" 2>/dev/null
  printf 'subjectAltName = IP:127.0.0.1,DNS:localhost\n' > san.ext
  openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr -subj "/CN=pd-server" 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -keyout client-key.pem -out client.csr -subj "/CN=pgtikv-client" 2>/dev/null
  openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out client.pem -days 2 2>/dev/null
  # As the stack's pd.toml: no TiKV (no split wait), fast single-member elections.
  printf 'tick-interval = "100ms"\nelection-interval = "1s"\n[keyspace]\nwait-region-split = false\n' > pd.toml
)

pd_pid=""
stop_pd() {
  if [ -n "$pd_pid" ] && kill -0 "$pd_pid" 2>/dev/null; then
    kill "$pd_pid" 2>/dev/null || true
    for _i in $(seq 1 50); do kill -0 "$pd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pd_pid" 2>/dev/null || true
  fi
  pd_pid=""
}
trap stop_pd EXIT

start_pd() {  # start_pd http|https [tls args...]
  local scheme="$1"; shift
  setsid "$pd_bin" --name pd-tls-test --data-dir "$work/data" --config "$work/pd.toml" \
    --client-urls "$scheme://127.0.0.1:$client_port" --peer-urls "$scheme://127.0.0.1:$peer_port" \
    --initial-cluster "pd-tls-test=$scheme://127.0.0.1:$peer_port" "$@" >>"$work/pd.log" 2>&1 &
  pd_pid=$!
}

wait_http() {  # wait_http URL [ca cert key]: until 200 (30 s)
  python3 - "$@" <<'PY'
import ssl, sys, time, urllib.request
url = sys.argv[1]
ctx = None
if len(sys.argv) > 2:
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    ctx.load_cert_chain(sys.argv[3], sys.argv[4])
deadline = time.time() + 30
while time.time() < deadline:
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx) as r:
            if r.status == 200:
                sys.exit(0)
    except Exception:
        pass
    time.sleep(0.2)
sys.exit("timed out waiting for %s" % url)
PY
}

start_pd http
wait_http "http://127.0.0.1:$client_port/pd/api/v1/members" || { tail -20 "$work/pd.log"; exit 1; }
"$boot_bin" --pd "127.0.0.1:$client_port" --timeout 30s
wait_http "http://127.0.0.1:$client_port/pd/api/v2/keyspaces/DEFAULT"
stop_pd
start_pd https --cacert "$work/ca.pem" --cert "$work/server.pem" --key "$work/server-key.pem"
wait_http "https://127.0.0.1:$client_port/pd/api/v2/keyspaces/DEFAULT" "$work/ca.pem" "$work/client.pem" "$work/client-key.pem" \
  || { tail -20 "$work/pd.log"; exit 1; }
echo "TLS PD ready on https://127.0.0.1:$client_port in $((SECONDS - start))s"

cd "$cd_target"
rc=0
ansible-playbook playbook.yml "${extra[@]}" -e "tls_dir=$work" -e "tls_port=$client_port" "$@" || rc=$?
stop_pd
echo "target runtime: $((SECONDS - start))s"
exit "$rc"
