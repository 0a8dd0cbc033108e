# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile one user inside one tenant over an open TenantSession.

PRIVATE: for use by this collection's modules only; may change at any time.

``reconcile_user(session, spec, check_mode)`` is shared by pg_tikv_user and the
bulk module: the caller opens ONE session per tenant and calls it per user.

How each attribute is read (reference/pg-tikv-server.md §0.1, §0.10):

============== ============================ ==========================================
attribute      server with a role catalog   pg-tikv (no catalog)
============== ============================ ==========================================
existence      pg_roles                     ALTER ROLE "x" RESET ALL probe
login          pg_roles.rolcanlogin         test login (NOLOGIN is checked before the
                                            password, §2.5, so any password tells)
password       pg_authid verifier (SCRAM,   test login with the desired password
               MD5); else a test login      (LOGIN users only)
superuser,     pg_roles                     unreadable
createdb,
createrole,
conn_limit
============== ============================ ==========================================

``changed`` is never false when a write statement ran. Where a requested
value cannot be read, the rule is:

* unreadable attributes (superuser, createdb, createrole, conn_limit on
  pg-tikv) of an existing user: with ``unverifiable_attributes=apply``
  (default) they are sent in the one ALTER ROLE and the result is
  ``changed: true`` with a warning, on every run; with ``on_create`` they are
  only set when the user is created and otherwise left alone (listed in
  ``unverifiable_attributes``, nothing sent, no change reported);
* an unverifiable password (a NOLOGIN user on pg-tikv, or a catalog server
  whose pg_authid is unreadable and whose test login fails for another
  reason) with ``update_password=always`` is set again and reported changed,
  with a warning suggesting ``update_password: on_create``.
