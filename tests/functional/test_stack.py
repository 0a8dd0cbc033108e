"""Functional tests against the real local stack (tests/stack/start).

Run:
    tests/stack/start
    . $PGTIKV_STACK_DIR/env.sh  # default /dev/shm/pgtikv-stack
    $PGTIKV_PYTHON -m pytest tests/functional/test_stack.py

They talk to a real pd-server (keyspace HTTP API) and a real PostgreSQL 15
with plain ``requests`` and ``psycopg2``. Nothing is skipped: if the stack is
not up, every test fails and says how to start it.

The PD expectations pin what the pinned pd-server
(github.com/tikv/pd v1.1.0-beta.0.20240407022249-7179657d129b, keyspace API as
in v8.5.x) really answers. Where that differs from
/work/shared/reference/pd-keyspace-api.md, tests/stack/README.md says so under
"Observed PD behaviour (vs reference)".
"""

import base64
import hashlib
import hmac
import os
import secrets
import socket
import struct
import uuid

import psycopg2
import pytest
import requests

HOW_TO_START = (
    "start the stack with tests/stack/start, then `. $PGTIKV_STACK_DIR/env.sh`"
    " (default /dev/shm/pgtikv-stack/env.sh; /tmp/pgtikv-stack without a writable /dev/shm)"
)
TIMEOUT = 10  # seconds, for every HTTP call


# --------------------------------------------------------------------- fixtures


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"environment variable {name} is not set: {HOW_TO_START}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def pd():
    """Base URL of the keyspace API; fails (never skips) if PD is not ready."""
    base = f"http://{_env('PD_ENDPOINTS').split(',')[0]}/pd/api/v2/keyspaces"
    try:
        resp = requests.get(f"{base}/DEFAULT", timeout=TIMEOUT)
    except requests.RequestException as exc:
        pytest.fail(f"PD at {base} is not reachable ({exc}): {HOW_TO_START}", pytrace=False)
    if resp.status_code != 200:
        pytest.fail(
            f"PD keyspace API not ready: GET {base}/DEFAULT gave {resp.status_code} {resp.text!r}: {HOW_TO_START}",
            pytrace=False,
        )
    return base


@pytest.fixture(scope="session")
def pg():
    """Connection parameters of the stack's PostgreSQL; fails if it is down."""
    params = {
        "host": _env("POSTGRES_HOST"),
        "port": int(_env("POSTGRES_PORT")),
        "user": _env("POSTGRES_USER"),
        "password": _env("POSTGRES_PASSWORD"),
        "dbname": "postgres",
        "connect_timeout": 5,
    }
    try:
        with socket.create_connection((params["host"], params["port"]), timeout=5):
            pass
    except OSError as exc:
        pytest.fail(f"PostgreSQL at {params['host']}:{params['port']} is not reachable ({exc}): {HOW_TO_START}", pytrace=False)
    return params


def unique_name(prefix="stk"):
    # Keyspace names are never reusable (TOMBSTONE keeps them): always random.
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def error_text(resp):
    """PD error bodies are a JSON string literal; return the decoded string."""
    body = resp.json()
    assert isinstance(body, str), f"expected a JSON string body, got {resp.text!r}"
    return body


def create(pd, name, **extra):
    resp = requests.post(pd, json={"name": name, **extra}, timeout=TIMEOUT)
    assert resp.status_code == 200, f"create {name}: {resp.status_code} {resp.text!r}"
    return resp.json()


def put_state(pd, name, state):
    return requests.put(f"{pd}/{name}/state", json={"state": state}, timeout=TIMEOUT)


def get(pd, name):
    return requests.get(f"{pd}/{name}", timeout=TIMEOUT)


# ------------------------------------------------------------ PD keyspace API


def test_pd_default_keyspace(pd):
    resp = get(pd, "DEFAULT")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    meta = resp.json()
    assert meta["id"] == 0
    assert meta["name"] == "DEFAULT"
    assert meta["state"] == "ENABLED"
    # This PD line does not inject region_bound_type: no config key at all.
    assert "config" not in meta


def test_pd_create_and_get(pd):
    name = unique_name()
    created = create(pd, name)
    assert created["name"] == name
    assert created["state"] == "ENABLED"
    assert isinstance(created["id"], int) and created["id"] > 0
    assert created["created_at"] == created["state_changed_at"]
    assert "config" not in created  # omitted when empty

    resp = get(pd, name)
    assert resp.status_code == 200
    assert resp.json() == created


