# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plan logic of _user.reconcile_user against an in-memory server (both kinds)."""

from __future__ import annotations

import json
import re

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as c
from ansible_collections.pgtikv.cloud.plugins.module_utils import _user as u
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import TaskError
from ansible_collections.pgtikv.cloud.tests.unit.plugins.module_utils.sql_fakes import NoSQL, patched_sql

_STMT = re.compile(r'^(CREATE|ALTER|DROP) ROLE "((?:[^"]|"")*)"(?: WITH (.*))?$', re.DOTALL)


class FakeSession(c.TenantSession):
    """A TenantSession whose statements run against a dict instead of a server.

    The real plan/quoting code is used; only execution and reads are faked.
    ``catalog`` selects the server kind (PostgreSQL-like or pg-tikv-like).
    """

    def __init__(self, catalog, tenant="acme", roles=None):
        self.conn = None
        self.sql_params = {}
        self.tenant = tenant
        self.login_user = "admin"
        self.queries = []
        self.writes = []
        self._secrets = set()
        self.capabilities = c.Capabilities()
        self.capabilities.role_catalog = catalog
        self.capabilities.authid_readable = catalog
        self.capabilities.password_encryption = "scram-sha-256" if catalog else None
        self.capabilities.standard_conforming_strings = "on" if catalog else None
        self.roles = roles if roles is not None else {}
        self.executed = []
        self.probes = []

    # -- reads
    def role_exists(self, user):
        return user in self.roles

    def get_role(self, user):
        r = self.roles.get(user)
        return None if r is None else {k: r[k] for k in ("login", "superuser", "createdb", "createrole", "conn_limit")}

    def stored_password(self, user):
        return self.roles[user]["password"]

    def probe_login(self, user, password):
        self.add_secret(password)
        self.probes.append(user)
        r = self.roles.get(user)
        if r is None:
            return "refused"
        if not r["login"]:
            return "nologin"
        if self.has_role_catalog:
            return "ok" if c.verify_password(r["password"], password, user) else "refused"
        return "ok" if r["password"] == password else "refused"

    # -- writes
    def execute(self, text, masked=None, params=None, what=None, fetch=False, record=True):
        self.executed.append(text)
        self.queries.append(c.scrub(masked or text, self._secrets))
        m = _STMT.match(text)
        verb, name, opts = m.group(1), m.group(2).replace('""', '"'), m.group(3) or ""
        if verb == "DROP":
            del self.roles[name]
            return None
        if verb == "CREATE":
            assert name not in self.roles
            self.roles[name] = dict(login=False, superuser=False, createdb=False, createrole=False, conn_limit=-1, password=None)
        role = self.roles[name]
        pw = re.search(r"PASSWORD '((?:[^']|'')*)'", opts)
        if pw:
            role["password"] = pw.group(1).replace("''", "'")
            opts = opts[: pw.start()] + opts[pw.end() :]
        cl = re.search(r"CONNECTION LIMIT (-?\d+)", opts)
        if cl:
            role["conn_limit"] = int(cl.group(1))
            opts = opts[: cl.start()] + opts[cl.end() :]
        for word in opts.split():
            key = word[2:].lower() if word.startswith("NO") else word.lower()
            role[key] = not word.startswith("NO")
        return None


def role(login=True, password="pw", catalog=False, **kw):
    stored = c.scram_verifier(password) if (catalog and password) else password
    r = dict(login=login, superuser=False, createdb=False, createrole=False, conn_limit=-1, password=stored)
    r.update(kw)
    return r


def spec(**kw):
    return u.UserSpec(**kw)


def secret_free(result, *secrets):
    dumped = json.dumps({k: v for k, v in result.items() if k != "generated_password"})
    return all(s not in dumped and json.dumps(s)[1:-1] not in dumped for s in secrets)


# ---------------------------------------------------------------- create


