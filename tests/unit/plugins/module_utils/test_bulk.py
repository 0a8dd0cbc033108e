# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of _bulk: validation of the list, the overridden guard, the
paginated list, and the orchestration around reconcile_tenant/reconcile_user
(replaced by fakes here; the real ones are exercised by the integration
targets against the real PD and the pg-tikv double)."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _bulk as b
from ansible_collections.pgtikv.cloud.plugins.module_utils import _fleet_result as r
from ansible_collections.pgtikv.cloud.plugins.module_utils import _pd_client as p
from ansible_collections.pgtikv.cloud.plugins.module_utils import _tenant as t
from ansible_collections.pgtikv.cloud.plugins.module_utils import _verify as v
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import TaskError
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import PDClient, PDUnreachable
from ansible_collections.pgtikv.cloud.plugins.module_utils._tenant import TenantError
from ansible_collections.pgtikv.cloud.tests.unit.plugins.module_utils.pd_fakes import FakeResponse
from ansible_collections.pgtikv.cloud.tests.unit.plugins.module_utils.sql_fakes import patched_sql


def reconcile(fake, *args, **kwargs):
    """reconcile_tenant with the SQL client's logins answered by ``fake``."""
    with patched_sql(fake):
        return t.reconcile_tenant(*args, **kwargs)


def entry(name, **kw):
    return dict({"name": name, "state": "present", "users": []}, **kw)


# ---------------------------------------------------------------- validation


def test_validate_fleet_reports_each_bad_entry():
    errors = b.validate_fleet(
        [
            entry("acme_corp", users=[{"name": "app"}, {"name": "app"}]),
            entry("Bad.Name"),
            entry("beta_inc", users=[{"name": "admin"}]),
            entry("gamma_co", admin_password="admin"),
            entry("ok_tenant", users=[{"name": "app", "password": "x" * 12}]),
        ]
    )
    assert set(errors) == {"acme_corp", "Bad.Name", "beta_inc", "gamma_co"}
    assert "listed more than once" in errors["acme_corp"][0]
    assert "invalid tenant name" in errors["Bad.Name"][0]
    assert "managed by the tenant entry" in errors["beta_inc"][0]
    assert "bootstrap password" in errors["gamma_co"][0]


def test_validate_fleet_duplicate_tenant_is_a_list_error():
    errors = b.validate_fleet([entry("acme_corp"), entry("acme_corp")])
    assert "listed more than once" in errors[None][0]


def test_decommission_locks_admin_and_every_present_user():
    spec = b.tenant_spec(entry("acme_corp", state="disabled", users=[{"name": "app"}, {"name": "gone", "state": "absent"}, {"name": "ro", "state": "present"}]))
    assert spec.lock_users == ["admin", "app", "ro"]
    assert b.tenant_spec(entry("acme_corp", users=[{"name": "app"}])).lock_users == ["admin"]


# ---------------------------------------------------------------- overridden guard


@pytest.mark.parametrize(
    "params,text",
    [
        ({}, "allow_disable_unlisted"),
        ({"allow_disable_unlisted": True}, "managed_pattern"),
        ({"allow_disable_unlisted": True, "managed_pattern": "acme_("}, "not a valid regular expression"),
    ],
)
def test_override_guard(params, text):
    assert text in b.override_guard_error(params)


def test_override_guard_passes():
    assert b.override_guard_error({"allow_disable_unlisted": True, "managed_pattern": "acme_.*"}) is None


def test_unlisted_candidates_never_touch_what_is_not_owned():
    keyspaces = [
        {"name": "DEFAULT", "state": "ENABLED"},
        {"name": "default", "state": "ENABLED"},
        {"name": "acme_one", "state": "ENABLED"},  # listed
        {"name": "acme_two", "state": "ENABLED"},  # the only candidate
        {"name": "acme_three", "state": "DISABLED"},  # already disabled
        {"name": "acme-four", "state": "ENABLED"},  # not a name this collection creates
        {"name": "Acme_five", "state": "ENABLED"},  # upper case
        {"name": "beta_six", "state": "ENABLED"},  # outside the pattern
        {"name": "acme_sevenx", "state": "ENABLED"},  # the pattern must match in full
    ]
    got = b._unlisted_candidates(keyspaces, {"acme_one"}, r"acme_[a-z]{3,5}")
    assert [k["name"] for k in got] == ["acme_two"]


