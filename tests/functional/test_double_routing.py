# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: login-name routing to PD keyspaces (reference §1).

Driven over the wire by psql and psycopg2; a raw wire client only where no
driver exposes the fact (SQLSTATE of a login failure, a startup packet without
``user``). Keyspaces are created in the real PD by raw HTTP, with unique names.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import closing

import pytest

LOGIN_FAILED = 'Password authentication failed for user "%s"'


def _psql_version(helpers, port, user, password):
    return helpers.run_psql(port, user, password, "SELECT version()")


@pytest.mark.parametrize("which", ["private", "stack"])
def test_must_show_version_only_once_keyspace_exists(which, double, stack_env, pd_url, helpers):
    """§1.4, §2.5, §4: ``psql -U <ks>.admin`` gets 28P01 until the keyspace
    exists in the real PD, then ``PostgreSQL 15.0 (pg-tikv)`` from version().

    ``stack`` runs it against the double the stack started on $PG_PORT.
    """
    port = double.port if which == "private" else int(stack_env.get("PG_PORT") or 0)
    assert port, "PG_PORT is not set: start the stack with tests/stack/start"
    ks = helpers.unique_name("acme")

    before = _psql_version(helpers, port, ks + ".admin", "admin")
    assert before.returncode != 0, before.stdout
    assert "FATAL:  " + LOGIN_FAILED % "admin" in before.stderr
    raw = helpers.raw_login(port, ks + ".admin", "admin")
    assert raw["error"] == {"S": "FATAL", "C": "28P01", "M": LOGIN_FAILED % "admin"}

    helpers.pd_create_keyspace(pd_url, ks)

    after = _psql_version(helpers, port, ks + ".admin", "admin")
    assert after.returncode == 0, after.stderr
    assert after.stdout.strip() == "PostgreSQL 15.0 (pg-tikv)"


def test_dot_and_colon_separators_share_one_tenant(double, keyspace, helpers):
    """§1.1: ``ks.user`` and ``ks:user`` route to the same keyspace."""
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        conn.cursor().execute("CREATE ROLE carol LOGIN PASSWORD 'pw-c'")
    res = helpers.run_psql(double.port, keyspace + ":carol", "pw-c", "SELECT 1")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"


def test_dot_wins_and_user_names_may_contain_dots(double, keyspace, helpers):
    """§1.1: split at the first '.', so ``ks.user.name`` is user
    ``user.name`` in ``ks``; with ':' first, ``ks:user.name`` is user ``name``
    in keyspace ``ks:user`` (which cannot exist), hence 28P01."""
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        conn.cursor().execute("""CREATE ROLE "user.name" LOGIN PASSWORD 'pw-d'""")
    ok = helpers.run_psql(double.port, keyspace + ".user.name", "pw-d", "SELECT 1")
    assert ok.returncode == 0, ok.stderr
    bad = helpers.raw_login(double.port, keyspace + ":user.name", "pw-d")
    assert bad["error"]["C"] == "28P01"
    assert bad["error"]["M"] == LOGIN_FAILED % "name"


@pytest.mark.parametrize("login", [".admin", "somewhere.", ".", ":"])
def test_empty_side_means_no_tenant_prefix(login, double, helpers):
    """§1.1: with an empty side there is no split; the whole string is
    the user name in the default keyspace (so the error names it whole)."""
    res = helpers.raw_login(double.port, login, "admin")
    assert res["error"]["C"] == "28P01"
    assert res["error"]["M"] == LOGIN_FAILED % login


def test_error_names_the_user_part_only(double, keyspace, helpers):
    """§2.5: ``<user>`` in the 28P01 message is the part after the prefix."""
    res = helpers.run_psql(double.port, keyspace + ".nobody", "x", "SELECT 1")
    assert res.returncode != 0
    assert 'FATAL:  Password authentication failed for user "nobody"' in res.stderr


def test_no_prefix_uses_lowercase_default_keyspace(double, pd_url, helpers):
    """§1.2: without a separator the keyspace is ``default`` (created in
    PD at startup, as the real server does), distinct from PD's ``DEFAULT``."""
    assert helpers.pd_get_keyspace(pd_url, "default").status_code == 200
    role = helpers.unique_name("r")
    with closing(helpers.pg_connect(double.port, "admin", "admin")) as conn:
        conn.cursor().execute("CREATE ROLE %s LOGIN PASSWORD 'pw'" % role)
    assert helpers.run_psql(double.port, "default." + role, "pw", "SELECT 1").returncode == 0
    upper = helpers.raw_login(double.port, "DEFAULT." + role, "pw")
    assert upper["error"]["C"] == "28P01"  # another keyspace, another user store


