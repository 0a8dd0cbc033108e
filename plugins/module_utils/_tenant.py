# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile ONE tenant: a PD keyspace plus its pg-tikv admin credential.

PRIVATE: for use by this collection's modules only; may change at any time.

No AnsibleModule in here: :func:`reconcile_tenant` takes a PDClient, the SQL
connection parameters, a :class:`TenantSpec` and (optionally) the keyspace a
caller already fetched, and returns a result dict or raises
:class:`TenantError` (whose ``result`` says what was done before the error).
pg_tikv_tenant calls it once (through :func:`manage_tenant`); the fleet
(``_bulk``) calls it per tenant with the keyspaces of one paginated list call.
:func:`read_tenants` is pg_tikv_tenant_info's work. The keyspace rules that
need no network are in ``_keyspace``.

Order of work, so that a failure leaves the safest state and is reported:

1. validate the spec (no network);
2. read: the keyspace (unless given), PD's version (only before a create),
   SQL login probes (never for a keyspace that does not exist: a login
   attempt bootstraps ``admin``/``admin``, reference/pg-tikv-server.md §2.2);
3. plan everything: the state path (refused before any write if illegal),
   the config patch, the SQL actions and which credentials can run them;
4. write, unless in check mode: for ``present`` PD first (create / config /
   enable), then SQL (rotate, unlock); for the decommission states SQL first
   (lock logins), then PD (config, state walk).