# ---------------------------------------------------------------- paginated list


class EtcdLimitedPD:
    """The transport of a PDClient: PD's keyspace list behind an etcd that
    refuses pages larger than ``max_page``, like the real PD (answers as PD
    does: HTTP 500 with a JSON string body)."""

    def __init__(self, keyspaces, max_page=127):
        self.keyspaces = keyspaces
        self.max_page = max_page
        self.limits = []

    def request(self, method, url, **kwargs):
        assert method == "GET" and url.endswith("/pd/api/v2/keyspaces"), (method, url)
        params = kwargs["params"]
        limit = int(params["limit"])
        self.limits.append(limit)
        if limit > self.max_page:
            return FakeResponse(500, '"etcdserver: too many operations in txn request"')
        start = int(params.get("page_token") or 0)
        end = start + limit
        body = {"keyspaces": self.keyspaces[start:end] or None, "next_page_token": str(end) if end < len(self.keyspaces) else ""}
        return FakeResponse(200, json.dumps(body))

    def close(self):
        pass


def listing_client(transport):
    pd = PDClient(["http://pd:1"], retries=0, sleep=lambda s: None)
    pd.session = transport
    return pd


def test_fleet_lists_through_the_client_which_halves_a_page_that_pd_refuses():
    keyspaces = [{"id": i, "name": "t%03d" % i, "state": "ENABLED"} for i in range(1, 71)]
    transport = EtcdLimitedPD(keyspaces, max_page=60)
    out = b.run_fleet({"list_page_size": 500}, [], "gathered", False, pd=listing_client(transport))
    assert [g["name"] for g in out["gathered"]] == [k["name"] for k in keyspaces]
    # clamped to PD's largest page, halved until PD accepts it, then kept
    assert transport.limits == [p.MAX_PAGE_SIZE, 63, 31, 31, 31]
    assert out["pd_calls"] == {"GET list": 5}


def test_fleet_lists_with_the_largest_page_by_default():
    transport = EtcdLimitedPD([{"id": 1, "name": "acme_corp", "state": "ENABLED"}])
    out = b.run_fleet({}, [], "gathered", False, pd=listing_client(transport))
    assert [g["name"] for g in out["gathered"]] == ["acme_corp"]
    assert transport.limits == [p.MAX_PAGE_SIZE]


def test_fleet_list_other_errors_are_not_retried():
    class Broken(EtcdLimitedPD):
        def request(self, method, url, **kwargs):
            self.limits.append(int(kwargs["params"]["limit"]))
            return FakeResponse(500, '"keyspace group manager is not initialized"')

    transport = Broken([])
    out = b.run_fleet({"list_page_size": 127}, [], "gathered", False, pd=listing_client(transport))
    assert out["failed"] and out["msg"].startswith("cannot list PD's keyspaces: ")
    assert transport.limits == [127]


# ---------------------------------------------------------------- orchestration


class FakeSession:
    def __init__(self, tenant):
        self.tenant = tenant
        self.closed = False

    def close(self):
        self.closed = True


