# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pure logic of _tenant: validation, state walking, config
diff, DSN encoding, filters, and that planning refuses before any write."""

from __future__ import annotations

import ast
import inspect
import re
from urllib.parse import unquote, urlsplit

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _common as common
from ansible_collections.pgtikv.cloud.plugins.module_utils import _keyspace as k
from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as c
from ansible_collections.pgtikv.cloud.plugins.module_utils import _tenant as t
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import MAX_CONFIG_BYTES, PDError
from ansible_collections.pgtikv.cloud.tests.unit.plugins.module_utils.sql_fakes import NoSQL, patched_sql


def reconcile(fake, *args, **kwargs):
    """reconcile_tenant with the SQL client's logins answered by ``fake``."""
    with patched_sql(fake):
        return t.reconcile_tenant(*args, **kwargs)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "name,text",
    [
        ("acme.corp", "only letters, digits"),
        ("acme:corp", "only letters, digits"),
        ("abc\n", "only letters, digits"),  # re.match with '$' would accept the trailing newline
        ("a b", "only letters, digits"),
        ("DEFAULT", "reserved keyspace"),
        ("SYSTEM", "reserved keyspace"),
        ("", "non-empty"),
    ],
)
def test_bad_names(name, text):
    """Refused for any tenant, existing or not, before any network call."""
    errors = t.validate_spec(t.TenantSpec(name=name))
    assert errors and text in errors[0]


@pytest.mark.parametrize("name", ["Upper_T", "acme-corp", "ab", "a" * 65, "default", "id", "x"])
def test_existing_keyspace_names_pd_accepts_pass_validation(name):
    """A keyspace created outside the collection (seed CLI, raw PD API) can be managed."""
    assert t.validate_spec(t.TenantSpec(name=name)) == []