@pytest.mark.parametrize("catalog", [False, True])
def test_create_sends_one_create_role_with_a_correct_literal(catalog):
    s = FakeSession(catalog)
    res = u.reconcile_user(s, spec(name="app's", password="p'w\\x"))
    assert res["changed"] and res["created"] and res["password_changed"]
    assert len(s.executed) == 1
    assert s.executed[0].startswith("CREATE ROLE \"app's\" WITH LOGIN PASSWORD '")
    assert res["queries"] == ["CREATE ROLE \"app's\" WITH LOGIN PASSWORD '********'"]
    if catalog:
        assert c.verify_password(s.roles["app's"]["password"], "p'w\\x", "app's")
        assert "p'w" not in s.executed[0]  # only the verifier went out
    else:
        assert s.executed[0].endswith("PASSWORD 'p''w\\x'")  # plain literal, backslash single (§3.5)
        assert s.roles["app's"]["password"] == "p'w\\x"
    assert res["password_verified"] is True
    assert secret_free(res, "p'w\\x")


def test_create_without_catalog_sends_connection_limit_in_a_second_statement():
    s = FakeSession(False)
    res = u.reconcile_user(s, spec(name="app", password="pw1", conn_limit=4, createdb=True))
    assert [q.split(" WITH ")[0] for q in res["queries"]] == ['CREATE ROLE "app"', 'ALTER ROLE "app"']
    assert "CONNECTION LIMIT" not in res["queries"][0] and res["queries"][1].endswith("CONNECTION LIMIT 4")
    assert s.roles["app"]["conn_limit"] == 4 and s.roles["app"]["createdb"]


def test_create_with_catalog_is_one_statement():
    s = FakeSession(True, tenant=None)
    res = u.reconcile_user(s, spec(name="app", password="pw1", conn_limit=4, login=False))
    assert len(res["queries"]) == 1 and "NOLOGIN" in res["queries"][0] and "CONNECTION LIMIT 4" in res["queries"][0]
    assert res["password_verified"] is None  # NOLOGIN: nothing to test-login with


def test_generated_password_is_returned_once_and_never_in_queries():
    s = FakeSession(False)
    res = u.reconcile_user(s, spec(name="app"))
    pw = res["generated_password"]
    assert len(pw) == 32 and res["password_generated"]
    assert s.roles["app"]["password"] == pw
    assert secret_free(res, pw)
    again = u.reconcile_user(s, spec(name="app"))
    assert not again["changed"] and "generated_password" not in again


@pytest.mark.parametrize("catalog", [False, True])
def test_check_mode_runs_no_write(catalog):
    s = FakeSession(catalog)
    res = u.reconcile_user(s, spec(name="app"), check_mode=True)
    assert res["changed"] and res["created"] and res["password_generated"]
    assert "generated_password" not in res
    assert s.executed == [] and s.roles == {}
    assert res["queries"] == ["CREATE ROLE \"app\" WITH LOGIN PASSWORD '********'"]
    assert res["diff"]["before"] == {"state": "absent"}
    assert res["diff"]["after"]["password"] == u.HIDDEN_NEW


# ---------------------------------------------------------------- update


@pytest.mark.parametrize("catalog", [False, True])
def test_same_password_no_change(catalog):
    s = FakeSession(catalog, roles={"app": role(password="pw1", catalog=catalog)})
    res = u.reconcile_user(s, spec(name="app", password="pw1"))
    assert not res["changed"] and res["queries"] == [] and s.executed == []


@pytest.mark.parametrize("catalog", [False, True])
def test_new_password_one_alter(catalog):
    s = FakeSession(catalog, roles={"app": role(password="pw1", catalog=catalog)})
    res = u.reconcile_user(
        s,
        spec(name="app", password="pw2"),
    )
    assert res["changed"] and res["password_changed"] and res["password_verified"]
    assert res["queries"] == ["ALTER ROLE \"app\" WITH PASSWORD '********'"]
    assert res["diff"]["after"]["password"] == u.HIDDEN_CHANGED
    assert secret_free(res, "pw1", "pw2")


@pytest.mark.parametrize("catalog", [False, True])
def test_update_password_on_create_leaves_it(catalog):
    s = FakeSession(catalog, roles={"app": role(password="pw1", catalog=catalog)})
    res = u.reconcile_user(s, spec(name="app", password="pw2", update_password="on_create"))
    assert not res["changed"] and s.executed == [] and s.probes == []