class FakeWorld:
    """Stands in for reconcile_tenant, reconcile_user and the SQL logins."""

    def __init__(self, fail_tenants=(), fail_users=(), refuse=()):
        self.fail_tenants = set(fail_tenants)
        self.fail_users = set(fail_users)
        self.refuse = set(refuse)  # (tenant, user) whose test login is refused
        self.sessions = []
        self.tenant_calls = []

    def reconcile_tenant(self, pd, sql_params, spec, current=None, check_mode=False, session_sink=None, confirm_pd=True, prove_bootstrap_refused=False):
        assert confirm_pd is False  # the fleet asks PD once per run instead
        self.tenant_calls.append((spec.name, current))
        if spec.name in self.fail_tenants:
            raise TenantError(
                "tenant %r: wrong admin password" % spec.name, kind="sql_auth", result={"keyspace": {"name": spec.name, "state": "ENABLED"}, "warnings": []}
            )
        # like reconcile_tenant: in check mode a missing keyspace still does not exist afterwards
        res = {
            "changed": current is None,
            "exists": current is not None or not check_mode,
            "warnings": [],
            "state_path": [] if current else ["ENABLED"],
            "keyspace": {"id": 1, "name": spec.name, "state": "ENABLED", "config": {}},
            "admin_rotated": current is None,
            "diff": {"before": {}, "after": {}},
        }
        if spec.admin_password is None and current is None:
            res["generated_admin_password"] = "gen-admin-" + spec.name
            res["admin_password_generated"] = True
        if current is None and not check_mode and session_sink is not None:
            # like reconcile_tenant after rotating admin: hand the open session over
            session_sink(self.connect(sql_params, spec.name, "admin", "admin"))
        return res

    def reconcile_user(self, session, spec, check_mode=False, exists=None):
        if (session.tenant, spec.name) in self.fail_users:
            raise b.sql.SQLClientError("cannot create %r" % spec.name)
        res = {
            "changed": True,
            "created": True,
            "password_changed": True,
            "queries": ["CREATE ROLE \"%s\" WITH LOGIN PASSWORD '********'" % spec.name],
            "warnings": [],
        }
        if spec.password is None:
            res["generated_password"] = "gen-%s-%s" % (session.tenant, spec.name)
        return res

    def connect(self, sql_params, tenant, user, password):
        session = FakeSession(tenant)
        self.sessions.append(session)
        return session

    def probe_login(self, sql_params, tenant, user, password):
        if password == "admin":
            return "refused"
        if (tenant, user) in self.refuse:
            return "refused"
        return "ok"


@pytest.fixture
def world(monkeypatch):
    w = FakeWorld()
    monkeypatch.setattr(b, "reconcile_tenant", w.reconcile_tenant)
    monkeypatch.setattr(b, "reconcile_user", w.reconcile_user)
    monkeypatch.setattr(b.sql, "connect", w.connect)
    monkeypatch.setattr(b.sql, "probe_login", w.probe_login)
    return w


class StaticPD:
    requests_log = [{"method": "GET", "path": "/pd/api/v2/keyspaces", "status": 200}]

    def __init__(self, keyspaces, down_after_list=False):
        self.keyspaces = keyspaces
        self.down_after_list = down_after_list
        self.requests = []

    def request(self, method, path, **kwargs):
        self.requests.append((method, path))
        if self.down_after_list:
            raise PDUnreachable(
                "PD is unreachable for %s %s; tried: http://pd:1 (connection refused)" % (method, path), [("http://pd:1", "connection refused")]
            )
        return {"version": "v8.5.0"}

    def list_keyspaces(self, page_size=100):
        return list(self.keyspaces)

    def version(self):
        return "v8.5.0"


PARAMS = {"pg_host": "127.0.0.1", "pg_port": 5433, "max_workers": 4, "verify": True}