"""

from __future__ import annotations

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as sql
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    BOOTSTRAP_ADMIN_PASSWORD,
    BOOTSTRAP_ADMIN_USER,
    PD_PROTECTED_KEYSPACES,
    TaskError,
    connection_info,
    existing_tenant_name_error,
    generate_password,
    password_error,
    sql_params_from,
    tenant_name_error,
    user_name_error,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._keyspace import (
    CONFIG_WRITABLE_STATES,
    TARGET_STATES,
    apply_patch,
    config_patch,
    filter_keyspaces,
    keyspace_view,
    normalize_config,
    plan_transitions,
    split_config,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import (
    PD_PORTABLE_NAME_LENGTH,
    PDError,
    PDUnreachable,
    config_size_error,
    parse_version,
    pd_client_from_params,
    pd_name_error,
    refusals_unproven,
)

# How often a create that PD answers "already exists" for a name that then
# does not exist is re-sent: the create-by-ID allocator collision of §1.3.
CREATE_ATTEMPTS = 3

# Errors with which PD refuses a create before writing anything (name rules,
# malformed request, cluster not ready, endpoint/TLS problems, our own size
# limit); any other error answer to the POST may hide a created keyspace.
CREATE_REFUSED_KINDS = ("illegal_name", "reserved_name", "bad_request", "not_bootstrapped", "no_such_api", "tls_required", "unsupported_config", "config")

ADMIN_STATUS_BOOTSTRAP = "bootstrap"  # admin accepts admin/admin: anyone can take the tenant
ADMIN_STATUS_SET = "rotated"  # admin refuses the bootstrap password
ADMIN_STATUS_LOCKED = "locked"  # admin has NOLOGIN
ADMIN_STATUS_UNKNOWN = "unknown"
ADMIN_STATUS_NONE = "n/a"  # no keyspace


class TenantError(TaskError):
    """A failure with a person-readable message and the partial result.

    ``kind``: validation, transition, confirmation, config, pd, pd_unreachable,
    sql_auth, sql_unreachable, sql, verification, missing_library.
    ``result``: the result dict so far (what was changed, the last known
    keyspace, ``progress``), so that the caller can report the exact state.
    """


class TenantSpec:
    """The desired state of one tenant (the module's options)."""

    def __init__(
        self,
        name,
        state="present",
        config=None,
        admin_password=None,
        update_admin_password="always",
        login_user=None,
        login_password=None,
        lock_users=None,
        confirm_tombstone=None,
        previous_admin_passwords=None,
    ):
        self.name = name
        self.state = state
        self.config = config
        self.admin_password = admin_password
        self.update_admin_password = update_admin_password
        self.login_user = login_user
        self.login_password = login_password
        self.lock_users = [BOOTSTRAP_ADMIN_USER] if lock_users is None else list(lock_users)
        self.confirm_tombstone = confirm_tombstone
        # Passwords admin may have now besides admin_password (a write-ahead
        # store's current and previous ones while a change is under way).
        self.previous_admin_passwords = [p for p in previous_admin_passwords or [] if p != admin_password]

    @classmethod
    def from_params(cls, params):
        return cls(
            name=params.get("name"),
            state=params.get("state") or "present",
            config=params.get("config"),
            admin_password=params.get("admin_password"),
            update_admin_password=params.get("update_admin_password") or "always",
            login_user=params.get("login_user"),
            login_password=params.get("login_password"),
            lock_users=params.get("lock_users"),
            confirm_tombstone=params.get("confirm_tombstone"),
            previous_admin_passwords=params.get("previous_admin_passwords"),
        )


# ---------------------------------------------------------------------------
# Validation (no network)


def validate_spec(spec):
    """Every error of the spec that needs no network (list of messages)."""
    errors = []
    # Any name PD accepts may be managed once it exists; the creation rule is
    # applied in create(), before anything is written.
    err = existing_tenant_name_error(spec.name)
    if err:
        return [err]
    if spec.state not in TARGET_STATES:
        errors.append("state must be one of %s, not %r" % (", ".join(TARGET_STATES), spec.state))
    if spec.update_admin_password not in ("always", "on_create"):
        errors.append("update_admin_password must be 'always' or 'on_create'")
    err = password_error(spec.admin_password, "admin_password")
    if err:
        errors.append(err)
    elif spec.admin_password == BOOTSTRAP_ADMIN_PASSWORD:
        # Worded without the word itself: Ansible masks every occurrence of a
        # no_log value in the output, so "admin" would become "********".
        errors.append("the tenant superuser password must not be pg-tikv's bootstrap password (the same as the superuser's name): anyone could log in")
    err = password_error(spec.login_password, "login_password")
    if err:
        errors.append(err)
    for candidate in spec.previous_admin_passwords:
        err = password_error(candidate, "previous_admin_passwords")
        if err:
            errors.append(err)
    if spec.login_user is not None:
        err = user_name_error(spec.login_user)
        if err:
            errors.append("login_user: " + err)
        if spec.login_password is None:
            errors.append("login_user needs login_password")
    for user in spec.lock_users:
        err = user_name_error(user)
        if err:
            errors.append("lock_users: " + err)
    user_config, _managed, config_errors = normalize_config(spec.config)
    errors.extend(config_errors)
    err = config_size_error(user_config)
    if err:
        errors.append(err)
    if spec.confirm_tombstone is not None and spec.confirm_tombstone != spec.name:
        errors.append("confirm_tombstone must be exactly the tenant name %r (it is %r)" % (spec.name, spec.confirm_tombstone))
    return errors


def _diff_side(keyspace, admin_status):
    if not keyspace:
        return {"state": "absent", "config": {}, "admin": ADMIN_STATUS_NONE}
    return {"state": keyspace.get("state"), "config": dict(keyspace.get("config") or {}), "admin": admin_status}


# ---------------------------------------------------------------------------
# The reconciler


class _Missing:
    pass


MISSING = _Missing()


class _Reconciler:
    def __init__(self, pd, sql_params, spec, check_mode, session_sink=None, prove_bootstrap_refused=False):
        self.pd = pd
        self.session_sink = session_sink
        self.prove_bootstrap_refused = prove_bootstrap_refused
        # admin's session from the login that proved admin_password (no rotation
        # needed): handed to session_sink at the end, else closed.
        self.admin_session = None
        self.sql_params = dict(sql_params or {})
        self.spec = spec
        self.check_mode = check_mode
        self.name = spec.name
        self.admin = BOOTSTRAP_ADMIN_USER
        self.queries = []
        self.wrote = False
        self.bootstrap_open = False
        # The connection broke after a password change was sent: the server
        # may have committed it. The password is then kept in the result.
        self.password_maybe_applied = False
        self.sql_hint = ""
        self.refused_probes = False  # a conclusion rests on a refused test login
        self._session_queries = []
        self.result = {
            "changed": False,
            "name": spec.name,
            "exists": False,
            "keyspace": None,
            "state_path": [],
            "config_patch": {},
            "admin_rotated": False,
            "admin_password_generated": False,
            "admin_login_proven": False,
            "bootstrap_refused": None,
            "fully_provisioned": None,
            "locked_users": [],
            "warnings": [],
            "progress": [],
            "queries": self.queries,
        }

    # -- helpers ------------------------------------------------------------

    def _need_sql(self):
        """Before the first SQL call: the PD-only paths (a decommission of a
        missing keyspace...) run without psycopg2."""
        if not sql.HAS_PSYCOPG2:
            raise TenantError("psycopg2 is required for the SQL side of this task", kind="missing_library", result=self.result, library="psycopg2")

    def warn(self, text):
        self.result["warnings"].append(text)

    def done(self, text):
        self.result["progress"].append(text)

    def wrote_step(self, text):
        self.wrote = True
        self.done(text)

    def fail(self, message, kind):
        self.result["changed"] = self.wrote
        if not self.result.get("admin_rotated") and not self.password_maybe_applied:
            self.result.pop("generated_admin_password", None)
            self.result["admin_password_generated"] = False
        if self.result["progress"]:
            message += ". Done before the failure: " + "; ".join(self.result["progress"])
            message += ". Current keyspace state: %s" % ((self.result.get("keyspace") or {}).get("state") or "unknown")
        if self.bootstrap_open:
            message += (
                ". WARNING: the tenant's admin still has the bootstrap password admin/admin, so anyone "
                "who reaches pg-tikv can take it; re-run the task as soon as possible (state=present "
                "repairs it)"
            )
            self.result["fully_provisioned"] = False
        raise TenantError(message, kind=kind, result=self.result)

    def pd_call(self, what, func, *args):
        try:
            return func(*args)
        except PDUnreachable as exc:
            self.fail("%s: %s" % (what, exc), "pd_unreachable")
        except PDError as exc:
            self.fail("%s: %s" % (what, exc), "pd")

    def probe(self, user, password):
        self._need_sql()
        try:
            outcome = sql.probe_login(self.sql_params, self.name, user, password)
            self.refused_probes = self.refused_probes or outcome == "refused"
            return outcome
        except sql.ServerUnreachable as exc:
            self.fail("cannot reach pg-tikv to check %r: %s%s" % (sql.login_name(self.name, user), exc, self.sql_hint), "sql_unreachable")
        except sql.SQLClientError as exc:
            self.fail("login test as %r failed: %s" % (sql.login_name(self.name, user), exc), "sql")

    def admin_login(self, password):
        """Log in as admin with ``password`` and keep the session (it serves the
        tenant's users, so the proof costs no second login): 'ok', 'refused'
        or 'nologin', like probe()."""
        self._need_sql()
        try:
            self.admin_session = sql.connect(self.sql_params, self.name, self.admin, password)
        except sql.LoginRefused:
            self.refused_probes = True
            return "refused"
        except sql.LoginNotPermitted:
            return "nologin"
        except sql.ServerUnreachable as exc:
            self.fail("cannot reach pg-tikv to check %r: %s%s" % (sql.login_name(self.name, self.admin), exc, self.sql_hint), "sql_unreachable")
        except sql.SQLClientError as exc:
            self.fail("login as %r failed: %s" % (sql.login_name(self.name, self.admin), exc), "sql")
        return "ok"

    def hand_over_session(self):
        """The kept admin session to session_sink, or closed."""
        session, self.admin_session = self.admin_session, None
        if session is None:
            return
        if self.session_sink is not None:
            self.session_sink(session)
        else:
            session.close()

    def close_session(self):
        session, self.admin_session = self.admin_session, None
        if session is not None:
            session.close()

    def confirm_refusals(self):
        """A refused test login means "wrong password" only if PD was up: with
        PD down pg-tikv refuses every login the same way (reference
        pg-tikv-server.md §1.4, §1.4a). PD must answer after the SQL checks."""
        if not self.refused_probes:
            return
        problem = refusals_unproven(self.pd)
        if problem:
            if self.result.get("fully_provisioned") is not None:
                self.result["fully_provisioned"] = False
            self.fail("tenant %r: %s" % (self.name, problem), "pd_unreachable")

    def sql_port_error(self):
        """None if pg-tikv answers the protocol's startup (up to its password
        request, no login), else a message."""
        self._need_sql()
        try:
            return sql.probe_server(self.sql_params)
        except sql.SQLClientError as exc:
            return str(exc)

    def open_session(self, candidates, purpose):
        """Log in with the first working (user, password, label) candidate."""
        self._need_sql()
        try:
            session, user, refused = sql.login_first(self.sql_params, self.name, candidates)
        except sql.ServerUnreachable as exc:
            self.fail("cannot reach pg-tikv to %s: %s" % (purpose, exc), "sql_unreachable")
        except sql.SQLClientError as exc:
            self.fail("login to tenant %r to %s failed: %s" % (self.name, purpose, exc), "sql")
        if session is not None:
            return session, user
        tried = (
            ", ".join("%s (%s)" % (label, "NOLOGIN" if isinstance(exc, sql.LoginNotPermitted) else "refused") for label, exc in refused)
            if refused
            else "no credentials were given"
        )
        self.fail(
            "cannot log in to tenant %r to %s: tried %s. Give the current credentials with "
            "login_user/login_password (any user of the tenant that can still log in works: "
            "pg-tikv does not enforce privileges)" % (self.name, purpose, tried),
            "sql_auth",
        )

    def run_sql(self, session, what, func, *args, sends_password=False):
        """``sends_password``: the statement sets admin's password; a connection
        lost after it was sent leaves its outcome unknown (a lost reply)."""
        self._need_sql()
        try:
            return func(*args)
        except sql.ServerUnreachable as exc:
            if not sends_password:
                self.fail("%s in tenant %r failed: %s" % (what, self.name, exc), "sql")
            # The server may have committed before the reply was lost: neither
            # the old password nor the bootstrap one can be assumed any more.
            self.password_maybe_applied = True
            self.bootstrap_open = False
            self.wrote = True
            self.result["fully_provisioned"] = False
            self.fail(
                "%s in tenant %r: the connection was lost after the statement was sent (%s), so pg-tikv may "
                "or may not have applied it. The new password is kept: run the task again with it as "
                "admin_password and the old one as a login password (the collection's secret store does "
                "this by itself), and the change is finished either way" % (what, self.name, exc),
                "sql_lost_reply",
            )
        except sql.SQLClientError as exc:
            self.fail("%s in tenant %r failed: %s" % (what, self.name, exc), "sql")
        finally:
            self.queries[:] = self._session_queries + list(getattr(session, "queries", []))

    # -- entry ----------------------------------------------------------------

    def run(self, current):
        errors = validate_spec(self.spec)
        if errors:
            raise TenantError("; ".join(errors), kind="validation", result=self.result)
        self._session_queries = []
        self.desired_config, managed = normalize_config(self.spec.config)[:2]
        for key in managed:
            self.warn("config key %r is managed by PD; it is left alone and reported under keyspace.server_managed_config" % key)
        target = TARGET_STATES[self.spec.state]

        if current is MISSING:
            current = self.pd_call("reading keyspace %r from PD" % self.name, self.pd.get_keyspace, self.name)
        if current is not None and current.get("name") in PD_PROTECTED_KEYSPACES:
            self.fail("keyspace %r is PD's reserved keyspace; it is never managed" % current.get("name"), "validation")
        self.result["keyspace"] = keyspace_view(current)
        self.result["exists"] = current is not None

        if current is None:
            if target != "ENABLED":
                self.warn(
                    "tenant %r does not exist in PD; nothing to do for state=%s (decommission states "
                    "never create a keyspace: its name could never be reused)" % (self.name, self.spec.state)
                )
                side = _diff_side(None, ADMIN_STATUS_NONE)
                self.result["diff"] = {"before": side, "after": dict(side)}
                return self.result
            return self.create()
        return self.converge(current, target)

    # -- create ---------------------------------------------------------------

    def create(self):
        err = tenant_name_error(self.name)
        if err:
            self.fail(
                "not creating tenant %r: %s. Keyspaces that already exist under other names PD accepts can "
                "be managed, but this collection creates only names of that form. Nothing was changed" % (self.name, err),
                "validation",
            )
        version_text = self.pd_call("reading PD's version", self.pd.version)
        version = parse_version(version_text)
        self.result["pd_version"] = version_text
        err = pd_name_error(self.name, version)
        if err:
            self.fail("cannot create tenant: " + err, "validation")
        if version is None and len(self.name) > PD_PORTABLE_NAME_LENGTH:
            self.warn(
                "PD does not report its version; PD v26.3 and later refuse keyspace names longer than "
                "%d characters, so %r would not be portable" % (PD_PORTABLE_NAME_LENGTH, self.name)
            )
        config = {k: v for k, v in (self.desired_config or {}).items() if v is not None}
        password = self.spec.admin_password
        # A new keyspace's admin/admin must be rotated right away; do not create
        # it while pg-tikv cannot be reached or does not speak the protocol. No
        # login: one to a keyspace that does not exist is refused anyway and
        # stalls pg-tikv's other logins while it retries PD (pg-tikv-server.md §1.4).
        err = self.sql_port_error()
        if err:
            self.fail(
                "not creating tenant %r: %s, so its bootstrap admin/admin could not be rotated at once. Nothing was changed" % (self.name, err),
                "sql_unreachable",
            )
        self.result["changed"] = True
        self.result["state_path"] = ["ENABLED"]
        self.result["config_patch"] = dict(config)
        after = {"state": "ENABLED", "config": dict(config), "admin": ADMIN_STATUS_SET}
        self.result["diff"] = {"before": _diff_side(None, ADMIN_STATUS_NONE), "after": after}
        if self.check_mode:
            self.result["keyspace"] = {
                "id": None,
                "name": self.name,
                "state": "ENABLED",
                "created_at": None,
                "state_changed_at": None,
                "created": None,
                "state_changed": None,
                "config": dict(config),
                "server_managed_config": {},
            }
            self.result["admin_rotated"] = True
            self.result["fully_provisioned"] = True
            return self.result
        keyspace, created = self._create_keyspace(config)
        if not created:
            # Someone else created it between our read and our POST (or our own
            # POST's answer was lost): converge it as an existing tenant.
            self.result["changed"] = False
            self.result["state_path"] = []
            self.result["config_patch"] = {}
            return self.converge(keyspace, "ENABLED")
        self.result["keyspace"] = keyspace_view(keyspace)
        self.result["exists"] = True
        self.wrote_step("created keyspace %r (id %s, %s)" % (self.name, keyspace.get("id"), keyspace.get("state")))
        missing = {k: v for k, v in config.items() if (keyspace.get("config") or {}).get(k) != v}
        if missing:
            self.warn("PD did not store these config keys as sent: %s" % ", ".join(sorted(missing)))
        if password is None:
            password = self._generated()
        # Close the bootstrap window at once (reference/pg-tikv-server.md §0.6, §2.2).
        self.bootstrap_open = True
        self._rotate_admin(self._bootstrap_candidates(), password, "rotate the bootstrap admin password of the new tenant")
        self.result["fully_provisioned"] = True
        self.result["diff"]["after"] = _diff_side(keyspace, ADMIN_STATUS_SET)
        return self.result

    def _create_keyspace(self, config):
        """(keyspace, created_by_this_call)."""
        for _attempt in range(CREATE_ATTEMPTS):
            try:
                return self.pd.create_keyspace(self.name, config), True
            except PDUnreachable as exc:
                if not exc.maybe_applied:
                    self.fail("creating keyspace %r: %s" % (self.name, exc), "pd_unreachable")
                self.warn("the create request may have reached PD although no usable answer came back; re-reading")
            except PDError as exc:
                if exc.kind in CREATE_REFUSED_KINDS:
                    self.fail("creating keyspace %r: %s" % (self.name, exc), "pd")
                if exc.kind != "exists":
                    return self._after_failed_create(exc, config)
            # "already exists" or an unknown outcome: re-read (§1.3).
            keyspace = self.pd_call("re-reading keyspace %r after create" % self.name, self.pd.get_keyspace, self.name)
            if keyspace is not None:
                return keyspace, False
        self.fail(
            "PD kept answering 'already exists' for %r although no keyspace has that name: the ID "
            "allocator collides with IDs taken by an earlier create by ID; "
            "re-run the task" % self.name,
            "pd",
        )

    def _after_failed_create(self, exc, config):
        """PD answered the POST with an error that does not prove nothing was
        written: a 500 on create can still leave the keyspace (seen with a
        2 MB config). Re-read it: present with our config -> created by this
        run, finish it now (created-but-unverified); present with another
        config -> converge it as an existing tenant; absent -> fail, and
        nothing was created."""
        keyspace = self.pd_call(
            "creating keyspace %r failed (%s); re-reading it to see whether PD created it anyway" % (self.name, exc), self.pd.get_keyspace, self.name
        )
        if keyspace is None:
            self.fail("creating keyspace %r: %s. Re-reading shows no such keyspace, so nothing was created" % (self.name, exc), "pd")
        if keyspace.get("state") == "ENABLED" and split_config(keyspace.get("config"))[0] == dict(config or {}):
            self.warn(
                "PD answered the create of keyspace %r with an error (%s), but the keyspace exists with "
                "the requested config: it is reported as created (unverified: PD did not confirm it) and "
                "provisioned now" % (self.name, exc)
            )
            return keyspace, True
        self.warn(
            "PD answered the create of keyspace %r with an error (%s), and a keyspace with that name exists "
            "but is %s or has another config: it is managed as an existing tenant" % (self.name, exc, keyspace.get("state"))
        )
        return keyspace, False

    def _generated(self):
        password = generate_password()
        self.result["admin_password_generated"] = True
        self.result["generated_admin_password"] = password
        return password

    def _rotate_admin(self, candidates, password, purpose):
        session, login_user = self.open_session(candidates, purpose)
        keep = False
        try:
            session.add_secret(password)
            self.run_sql(session, "setting the admin password", session.set_password, self.admin, password, sends_password=True)
            keep = self.session_sink is not None
        finally:
            if not keep:
                session.close()
        self._session_queries = list(self.queries)
        self.result["admin_rotated"] = True
        self.bootstrap_open = False
        self.wrote_step("set the password of %r" % sql.login_name(self.name, self.admin))
        try:
            self._verify_admin(password)
        except BaseException:
            if keep:
                session.close()
            raise
        if keep:
            # A bulk caller reuses the still-open session for the tenant's users.
            self.session_sink(session)

    def _verify_admin(self, password):
        new = self.probe(self.admin, password)
        if new != "ok":
            self.fail("the admin password was changed but a login with it gives %r; the tenant's admin password is in an unknown state" % new, "verification")
        self.result["admin_login_proven"] = True
        old = self.probe(self.admin, BOOTSTRAP_ADMIN_PASSWORD)
        if old == "ok":
            self.bootstrap_open = True
            self.fail("the bootstrap password admin/admin still logs in after the rotation; the tenant is NOT protected", "verification")
        self.result["bootstrap_refused"] = True
        self.done("verified: the new admin password logs in and admin/admin is refused")

    # -- existing keyspace ----------------------------------------------------

    def converge(self, current, target):
        self.result["exists"] = True
        self.result["keyspace"] = keyspace_view(current)
        state = current.get("state")
        try:
            path = plan_transitions(state, target)
        except ValueError as exc:
            self.fail("tenant %r: %s. Nothing was changed" % (self.name, exc), "transition")
        if "TOMBSTONE" in path and self.spec.confirm_tombstone != self.name:
            self.fail(
                "state=tombstone is irreversible (the keyspace name can never be used again); set "
                "confirm_tombstone: %s to confirm. Nothing was changed" % self.name,
                "confirmation",
            )
        patch = config_patch(current.get("config"), self.desired_config)
        if patch and state not in CONFIG_WRITABLE_STATES:
            # PD's allowChangeConfig (reference/pd-keyspace-api.md §3).
            self.fail(
                "tenant %r is %s; PD changes config only while ENABLED or DISABLED. "
                "Wanted changes: %s. Nothing was changed" % (self.name, state, ", ".join(sorted(patch))),
                "config",
            )
        self.result["state_path"] = path
        self.result["config_patch"] = patch
        before_config = dict(current.get("config") or {})
        after_keyspace = dict(current, state=target, config=apply_patch(before_config, patch))

        if target == "ENABLED":
            sql_plan = self._plan_admin_present()
        else:
            sql_plan = self._plan_lock()
        changed = bool(path or patch or sql_plan["actions"])
        self.result["changed"] = changed
        self.result["diff"] = {"before": _diff_side(current, sql_plan["before"]), "after": _diff_side(after_keyspace, sql_plan["after"])}
        if target == "ENABLED":
            self.result["fully_provisioned"] = sql_plan["after"] != ADMIN_STATUS_BOOTSTRAP
            self.result["fully_provisioned_before"] = sql_plan["before"] != ADMIN_STATUS_BOOTSTRAP
        if self.check_mode or not changed:
            if self.check_mode and sql_plan.get("will_rotate"):
                self.result["admin_rotated"] = True
            if self.check_mode:
                self.result["locked_users"] = list(sql_plan.get("lock", []))
                if changed:
                    self.result["keyspace"] = keyspace_view(after_keyspace)
            return self.result

        if target == "ENABLED":
            keyspace = self._apply_pd(current, patch, path)
            self._apply_admin_present(sql_plan)
        else:
            self._apply_lock(sql_plan)
            keyspace = self._apply_pd(current, patch, path)
        self.result["keyspace"] = keyspace_view(keyspace)
        self.result["diff"]["after"] = _diff_side(keyspace, sql_plan["after"])
        return self.result

    def _apply_pd(self, current, patch, path):
        keyspace = current
        if patch:
            keyspace = self.pd_call("changing the config of keyspace %r" % self.name, self.pd.patch_config, self.name, patch)
            self.result["keyspace"] = keyspace_view(keyspace)
            self.wrote_step("patched config keys %s" % ", ".join(sorted(patch)))
            wrong = [k for k, v in patch.items() if (keyspace.get("config") or {}).get(k) != v]
            if wrong:
                self.warn("after the config patch PD reports different values for: %s" % ", ".join(sorted(wrong)))
        for state in path:
            if self.name in PD_PROTECTED_KEYSPACES:  # never PUT DEFAULT (§1.7)
                self.fail("refusing to change the state of PD's reserved keyspace", "validation")
            keyspace = self.pd_call("changing the state of keyspace %r to %s" % (self.name, state), self.pd.set_state, self.name, state)
            self.result["keyspace"] = keyspace_view(keyspace)
            self.wrote_step("state -> %s" % state)
            if keyspace.get("state") != state:
                self.fail("PD answered the state change to %s with state %s" % (state, keyspace.get("state")), "pd")
        return keyspace

    # -- admin for state=present ----------------------------------------------

    def _login_candidates(self, include_bootstrap):
        spec = self.spec
        candidates = []
        if spec.login_password:
            user = spec.login_user or self.admin
            candidates.append((user, spec.login_password, "login_user %r with login_password" % user))
        if spec.admin_password:
            candidates.append((self.admin, spec.admin_password, "admin with admin_password"))
        for index, password in enumerate(spec.previous_admin_passwords):
            candidates.append((self.admin, password, "admin with previous password #%d" % (index + 1)))
        if include_bootstrap:
            candidates.extend(self._bootstrap_candidates())
        return candidates

    def _bootstrap_candidates(self):
        return [(self.admin, BOOTSTRAP_ADMIN_PASSWORD, "the bootstrap admin/admin")]

    def _rotation(self, plan, candidates, unlock=False):
        """``plan`` completed for setting admin's password to admin_password (a
        generated one when none is given), logging in with ``candidates``;
        ``unlock``: admin has NOLOGIN and gets LOGIN back first."""
        plan["actions"] = ["unlock", "rotate"] if unlock else ["rotate"]
        plan["candidates"] = candidates
        plan["after"] = ADMIN_STATUS_SET
        plan["will_rotate"] = True
        plan["password"] = self.spec.admin_password
        return plan

    def _plan_admin_present(self):
        """Probe the admin login; decide what to do. Only reads."""
        spec = self.spec
        plan = {"actions": [], "before": ADMIN_STATUS_UNKNOWN, "after": ADMIN_STATUS_UNKNOWN}
        if spec.admin_password and spec.update_admin_password == "always":
            first = self.admin_login(spec.admin_password)
            if first == "ok":
                plan["before"] = plan["after"] = ADMIN_STATUS_SET
                self.result["admin_login_proven"] = True
                if self.prove_bootstrap_refused:
                    # Part of the proof of a usable tenant: admin/admin is refused
                    # (it would log in with a fallback password PG_PASSWORD "admin").
                    self.result["bootstrap_refused"] = self.probe(self.admin, BOOTSTRAP_ADMIN_PASSWORD) != "ok"
                return plan
            if first == "nologin":
                plan["before"] = ADMIN_STATUS_LOCKED
                if not spec.login_password:
                    self.fail(
                        "tenant %r: admin cannot log in (NOLOGIN, e.g. locked by state=disabled). To unlock "
                        "it with admin_password, give login_user/login_password of another user of the "
                        "tenant that can log in; or use update_admin_password=on_create to leave admin "
                        "locked. Nothing was changed" % self.name,
                        "sql_auth",
                    )
                return self._rotation(plan, self._login_candidates(False), unlock=True)
            boot = self.probe(self.admin, BOOTSTRAP_ADMIN_PASSWORD)
            if boot == "ok":
                plan["before"] = ADMIN_STATUS_BOOTSTRAP
                return self._rotation(plan, self._bootstrap_candidates())
            plan["before"] = ADMIN_STATUS_SET
            if not spec.login_password and not spec.previous_admin_passwords:
                self.fail(
                    "tenant %r: wrong admin password: admin_password is refused and admin no longer has "
                    "the bootstrap password. To change admin's password, give the current one as "
                    "login_password (or another user's credentials with login_user); to only check "
                    "that a password is set, use update_admin_password=on_create. Nothing was changed" % self.name,
                    "sql_auth",
                )
            return self._rotation(plan, self._login_candidates(False))
        # on_create, or no admin_password: only repair the bootstrap password.
        boot = self.probe(self.admin, BOOTSTRAP_ADMIN_PASSWORD)
        if boot == "ok":
            plan["before"] = ADMIN_STATUS_BOOTSTRAP
            return self._rotation(plan, self._bootstrap_candidates())
        if boot == "nologin":
            plan["before"] = plan["after"] = ADMIN_STATUS_LOCKED
            self.warn(
                "tenant %r: admin has NOLOGIN (locked, e.g. by state=disabled) and is left so; to unlock it "
                "give admin_password with update_admin_password=always and login_user/login_password" % self.name
            )
            return plan
        plan["before"] = plan["after"] = ADMIN_STATUS_SET
        return plan

    def _apply_admin_present(self, plan):
        if not plan["actions"]:
            return
        password = plan.get("password")
        if password is None:
            password = self._generated()
        candidates = plan["candidates"]
        if "unlock" in plan["actions"]:
            session, _user = self.open_session(candidates, "unlock admin")
            try:
                session.add_secret(password)
                self.run_sql(session, "setting a new admin password", session.set_password, self.admin, password, sends_password=True)
                self.wrote_step("set a new password for %r" % sql.login_name(self.name, self.admin))
                self.run_sql(session, "allowing admin to log in", session.set_login, self.admin, True)
            finally:
                session.close()
            self._session_queries = list(self.queries)
            self.result["admin_rotated"] = True
            self.wrote_step("unlocked %r (LOGIN)" % sql.login_name(self.name, self.admin))
            self._verify_admin(password)
            return
        purpose = "repair the bootstrap admin password" if plan["before"] == ADMIN_STATUS_BOOTSTRAP else "change the admin password"
        self.bootstrap_open = plan["before"] == ADMIN_STATUS_BOOTSTRAP
        self._rotate_admin(candidates, password, purpose)

    # -- decommission: lock logins ----------------------------------------------

    def _plan_lock(self):
        """Which of lock_users still can log in? Only reads."""
        plan = {"actions": [], "lock": [], "before": ADMIN_STATUS_UNKNOWN, "after": ADMIN_STATUS_UNKNOWN}
        users = []
        for user in self.spec.lock_users:
            if user not in users:
                users.append(user)
        if not users:
            return plan
        self.result["lock_users"] = users
        self.sql_hint = ". To change only the PD state without locking SQL logins, set lock_users: []"
        for user in users:
            # pg-tikv checks NOLOGIN before the password (§2.5): a random password
            # tells NOLOGIN ('nologin') from LOGIN-or-absent ('refused').
            outcome = self.probe(user, generate_password())
            if outcome == "ok":
                self.fail(
                    "pg-tikv accepted a random password for %r: its fallback password PG_PASSWORD is set "
                    "(its universal superuser password), so SQL access cannot be locked. Nothing was changed" % sql.login_name(self.name, user),
                    "sql",
                )
            if user == self.admin:
                if outcome == "nologin":
                    plan["before"] = ADMIN_STATUS_LOCKED
                else:
                    boot = self.probe(self.admin, BOOTSTRAP_ADMIN_PASSWORD)
                    plan["before"] = ADMIN_STATUS_BOOTSTRAP if boot == "ok" else ADMIN_STATUS_SET
                plan["after"] = ADMIN_STATUS_LOCKED
            if outcome != "nologin":
                plan["lock"].append(user)
        if not plan["lock"]:
            return plan
        # Log in now (also in check mode) to know which users exist and to fail
        # before any write when no credentials work.
        candidates = self._login_candidates(True)
        session, login_user = self.open_session(candidates, "lock SQL logins")
        existing = []
        try:
            for user in plan["lock"]:
                if user == self.admin or self.run_sql(session, "checking whether %r exists" % user, session.role_exists, user):
                    existing.append(user)
                else:
                    self.warn("user %r does not exist in tenant %r; nothing to lock" % (user, self.name))
        except BaseException:
            session.close()
            raise
        if self.check_mode or not existing:
            session.close()
            self._session_queries = list(self.queries)
        plan["lock"] = existing
        if existing:
            plan["actions"] = ["lock"]
            plan["session"] = None if self.check_mode else session
            plan["session_user"] = login_user
        return plan

    def _apply_lock(self, plan):
        if not plan["actions"]:
            return
        session = plan["session"]
        login_user = plan["session_user"]
        # Lock the session's own user last: pg-tikv keeps an open session alive.
        order = sorted(plan["lock"], key=lambda u: (u == login_user, u == self.admin))
        try:
            for user in order:
                if user == self.admin:
                    # Decommission that means it: pg-tikv ignores the keyspace state
                    # (reference/pg-tikv-server.md §1.5), so admin gets a random
                    # password nobody knows plus NOLOGIN.
                    random_password = generate_password()
                    session.add_secret(random_password)
                    self.run_sql(session, "rotating admin to a random password", session.set_password, self.admin, random_password)
                    self.wrote_step("set a random password nobody knows for %r" % sql.login_name(self.name, self.admin))
                self.run_sql(session, "setting NOLOGIN on %r" % user, session.set_login, user, False)
                self.result["locked_users"].append(user)
                self.wrote_step("locked %r (NOLOGIN)" % sql.login_name(self.name, user))
        finally:
            session.close()
            self._session_queries = list(self.queries)
        for user in order:
            outcome = self.probe(user, generate_password())
            if outcome != "nologin":
                self.fail("%r was set to NOLOGIN but a login test gives %r" % (sql.login_name(self.name, user), outcome), "verification")
        self.done("verified: %s cannot log in" % ", ".join(order))


def reconcile_tenant(pd, sql_params, spec, current=MISSING, check_mode=False, session_sink=None, confirm_pd=True, prove_bootstrap_refused=False):
    """Bring one tenant to ``spec``; return the result dict.

    ``current``: the keyspace dict if the caller already has it (None = it does
    not exist); omitted = read it from PD. ``session_sink``: optional callable; when admin
    logged in (its password proven, or rotated and verified), it receives the
    still-open admin session (whose owner then closes it) instead of the
    session being closed. ``prove_bootstrap_refused``: when admin_password
    logs in as it is, also prove admin/admin refused (result
    ``bootstrap_refused``), so that a verifying caller needs no second login.
    Raises TenantError; its ``result`` holds the partial result, including
    ``progress`` (steps that were completed). ``confirm_pd``: when a conclusion
    rests on a refused test login, ask PD once more at the end (a bulk caller
    passes False and asks once per run instead).
    """
    reconciler = _Reconciler(pd, sql_params, spec, check_mode, session_sink, prove_bootstrap_refused)
    try:
        result = reconciler.run(current)
        if confirm_pd:
            reconciler.confirm_refusals()
    except BaseException:
        reconciler.close_session()
        raise
    reconciler.hand_over_session()
    return result


# ---------------------------------------------------------------------------
# What the modules call (no AnsibleModule: they return the result or raise
# TaskError with the result so far)


def _pd_client(params):
    try:
        return pd_client_from_params(params)
    except PDError as exc:
        raise TaskError(str(exc), result={"changed": False}) from None


def manage_tenant(params, check_mode):
    """pg_tikv_tenant: validate, reconcile, add the connection and PD's calls."""
    spec = TenantSpec.from_params(params)
    errors = validate_spec(spec)
    if errors:
        raise TaskError("; ".join(errors), kind="validation", result={"changed": False})
    pd = _pd_client(params)
    sql_params = sql_params_from(params)
    error = None
    try:
        result = reconcile_tenant(pd, sql_params, spec, check_mode=check_mode)
    except TenantError as exc:
        error, result = exc, exc.result
    finally:
        pd.close()
    result["connection"] = connection_info(sql_params, spec.name, password=result.get("generated_admin_password"))
    result["pd_requests"] = list(pd.requests_log)
    if error is not None:
        raise error
    return result


def read_tenants(params):
    """pg_tikv_tenant_info: list or get tenants; never writes."""
    name = params.get("name")
    if name is not None:
        err = existing_tenant_name_error(name)
        if err:
            raise TaskError(err, kind="validation", result={"changed": False})
    if params.get("page_size") is not None and params["page_size"] < 1:
        raise TaskError("page_size must be at least 1", kind="validation", result={"changed": False})
    pd = _pd_client(params)
    sql_params = sql_params_from(params)
    try:
        if name is not None:
            keyspace = pd.get_keyspace(name)
            keyspaces = [keyspace] if keyspace else []
        else:
            keyspaces = list(pd.iter_keyspaces(page_size=params.get("page_size")))
    except PDError as exc:
        raise TaskError("reading keyspaces from PD: %s" % exc, kind="pd", result={"changed": False, "pd_requests": list(pd.requests_log)}) from None
    finally:
        pd.close()
    matched = filter_keyspaces(keyspaces, params.get("states"), params.get("name_pattern"), params.get("include_reserved"))
    tenants = []
    for keyspace in matched:
        item = keyspace_view(keyspace)
        item["connection"] = connection_info(sql_params, keyspace.get("name"))
        tenants.append(item)
    return {"changed": False, "tenants": tenants, "count": len(tenants), "scanned": len(keyspaces), "pd_requests": list(pd.requests_log)}