@pytest.mark.parametrize(
    "name,text",
    [
        ("ab", "3-64 characters"),
        ("a" * 65, "3-64 characters"),
        ("Upper_T", "lowercase"),
        ("acme-corp", "underscore only"),
        ("default", "reserved"),
        ("id", "reserved"),
    ],
)
@pytest.mark.parametrize("check_mode", [False, True])
def test_creation_rule_is_applied_before_a_create(name, text, check_mode, monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    with pytest.raises(t.TenantError) as exc:
        reconcile(NoSQL(), RecordingPD(None), {}, t.TenantSpec(name=name), check_mode=check_mode)
    assert exc.value.kind == "validation" and text in str(exc.value)
    assert "Nothing was changed" in str(exc.value) and exc.value.result["changed"] is False


def test_good_spec():
    assert t.validate_spec(t.TenantSpec(name="acme_corp", admin_password="s3cret!")) == []


@pytest.mark.parametrize(
    "kwargs,text",
    [
        (dict(admin_password="admin"), "must not be pg-tikv's bootstrap password"),
        (dict(admin_password=""), "must not be empty"),
        (dict(admin_password="a\x00b"), "NUL"),
        (dict(login_user="admin"), "needs login_password"),
        (dict(lock_users=[""]), "lock_users"),
        (dict(config={"k": {"nested": 1}}), "strings or null"),
        (dict(config={"k": True}), "quote the boolean"),
        (dict(config={"": "v"}), "non-empty strings"),
        (dict(config=["k"]), "dictionary"),
        (dict(state="deleted"), "state must be one of"),
        (dict(update_admin_password="sometimes"), "update_admin_password"),
        (dict(confirm_tombstone="other"), "confirm_tombstone must be exactly"),
    ],
)
def test_bad_specs(kwargs, text):
    errors = t.validate_spec(t.TenantSpec(name="acme_corp", **kwargs))
    assert any(text in e for e in errors), errors


def test_errors_never_contain_the_password():
    secret = "Sup3r'Secret"
    errors = t.validate_spec(t.TenantSpec(name="acme_corp", admin_password=secret, login_user="admin", config={"x": True}))
    assert errors and all(secret not in e for e in errors)


# ---------------------------------------------------------------- config


def test_normalize_config():
    user, managed, errors = k.normalize_config({"a": "1", "b": 2, "c": None, "region_bound_type": "txn"})
    assert user == {"a": "1", "b": "2", "c": None}
    assert managed == ["region_bound_type"]
    assert errors == []
    assert k.normalize_config(None) == (None, [], [])


def test_config_patch_merge_semantics():
    current = {"a": "1", "b": "2", "gc_management_type": "unified"}
    assert k.config_patch(current, {"a": "1"}) == {}
    assert k.config_patch(current, {"a": "9", "b": None, "z": None, "n": "new"}) == {"a": "9", "b": None, "n": "new"}
    assert k.config_patch(current, None) == {}
    assert k.apply_patch(current, {"a": "9", "b": None}) == {"a": "9", "gc_management_type": "unified"}


def test_split_config():
    user, managed = k.split_config({"a": "1", "meta_service_group_addrs": "x"})
    assert user == {"a": "1"} and managed == {"meta_service_group_addrs": "x"}


# ---------------------------------------------------------------- state machine


@pytest.mark.parametrize(
    "current,target,path",
    [
        ("ENABLED", "ENABLED", []),
        ("ENABLED", "DISABLED", ["DISABLED"]),
        ("ENABLED", "ARCHIVED", ["DISABLED", "ARCHIVED"]),
        ("ENABLED", "TOMBSTONE", ["DISABLED", "ARCHIVED", "TOMBSTONE"]),
        ("DISABLED", "ENABLED", ["ENABLED"]),
        ("DISABLED", "TOMBSTONE", ["ARCHIVED", "TOMBSTONE"]),
        ("ARCHIVED", "TOMBSTONE", ["TOMBSTONE"]),
        ("TOMBSTONE", "TOMBSTONE", []),
        ("disabled", "archived", ["ARCHIVED"]),
    ],
)
def test_plan_transitions(current, target, path):
    assert k.plan_transitions(current, target) == path


@pytest.mark.parametrize(
    "current,target,text",
    [
        ("ARCHIVED", "ENABLED", "only move on to TOMBSTONE"),
        ("ARCHIVED", "DISABLED", "only move on to TOMBSTONE"),
        ("TOMBSTONE", "ENABLED", "final"),
        ("TOMBSTONE", "ARCHIVED", "final"),
        ("WEIRD", "ENABLED", "unknown keyspace state"),
    ],
)
def test_plan_transitions_refuses(current, target, text):
    with pytest.raises(ValueError) as exc:
        k.plan_transitions(current, target)
    assert text in str(exc.value)


# ---------------------------------------------------------------- DSN


def test_dsn_percent_encodes_every_special_character():
    password = "p@ss:w/o%rd'\"\\ #?&=+"
    dsn = common.build_dsn("db.example.com", 5433, "acme.admin", password, "verify-full")
    parts = urlsplit(dsn)
    assert unquote(parts.password) == password
    assert parts.hostname == "db.example.com" and parts.port == 5433
    assert unquote(parts.username) == "acme.admin"
    userinfo = dsn.split("://", 1)[1].rsplit("@", 1)[0]
    encoded_password = userinfo.split(":", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9._~%-]+", encoded_password)
    assert dsn.endswith("/postgres?sslmode=verify-full")


def test_dsn_without_password_and_ipv6():
    assert common.build_dsn("::1", 5433, "a.admin") == "postgresql://a.admin@[::1]:5433/postgres"


def test_connection_info_full_dsn_only_with_password():
    info = common.connection_info({"pg_host": "h", "pg_port": 1, "ssl_mode": "require"}, "acme")
    assert info["user"] == "acme.admin" and "full_dsn" not in info and ":" not in info["dsn"].split("@")[0][13:]
    info = common.connection_info({"pg_host": "h", "pg_port": 1}, "acme", password="x@y")
    assert info["full_dsn"] == "postgresql://acme.admin:x%40y@h:1/postgres"


def test_keyspace_view():
    view = k.keyspace_view(
        {"id": 3, "name": "a", "state": "ENABLED", "created_at": 1755763078, "state_changed_at": 1755763078, "config": {"k": "v", "user_kind": "basic"}}
    )
    assert view["created"] == "2025-08-21T07:57:58Z"
    assert view["server_managed_config"] == {"user_kind": "basic"}
    assert k.keyspace_view(None) is None


def names(items):
    return [k["name"] for k in items]


def test_filter_keyspaces():
    ks = [
        {"id": 0, "name": "DEFAULT", "state": "ENABLED"},
        {"id": 1, "name": "default", "state": "ENABLED"},
        {"id": 2, "name": "acme_a", "state": "ENABLED"},
        {"id": 3, "name": "acme_b", "state": "TOMBSTONE"},
        {"id": 4, "name": "beta", "state": "DISABLED"},
    ]
    assert names(k.filter_keyspaces(ks)) == ["acme_a", "acme_b", "beta"]
    assert names(k.filter_keyspaces(ks, include_reserved=True)) == ["DEFAULT", "default", "acme_a", "acme_b", "beta"]
    assert names(k.filter_keyspaces(ks, states=["enabled", "disabled"])) == ["acme_a", "beta"]
    assert names(k.filter_keyspaces(ks, name_pattern="acme_*")) == ["acme_a", "acme_b"]


# ---------------------------------------------------------------- planning refuses before writing


class RecordingPD:
    """A PD stand-in that fails the test on any write."""

    def __init__(self, keyspace):
        self.keyspace = keyspace
        self.requests_log = []

    def get_keyspace(self, name):
        return self.keyspace

    def version(self):
        return None

    def request(self, method, path, **kwargs):
        """PD answers (the check that PD is still up after refused test logins)."""
        return {"version": None}

    def _write(self, *args):
        raise AssertionError("a write was attempted: %r" % (args,))

    create_keyspace = set_state = patch_config = _write


def ks(state, config=None):
    return {"id": 5, "name": "acme_corp", "state": state, "created_at": 1, "state_changed_at": 1, "config": config or {}}


@pytest.mark.parametrize(
    "state,spec_kwargs,kind",
    [
        ("ARCHIVED", dict(state="present"), "transition"),
        ("TOMBSTONE", dict(state="disabled"), "transition"),
        ("ENABLED", dict(state="tombstone", lock_users=[]), "confirmation"),
        ("ARCHIVED", dict(state="tombstone", lock_users=[], config={"k": "v"}), "confirmation"),
        ("ARCHIVED", dict(state="archived", lock_users=[], config={"k": "v"}), "config"),
    ],
)
def test_refused_before_any_write(state, spec_kwargs, kind):
    spec = t.TenantSpec(name="acme_corp", **spec_kwargs)
    with pytest.raises(t.TenantError) as exc:
        reconcile(NoSQL(), RecordingPD(ks(state)), {}, spec)
    assert exc.value.kind == kind
    assert exc.value.result["changed"] is False
    assert "Nothing was changed" in str(exc.value)


def test_decommission_of_missing_tenant_is_a_noop():
    spec = t.TenantSpec(name="acme_corp", state="tombstone", confirm_tombstone="acme_corp")
    result = reconcile(NoSQL(), RecordingPD(None), {}, spec)
    assert result["changed"] is False and result["exists"] is False and result["warnings"]


def test_check_mode_create_plans_without_writing_or_sql(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    spec = t.TenantSpec(name="acme_corp", config={"plan": "gold", "gone": None})
    result = reconcile(NoSQL(), RecordingPD(None), {}, spec, check_mode=True)
    assert result["changed"] is True
    assert result["state_path"] == ["ENABLED"]
    assert result["config_patch"] == {"plan": "gold"}
    assert result["diff"]["before"]["state"] == "absent"
    assert result["diff"]["after"] == {"state": "ENABLED", "config": {"plan": "gold"}, "admin": "rotated"}
    assert "generated_admin_password" not in result


def test_check_mode_pd_only_walk():
    spec = t.TenantSpec(name="acme_corp", state="tombstone", lock_users=[], confirm_tombstone="acme_corp", config={"a": None})
    result = reconcile(NoSQL(), RecordingPD(ks("ENABLED", {"a": "1"})), {}, spec, check_mode=True)
    assert result["state_path"] == ["DISABLED", "ARCHIVED", "TOMBSTONE"]
    assert result["config_patch"] == {"a": None}
    assert result["diff"]["after"]["state"] == "TOMBSTONE" and result["diff"]["after"]["config"] == {}
    assert result["changed"] is True


class CreatingPD(RecordingPD):
    def __init__(self):
        super().__init__(None)
        self.created = None

    def create_keyspace(self, name, config=None):
        self.created = {"id": 9, "name": name, "state": "ENABLED", "created_at": 5, "state_changed_at": 5, "config": dict(config or {})}
        return self.created


class DownSQL:
    """The SQL side after the TCP pre-flight: every login fails as unreachable."""

    SQLClientError = c.SQLClientError
    ServerUnreachable = c.ServerUnreachable
    LoginRefused = c.LoginRefused
    LoginNotPermitted = c.LoginNotPermitted

    def connect(self, *args):
        raise self.ServerUnreachable("cannot reach the SQL server at h:1: connection refused")

    probe_login = connect


def test_half_done_create_says_what_state_it_is_in(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    pd = CreatingPD()
    spec = t.TenantSpec(name="acme_corp", admin_password="Secret-1")
    with pytest.raises(t.TenantError) as exc:
        reconcile(DownSQL(), pd, {"pg_host": "h", "pg_port": 1}, spec)
    msg = str(exc.value)
    assert exc.value.kind == "sql_unreachable"
    assert exc.value.result["changed"] is True
    assert exc.value.result["keyspace"]["state"] == "ENABLED"
    assert "created keyspace 'acme_corp'" in msg and "Current keyspace state: ENABLED" in msg
    assert "still has the bootstrap password" in msg and exc.value.result["fully_provisioned"] is False
    assert "Secret-1" not in msg


def test_create_refused_when_pg_tikv_port_is_closed(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: "pg-tikv is unreachable at h:1 (refused)")
    pd = CreatingPD()
    with pytest.raises(t.TenantError) as exc:
        reconcile(DownSQL(), pd, {}, t.TenantSpec(name="acme_corp"))
    assert pd.created is None
    assert exc.value.result["changed"] is False
    assert "Nothing was changed" in str(exc.value)


def test_bootstrap_password_message_avoids_the_masked_word():
    errors = t.validate_spec(t.TenantSpec(name="acme_corp", admin_password="admin"))
    assert errors and "admin" not in errors[0]


class CollidingPD(RecordingPD):
    """PD v26.3+/master after create-by-ID (reference §1.3): 'already exists' for a new name."""

    def __init__(self, collisions, appears=False):
        super().__init__(None)
        self.collisions = collisions
        self.appears = appears
        self.creates = 0

    def get_keyspace(self, name):
        if self.appears and self.creates:
            return {"id": 7, "name": name, "state": "ENABLED", "config": {}}
        return None

    def create_keyspace(self, name, config=None):
        self.creates += 1
        if self.creates <= self.collisions:
            raise PDError("exists", kind="exists")
        return {"id": 8, "name": name, "state": "ENABLED", "config": {}}


def test_create_retries_an_id_collision_after_re_reading():
    pd = CollidingPD(collisions=2)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False)
    keyspace, created = rec._create_keyspace({})
    assert created is True and keyspace["id"] == 8 and pd.creates == 3


def test_create_gives_up_after_bounded_collisions():
    pd = CollidingPD(collisions=99)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False)
    with pytest.raises(t.TenantError) as exc:
        rec._create_keyspace({})
    assert pd.creates == t.CREATE_ATTEMPTS and "re-run the task" in str(exc.value)


def test_create_race_converges_the_existing_keyspace():
    pd = CollidingPD(collisions=1, appears=True)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False)
    keyspace, created = rec._create_keyspace({})
    assert created is False and keyspace["id"] == 7