def test_one_failing_tenant_hides_nothing(world):
    world.fail_tenants.add("beta_inc")
    world.fail_users.add(("gamma_co", "bad"))
    items = [
        entry("acme_corp", admin_password="A-pass-1", users=[{"name": "app", "password": "U-pass-1"}]),
        entry("beta_inc", admin_password="B-pass-1", users=[{"name": "app", "password": "U-pass-2"}]),
        entry("gamma_co", users=[{"name": "bad"}, {"name": "good"}]),
    ]
    pd = StaticPD([{"name": "DEFAULT", "state": "ENABLED"}, {"name": "beta_inc", "state": "ENABLED"}])
    out = b.run_fleet(PARAMS, items, "merged", False, pd=pd)
    assert [t["status"] for t in out["tenants"]] == ["created", "failed", "failed"]
    assert out["failed"] and "beta_inc" in out["msg"] and "gamma_co" in out["msg"]
    beta = out["tenants"][1]
    assert beta["users"] == [{"name": "app", "status": "skipped", "changed": False, "msg": "the tenant failed first"}]
    gamma = {u["name"]: u for u in out["tenants"][2]["users"]}
    assert gamma["bad"]["status"] == "failed" and gamma["good"]["status"] == "created"
    # the keyspace from the single list is handed over; no per-tenant read
    assert dict(world.tenant_calls)["beta_inc"] == {"name": "beta_inc", "state": "ENABLED"}
    assert dict(world.tenant_calls)["acme_corp"] is None
    # one session per tenant (the one that rotated admin, handed over), always closed
    assert sorted(s.tenant for s in world.sessions) == ["acme_corp", "gamma_co"]
    assert all(s.closed for s in world.sessions)
    assert out["summary"]["created"] == 1 and out["summary"]["failed"] == 2
    assert any(line.startswith("beta_inc: FAILED: ") for line in out["problems"])


def test_the_session_that_rotated_admin_serves_the_users(world):
    items = [
        entry("acme_corp", admin_password="A-pass-1", users=[{"name": "app", "password": "U-pass-1"}]),
        entry("beta_inc", admin_password="B-pass-1", users=[{"name": "app", "password": "U-pass-2"}]),
        entry("gamma_co", admin_password="C-pass-1"),
    ]
    existing = [{"name": "beta_inc", "state": "ENABLED"}]
    b.run_fleet(PARAMS, items, "merged", False, pd=StaticPD(existing))
    # created tenants: one handed-over session each (also when it has no users);
    # the existing tenant: one opened for its users; every one closed
    assert sorted(s.tenant for s in world.sessions) == ["acme_corp", "beta_inc", "gamma_co"]
    assert all(s.closed for s in world.sessions)


def test_no_declared_credential_logs_in(world, monkeypatch):
    def refuse(sql_params, tenant, user, password):
        if user == "ops":
            raise b.sql.LoginNotPermitted("NOLOGIN")
        raise b.sql.LoginRefused("refused")

    monkeypatch.setattr(b.sql, "connect", refuse)
    items = [entry("acme_corp", admin_password="A-pass-1", login_user="ops", login_password="O-pass-1", users=[{"name": "app", "password": "U-pass-1"}])]
    out = b.run_fleet(PARAMS, items, "merged", False, pd=StaticPD([{"name": "acme_corp", "state": "ENABLED"}]))
    tenant = out["tenants"][0]
    why = "no declared credential logs in to tenant 'acme_corp' (acme_corp.admin: LoginRefused, acme_corp.ops: LoginNotPermitted)"
    assert tenant["failed"] and tenant["msg"] == "cannot manage the users of tenant 'acme_corp': " + why
    assert tenant["users"] == [{"name": "app", "status": "skipped", "changed": False, "msg": "no SQL session: " + why}]


def test_admin_password_unknown_needs_no_login(world, monkeypatch):
    monkeypatch.setattr(b.sql, "connect", lambda *args: pytest.fail("no login without a credential"))
    items = [entry("acme_corp", users=[{"name": "app", "password": "U-pass-1"}])]
    out = b.run_fleet(PARAMS, items, "merged", False, pd=StaticPD([{"name": "acme_corp", "state": "ENABLED"}]))
    assert "the admin password is not known" in out["tenants"][0]["msg"]


def test_generated_passwords_only_in_their_key(world):
    items = [entry("acme_corp", users=[{"name": "app"}, {"name": "ro", "password": "Declared-1"}])]
    out = b.run_fleet(PARAMS, items, "merged", False, pd=StaticPD([]))
    assert out["generated_passwords"] == {"acme_corp": {"admin": "gen-admin-acme_corp", "users": {"app": "gen-acme_corp-app"}}}
    rest = dict(out, generated_passwords=None)
    rest["tenants"] = [r.compact_tenant(t) for t in out["tenants"]]
    text = json.dumps(rest)
    for secret in ("gen-admin-acme_corp", "gen-acme_corp-app", "Declared-1"):
        assert secret not in text
    # generated passwords are known to the verification, which then passes
    assert out["tenants"][0]["verification"]["complete"], out["tenants"][0]["verification"]