def test_pd_create_with_config_and_patch(pd):
    name = unique_name()
    created = create(pd, name, config={"k": "v", "x": "y"})
    assert created["config"] == {"k": "v", "x": "y"}

    # Merge patch: null deletes, new keys are added, others stay.
    # preconditions are ignored by this PD line (no 409), even when false.
    resp = requests.patch(
        f"{pd}/{name}/config",
        json={"config": {"k": None, "n": "1"}, "preconditions": {"k": "NOT-THE-VALUE"}},
        timeout=TIMEOUT,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["config"] == {"x": "y", "n": "1"}

    # Non-string config values fail binding: 400 with body {} (text/plain).
    resp = requests.post(pd, json={"name": unique_name(), "config": {"k": 1}}, timeout=TIMEOUT)
    assert resp.status_code == 400
    assert resp.text == "{}"


def test_pd_get_missing(pd):
    resp = get(pd, unique_name("missing"))
    assert resp.status_code == 500
    assert error_text(resp) == "keyspace does not exist"


def test_pd_duplicate_create(pd):
    name = unique_name()
    first = create(pd, name)
    resp = requests.post(pd, json={"name": name}, timeout=TIMEOUT)
    assert resp.status_code == 500
    assert error_text(resp) == "keyspace already exists"
    # The original is untouched.
    assert get(pd, name).json() == first


def test_pd_invalid_and_reserved_names(pd):
    resp = requests.post(pd, json={"name": "bad name!"}, timeout=TIMEOUT)
    assert resp.status_code == 500
    assert error_text(resp) == "illegal keyspace name bad name!, should contain only alphanumerical and underline"

    resp = requests.post(pd, json={"name": "DEFAULT"}, timeout=TIMEOUT)
    assert resp.status_code == 500
    assert error_text(resp) == "illegal keyspace name DEFAULT, collides with default keyspace name"

    # No length limit on this PD line (v26.3+/master: at most 20 characters).
    long_name = unique_name("x" * 40)
    assert create(pd, long_name)["name"] == long_name


def test_pd_list_pagination(pd):
    name = unique_name()
    target = create(pd, name)

    seen, token, pages = [], "", 0
    while True:
        pages += 1
        assert pages < 10000, "pagination does not terminate"
        params = {"limit": 1}
        if token:
            params["page_token"] = token
        resp = requests.get(pd, params=params, timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert set(body) == {"keyspaces", "next_page_token"}
        assert isinstance(body["next_page_token"], str)
        page = body["keyspaces"]
        assert page is not None and len(page) == 1
        seen.append(page[0])
        if page[0]["name"] == name:
            break
        assert body["next_page_token"], f"walked {pages} pages without finding {name}"
        assert int(body["next_page_token"]) > page[0]["id"]
        token = body["next_page_token"]

    assert seen[0]["name"] == "DEFAULT" and seen[0]["id"] == 0
    ids = [k["id"] for k in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert seen[-1] == target

    # Past the end: keyspaces is null, not [].
    resp = requests.get(pd, params={"page_token": 16777215}, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.json() == {"keyspaces": None, "next_page_token": ""}

    # Beyond the ID space: 500.
    resp = requests.get(pd, params={"page_token": 16777216}, timeout=TIMEOUT)
    assert resp.status_code == 500
    assert error_text(resp) == "startID of the scan 16777216 exceeds spaceID Max 16777215"


def test_pd_state_walk_to_tombstone(pd):
    name = unique_name()
    created = create(pd, name)

    # Mixed case on purpose: the state is case-insensitive.
    for requested, expected in (("disabled", "DISABLED"), ("Archived", "ARCHIVED"), ("TOMBSTONE", "TOMBSTONE")):
        resp = put_state(pd, name, requested)
        assert resp.status_code == 200, f"{requested}: {resp.status_code} {resp.text!r}"
        assert resp.json()["state"] == expected
        got = get(pd, name)
        assert got.status_code == 200
        meta = got.json()
        assert meta["state"] == expected
        assert meta["id"] == created["id"]
        assert meta["created_at"] == created["created_at"]
        assert meta["state_changed_at"] >= created["created_at"]

    # TOMBSTONE is terminal, still listed, and the name stays taken.
    resp = put_state(pd, name, "archived")
    assert resp.status_code == 500
    assert error_text(resp) == "cannot change keyspace state from TOMBSTONE to ARCHIVED"
    listed = requests.get(pd, params={"page_token": created["id"], "limit": 1}, timeout=TIMEOUT).json()
    assert listed["keyspaces"][0]["name"] == name
    assert listed["keyspaces"][0]["state"] == "TOMBSTONE"
    resp = requests.post(pd, json={"name": name}, timeout=TIMEOUT)
    assert resp.status_code == 500
    assert error_text(resp) == "keyspace already exists"


def test_pd_illegal_transition(pd):
    name = unique_name()
    create(pd, name)
    resp = put_state(pd, name, "archived")
    assert resp.status_code == 500
    assert error_text(resp) == "cannot change keyspace state from ENABLED to ARCHIVED"
    assert get(pd, name).json()["state"] == "ENABLED"


def test_pd_state_put_edge_cases(pd):
    name = unique_name()
    created = create(pd, name)

    # No-op PUT: 200, nothing changes.
    resp = put_state(pd, name, "enabled")
    assert resp.status_code == 200
    assert resp.json() == created

    # Unknown state: 400 with body {} (JSON content type).
    resp = put_state(pd, name, "bogus")
    assert resp.status_code == 400
    assert resp.text == "{}"

    # DEFAULT refuses any state PUT, even a no-op.
    resp = put_state(pd, "DEFAULT", "enabled")
    assert resp.status_code == 500
    assert error_text(resp) == "cannot modify default keyspace's state"

    # Missing keyspace.
    resp = put_state(pd, unique_name("missing"), "disabled")
    assert resp.status_code == 500
    assert error_text(resp) == "keyspace does not exist"

    # There is no DELETE route: gin's plain 404.
    resp = requests.delete(f"{pd}/{name}", timeout=TIMEOUT)
    assert resp.status_code == 404
    assert resp.text == "404 page not found"


# ------------------------------------------------------------------ PostgreSQL


def _recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    return buf


def _recv_message(sock):
    kind = _recv_exact(sock, 1)
    (length,) = struct.unpack("!I", _recv_exact(sock, 4))
    return kind, _recv_exact(sock, length - 4)


def _error_fields(payload):
    fields = {}
    for part in payload.rstrip(b"\0").split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode()
    return fields


def scram_login(host, port, user, password, dbname="postgres"):
    """Minimal PostgreSQL wire client: startup + SCRAM-SHA-256.

    psycopg2 gives no SQLSTATE for a failed connection (pgcode is None), so
    this reads the server's ErrorResponse itself. Returns ("ok", mechanisms)
    after AuthenticationOk with a verified server signature, or
    ("error", {field: value}) with e.g. fields["C"] == "28P01".
    """
    with socket.create_connection((host, port), timeout=10) as sock:
        params = b"user\0" + user.encode() + b"\0database\0" + dbname.encode() + b"\0\0"
        sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)

        kind, payload = _recv_message(sock)
        if kind == b"E":
            return "error", _error_fields(payload)
        assert kind == b"R", kind
        (code,) = struct.unpack("!I", payload[:4])
        assert code == 10, f"expected AuthenticationSASL (10), got {code}"
        mechanisms = [m.decode() for m in payload[4:].split(b"\0") if m]
        assert "SCRAM-SHA-256" in mechanisms

        client_nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        client_first_bare = f"n=,r={client_nonce}"
        client_first = ("n,," + client_first_bare).encode()
        body = b"SCRAM-SHA-256\0" + struct.pack("!I", len(client_first)) + client_first
        sock.sendall(b"p" + struct.pack("!I", 4 + len(body)) + body)

        kind, payload = _recv_message(sock)
        if kind == b"E":
            return "error", _error_fields(payload)
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 11, (kind, payload[:4])
        server_first = payload[4:].decode()
        attrs = dict(item.split("=", 1) for item in server_first.split(","))
        assert attrs["r"].startswith(client_nonce)

        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        final_no_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{client_first_bare},{server_first},{final_no_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=False))
        final = f"{final_no_proof},p={base64.b64encode(proof).decode()}".encode()
        sock.sendall(b"p" + struct.pack("!I", 4 + len(final)) + final)

        kind, payload = _recv_message(sock)
        if kind == b"E":
            return "error", _error_fields(payload)
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 12, (kind, payload[:4])
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        expected = base64.b64encode(hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode()
        assert payload[4:].decode() == f"v={expected}", "server signature mismatch"

        kind, payload = _recv_message(sock)
        assert kind == b"R" and struct.unpack("!I", payload[:4])[0] == 0, "no AuthenticationOk"
        sock.sendall(b"X\0\0\0\4")  # Terminate
        return "ok", mechanisms


def test_pg_scram_login_succeeds(pg):
    with psycopg2.connect(**pg) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_user, current_setting('server_version_num')::int")
        user, version = cur.fetchone()
        assert user == "postgres"
        assert 150000 <= version < 160000
        # The stored verifier is SCRAM, and every pg_hba rule demands SCRAM.
        cur.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
        assert cur.fetchone()[0].startswith("SCRAM-SHA-256$4096:")
        cur.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules")
        assert [r[0] for r in cur.fetchall()] == ["scram-sha-256"]
    conn.close()

    # The same over the raw protocol: SASL offered, server signature valid.
    status, detail = scram_login(pg["host"], pg["port"], pg["user"], pg["password"])
    assert status == "ok", detail
    assert "SCRAM-SHA-256" in detail


def test_pg_wrong_password_is_28P01(pg):
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**{**pg, "password": pg["password"] + "-wrong"})

    status, fields = scram_login(pg["host"], pg["port"], pg["user"], pg["password"] + "-wrong")
    assert status == "error"
    assert fields["S"] == "FATAL"
    assert fields["C"] == "28P01", fields
    assert fields["M"] == 'password authentication failed for user "postgres"'


def test_pg_settings(pg):
    with psycopg2.connect(**pg) as conn, conn.cursor() as cur:
        cur.execute("SHOW password_encryption")
        assert cur.fetchone()[0] == "scram-sha-256"
        cur.execute("SHOW standard_conforming_strings")
        assert cur.fetchone()[0] == "on"
        cur.execute("SHOW listen_addresses")
        assert cur.fetchone()[0] == "127.0.0.1"
        cur.execute("SHOW port")
        assert int(cur.fetchone()[0]) == pg["port"]
    conn.close()