# ---------------------------------------------------------------- the SQL client's login_first, as the reconciler uses it


class LoginSQL(DownSQL):
    """connect(): 'wrong' is refused, user 'locked' has NOLOGIN, 'down' is unreachable, else a session."""

    def __init__(self):
        self.calls = []

    def connect(self, sql_params, tenant, user, password):
        self.calls.append((tenant, user, password))
        if password == "down":
            raise self.ServerUnreachable("cannot reach the SQL server at h:1: connection refused")
        if password == "wrong":
            raise self.LoginRefused("refused")
        if user == "locked":
            raise self.LoginNotPermitted("NOLOGIN")
        return ("session", tenant, user)


def test_login_first_moves_past_refusals_and_skips_candidates_without_password():
    sql = LoginSQL()
    candidates = [
        ("nopw", None, "no password"),
        ("admin", "wrong", "first"),
        ("locked", "pw", "second"),
        ("app", "pw", "third"),
        ("later", "pw", "never tried"),
    ]
    with patched_sql(sql):
        session, user, refused = c.login_first({}, "acme_corp", candidates)
    assert session == ("session", "acme_corp", "app") and user == "app"
    assert [(label, type(exc)) for label, exc in refused] == [("first", c.LoginRefused), ("second", c.LoginNotPermitted)]
    assert sql.calls == [("acme_corp", "admin", "wrong"), ("acme_corp", "locked", "pw"), ("acme_corp", "app", "pw")]