def test_verification_names_what_cannot_be_proven(world):
    world.refuse.add(("acme_corp", "app"))
    items = [entry("acme_corp", admin_password="A-pass-1", users=[{"name": "app", "password": "U-pass-1"}, {"name": "ro", "password": "R-pass-1"}])]
    out = b.run_fleet(PARAMS, items, "merged", False, pd=StaticPD([{"name": "acme_corp", "state": "ENABLED"}]))
    assert out["failed"]
    assert out["incomplete"] == [{"name": "acme_corp", "problems": ["user 'app' cannot log in with its password (refused)"]}]
    assert out["problems"] == ["acme_corp: not proven: user 'app' cannot log in with its password (refused)"]


def test_pd_answers_once_after_the_sql_work(world):
    items = [entry("acme_corp", admin_password="A-pass-1"), entry("beta_inc", admin_password="B-pass-1")]
    pd = StaticPD([{"name": "acme_corp", "state": "ENABLED"}, {"name": "beta_inc", "state": "ENABLED"}])
    out = b.run_fleet(PARAMS, items, "merged", False, pd=pd)
    assert not out.get("failed") and out["summary"]["verified"] == 2
    assert pd.requests == [("GET", "/pd/api/v1/version")]


@pytest.mark.parametrize("state", ["merged", "gathered"])
def test_pd_gone_after_the_sql_work_leaves_nothing_verified(world, state):
    """PD dies between the list and the test logins: pg-tikv then refuses
    every login like a wrong password, so 'admin/admin refused' proves nothing.
    Every tenant is reported failed/incomplete, never verified or unchanged."""
    items = [entry("acme_corp", admin_password="A-pass-1"), entry("beta_inc", admin_password="B-pass-1")]
    pd = StaticPD([{"name": "acme_corp", "state": "ENABLED"}, {"name": "beta_inc", "state": "ENABLED"}], down_after_list=True)
    out = b.run_fleet(PARAMS, items, state, False, pd=pd)
    assert out["failed"] and "PD stopped answering after the SQL checks" in out["msg"]
    assert [i["name"] for i in out["incomplete"]] == ["acme_corp", "beta_inc"]
    if state == "merged":
        assert [t["status"] for t in out["tenants"]] == ["failed", "failed"]
        assert out["summary"]["failed"] == 2
    else:
        assert out["summary"]["verified"] == 0
    assert pd.requests == [("GET", "/pd/api/v1/version")]


def test_check_mode_new_tenant_plans_users_without_logging_in(world):
    items = [entry("acme_corp", users=[{"name": "app"}, {"name": "old", "state": "absent"}])]
    out = b.run_fleet(PARAMS, items, "merged", True, pd=StaticPD([]))
    users = out["tenants"][0]["users"]
    assert [(u["name"], u["status"]) for u in users] == [("app", "created"), ("old", "unchanged")]
    assert world.sessions == []
    assert "verification" not in out["tenants"][0]


def test_a_bug_in_one_worker_is_a_failed_tenant():
    def boom(item):
        raise KeyError("x")

    out = b._map(boom, [type("R", (), {"name": "acme_corp"})()], 4)
    assert out[0]["failed"] and out[0]["name"] == "acme_corp" and "internal error" in out[0]["msg"]


# ---------------------------------------------------------------- reconcile_tenant's session_sink


class SinkPD:
    requests_log = []

    def request(self, method, path, **kwargs):  # PD still answers after the SQL checks
        return {"version": "v8.5.0"}

    def version(self):
        return "v8.5.0"

    def create_keyspace(self, name, config=None):
        return {"id": 9, "name": name, "state": "ENABLED", "created_at": 5, "state_changed_at": 5, "config": {}}