def test_default_keyspace_option_and_startup_autocreate(double_factory, pd_url, helpers):
    """§1.2: ``--default-keyspace`` (PG_KEYSPACE) routes unprefixed
    names; the startup keyspace, and only it, is created in PD if missing."""
    ks = helpers.unique_name("dflt")
    assert helpers.pd_get_keyspace(pd_url, ks).status_code != 200
    dbl = double_factory("--default-keyspace", ks, name="double-dflt")
    meta = helpers.pd_get_keyspace(pd_url, ks)
    assert meta.status_code == 200 and meta.json()["name"] == ks
    with closing(helpers.pg_connect(dbl.port, "admin", "admin")) as conn:
        conn.cursor().execute("CREATE ROLE dora LOGIN PASSWORD 'pw-dora'")
    assert helpers.run_psql(dbl.port, ks + ".dora", "pw-dora", "SELECT 1").returncode == 0
    assert helpers.raw_login(dbl.port, "default.dora", "pw-dora")["error"]["C"] == "28P01"
    # A tenant named in a user name is never created.
    other = helpers.unique_name("never")
    assert helpers.raw_login(dbl.port, other + ".admin", "admin")["error"]["C"] == "28P01"
    assert helpers.pd_get_keyspace(pd_url, other).status_code == 500


def test_missing_keyspace_is_rechecked_on_every_login(double, pd_url, helpers):
    """§1.4, §1.5: only found keyspaces are cached; a missing one is
    looked up in PD again at each login (fails twice, then works)."""
    ks = helpers.unique_name("late")
    for _ignored in range(2):
        assert helpers.raw_login(double.port, ks + ".admin", "admin")["error"]["C"] == "28P01"
    helpers.pd_create_keyspace(pd_url, ks)
    res = helpers.raw_login(double.port, ks + ".admin", "admin")
    assert res["error"] is None and res["ready"] == b"I"
    assert "Tenant '%s' does not exist (user: admin)" % ks in double.log_text()


@pytest.mark.parametrize("states", [["DISABLED"], ["DISABLED", "ARCHIVED"], ["DISABLED", "ARCHIVED", "TOMBSTONE"]])
def test_disabled_archived_tombstone_keyspace_still_logs_in(states, double, keyspace, pd_url, helpers):
    """§1.5: nothing checks the keyspace state; the first login after
    the state change (no cached client) succeeds and runs SQL."""
    for state in states:
        assert helpers.pd_set_state(pd_url, keyspace, state)["state"] == state
    res = helpers.run_psql(double.port, keyspace + ".admin", "admin", "CREATE ROLE x", "SELECT version()")
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["CREATE ROLE", "PostgreSQL 15.0 (pg-tikv)"]


def test_missing_user_parameter_defaults_to_admin(double, helpers):
    """§1.1: a startup packet without ``user`` logs in as ``admin``
    (default keyspace). libpq always sends ``user``, hence the raw client."""
    ok = helpers.raw_login(double.port, None, "admin")
    assert ok["error"] is None and ok["ready"] == b"I"
    bad = helpers.raw_login(double.port, None, "not-admin")
    assert bad["error"]["M"] == LOGIN_FAILED % "admin"


def test_database_parameter_is_ignored(double, keyspace, helpers):
    """§1.1: any dbname is accepted; current_database() is ``postgres``."""
    res = helpers.run_psql(double.port, keyspace + ".admin", "admin", "SELECT current_database()", dbname="no_such_database")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "postgres"