def test_catalog_compares_attributes_precisely():
    s = FakeSession(True, tenant=None, roles={"app": role(createdb=True, catalog=True)})
    res = u.reconcile_user(s, spec(name="app", createdb=True, superuser=False, conn_limit=-1, login=True))
    assert not res["changed"]
    res = u.reconcile_user(s, spec(name="app", createdb=False, superuser=False, conn_limit=3))
    assert res["queries"] == ['ALTER ROLE "app" WITH NOCREATEDB CONNECTION LIMIT 3']  # only what differs
    assert res["diff"]["before"]["createdb"] is True and res["diff"]["after"]["createdb"] is False
    assert res["unverifiable_attributes"] == []


def test_catalog_md5_stored_while_scram_wanted_is_upgraded():
    s = FakeSession(True, tenant=None, roles={"app": role(catalog=True)})
    s.roles["app"]["password"] = c.md5_verifier("pw", "app")
    res = u.reconcile_user(s, spec(name="app", password="pw"))
    assert res["password_changed"] and c.is_scram_verifier(s.roles["app"]["password"])


def test_no_catalog_login_is_read_by_a_test_login():
    s = FakeSession(False, roles={"app": role(login=True)})
    res = u.reconcile_user(s, spec(name="app", login=True))
    assert not res["changed"] and s.probes == ["app"]
    res = u.reconcile_user(s, spec(name="app", login=False))
    assert res["queries"] == ['ALTER ROLE "app" WITH NOLOGIN'] and res["diff"]["before"]["login"] is True
    res = u.reconcile_user(s, spec(name="app", login=False))
    assert not res["changed"]


def test_no_catalog_unreadable_attributes_apply_reports_changed_every_time():
    s = FakeSession(False, roles={"app": role()})
    for _round in range(2):
        res = u.reconcile_user(s, spec(name="app", password="pw", createdb=True, conn_limit=5))
        assert res["changed"]
        assert res["unverifiable_attributes"] == ["createdb", "conn_limit"]
        assert res["queries"] == ['ALTER ROLE "app" WITH CREATEDB CONNECTION LIMIT 5']
        assert any("cannot be read" in w for w in res["warnings"])
        assert res["diff"]["before"]["createdb"] == u.UNREADABLE


def test_no_catalog_unreadable_attributes_on_create_sends_nothing():
    s = FakeSession(False, roles={"app": role()})
    res = u.reconcile_user(s, spec(name="app", password="pw", createdb=True, unverifiable_attributes="on_create"))
    assert not res["changed"] and s.executed == [] and res["unverifiable_attributes"] == ["createdb"]
    assert res["warnings"] == []


def test_no_catalog_nologin_password_is_unverifiable():
    s = FakeSession(False, roles={"app": role(login=False, password="pw")})
    res = u.reconcile_user(s, spec(name="app", password="pw", login=False))
    assert res["changed"] and res["password_changed"] and res["password_verified"] is None
    assert any("cannot be verified" in w for w in res["warnings"])
    res = u.reconcile_user(s, spec(name="app", password="pw", login=False, update_password="on_create"))
    assert not res["changed"]


def test_never_changed_false_after_a_write_that_failed_verification():
    s = FakeSession(False, roles={"app": role(password="old")})

    def broken_probe(user, password):
        return "refused"  # as if the server had stored something else (§0.3)

    s.probe_login = broken_probe
    with pytest.raises(c.SQLClientError) as exc:
        u.reconcile_user(s, spec(name="app", password="new"))
    assert "cannot log in with the new password" in str(exc.value)
    assert s.writes == ["ALTER ROLE \"app\" WITH PASSWORD '********'"]  # the module reports changed from this


# ---------------------------------------------------------------- absent


def test_absent_drops_once():
    s = FakeSession(False, roles={"app": role()})
    res = u.reconcile_user(s, spec(name="app", state="absent"))
    assert res["changed"] and res["removed"] and res["queries"] == ['DROP ROLE "app"']
    res = u.reconcile_user(s, spec(name="app", state="absent"))
    assert not res["changed"] and res["queries"] == []