def test_login_first_when_nothing_logs_in():
    with patched_sql(LoginSQL()):
        assert c.login_first({}, "acme_corp", []) == (None, None, [])
        session, user, refused = c.login_first({}, "acme_corp", [("admin", "wrong", "only")])
    assert session is None and user is None and [label for label, _exc in refused] == ["only"]


def test_login_first_raises_what_is_not_a_refusal():
    sql = LoginSQL()
    with patched_sql(sql), pytest.raises(c.ServerUnreachable):
        c.login_first({}, "acme_corp", [("admin", "down", "first"), ("admin", "pw", "second")])
    assert len(sql.calls) == 1


def test_reconciler_names_every_refused_candidate():
    rec = t._Reconciler(None, {}, t.TenantSpec(name="acme_corp"), False)
    with patched_sql(LoginSQL()), pytest.raises(t.TenantError) as exc:
        rec.open_session([("admin", "wrong", "admin with admin_password"), ("locked", "pw", "login_user 'locked'")], "lock SQL logins")
    assert exc.value.kind == "sql_auth"
    assert ("cannot log in to tenant 'acme_corp' to lock SQL logins: tried admin with admin_password (refused), login_user 'locked' (NOLOGIN). ") in str(
        exc.value
    )
    rec = t._Reconciler(None, {}, t.TenantSpec(name="acme_corp"), False)
    with patched_sql(LoginSQL()), pytest.raises(t.TenantError) as exc:
        rec.open_session([("admin", "down", "admin with admin_password")], "lock SQL logins")
    assert exc.value.kind == "sql_unreachable"