class _Proxy:
    """A TCP forwarder that can be switched off (makes PD 'unreachable')."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.running = True
        self.paused = False
        self.delay = 0.0  # seconds every forwarded connection waits (a slow PD)
        self.connections = 0  # connections accepted (each is one PD request of the double)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while self.running:
            try:
                client, _ignored = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            if self.paused:  # PD "down": accept, then hang up without an answer
                client.close()
                continue
            threading.Thread(target=self._forward, args=(client, self.delay), daemon=True).start()

    def _forward(self, client, delay):
        if delay:
            time.sleep(delay)
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            client.close()
            return
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        self.running = False
        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.listener.close()


def test_unreachable_pd_fails_uncached_and_cached_tenants_alike(double_factory, pd_url, make_keyspace, helpers):
    """§1.4a (with §1.4, §2.5): with PD unreachable, a login to a not-yet-cached
    tenant fails like a wrong password (FATAL 28P01); a login to a cached
    tenant fails with FATAL XX000 ``Failed to begin transaction: ...`` (no
    cache serves it); a statement on a session opened before fails with
    ERROR XX000. When PD answers again, the same session and new logins
    work without a restart of the server."""
    host, port = pd_url.split("://", 1)[1].rsplit(":", 1)
    proxy = _Proxy(host, int(port))
    try:
        dbl = double_factory("--pd-endpoints", "127.0.0.1:%d" % proxy.port, name="double-pdproxy")
        cached, uncached = make_keyspace("cach"), make_keyspace("unca")
        assert helpers.raw_login(dbl.port, cached + ".admin", "admin")["error"] is None
        with closing(helpers.pg_connect(dbl.port, cached + ".admin", "admin")) as conn:
            conn.cursor().execute("CREATE ROLE before_outage")
            proxy.paused = True
            res = helpers.raw_login(dbl.port, uncached + ".admin", "admin")
            assert res["error"] == {"S": "FATAL", "C": "28P01", "M": LOGIN_FAILED % "admin"}
            psql = helpers.run_psql(dbl.port, uncached + ".admin", "admin", "SELECT 1")
            assert 'FATAL:  Password authentication failed for user "admin"' in psql.stderr
            res = helpers.raw_login(dbl.port, cached + ".admin", "admin")
            assert (res["error"]["S"], res["error"]["C"]) == ("FATAL", "XX000"), res
            assert res["error"]["M"].startswith("Failed to begin transaction: ")
            assert res["auth_request"] == 3  # refused after the password, like every login failure
            helpers.outage_statements_fail(conn)
            proxy.paused = False
            helpers.outage_session_works_again(conn)
        assert helpers.raw_login(dbl.port, cached + ".admin", "admin")["error"] is None
        assert helpers.raw_login(dbl.port, uncached + ".admin", "admin")["error"] is None
    finally:
        proxy.stop()
    assert "Failed to connect to TiKV for tenant '%s'" % uncached in dbl.log_text()


def test_timestamps_are_batched_but_never_older_than_the_request(double_factory, pd_url, make_keyspace, helpers):
    """§1.4a: every login needs a timestamp from PD; like tikv-client's
    timestamp oracle, the double sends the requests that wait meanwhile as one
    (24 concurrent logins to a cached tenant, PD answering in 0.3 s: far fewer
    than 24 PD requests). Never kinder: a login that asks after PD went down
    fails, even while a request sent before the outage is still out."""
    host, port = pd_url.split("://", 1)[1].rsplit(":", 1)
    proxy = _Proxy(host, int(port))
    try:
        dbl = double_factory("--pd-endpoints", "127.0.0.1:%d" % proxy.port, name="double-tso")
        cached = make_keyspace("tsob")
        assert helpers.raw_login(dbl.port, cached + ".admin", "admin")["error"] is None
        proxy.delay = 0.3
        errors = []

        def login():
            errors.append(helpers.raw_login(dbl.port, cached + ".admin", "admin")["error"])

        before = proxy.connections
        threads = [threading.Thread(target=login) for _login in range(24)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert errors == [None] * 24
        assert 1 <= proxy.connections - before <= 6, proxy.connections - before

        early = threading.Thread(target=login)
        errors.clear()
        early.start()  # its PD request is out for 0.3 s
        time.sleep(0.1)
        proxy.paused = True  # PD goes down while that request is out
        late = helpers.raw_login(dbl.port, cached + ".admin", "admin")
        early.join(30)
        assert errors == [None], errors
        assert (late["error"]["S"], late["error"]["C"]) == ("FATAL", "XX000"), late
    finally:
        proxy.stop()


def test_login_to_missing_tenant_stalls_new_tenant_logins_only(double_factory, make_keyspace, helpers):
    """§1.4: building a client for a missing tenant (PD retries) holds
    the pool's lock: a concurrent first login to another *new* tenant waits,
    a login to an already-cached tenant does not."""
    dbl = double_factory("--missing-keyspace-delay", "2", name="double-stall")
    cached, fresh = make_keyspace("cach"), make_keyspace("fres")
    assert helpers.raw_login(dbl.port, cached + ".admin", "admin")["error"] is None
    timings = {}

    def login(key, user):
        t0 = time.monotonic()
        timings[key] = (helpers.raw_login(dbl.port, user, "admin")["error"], time.monotonic() - t0)

    missing = threading.Thread(target=login, args=("missing", helpers.unique_name("gone") + ".admin"))
    missing.start()
    time.sleep(0.3)
    others = [threading.Thread(target=login, args=("fresh", fresh + ".admin")), threading.Thread(target=login, args=("cached", cached + ".admin"))]
    for thread in others:
        thread.start()
    for thread in [missing] + others:
        thread.join(30)
    assert timings["missing"][0]["C"] == "28P01" and timings["missing"][1] >= 1.9
    assert timings["fresh"][0] is None and timings["fresh"][1] >= 1.2
    assert timings["cached"][0] is None and timings["cached"][1] < 1.0
