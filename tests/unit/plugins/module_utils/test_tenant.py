# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pure logic of _tenant: validation, state walking, config
diff, DSN encoding, filters, and that planning refuses before any write."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _tenant as t

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
        t.reconcile_tenant(RecordingPD(None), {}, t.TenantSpec(name=name), check_mode=check_mode, sql=NoSQL())
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
    user, managed, errors = t.normalize_config({"a": "1", "b": 2, "c": None, "region_bound_type": "txn"})
    assert user == {"a": "1", "b": "2", "c": None}
    assert managed == ["region_bound_type"]
    assert errors == []
    assert t.normalize_config(None) == (None, [], [])


def test_config_patch_merge_semantics():
    current = {"a": "1", "b": "2", "gc_management_type": "unified"}
    assert t.config_patch(current, {"a": "1"}) == {}
    assert t.config_patch(current, {"a": "9", "b": None, "z": None, "n": "new"}) == {"a": "9", "b": None, "n": "new"}
    assert t.config_patch(current, None) == {}
    assert t.apply_patch(current, {"a": "9", "b": None}) == {"a": "9", "gc_management_type": "unified"}


def test_split_config():
    user, managed = t.split_config({"a": "1", "meta_service_group_addrs": "x"})
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
    assert t.plan_transitions(current, target) == path


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
        t.plan_transitions(current, target)
    assert text in str(exc.value)


# ---------------------------------------------------------------- DSN


def test_dsn_percent_encodes_every_special_character():
    password = "p@ss:w/o%rd'\"\\ #?&=+"
    dsn = t.build_dsn("db.example.com", 5433, "acme.admin", password, "verify-full")
    parts = urlsplit(dsn)
    assert unquote(parts.password) == password
    assert parts.hostname == "db.example.com" and parts.port == 5433
    assert unquote(parts.username) == "acme.admin"
    userinfo = dsn.split("://", 1)[1].rsplit("@", 1)[0]
    encoded_password = userinfo.split(":", 1)[1]
    assert re.fullmatch(r"[A-Za-z0-9._~%-]+", encoded_password)
    assert dsn.endswith("/postgres?sslmode=verify-full")


def test_dsn_without_password_and_ipv6():
    assert t.build_dsn("::1", 5433, "a.admin") == "postgresql://a.admin@[::1]:5433/postgres"


def test_connection_info_full_dsn_only_with_password():
    info = t.connection_info({"pg_host": "h", "pg_port": 1, "ssl_mode": "require"}, "acme")
    assert info["user"] == "acme.admin" and "full_dsn" not in info and ":" not in info["dsn"].split("@")[0][13:]
    info = t.connection_info({"pg_host": "h", "pg_port": 1}, "acme", password="x@y")
    assert info["full_dsn"] == "postgresql://acme.admin:x%40y@h:1/postgres"


def test_keyspace_view():
    view = t.keyspace_view(
        {"id": 3, "name": "a", "state": "ENABLED", "created_at": 1755763078, "state_changed_at": 1755763078, "config": {"k": "v", "user_kind": "basic"}}
    )
    assert view["created"] == "2025-08-21T07:57:58Z"
    assert view["server_managed_config"] == {"user_kind": "basic"}
    assert t.keyspace_view(None) is None


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
    assert names(t.filter_keyspaces(ks)) == ["acme_a", "acme_b", "beta"]
    assert names(t.filter_keyspaces(ks, include_reserved=True)) == ["DEFAULT", "default", "acme_a", "acme_b", "beta"]
    assert names(t.filter_keyspaces(ks, states=["enabled", "disabled"])) == ["acme_a", "beta"]
    assert names(t.filter_keyspaces(ks, name_pattern="acme_*")) == ["acme_a", "acme_b"]


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


class NoSQL:
    HAS_PSYCOPG2 = True

    def __getattr__(self, name):
        raise AssertionError("SQL was used: " + name)


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
        t.reconcile_tenant(RecordingPD(ks(state)), {}, spec, sql=NoSQL())
    assert exc.value.kind == kind
    assert exc.value.result["changed"] is False
    assert "Nothing was changed" in str(exc.value)


def test_decommission_of_missing_tenant_is_a_noop():
    spec = t.TenantSpec(name="acme_corp", state="tombstone", confirm_tombstone="acme_corp")
    result = t.reconcile_tenant(RecordingPD(None), {}, spec, sql=NoSQL())
    assert result["changed"] is False and result["exists"] is False and result["warnings"]