# ---------------------------------------------------------------- a create that PD answers with an error


class ErrorCreatePD(RecordingPD):
    """PD answers the POST with a 500 (as it did for a 2 MB config) but may have stored the keyspace."""

    def __init__(self, stored):
        super().__init__(None)
        self.stored = stored
        self.creates = 0
        self.reads = 0

    def get_keyspace(self, name):
        self.reads += 1
        return self.stored if self.creates else None

    def create_keyspace(self, name, config=None):
        self.creates += 1
        raise PDError("PD answered HTTP 500 to POST /pd/api/v2/keyspaces: etcdserver: request is too large", kind="server_error", status=500)


class RotatingSQL(DownSQL):
    """Logins as admin/admin work until the password is set; then only the new one."""

    def __init__(self):
        self.password = "admin"
        self.sessions = []

    def connect(self, sql_params, tenant, user, password):
        if password != self.password:
            raise self.LoginRefused("refused")
        sql = self

        class Session:
            queries = []

            def add_secret(self, value):
                pass

            def set_password(self, user, new):
                sql.password = new

            def close(self):
                pass

        return Session()

    def probe_login(self, sql_params, tenant, user, password):
        return "ok" if password == self.password else "refused"


def test_failed_create_that_left_the_keyspace_is_finished_as_created(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    pd = ErrorCreatePD({"id": 4, "name": "acme_corp", "state": "ENABLED", "config": {"plan": "gold"}})
    sql = RotatingSQL()
    result = reconcile(sql, pd, {}, t.TenantSpec(name="acme_corp", admin_password="New-pw-1", config={"plan": "gold"}))
    assert pd.creates == 1 and pd.reads == 2  # the read before the create, the re-read after it
    assert result["changed"] is True and result["exists"] is True and result["state_path"] == ["ENABLED"]
    assert result["admin_rotated"] is True and result["fully_provisioned"] is True and sql.password == "New-pw-1"
    assert "created keyspace 'acme_corp' (id 4, ENABLED)" in result["progress"]
    assert any("reported as created (unverified" in w for w in result["warnings"])


def test_failed_create_that_left_nothing_fails_saying_so(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    pd = ErrorCreatePD(None)
    with pytest.raises(t.TenantError) as exc:
        reconcile(NoSQL(), pd, {}, t.TenantSpec(name="acme_corp"))
    assert exc.value.kind == "pd" and exc.value.result["changed"] is False
    assert "HTTP 500" in str(exc.value) and "Re-reading shows no such keyspace, so nothing was created" in str(exc.value)


def test_failed_create_that_left_another_config_converges_it(monkeypatch):
    pd = ErrorCreatePD({"id": 4, "name": "acme_corp", "state": "ENABLED", "config": {"plan": "other"}})
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp", config={"plan": "gold"}), False)
    keyspace, created = rec._create_keyspace({"plan": "gold"})
    assert created is False and keyspace["id"] == 4
    assert any("managed as an existing tenant" in w for w in rec.result["warnings"])


def test_create_refused_by_pd_is_not_re_read():
    class RefusingPD(ErrorCreatePD):
        def create_keyspace(self, name, config=None):
            self.creates += 1
            raise PDError("illegal keyspace name", kind="illegal_name", status=500)

    pd = RefusingPD(None)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False)
    with pytest.raises(t.TenantError):
        rec._create_keyspace({})
    assert pd.reads == 0


def test_oversized_config_is_refused_before_any_write():
    spec = t.TenantSpec(name="acme_corp", config={"blob": "x" * MAX_CONFIG_BYTES})
    errors = t.validate_spec(spec)
    assert any("at most 65536 bytes (64 KiB)" in e for e in errors), errors
    with pytest.raises(t.TenantError) as exc:
        reconcile(NoSQL(), RecordingPD(ks("ENABLED")), {}, spec)
    assert exc.value.kind == "validation"


@pytest.mark.parametrize("value", [["a", "b"], {"a": "b"}, 511])
def test_password_of_another_type_is_refused(value):
    errors = t.validate_spec(t.TenantSpec(name="acme_corp", admin_password=value))
    assert errors == [
        "admin_password must be a string, not %s; quote it in YAML so that it is used exactly as "
        "written" % {list: "a list", dict: "a dictionary", int: "a number"}[type(value)]
    ]


def test_name_with_a_trailing_newline_is_refused():
    assert t.validate_spec(t.TenantSpec(name="acme_corp\n"))


# ---------------------------------------------------------------- PD dies between the PD read and the SQL checks


class RefusingSQL(DownSQL):
    """Every test login is refused: what pg-tikv answers for an uncached tenant while PD is down."""

    def __init__(self):
        self.probes = []

    def probe_login(self, sql_params, tenant, user, password):
        self.probes.append(user)
        return "refused"


class DyingPD(RecordingPD):
    """Answers the keyspace read, then goes away (or stays, with ``dies=False``)."""

    def __init__(self, keyspace, dies=True):
        super().__init__(keyspace)
        self.dies = dies
        self.requests = []

    def request(self, method, path, **kwargs):
        self.requests.append((method, path))
        if self.dies:
            raise t.PDUnreachable(
                "PD is unreachable for %s %s; tried: http://pd:1 (connection refused)" % (method, path), [("http://pd:1", "connection refused")]
            )
        return {"version": "v8.5.0"}


@pytest.mark.parametrize("check_mode", [False, True])
def test_pd_gone_after_the_pd_read_is_never_unchanged_or_verified(check_mode):
    """admin/admin refused normally means "rotated"; with PD down pg-tikv
    refuses it anyway (reference §1.4a), so the task must fail, not report
    changed=false / fully_provisioned."""
    sql = RefusingSQL()
    pd = DyingPD(ks("ENABLED"))
    with pytest.raises(t.TenantError) as exc:
        reconcile(sql, pd, {}, t.TenantSpec(name="acme_corp"), check_mode=check_mode)
    assert exc.value.kind == "pd_unreachable"
    assert "PD stopped answering after the SQL checks" in str(exc.value) and "NOT verified" in str(exc.value)
    assert exc.value.result["fully_provisioned"] is False
    assert sql.probes == ["admin"] and pd.requests == [("GET", "/pd/api/v1/version")]


def test_refused_probe_is_trusted_when_pd_still_answers():
    pd = DyingPD(ks("ENABLED"), dies=False)
    result = reconcile(RefusingSQL(), pd, {}, t.TenantSpec(name="acme_corp"))
    assert result["changed"] is False and result["fully_provisioned"] is True
    assert pd.requests == [("GET", "/pd/api/v1/version")]


def test_no_refusal_no_extra_pd_request():
    pd = DyingPD(ks("ENABLED"))
    reconcile(NoSQL(), pd, {}, t.TenantSpec(name="acme_corp", state="disabled", lock_users=[]), check_mode=True)
    assert pd.requests == []


# ---------------------------------------------------------------- a reply lost after ALTER ROLE was sent


class LostReplySQL(DownSQL):
    """admin/admin logs in; the connection is lost right after ALTER ROLE ... PASSWORD is sent."""

    class Session:
        queries = []

        def __init__(self, outer):
            self.outer = outer

        def add_secret(self, value):
            pass

        def set_password(self, user, password):
            raise self.outer.ServerUnreachable("the SQL connection was lost during 'ALTER ROLE': server closed")

        def close(self):
            pass

    def connect(self, sql_params, tenant, user, password):
        if password == "admin":
            return self.Session(self)
        raise self.LoginRefused("refused")

    def probe_login(self, sql_params, tenant, user, password):
        return "ok" if password == "admin" else "refused"


def test_lost_reply_keeps_the_generated_password_and_claims_no_bootstrap(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    with pytest.raises(t.TenantError) as exc:
        reconcile(LostReplySQL(), CreatingPD(), {}, t.TenantSpec(name="acme_corp"), confirm_pd=False)
    result = exc.value.result
    assert exc.value.kind == "sql_lost_reply"
    assert "may or may not have applied it" in str(exc.value)
    assert "still has the bootstrap password" not in str(exc.value)
    assert len(result["generated_admin_password"]) == 32 and result["admin_password_generated"] is True
    assert result["fully_provisioned"] is False and result["changed"] is True
    assert result["generated_admin_password"] not in str(exc.value)


class PreviousPasswordSQL(LostReplySQL):
    """admin has the password 'old-pw': only that one logs in; ALTER ROLE works."""

    def __init__(self):
        self.set_to = None
        self.logins = []

    class Session(LostReplySQL.Session):
        def set_password(self, user, password):
            self.outer.set_to = password

    def connect(self, sql_params, tenant, user, password):
        self.logins.append(password)
        current = self.set_to or "old-pw"
        if password == current:
            return self.Session(self)
        raise self.LoginRefused("refused")

    def probe_login(self, sql_params, tenant, user, password):
        return "ok" if password == (self.set_to or "old-pw") else "refused"


def test_previous_admin_passwords_log_in_to_finish_a_rotation():
    sql = PreviousPasswordSQL()
    spec = t.TenantSpec(name="acme_corp", admin_password="new-pw", previous_admin_passwords=["gone-pw", "old-pw"])
    result = reconcile(sql, RecordingPD(ks("ENABLED")), {}, spec, confirm_pd=False)
    assert sql.set_to == "new-pw" and result["admin_rotated"] and result["admin_login_proven"]
    assert sql.logins[-1] == "old-pw" and "gone-pw" in sql.logins
    # Without them the same state is a clear "wrong admin password".
    with pytest.raises(t.TenantError, match="wrong admin password"):
        reconcile(PreviousPasswordSQL(), RecordingPD(ks("ENABLED")), {}, t.TenantSpec(name="acme_corp", admin_password="x-pw"), confirm_pd=False)


# ---------------------------------------------------------------- what the modules call


def test_manage_tenant_refuses_pd_options_the_client_refuses():
    with pytest.raises(common.TaskError) as exc:
        t.manage_tenant({"name": "acme_corp", "pd_endpoints": ["pd:1"], "pd_client_key": "/k.pem"}, check_mode=True)
    assert exc.value.message == "pd_client_key needs pd_client_cert" and exc.value.result == {"changed": False}


def test_manage_tenant_reports_connection_and_pd_calls_also_on_failure(monkeypatch):
    pd = RecordingPD(ks("ARCHIVED"))
    pd.close = lambda: None
    monkeypatch.setattr(t, "pd_client_from_params", lambda params: pd)
    with pytest.raises(t.TenantError) as exc:
        t.manage_tenant({"name": "acme_corp", "pg_host": "db", "pg_port": 5433}, check_mode=False)
    assert exc.value.kind == "transition"
    assert exc.value.result["connection"]["dsn"] == "postgresql://acme_corp.admin@db:5433/postgres"
    assert exc.value.result["pd_requests"] == []


def test_read_tenants_filters_and_adds_connections(monkeypatch):
    class ListingPD(RecordingPD):
        def iter_keyspaces(self, page_size=None):
            return iter([ks("ENABLED"), {"id": 0, "name": "DEFAULT", "state": "ENABLED"}])

        def close(self):
            pass

    monkeypatch.setattr(t, "pd_client_from_params", lambda params: ListingPD(None))
    result = t.read_tenants({"pg_host": "db", "pg_port": 1})
    assert [x["name"] for x in result["tenants"]] == ["acme_corp"] and result["scanned"] == 2 and result["count"] == 1
    assert result["tenants"][0]["connection"]["user"] == "acme_corp.admin"
    with pytest.raises(common.TaskError, match="page_size must be at least 1"):
        t.read_tenants({"page_size": 0})


def _imported(module):
    tree = ast.parse(inspect.getsource(module))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module)
            names.update("%s.%s" % (node.module, alias.name) for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_domain_files_do_not_import_the_ansible_glue():
    """_keyspace is pure (no client, no Ansible); _tenant never imports _module (AnsibleModule plumbing)."""
    glue = "ansible_collections.pgtikv.cloud.plugins.module_utils._module"
    for mod in (k, t):
        assert not any(name.startswith((glue, "ansible.module_utils.basic")) for name in _imported(mod))
    assert not any(name.endswith(("._pd_client", "._sql_client")) or "._pd_client." in name or "._sql_client" in name for name in _imported(k))