def test_absent_check_mode():
    s = FakeSession(True, roles={"app": role(catalog=True)})
    res = u.reconcile_user(s, spec(name="app", state="absent"), check_mode=True)
    assert res["changed"] and s.executed == [] and "app" in s.roles


@pytest.mark.parametrize("catalog,tenant,refused", [(False, "acme", True), (False, None, True), (True, "acme", True), (True, None, False)])
def test_admin_is_never_dropped_where_pg_tikv_rules_apply(catalog, tenant, refused):
    s = FakeSession(catalog, tenant=tenant, roles={"admin": role(catalog=catalog)})
    if refused:
        with pytest.raises(u.UserSpecError) as exc:
            u.reconcile_user(s, spec(name="admin", state="absent"), check_mode=True)
        assert "NOLOGIN" in str(exc.value) and "rotate" in str(exc.value)
        assert s.executed == []
    else:
        assert u.reconcile_user(s, spec(name="admin", state="absent"))["removed"]


# ---------------------------------------------------------------- validation and guards


@pytest.mark.parametrize(
    "kw,msg",
    [
        ({"name": ""}, "non-empty"),
        ({"name": "a\x00"}, "NUL"),
        ({"name": "x" * 64}, "63 bytes"),
        ({"name": "a", "password": ""}, "empty"),
        ({"name": "a", "password": "a\x00b"}, "NUL"),
        ({"name": "a", "conn_limit": -2}, "conn_limit"),
    ],
)
def test_spec_validation(kw, msg):
    with pytest.raises(u.UserSpecError) as exc:
        u.reconcile_user(FakeSession(False), spec(**kw))
    assert msg in str(exc.value)


def test_copy_from_stdin_text_is_refused_on_pg_tikv_only():
    s = FakeSession(False)
    with pytest.raises(c.SQLClientError) as exc:
        u.reconcile_user(s, spec(name="app", password="copy t from stdin"))
    assert "FROM STDIN" in str(exc.value) and s.executed == []
    s = FakeSession(True)
    assert u.reconcile_user(s, spec(name="app", password="copy t from stdin"))["created"]


# ---------------------------------------------------------------- conn_limit -1 and half-created users


@pytest.mark.parametrize("existing", [False, True])
def test_no_limit_is_refused_without_a_catalog_before_any_statement(existing):
    """pg-tikv cannot parse CONNECTION LIMIT -1 (reference §3.1): refused up front."""
    s = FakeSession(False, roles={"app": role()} if existing else {})
    with pytest.raises(u.UserSpecError) as exc:
        u.reconcile_user(s, spec(name="app", password="pw", conn_limit=-1))
    assert "conn_limit: -1 (no limit) cannot be sent" in str(exc.value) and "Nothing was changed" in str(exc.value)
    assert s.executed == [] and s.probes == []
    assert s.roles == ({"app": role()} if existing else {})


def test_no_limit_on_a_catalog_server_is_one_create():
    s = FakeSession(True)
    u.reconcile_user(s, spec(name="app", password="pw", conn_limit=-1))
    assert len(s.executed) == 1 and "CONNECTION LIMIT -1" in s.executed[0]
    assert s.roles["app"]["conn_limit"] == -1


class FailingAlterSession(FakeSession):
    def __init__(self, fail_drop=False):
        super().__init__(False)
        self.fail_drop = fail_drop

    def execute(self, text, **kwargs):
        if text.startswith("ALTER ROLE"):
            self.executed.append(text)
            raise c.StatementError("'ALTER ROLE \"app\"' failed: Failed to begin transaction: PD is unreachable")
        if text.startswith("DROP ROLE") and self.fail_drop:
            self.executed.append(text)
            raise c.StatementError("'DROP ROLE \"app\"' failed: Failed to begin transaction: PD is unreachable")
        return super().execute(text, **kwargs)


def test_a_create_that_fails_half_way_is_dropped_again():
    """pg-tikv stores CONNECTION LIMIT only on ALTER (§3.1, §3.2): the create is
    CREATE + ALTER; if the ALTER fails the new user must not stay behind."""
    s = FailingAlterSession()
    with pytest.raises(c.SQLClientError) as exc:
        u.reconcile_user(s, spec(name="app", password="pw", conn_limit=3))
    assert [q.split(" WITH")[0] for q in s.executed] == ['CREATE ROLE "app"', 'ALTER ROLE "app"', 'DROP ROLE "app"']
    assert "the new user was dropped again" in str(exc.value) and "app" not in s.roles
    assert "pw" not in str(exc.value)