class SinkSQL:
    """Just enough of _sql_client's logins for reconcile_tenant's create path."""

    def __init__(self, new_password_works=True):
        self.new_password_works = new_password_works
        self.sessions = []

    def connect(self, sql_params, tenant, user, password):
        session = type("S", (), {"closed": False, "queries": [], "passwords": []})()
        session.close = lambda: setattr(session, "closed", True)
        session.set_password = lambda user, pw: session.passwords.append((user, pw))
        session.add_secret = lambda value: None
        self.sessions.append(session)
        return session

    def probe_login(self, sql_params, tenant, user, password):
        if password == "admin":
            return "refused"
        return "ok" if self.new_password_works else "refused"


def test_session_sink_receives_the_rotation_session(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    fake, got = SinkSQL(), []
    res = reconcile(fake, SinkPD(), {}, t.TenantSpec(name="acme_corp", admin_password="New-pass-1"), current=None, session_sink=got.append)
    assert res["admin_rotated"] and got == fake.sessions and len(got) == 1
    assert not got[0].closed and got[0].passwords == [("admin", "New-pass-1")]


def test_session_sink_is_not_fed_when_verification_fails(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    fake, got = SinkSQL(new_password_works=False), []
    with pytest.raises(t.TenantError):
        reconcile(fake, SinkPD(), {}, t.TenantSpec(name="acme_corp", admin_password="New-pass-1"), current=None, session_sink=got.append)
    assert got == [] and len(fake.sessions) == 1 and fake.sessions[0].closed


def test_without_a_sink_the_session_is_closed(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    fake = SinkSQL()
    reconcile(fake, SinkPD(), {}, t.TenantSpec(name="acme_corp", admin_password="New-pass-1"), current=None)
    assert len(fake.sessions) == 1 and fake.sessions[0].closed


def _existing(state="ENABLED"):
    return {"id": 3, "name": "acme_corp", "state": state, "created_at": 5, "state_changed_at": 5, "config": {}}


class NoopSQL(SinkSQL):
    """An existing tenant whose admin logs in with admin_password."""

    def __init__(self, bootstrap_works=False):
        super().__init__()
        self.bootstrap_works = bootstrap_works
        self.probes = []

    def probe_login(self, sql_params, tenant, user, password):
        self.probes.append((user, password))
        return "ok" if password == "admin" and self.bootstrap_works else "refused"


@pytest.mark.parametrize("prove", [False, True])
def test_admins_proving_login_is_the_session_handed_over(prove):
    fake, got = NoopSQL(), []
    res = reconcile(
        fake,
        SinkPD(),
        {},
        t.TenantSpec(name="acme_corp", admin_password="A-pass-1"),
        current=_existing(),
        session_sink=got.append,
        confirm_pd=False,
        prove_bootstrap_refused=prove,
    )
    assert not res["changed"] and res["admin_login_proven"]
    assert got == fake.sessions and len(got) == 1 and not got[0].closed
    assert fake.probes == ([("admin", "admin")] if prove else [])
    assert res["bootstrap_refused"] is (True if prove else None)


def test_without_a_sink_the_proving_session_is_closed():
    fake = NoopSQL()
    reconcile(fake, SinkPD(), {}, t.TenantSpec(name="acme_corp", admin_password="A-pass-1"), current=_existing(), confirm_pd=False)
    assert len(fake.sessions) == 1 and fake.sessions[0].closed


def test_bootstrap_password_that_still_logs_in_is_reported():
    res = reconcile(
        NoopSQL(bootstrap_works=True),
        SinkPD(),
        {},
        t.TenantSpec(name="acme_corp", admin_password="A-pass-1"),
        current=_existing(),
        confirm_pd=False,
        prove_bootstrap_refused=True,
    )
    assert res["bootstrap_refused"] is False


def test_verification_tests_again_only_what_the_reconcile_did_not_prove(monkeypatch):
    probes = []

    def probe(sql_params, name, user, password):
        probes.append(user if password != "admin" else "admin/admin")
        return "refused" if password == "admin" else "ok"

    monkeypatch.setattr(b.sql, "probe_login", probe)
    item = entry("acme_corp", admin_password="A-pass-1", users=[{"name": "app", "password": "U-pass-1"}, {"name": "ro", "password": "R-pass-1"}])
    passwords = {"app": "U-pass-1", "ro": "R-pass-1"}
    everything = {"admin": True, "bootstrap_refused": True, "users": {"app", "ro"}}
    out = v.verify_tenant({}, "acme_corp", _existing(), "A-pass-1", passwords, item, proven=everything)
    assert out["complete"] and probes == []
    out = v.verify_tenant({}, "acme_corp", _existing(), "A-pass-1", passwords, item, proven={"admin": True, "users": {"app"}})
    assert out["complete"] and probes == ["admin/admin", "ro"]
    # What the reconcile proved never stands in for the keyspace state PD reports.
    del probes[:]
    out = v.verify_tenant({}, "acme_corp", _existing("DISABLED"), "A-pass-1", passwords, item, proven=everything)
    assert not out["complete"] and out["problems"] == ["keyspace is DISABLED in PD, not ENABLED"]


# ---------------------------------------------------------------- what the module calls


def test_gathered_is_config_shaped_with_pd_s_view_beside_it():
    keyspaces = [{"id": 1, "name": "acme_corp", "state": "ARCHIVED", "config": {"tier": "gold", "user_kind": "basic"}}]
    out = b.run_fleet({}, [], "gathered", False, pd=StaticPD(keyspaces))
    assert out["gathered"] == [{"name": "acme_corp", "state": "archived", "config": {"tier": "gold"}}]
    assert out["keyspaces"][0]["id"] == 1 and out["keyspaces"][0]["server_managed_config"] == {"user_kind": "basic"}
    assert "verification" not in out and "pd_requests" not in out and out["pd_calls"] == {"GET list": 1}


def test_gathered_verification_is_by_tenant_name_missing_ones_included(world):
    items = [entry("acme_corp", admin_password="A-pass-1"), entry("gone_co", admin_password="G-pass-1")]
    out = b.run_fleet(PARAMS, items, "gathered", False, pd=StaticPD([{"id": 1, "name": "acme_corp", "state": "ENABLED"}]))
    assert sorted(out["verification"]) == ["acme_corp", "gone_co"] and out["missing"] == ["gone_co"]
    assert out["verification"]["acme_corp"]["complete"] and not out["verification"]["gone_co"]["complete"]
    assert [g["name"] for g in out["gathered"]] == ["acme_corp"] and out["failed"]


def test_check_mode_drift_covers_entries_that_never_ran(world):
    items = [entry("acme_corp", admin_password="A-pass-1"), entry("Bad.Name")]
    out = b.run_fleet(dict(PARAMS, verify=False), items, "merged", True, pd=StaticPD([]), shape=r.tenant_shaper(True, compact=True))
    drift = {t["name"]: t["drift"] for t in out["tenants"]}
    assert drift["acme_corp"] == ["keyspace missing in PD"]
    assert drift["Bad.Name"][0].startswith("cannot be checked: invalid entry, nothing was done: ")
    assert out["summary"]["drifted"] == 2 and out["summary"]["drift_items"] == 2


@pytest.mark.parametrize(
    "options,text",
    [
        ({"max_workers": 0}, "max_workers must be between 1 and 64"),
        ({"timeout": 0}, "timeout must be a number of seconds greater than 0"),
        ({"list_page_size": 0}, "list_page_size must be 1 or more"),
        ({"state": "overridden"}, "set allow_disable_unlisted: true to confirm"),
    ],
)
def test_manage_fleet_refuses_its_options_before_any_work(options, text):
    params = dict({"max_workers": 8, "timeout": 1800, "list_page_size": 100, "state": "merged", "details": False, "config": []}, **options)
    with pytest.raises(TaskError) as exc:
        b.manage_fleet(params, False, False, [])
    assert exc.value.message.startswith(text) or text in exc.value.message
    assert exc.value.result == {}