def test_check_mode_create_plans_without_writing_or_sql(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    spec = t.TenantSpec(name="acme_corp", config={"plan": "gold", "gone": None})
    result = t.reconcile_tenant(RecordingPD(None), {}, spec, check_mode=True, sql=NoSQL())
    assert result["changed"] is True
    assert result["state_path"] == ["ENABLED"]
    assert result["config_patch"] == {"plan": "gold"}
    assert result["diff"]["before"]["state"] == "absent"
    assert result["diff"]["after"] == {"state": "ENABLED", "config": {"plan": "gold"}, "admin": "rotated"}
    assert "generated_admin_password" not in result


def test_check_mode_pd_only_walk():
    spec = t.TenantSpec(name="acme_corp", state="tombstone", lock_users=[], confirm_tombstone="acme_corp", config={"a": None})
    result = t.reconcile_tenant(RecordingPD(ks("ENABLED", {"a": "1"})), {}, spec, check_mode=True, sql=NoSQL())
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

    HAS_PSYCOPG2 = True

    class SQLClientError(Exception):
        pass

    class ServerUnreachable(SQLClientError):
        pass

    class LoginRefused(SQLClientError):
        pass

    class LoginNotPermitted(SQLClientError):
        pass

    @staticmethod
    def login_name(tenant, user):
        return "%s.%s" % (tenant, user)

    def connect(self, *args):
        raise self.ServerUnreachable("cannot reach the SQL server at h:1: connection refused")

    probe_login = connect


def test_half_done_create_says_what_state_it_is_in(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    pd = CreatingPD()
    spec = t.TenantSpec(name="acme_corp", admin_password="Secret-1")
    with pytest.raises(t.TenantError) as exc:
        t.reconcile_tenant(pd, {"pg_host": "h", "pg_port": 1}, spec, sql=DownSQL())
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
        t.reconcile_tenant(pd, {}, t.TenantSpec(name="acme_corp"), sql=DownSQL())
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
        from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import PDError

        self.creates += 1
        if self.creates <= self.collisions:
            raise PDError("exists", kind="exists")
        return {"id": 8, "name": name, "state": "ENABLED", "config": {}}


def test_create_retries_an_id_collision_after_re_reading():
    pd = CollidingPD(collisions=2)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False, DownSQL())
    keyspace, created = rec._create_keyspace({})
    assert created is True and keyspace["id"] == 8 and pd.creates == 3


def test_create_gives_up_after_bounded_collisions():
    pd = CollidingPD(collisions=99)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False, DownSQL())
    with pytest.raises(t.TenantError) as exc:
        rec._create_keyspace({})
    assert pd.creates == t.CREATE_ATTEMPTS and "re-run the task" in str(exc.value)


def test_create_race_converges_the_existing_keyspace():
    pd = CollidingPD(collisions=1, appears=True)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False, DownSQL())
    keyspace, created = rec._create_keyspace({})
    assert created is False and keyspace["id"] == 7


# ---------------------------------------------------------------- login_first (shared with _bulk)


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
    session, user, refused = t.login_first(
        sql,
        {},
        "acme_corp",
        [("nopw", None, "no password"), ("admin", "wrong", "first"), ("locked", "pw", "second"), ("app", "pw", "third"), ("later", "pw", "never tried")],
    )
    assert session == ("session", "acme_corp", "app") and user == "app"
    assert [(label, type(exc)) for label, exc in refused] == [("first", sql.LoginRefused), ("second", sql.LoginNotPermitted)]
    assert sql.calls == [("acme_corp", "admin", "wrong"), ("acme_corp", "locked", "pw"), ("acme_corp", "app", "pw")]


def test_login_first_when_nothing_logs_in():
    sql = LoginSQL()
    assert t.login_first(sql, {}, "acme_corp", []) == (None, None, [])
    session, user, refused = t.login_first(sql, {}, "acme_corp", [("admin", "wrong", "only")])
    assert session is None and user is None and [label for label, _exc in refused] == ["only"]


def test_login_first_raises_what_is_not_a_refusal():
    sql = LoginSQL()
    with pytest.raises(sql.ServerUnreachable):
        t.login_first(sql, {}, "acme_corp", [("admin", "down", "first"), ("admin", "pw", "second")])
    assert len(sql.calls) == 1


def test_reconciler_names_every_refused_candidate():
    rec = t._Reconciler(None, {}, t.TenantSpec(name="acme_corp"), False, LoginSQL())
    with pytest.raises(t.TenantError) as exc:
        rec.open_session([("admin", "wrong", "admin with admin_password"), ("locked", "pw", "login_user 'locked'")], "lock SQL logins")
    assert exc.value.kind == "sql_auth"
    assert ("cannot log in to tenant 'acme_corp' to lock SQL logins: tried admin with admin_password (refused), login_user 'locked' (NOLOGIN). ") in str(
        exc.value
    )
    rec = t._Reconciler(None, {}, t.TenantSpec(name="acme_corp"), False, LoginSQL())
    with pytest.raises(t.TenantError) as exc:
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
        from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import PDError

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
    result = t.reconcile_tenant(pd, {}, t.TenantSpec(name="acme_corp", admin_password="New-pw-1", config={"plan": "gold"}), sql=sql)
    assert pd.creates == 1 and pd.reads == 2  # the read before the create, the re-read after it
    assert result["changed"] is True and result["exists"] is True and result["state_path"] == ["ENABLED"]
    assert result["admin_rotated"] is True and result["fully_provisioned"] is True and sql.password == "New-pw-1"
    assert "created keyspace 'acme_corp' (id 4, ENABLED)" in result["progress"]
    assert any("reported as created (unverified" in w for w in result["warnings"])