def test_a_half_created_user_that_cannot_be_dropped_is_said_so():
    s = FailingAlterSession(fail_drop=True)
    with pytest.raises(c.SQLClientError) as exc:
        u.reconcile_user(s, spec(name="app", password="pw", conn_limit=3))
    assert "exists half-created; drop it, or run the task again" in str(exc.value)


# ---------------------------------------------------------------- the fewest logins that prove a user


class CountingSession(FakeSession):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lookups = []

    def role_exists(self, user):
        self.lookups.append(user)
        return super().role_exists(user)


def test_pg_tikv_user_that_logs_in_is_proven_by_that_one_login():
    s = CountingSession(False, roles={"app": role(password="pw1")})
    res = u.reconcile_user(s, spec(name="app", password="pw1"))
    assert s.probes == ["app"] and s.lookups == [] and s.executed == []
    assert not res["changed"] and res["password_proven"]


@pytest.mark.parametrize("roles,created", [({}, True), ({"app": role(password="old")}, False)])
def test_pg_tikv_refused_login_still_looks_the_user_up(roles, created):
    s = CountingSession(False, roles=roles)
    res = u.reconcile_user(s, spec(name="app", password="pw1"))
    assert s.lookups == ["app"] and res["changed"] and res["created"] is created
    assert s.roles["app"]["password"] == "pw1" and res["password_proven"]


def test_nologin_answer_proves_the_user_exists():
    s = CountingSession(False, roles={"app": role(login=False, password="pw1")})
    res = u.reconcile_user(s, spec(name="app", password="pw1", update_password="always"))
    assert s.lookups == [] and not res["created"]


def test_a_user_known_to_be_missing_is_created_without_lookup_or_probe_first():
    s = CountingSession(False)
    res = u.reconcile_user(s, spec(name="app", password="pw1"), exists=False)
    assert s.lookups == [] and s.probes == ["app"]  # the one probe proves the new password
    assert res["created"] and res["password_proven"]


# ---------------------------------------------------------------- what the modules call


def _user_params(**extra):
    params = {"tenant": None, "name": "app", "state": "present", "login_user": "admin", "login_password": "Pw-1", "password": "App-pw-1"}
    params.update(extra)
    return params


class OneSession:
    """connect() hands out one FakeSession (no tenant: PD is not asked)."""

    def __init__(self, session):
        self.session = session

    def connect(self, sql_params, tenant, user, password):
        return self.session


@pytest.mark.parametrize("catalog", [False, True])
def test_manage_user_returns_the_result_and_closes_the_session(catalog):
    session = FakeSession(catalog)
    session.close = lambda: setattr(session, "closed", True)
    with patched_sql(OneSession(session)):
        result = u.manage_user(_user_params(), check_mode=False, warnings=[])
    assert result["changed"] and result["created"] and result["user"] == "app" and result["server"]["role_catalog"] is catalog
    assert session.closed


@pytest.mark.parametrize("catalog", [False, True])
def test_manage_user_failure_after_a_write_reports_changed(catalog):
    session = FakeSession(catalog)
    session.close = lambda: None

    # The statement runs; the login test then shows the password did not take.
    session.password_matches = lambda *args, **kwargs: False
    with patched_sql(OneSession(session)), pytest.raises(TaskError) as exc:
        u.manage_user(_user_params(), check_mode=False, warnings=[])
    assert exc.value.result["changed"] is True and exc.value.result["queries"] == session.writes and session.writes
    assert "cannot log in" in exc.value.message


def test_read_users_refuses_a_bad_name_before_logging_in():
    with patched_sql(NoSQL()), pytest.raises(TaskError) as exc:
        u.read_users({"names": ["bad\x00name"], "users": [], "tenant": None, "login_password": "Pw-1"}, warnings=[])
    assert "NUL" in exc.value.message and exc.value.result == {}
