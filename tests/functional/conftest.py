# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures of the functional tests.

Generic on purpose: the stack environment, PD's keyspace API, unique
keyspaces, a psql runner, a raw PostgreSQL-wire client (for what no driver
exposes, e.g. the SQLSTATE of a login failure), and a factory that starts
private instances of the pg-tikv test double.

The stack (tests/stack/start) writes $PGTIKV_STACK_DIR/env.sh; variables set
in the environment win over that file. Nothing here skips: a missing stack is
a test failure that says how to start it.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import signal
import socket
import struct
import subprocess
import sys
import time
import types

import psycopg2
import pytest
import requests

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
DOUBLE_SERVER = REPO_ROOT / "tests" / "pgtikv_double" / "server.py"
# scripts/lib.sh's default when the variable is not set: tmpfs when there is one.
STACK_DIR = os.environ.get("PGTIKV_STACK_DIR") or ("/dev/shm/pgtikv-stack" if os.access("/dev/shm", os.W_OK) else "/tmp/pgtikv-stack")
HOW_TO_START = "start the stack with tests/stack/start (it writes %s/env.sh)" % STACK_DIR
HTTP_TIMEOUT = 10


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (still part of the default run)")


# ----------------------------------------------------------------- environment


def load_stack_env():
    """The ``export K=V`` lines of env.sh, overridden by the real environment."""
    env = {}
    path = os.path.join(STACK_DIR, "env.sh")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if line.startswith("export ") and "=" in line:
                    key, _ignored, value = line[len("export ") :].partition("=")
                    env[key.strip()] = value.strip().strip("'\"")
    for key in ("PD_ENDPOINTS", "PG_HOST", "PG_PORT", "POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_USER", "POSTGRES_PASSWORD", "PGTIKV_STACK_DIR"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    return env


@pytest.fixture(scope="session")
def stack_env():
    env = load_stack_env()
    if not env.get("PD_ENDPOINTS"):
        pytest.fail("PD_ENDPOINTS is not set: " + HOW_TO_START, pytrace=False)
    return env


@pytest.fixture(scope="session")
def pd_endpoints(stack_env):
    return stack_env["PD_ENDPOINTS"]


@pytest.fixture(scope="session")
def pd_url(pd_endpoints):
    """``http://`` + the first PD endpoint; fails if the keyspace API is not ready."""
    first = pd_endpoints.split(",")[0].strip()
    base = first if "://" in first else "http://" + first
    try:
        resp = requests.get(base + "/pd/api/v2/keyspaces/DEFAULT", timeout=HTTP_TIMEOUT)
    except requests.RequestException as exc:
        pytest.fail("PD at %s is not reachable (%s): %s" % (base, exc, HOW_TO_START), pytrace=False)
    if resp.status_code != 200:
        pytest.fail("PD keyspace API not ready (%s %r): %s" % (resp.status_code, resp.text, HOW_TO_START), pytrace=False)
    return base


# --------------------------------------------------------------------- keyspaces


def unique_name(prefix="t"):
    """A never-used name: PD keyspaces can be neither deleted nor reused."""
    return "%s_%s" % (prefix, secrets.token_hex(4))


def pd_create_keyspace(pd_url, name):
    resp = requests.post(pd_url + "/pd/api/v2/keyspaces", json={"name": name}, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, "POST keyspace %s: %s %s" % (name, resp.status_code, resp.text)
    return resp.json()


def pd_get_keyspace(pd_url, name):
    return requests.get(pd_url + "/pd/api/v2/keyspaces/" + name, timeout=HTTP_TIMEOUT)


def pd_set_state(pd_url, name, state):
    resp = requests.put(pd_url + "/pd/api/v2/keyspaces/%s/state" % name, json={"state": state}, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, "PUT state %s of %s: %s %s" % (state, name, resp.status_code, resp.text)
    return resp.json()


@pytest.fixture
def make_keyspace(pd_url):
    """``make_keyspace(prefix='t') -> name``: a fresh keyspace, created by raw HTTP."""

    def make(prefix="t"):
        name = unique_name(prefix)
        pd_create_keyspace(pd_url, name)
        return name

    return make


@pytest.fixture
def keyspace(make_keyspace):
    return make_keyspace()


# --------------------------------------------------------------------------- psql


def run_psql(port, user, password, *commands, host="127.0.0.1", dbname="postgres", sslmode="disable", stdin="", env=None, timeout=60):
    """Run the psql CLI (-X -w -At, one -c per command); return CompletedProcess."""
    argv = ["psql", "-X", "-w", "-At", "-h", host, "-p", str(port), "-U", user, "-d", dbname]
    for command in commands:
        argv += ["-c", command]
    full_env = dict(os.environ)
    full_env.update({"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10", "PGSSLMODE": sslmode, "PGAPPNAME": "pgtikv-functional"})
    if password is None:
        full_env.pop("PGPASSWORD")
    full_env.update(env or {})
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=full_env, timeout=timeout, check=False)


# ------------------------------------------------------------- raw wire client


class RawPg:
    """A minimal PostgreSQL v3 client over a plain socket.

    Only for what real drivers do not expose: the SQLSTATE/severity of a login
    failure, the exact ParameterStatus set, logins without a ``user`` or with
    an empty password, and the ReadyForQuery status byte.
    """

    def __init__(self, port, host="127.0.0.1", timeout=30):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read(self):
        typ = self._recv_exact(1)
        length = struct.unpack("!i", self._recv_exact(4))[0]
        return typ, self._recv_exact(length - 4)

    def send(self, typ, payload=b""):
        self.sock.sendall(typ + struct.pack("!i", len(payload) + 4) + payload)

    def startup(self, params):
        body = struct.pack("!i", 196608)
        for key, value in params.items():
            body += key.encode() + b"\0" + value.encode() + b"\0"
        body += b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)

    def login(self, params, password):
        """Return a dict: auth_request, messages (list of (type, payload)), error (dict or None)."""
        self.startup(params)
        typ, payload = self.read()
        result = {"auth_request": None, "messages": [], "error": None, "parameters": [], "ready": None}
        if typ == b"E":
            result["error"] = parse_error_fields(payload)
            return result
        assert typ == b"R", typ
        result["auth_request"] = struct.unpack("!i", payload[:4])[0]
        self.send(b"p", password.encode("utf-8") + b"\0")
        while True:
            try:
                typ, payload = self.read()
            except EOFError:
                return result
            result["messages"].append((typ, payload))
            if typ == b"E":
                result["error"] = parse_error_fields(payload)
                return result
            if typ == b"S":
                key, value = payload.rstrip(b"\0").split(b"\0")
                result["parameters"].append((key.decode(), value.decode()))
            if typ == b"Z":
                result["ready"] = payload
                return result

    def query(self, sql):
        """Simple query: return the list of (type, payload) up to ReadyForQuery."""
        self.send(b"Q", sql.encode("utf-8") + b"\0")
        out = []
        while True:
            typ, payload = self.read()
            out.append((typ, payload))
            if typ == b"Z":
                return out


def parse_error_fields(payload):
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[part[:1].decode()] = part[1:].decode("utf-8", "replace")
    return fields


def raw_login(port, user, password, extra=None):
    """One raw login attempt; returns RawPg.login()'s dict (connection closed)."""
    client = RawPg(port)
    try:
        params = {"user": user, "database": "postgres"} if user is not None else {"database": "postgres"}
        params.update(extra or {})
        return client.login(params, password)
    finally:
        client.close()


# ------------------------------------------------------------ the test double


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DoubleProcess:
    """A private pg-tikv double (subprocess) on a free loopback port."""

    def __init__(self, workdir, pd_endpoints, args=(), state_file=None, port=None):
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pd_endpoints = pd_endpoints
        self.args = list(args)
        self.state_file = pathlib.Path(state_file or self.workdir / "users.json")
        self.port = port or free_port()
        self.log_path = self.workdir / "double.log"
        self.proc = None

    def start(self, wait=30):
        argv = [
            sys.executable,
            str(DOUBLE_SERVER),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--pd-endpoints",
            self.pd_endpoints,
            "--state-file",
            str(self.state_file),
        ] + self.args
        log = open(self.log_path, "ab")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("the double exited (rc %s) during startup:\n%s" % (self.proc.returncode, self.log_text()[-3000:]))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("the double did not listen within %ss:\n%s" % (wait, self.log_text()[-3000:]))

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log_text(self):
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)