def test_failed_create_that_left_nothing_fails_saying_so(monkeypatch):
    monkeypatch.setattr(t._Reconciler, "sql_port_error", lambda self: None)
    pd = ErrorCreatePD(None)
    with pytest.raises(t.TenantError) as exc:
        t.reconcile_tenant(pd, {}, t.TenantSpec(name="acme_corp"), sql=NoSQL())
    assert exc.value.kind == "pd" and exc.value.result["changed"] is False
    assert "HTTP 500" in str(exc.value) and "Re-reading shows no such keyspace, so nothing was created" in str(exc.value)


def test_failed_create_that_left_another_config_converges_it(monkeypatch):
    pd = ErrorCreatePD({"id": 4, "name": "acme_corp", "state": "ENABLED", "config": {"plan": "other"}})
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp", config={"plan": "gold"}), False, NoSQL())
    keyspace, created = rec._create_keyspace({"plan": "gold"})
    assert created is False and keyspace["id"] == 4
    assert any("managed as an existing tenant" in w for w in rec.result["warnings"])


def test_create_refused_by_pd_is_not_re_read():
    from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import PDError

    class RefusingPD(ErrorCreatePD):
        def create_keyspace(self, name, config=None):
            self.creates += 1
            raise PDError("illegal keyspace name", kind="illegal_name", status=500)

    pd = RefusingPD(None)
    rec = t._Reconciler(pd, {}, t.TenantSpec(name="acme_corp"), False, NoSQL())
    with pytest.raises(t.TenantError):
        rec._create_keyspace({})
    assert pd.reads == 0


def test_oversized_config_is_refused_before_any_write():
    from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import MAX_CONFIG_BYTES

    spec = t.TenantSpec(name="acme_corp", config={"blob": "x" * MAX_CONFIG_BYTES})
    errors = t.validate_spec(spec)
    assert any("at most 65536 bytes (64 KiB)" in e for e in errors), errors
    with pytest.raises(t.TenantError) as exc:
        t.reconcile_tenant(RecordingPD(ks("ENABLED")), {}, spec, sql=NoSQL())
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
        t.reconcile_tenant(pd, {}, t.TenantSpec(name="acme_corp"), check_mode=check_mode, sql=sql)
    assert exc.value.kind == "pd_unreachable"
    assert "PD stopped answering after the SQL checks" in str(exc.value) and "NOT verified" in str(exc.value)
    assert exc.value.result["fully_provisioned"] is False
    assert sql.probes == ["admin"] and pd.requests == [("GET", "/pd/api/v1/version")]


def test_refused_probe_is_trusted_when_pd_still_answers():
    pd = DyingPD(ks("ENABLED"), dies=False)
    result = t.reconcile_tenant(pd, {}, t.TenantSpec(name="acme_corp"), sql=RefusingSQL())
    assert result["changed"] is False and result["fully_provisioned"] is True
    assert pd.requests == [("GET", "/pd/api/v1/version")]


def test_no_refusal_no_extra_pd_request():
    pd = DyingPD(ks("ENABLED"))
    t.reconcile_tenant(pd, {}, t.TenantSpec(name="acme_corp", state="disabled", lock_users=[]), check_mode=True, sql=NoSQL())
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
        t.reconcile_tenant(CreatingPD(), {}, t.TenantSpec(name="acme_corp"), sql=LostReplySQL(), confirm_pd=False)
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
    result = t.reconcile_tenant(RecordingPD(ks("ENABLED")), {}, spec, sql=sql, confirm_pd=False)
    assert sql.set_to == "new-pw" and result["admin_rotated"] and result["admin_login_proven"]
    assert sql.logins[-1] == "old-pw" and "gone-pw" in sql.logins
    # Without them the same state is a clear "wrong admin password".
    with pytest.raises(t.TenantError, match="wrong admin password"):
        t.reconcile_tenant(RecordingPD(ks("ENABLED")), {}, t.TenantSpec(name="acme_corp", admin_password="x-pw"), sql=PreviousPasswordSQL(), confirm_pd=False)