"""

from __future__ import annotations

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as sql
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    BOOTSTRAP_ADMIN_USER,
    TaskError,
    existing_tenant_name_error,
    generate_password,
    password_error,
    sql_params_from,
    user_name_error,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import PDError, pd_client_from_params
from ansible_collections.pgtikv.cloud.plugins.module_utils._sql_client import SQLClientError

BOOL_ATTRIBUTES = ("login", "superuser", "createdb", "createrole")
UNREADABLE_WITHOUT_CATALOG = ("superuser", "createdb", "createrole", "conn_limit")

HIDDEN = "<hidden>"
HIDDEN_CHANGED = "<hidden, changed>"
HIDDEN_NEW = "<hidden, set>"
UNREADABLE = "<unreadable>"


class UserSpecError(SQLClientError):
    """The requested state is invalid or refused (before anything is sent)."""


class UserSpec:
    """Desired state of one user. ``None`` means "not managed"."""

    def __init__(
        self,
        name,
        state="present",
        password=None,
        update_password="always",
        login=None,
        superuser=None,
        createdb=None,
        createrole=None,
        conn_limit=None,
        unverifiable_attributes="apply",
        generate_password=True,
    ):
        self.name = name
        self.state = state
        self.password = password
        self.update_password = update_password
        self.login = login
        self.superuser = superuser
        self.createdb = createdb
        self.createrole = createrole
        self.conn_limit = conn_limit
        self.unverifiable_attributes = unverifiable_attributes
        self.generate_password = generate_password

    @classmethod
    def from_params(cls, params):
        keys = ("name", "state", "password", "update_password", "login", "superuser", "createdb", "createrole", "conn_limit", "unverifiable_attributes")
        return cls(**{k: params.get(k) for k in keys if params.get(k) is not None})

    def attrs(self):
        return {k: getattr(self, k) for k in BOOL_ATTRIBUTES if getattr(self, k) is not None}

    def validate(self):
        err = user_name_error(self.name)
        if err:
            raise UserSpecError(err)
        if self.state not in ("present", "absent"):
            raise UserSpecError("state must be present or absent")
        err = password_error(self.password)
        if err:
            raise UserSpecError(err)
        if self.update_password not in ("always", "on_create"):
            raise UserSpecError("update_password must be always or on_create")
        if self.unverifiable_attributes not in ("apply", "on_create"):
            raise UserSpecError("unverifiable_attributes must be apply or on_create")
        if self.conn_limit is not None and self.conn_limit < -1:
            raise UserSpecError("conn_limit must be -1 (no limit) or more")


def is_protected_admin(session, name):
    """pg-tikv re-creates a missing ``admin`` as admin/admin on the next login
    attempt (reference/pg-tikv-server.md §0.6, §2.2): dropping it would reopen
    the tenant with a well-known password. Protected wherever pg-tikv rules
    apply: any tenant, or a server without a role catalog."""
    return name == BOOTSTRAP_ADMIN_USER and (session.tenant is not None or not session.has_role_catalog)


ADMIN_DROP_MESSAGE = (
    "refusing to drop the tenant's %r user: pg-tikv re-creates it as admin/admin (superuser) on the next "
    "login attempt. To retire it, set login: false (NOLOGIN) after "
    "creating another superuser, or rotate its password." % BOOTSTRAP_ADMIN_USER
)


# pg-tikv parses CONNECTION LIMIT with sqlparser 0.40's number literal, so
# "-1" is a parse error (`Expected a value, found: -`), and it never enforces
# the limit (reference pg-tikv-server.md §2.6, §3.1, §3.2). "No limit" has no
# spelling there: refused before anything is sent.
NO_LIMIT_WITHOUT_CATALOG = (
    "conn_limit: -1 (no limit) cannot be sent to this server: it has no role catalog (pg-tikv), whose CONNECTION "
    "LIMIT accepts only a number 0 or more and which never enforces connection limits. Leave conn_limit unset "
    "for no limit. Nothing was changed"
)


def _state_dict(exists, attrs=None, password=None):
    if not exists:
        return {"state": "absent"}
    d = {"state": "present"}
    for k in BOOL_ATTRIBUTES + ("conn_limit",):
        if attrs is not None and k in attrs:
            d[k] = attrs[k]
    if password is not None:
        d["password"] = password
    return d


def reconcile_user(session, spec, check_mode=False, verify=True, exists=None):
    """Bring one user to ``spec``. Returns a result dict:

    changed, user, state, created, removed, password_changed (bool or None when
    unknown), generated_password (only when one was generated and set),
    queries (write statements, masked; in check mode: those that would run),
    diff {before, after} (password redacted), warnings, unverifiable_attributes,
    password_verified (bool/None: the new password was confirmed by reading it
    back or by a test login), password_proven (the password of the spec is
    known to be the user's now: it matched before, or was set and verified).

    ``exists``: False when the caller knows the user cannot exist (its tenant
    was created in this run), so it is not looked up; None: look it up.
    """
    spec.validate()
    name = spec.name
    res = dict(
        changed=False,
        user=name,
        state=spec.state,
        created=False,
        removed=False,
        password_changed=False,
        queries=[],
        warnings=[],
        unverifiable_attributes=[],
        password_verified=None,
        password_proven=False,
    )
    catalog = session.has_role_catalog
    if spec.state == "present" and spec.conn_limit == -1 and not catalog:
        raise UserSpecError(NO_LIMIT_WITHOUT_CATALOG)

    if spec.state == "absent":
        if is_protected_admin(session, name):
            raise UserSpecError(ADMIN_DROP_MESSAGE)
        exists = session.role_exists(name)
        before = _state_dict(exists)
        if exists:
            plan = session.plan_drop(name)
            res["queries"] = [step[1] for step in plan]
            if not check_mode:
                res["removed"] = session.drop_role(name)
                # A concurrent DROP between probe and statement: nothing was changed by us.
                res["changed"] = res["removed"]
            else:
                res["changed"] = res["removed"] = True
        res["diff"] = dict(before=before, after={"state": "absent"})
        return res

    outcome = None
    if exists is None and not catalog and spec.password is not None and spec.update_password == "always":
        # pg-tikv: one test login with the declared password answers existence,
        # LOGIN and the password at once (NOLOGIN is checked before the
        # password and only for a role that exists, §2.5): only a refusal still
        # needs the existence probe. (A fallback password PG_PASSWORD equal to
        # the declared one would let a missing user "log in"; login tests
        # assume it unset, as everywhere, §2.3.)
        outcome = session.probe_login(name, spec.password)
        if outcome in ("ok", "nologin"):
            exists = True
    if exists is None:
        exists = session.role_exists(name)
    if not exists:
        return _create(session, spec, check_mode, verify, res)
    return _update(session, spec, check_mode, verify, res, outcome)


def _create(session, spec, check_mode, verify, res):
    name = spec.name
    attrs = spec.attrs()
    attrs.setdefault("login", True)  # a user logs in; CREATE ROLE alone would be NOLOGIN (§2.6)
    password = spec.password
    generated = False
    if password is None and spec.generate_password:
        # An empty password on pg-tikv lets any client in (§2.6): always set one.
        password = generate_password()
        generated = True
    session.add_secret(password)
    plan = session.plan_create(name, attrs, password=password, conn_limit=spec.conn_limit)
    res["queries"] = [step[1] for step in plan]
    after_attrs = dict(attrs)
    if spec.conn_limit is not None:
        after_attrs["conn_limit"] = spec.conn_limit
    res["diff"] = dict(before=_state_dict(False), after=_state_dict(True, after_attrs, HIDDEN_NEW if password else None))
    res.update(changed=True, created=True, password_changed=password is not None)
    if check_mode:
        res["password_generated"] = generated
        return res
    writes_before = len(session.writes)
    try:
        session.run_plan(plan)
    except SQLClientError as e:
        if getattr(e, "kind", None) == "exists":
            raise SQLClientError("user %r was created by someone else while this task ran (%s); run again" % (name, e)) from None
        if len(session.writes) > writes_before:
            # The CREATE ROLE went through but a later statement of the same
            # create did not: never leave a half-created user behind.
            _undo_create(session, name, e)
        raise
    if generated:
        res["generated_password"] = password
        res["password_generated"] = True
    if verify and password is not None and attrs.get("login"):
        res["password_verified"] = _verify_password(session, name, password, res)
        res["password_proven"] = res["password_verified"] is True
    return res


def _undo_create(session, name, error):
    """Drop the user this task just created, then raise what happened."""
    try:
        session.drop_role(name)
    except SQLClientError as drop_error:
        raise SQLClientError(
            "user %r was created but completing it failed (%s), and dropping it again failed too (%s): it exists "
            "half-created; drop it, or run the task again with unverifiable_attributes: apply to complete it" % (name, error, drop_error)
        ) from None
    raise SQLClientError(
        "creating user %r failed after its CREATE ROLE (%s); the new user was dropped again, so nothing was left half-created" % (name, error)
    ) from None


def _update(session, spec, check_mode, verify, res, outcome=None):
    name = spec.name
    catalog = session.has_role_catalog
    warnings = res["warnings"]
    want = spec.attrs()
    change_attrs = {}
    change_conn_limit = None
    before_attrs = {}
    after_attrs = {}
    password_match = None  # True / False / None (unknown)
    check_password = spec.password is not None and spec.update_password == "always"

    if catalog:
        current = session.get_role(name)
        if current is None:  # dropped between the two reads
            raise SQLClientError("user %r disappeared while this task ran; run again" % name)
        before_attrs = dict(current)
        for k, v in want.items():
            if current[k] != v:
                change_attrs[k] = v
        if spec.conn_limit is not None and current["conn_limit"] != spec.conn_limit:
            change_conn_limit = spec.conn_limit
        if check_password:
            password_match = session.password_matches(name, spec.password, can_login=current["login"])
    else:
        # pg-tikv: LOGIN and the password come from one test login (§0.10, §2.5).
        can_login = None
        if check_password:
            if outcome is None:
                outcome = session.probe_login(name, spec.password)
            if outcome == "ok":
                can_login, password_match = True, True
            elif outcome == "refused":
                can_login, password_match = True, False
            else:
                can_login, password_match = False, None
        elif spec.login is not None:
            can_login = session.login_allowed(name)
        if can_login is not None:
            before_attrs["login"] = can_login
        if spec.login is not None:
            if can_login is None or can_login != spec.login:
                change_attrs["login"] = spec.login
        unreadable = [k for k in UNREADABLE_WITHOUT_CATALOG if (spec.conn_limit if k == "conn_limit" else want.get(k)) is not None]
        res["unverifiable_attributes"] = unreadable
        for k in unreadable:
            before_attrs[k] = UNREADABLE
        if unreadable:
            if spec.unverifiable_attributes == "apply":
                for k in unreadable:
                    if k == "conn_limit":
                        change_conn_limit = spec.conn_limit
                    else:
                        change_attrs[k] = want[k]
                warnings.append(
                    "%s of existing user %r cannot be read on this server (it has no role catalog); "
                    "they were %s and the task reports changed. Use "
                    "unverifiable_attributes: on_create to set them only when the user is created."
                    % (", ".join(unreadable), name, "sent" if not check_mode else "would be sent")
                )

    send_password = None
    if spec.password is not None and spec.update_password == "always":
        if password_match is False:
            send_password = spec.password
        elif password_match is None:
            send_password = spec.password
            warnings.append(
                "the password of existing user %r cannot be verified on this server (%s); it was %s and the "
                "task reports changed. Use update_password: on_create to leave existing passwords alone."
                % (
                    name,
                    "NOLOGIN users cannot be test-logged-in" if not catalog else "pg_authid is unreadable and a test login was not possible",
                    "set again" if not check_mode else "would be set again",
                )
            )

    for k in BOOL_ATTRIBUTES:
        if k in before_attrs or k in change_attrs:
            after_attrs[k] = change_attrs.get(k, before_attrs.get(k))
    if "conn_limit" in before_attrs or change_conn_limit is not None:
        after_attrs["conn_limit"] = change_conn_limit if change_conn_limit is not None else before_attrs.get("conn_limit")
    before_pw = HIDDEN if spec.password is not None else None
    after_pw = (HIDDEN_CHANGED if send_password is not None else HIDDEN) if spec.password is not None else None

    plan = session.plan_alter(name, change_attrs, password=send_password, conn_limit=change_conn_limit)
    res["queries"] = [step[1] for step in plan]
    res["diff"] = dict(before=_state_dict(True, before_attrs, before_pw), after=_state_dict(True, after_attrs, after_pw))
    res["password_changed"] = send_password is not None
    res["password_proven"] = password_match is True and send_password is None
    res["changed"] = bool(plan)
    if not plan or check_mode:
        return res
    session.run_plan(plan)
    final_login = change_attrs.get("login", before_attrs.get("login"))
    if verify and send_password is not None and final_login is not False:
        res["password_verified"] = _verify_password(session, name, send_password, res)
        res["password_proven"] = res["password_verified"] is True
    return res


def _verify_password(session, name, password, res):
    """Confirm the password took effect (the plain-literal hazard, §0.3, would
    otherwise go unnoticed). Returns True, or None when it cannot be checked."""
    try:
        ok = session.password_matches(name, password)
    except SQLClientError as e:
        res["warnings"].append("could not verify the new password of %r: %s" % (name, e))
        return None
    if ok is False:
        raise SQLClientError(
            "the server accepted the statement but user %r cannot log in with the new password; the password "
            "may have been stored differently (pg-tikv takes only plain '...' password literals)" % name
        )
    return ok


# --------------------------------------------------------------------------
# Login plumbing shared by pg_tikv_user and pg_tikv_user_info
# --------------------------------------------------------------------------


def login_argument_spec():
    """login_user / login_password: who the module logs in as, inside the tenant."""
    return dict(
        login_user=dict(type="str", default=BOOTSTRAP_ADMIN_USER),
        login_password=dict(type="raw", no_log=True, required=True),
    )


def check_tenant_in_pd(params, tenant, warnings):
    """GET the tenant's keyspace from PD; raise UserSpecError when it is missing.

    A login to a tenant missing in PD fails with the same 28P01 as a wrong
    password (reference pg-tikv-server.md §1.4), so PD is asked first.
    """
    try:
        client = pd_client_from_params(params, record_requests=False)
    except PDError as e:
        raise UserSpecError("PD client options are invalid: %s" % e) from None
    try:
        keyspace = client.get_keyspace(tenant)
    except PDError as e:
        raise UserSpecError("cannot check in PD whether tenant %r exists: %s" % (tenant, e)) from None
    finally:
        client.close()
    if keyspace is None:
        raise UserSpecError("tenant %r does not exist in PD (no keyspace of that name); create it first, e.g. with pgtikv.cloud.pg_tikv_tenant" % tenant)
    state = keyspace.get("state")
    if state and state != "ENABLED":
        warnings.append("tenant %r is %s in PD; pg-tikv ignores the keyspace state and still accepts logins to it" % (tenant, state))
    return keyspace


def open_session(params, warnings):
    """Validate the tenant, check it in PD (when given), log in. Returns a TenantSession.

    Every failure is a SQLClientError (or subclass) whose message says what to fix.
    """
    tenant = params.get("tenant") or None
    login_user = params.get("login_user") or BOOTSTRAP_ADMIN_USER
    if tenant is not None:
        err = existing_tenant_name_error(tenant)
        if err:
            raise UserSpecError(err)
        check_tenant_in_pd(params, tenant, warnings)
    err = user_name_error(login_user)
    if err:
        raise UserSpecError("login_user: %s" % err)
    return sql.login_as(sql_params_from(params), tenant, login_user, params.get("login_password"))


# --------------------------------------------------------------------------
# What the modules call (no AnsibleModule: they return the result or raise
# TaskError with the result so far)


def manage_user(params, check_mode, warnings):
    """pg_tikv_user: log in to the tenant, reconcile one user."""
    base = dict(
        changed=False,
        user=params["name"],
        tenant=params["tenant"],
        state=params["state"],
        created=False,
        removed=False,
        password_changed=False,
        password_verified=None,
        queries=[],
        unverifiable_attributes=[],
        server={},
    )
    session = None
    try:
        spec = UserSpec.from_params(params)
        spec.validate()
        session = open_session(params, warnings)
        base["server"] = session.capabilities.as_dict()
        base.update(reconcile_user(session, spec, check_mode=check_mode))
    except SQLClientError as e:
        # str(e) never carries a secret; no traceback (it could hold a server message).
        if session is not None and session.writes:
            # Something was written before the failure: never report changed: false.
            base.update(changed=True, queries=list(session.writes))
        raise TaskError(str(e), kind="sql", result=base) from None
    finally:
        if session is not None:
            session.close()
    return base


NO_CATALOG_LIMITATIONS = (
    "This server has no role catalog (pg-tikv), so users cannot be listed. Only the names asked were probed: "
    "existence with ALTER ROLE ... RESET ALL, LOGIN and the password with test logins (meaningful only while "
    "the server's PG_PASSWORD fallback is unset). SUPERUSER, CREATEDB, CREATEROLE and CONNECTION LIMIT "
    "cannot be read."
)


def requested_users(params):
    """Ordered {name: password or None} from names and users."""
    wanted = {}
    for name in params["names"] or []:
        wanted.setdefault(name, None)
    for entry in params["users"] or []:
        if entry.get("password") is not None or entry["name"] not in wanted:
            wanted[entry["name"]] = entry.get("password")
    for name in wanted:
        err = user_name_error(name)
        if err:
            raise UserSpecError(err)
    return wanted


def unknown_attributes(name, exists, unreadable):
    """A user's entry before anything about its attributes is known."""
    return dict(
        name=name,
        exists=exists,
        login=None,
        superuser=None,
        createdb=None,
        createrole=None,
        conn_limit=None,
        password_valid=None,
        unreadable=unreadable,
    )


def report_with_catalog(session, wanted):
    if wanted:
        users = []
        for name, password in wanted.items():
            role = session.get_role(name)
            entry = unknown_attributes(name, role is not None, unreadable=[])
            if role is not None:
                entry.update(role)
                if password is not None:
                    entry["password_valid"] = session.password_matches(name, password, can_login=role["login"])
            users.append(entry)
        return users
    users = []
    for role in session.list_roles():
        role.pop("valid_until_set", None)
        role.update(exists=True, password_valid=None, unreadable=[])
        users.append(role)
    return users


def report_without_catalog(session, wanted):
    users = []
    for name, password in wanted.items():
        entry = unknown_attributes(name, session.role_exists(name), unreadable=list(UNREADABLE_WITHOUT_CATALOG))
        if entry["exists"]:
            if password is not None:
                outcome = session.probe_login(name, password)
                entry["login"] = outcome != "nologin"
                entry["password_valid"] = {"ok": True, "refused": False}.get(outcome)
            else:
                entry["login"] = session.login_allowed(name)
        users.append(entry)
    return users


def read_users(params, warnings):
    """pg_tikv_user_info: log in to the tenant, report the users asked (or all,
    where the server has a role catalog); never writes."""
    session = None
    try:
        wanted = requested_users(params)
        session = open_session(params, warnings)
        if session.has_role_catalog:
            users = report_with_catalog(session, wanted)
            limitations = ""
            if not session.capabilities.authid_readable and any(p is not None for p in wanted.values()):
                limitations = "pg_authid is not readable by the login user: passwords were checked with test logins where possible."
        else:
            users = report_without_catalog(session, wanted)
            limitations = NO_CATALOG_LIMITATIONS
            if not wanted:
                warnings.append("no names given: this server cannot list users; pass names or users")
        return dict(changed=False, listable=session.has_role_catalog, limitations=limitations, users=users, server=session.capabilities.as_dict())
    except SQLClientError as e:
        raise TaskError(str(e), kind="sql", result={}) from None
    finally:
        if session is not None:
            session.close()