@pytest.fixture(scope="session")
def double_factory(pd_endpoints, pd_url, tmp_path_factory):  # pylint: disable=unused-argument
    """``start(*args, name=..., state_file=None) -> DoubleProcess``; all stopped at session end."""
    started = []

    def start(*args, name="double", state_file=None, port=None):
        workdir = tmp_path_factory.mktemp(name)
        proc = DoubleProcess(workdir, pd_endpoints, args, state_file=state_file, port=port)
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()


def pg_connect(port, user, password, autocommit=True, sslmode="disable", **kwargs):
    """A psycopg2 connection (autocommit by default, as pg-tikv requires)."""
    conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="postgres", sslmode=sslmode, connect_timeout=10, **kwargs)
    conn.autocommit = autocommit
    return conn


# ------------------------------------------------------------- PD outage (§1.4a)


def outage_statements_fail(conn):
    """With PD down, statements on a session opened before (which created the
    role ``before_outage``) fail with ERROR XX000 ``Failed to begin
    transaction: ...``, a read, a probe and a write alike (reference §1.4a)."""
    for sql in ("SELECT 1", "ALTER ROLE before_outage RESET ALL", "CREATE ROLE during_outage"):
        with pytest.raises(psycopg2.Error) as info:
            conn.cursor().execute(sql)
        assert (info.value.diag.severity, info.value.pgcode) == ("ERROR", "XX000"), sql
        assert info.value.diag.message_primary.startswith("Failed to begin transaction: ")


def outage_session_works_again(conn):
    """PD is back: the same session works without a reconnect, and the write
    attempted during the outage never happened (reference §1.4a)."""
    cur = conn.cursor()
    cur.execute("ALTER ROLE before_outage RESET ALL")
    with pytest.raises(psycopg2.Error) as info:
        cur.execute("ALTER ROLE during_outage RESET ALL")
    assert info.value.diag.message_primary == "Role 'during_outage' does not exist"


@pytest.fixture(scope="session")
def helpers():
    """The module-level helpers of this conftest, for test modules."""
    return types.SimpleNamespace(
        unique_name=unique_name,
        pd_create_keyspace=pd_create_keyspace,
        pd_get_keyspace=pd_get_keyspace,
        pd_set_state=pd_set_state,
        run_psql=run_psql,
        RawPg=RawPg,
        raw_login=raw_login,
        parse_error_fields=parse_error_fields,
        free_port=free_port,
        pg_connect=pg_connect,
        DoubleProcess=DoubleProcess,
        outage_statements_fail=outage_statements_fail,
        outage_session_works_again=outage_session_works_again,
    )


@pytest.fixture(scope="session")
def double(double_factory):
    """The shared private double: default options (no fallback password, no TLS)."""
    return double_factory(name="double-default")
