# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile a declared list of tenants (with their users) in one call.

PRIVATE: for use by this collection's modules only; may change at any time.

This file only composes: the per-tenant logic is ``_tenant.reconcile_tenant``,
the per-user logic ``_user.reconcile_user``, PD access ``_pd_client.PDClient``
and SQL access ``_sql_client``. What it adds:

- one paginated list of PD's keyspaces instead of one GET per tenant
  (reference/pd-keyspace-api.md §1.4), whose entries are handed to
  ``reconcile_tenant`` as the already-fetched current state;
- a bounded thread pool (psycopg2 and requests release the GIL while they
  wait on the network);
- one SQL session per tenant for all of its users;
- per-tenant results that never hide each other (a failure is recorded, the
  other tenants go on), a summary, and the generated passwords collected in
  one place so that the caller can hide them;
- ``overridden``: disabling tenants that are not listed, only when asked
  explicitly and only for names the caller says it manages;
- ``gathered`` and ``verify``: read back, and prove every present tenant
  usable with fresh test logins (admin logs in, the bootstrap password is
  refused, every present user logs in).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as sql
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import (
    BOOTSTRAP_ADMIN_PASSWORD,
    BOOTSTRAP_ADMIN_USER,
    PD_PROTECTED_KEYSPACES,
    sql_params_from,
    tenant_name_error,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._keyspace import TARGET_STATES, keyspace_view
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import (
    KEYSPACE_API,
    MAX_PAGE_SIZE,
    PDError,
    pd_client_from_params,
    refusals_unproven,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._tenant import (
    TenantError,
    TenantSpec,
    reconcile_tenant,
    validate_spec,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._user import (
    UserSpec,
    reconcile_user,
)

STATUS_CREATED = "created"
STATUS_CHANGED = "changed"
STATUS_UNCHANGED = "unchanged"
STATUS_FAILED = "failed"

# Keys of a tenant entry of the module's ``config`` that go to TenantSpec.
_TENANT_SPEC_KEYS = (
    "name",
    "state",
    "config",
    "admin_password",
    "update_admin_password",
    "login_user",
    "login_password",
    "confirm_tombstone",
    "previous_admin_passwords",
)

# What a fleet run keeps from reconcile_tenant's result for each tenant.
_TENANT_RESULT_KEYS = (
    "exists",
    "state_path",
    "config_patch",
    "admin_rotated",
    "admin_password_generated",
    "admin_login_proven",
    "bootstrap_refused",
    "fully_provisioned",
    "locked_users",
    "progress",
    "queries",
    "pd_version",
)
_USER_RESULT_KEYS = (
    "created",
    "removed",
    "password_changed",
    "password_verified",
    "password_generated",
    "password_proven",
    "unverifiable_attributes",
    "queries",
)


# ---------------------------------------------------------------------------
# Validation of the whole list (no network)


def user_spec(entry, default_unverifiable):
    params = dict(entry)
    params.setdefault("unverifiable_attributes", default_unverifiable)
    return UserSpec.from_params(params)


def tenant_spec(item):
    """TenantSpec for one entry. Decommission states lock admin and every listed
    present user (pg-tikv ignores the keyspace state, reference/pg-tikv-server.md §1.5)."""
    params = {k: item.get(k) for k in _TENANT_SPEC_KEYS}
    spec = TenantSpec.from_params(params)
    if spec.state != "present":
        spec.lock_users = [BOOTSTRAP_ADMIN_USER] + [
            u["name"] for u in item.get("users") or [] if (u.get("state") or "present") == "present" and u.get("name") != BOOTSTRAP_ADMIN_USER
        ]
    return spec


def validate_fleet(items, default_unverifiable="on_create"):
    """{tenant name: [errors]} for the listed entries, plus list-level errors under None."""
    errors = {}
    seen = set()
    for index, item in enumerate(items):
        name = item.get("name")
        problems = []
        if name in seen:
            errors.setdefault(None, []).append("tenant %r is listed more than once" % name)
        seen.add(name)
        problems.extend(validate_spec(tenant_spec(item)))
        user_names = set()
        for entry in item.get("users") or []:
            uname = entry.get("name")
            if uname in user_names:
                problems.append("user %r is listed more than once" % uname)
            user_names.add(uname)
            try:
                user_spec(entry, default_unverifiable).validate()
            except sql.SQLClientError as exc:
                problems.append("user %r: %s" % (uname, exc))
            if uname == BOOTSTRAP_ADMIN_USER:
                problems.append("user %r: the tenant's admin is managed by the tenant entry (admin_password), not as a user" % uname)
        if problems:
            errors[name if name is not None else "#%d" % index] = problems
    return errors


# ---------------------------------------------------------------------------
# One tenant


class _TenantRun:
    """Reconciles one tenant entry: PD and admin via reconcile_tenant, then its
    users over ONE session, then (optionally) the verification logins."""

    def __init__(self, pd, sql_params, item, current, check_mode, verify, default_unverifiable):
        self.pd = pd
        self.sql_params = sql_params
        self.item = item
        self.name = item["name"]
        self.current = current
        self.check_mode = check_mode
        self.verify = verify
        self.default_unverifiable = default_unverifiable
        self.generated = {}
        self.warnings = []
        self.out = {"name": self.name, "state": item.get("state") or "present", "status": STATUS_UNCHANGED, "changed": False, "failed": False, "users": []}

    def run(self):
        started = time.monotonic()
        try:
            self._run()
        finally:
            self.out["seconds"] = round(time.monotonic() - started, 3)
            self.out["warnings"] = self.warnings
        return self.out

    def _fail(self, message):
        self.out["failed"] = True
        self.out["status"] = STATUS_FAILED
        self.out["msg"] = message

    def _take_tenant_result(self, res):
        generated = res.pop("generated_admin_password", None)
        if generated:
            self.generated.setdefault("admin", generated)
        self.warnings.extend(res.get("warnings") or [])
        for key in _TENANT_RESULT_KEYS:
            if key in res:
                self.out[key] = res[key]
        self.out["keyspace"] = res.get("keyspace")
        self.out["diff"] = res.get("diff")
        if res.get("changed"):
            self.out["changed"] = True

    def _keep(self, session):
        """session_sink of reconcile_tenant: the session that rotated admin,
        reused for the users (one SQL session per tenant)."""
        self.session = session

    def _run(self):
        self.session = None
        try:
            self._reconcile()
        finally:
            if self.session is not None:
                self.session.close()

    def _reconcile(self):
        spec = tenant_spec(self.item)
        try:
            res = reconcile_tenant(
                self.pd,
                self.sql_params,
                spec,
                current=self.current,
                check_mode=self.check_mode,
                session_sink=self._keep,
                confirm_pd=False,  # once per run: see _unproven
                prove_bootstrap_refused=self.verify and not self.check_mode,
            )
        except TenantError as exc:
            self._take_tenant_result(exc.result)
            self._fail(exc.message)
            self._skip_users("the tenant failed first")
            return
        self._take_tenant_result(res)
        created = self.current is None and spec.state == "present" and bool(res.get("changed"))
        if spec.state == "present":
            self._users(spec, res, created)
        else:
            locked = set(res.get("locked_users") or [])
            for entry in self.item.get("users") or []:
                self.out["users"].append(
                    {"name": entry["name"], "status": "locked" if entry["name"] in locked else STATUS_UNCHANGED, "changed": entry["name"] in locked}
                )
        if any(u.get("failed") for u in self.out["users"]):
            failed = [u["name"] for u in self.out["users"] if u.get("failed")]
            self._fail(
                "user%s %s of tenant %r failed: %s"
                % (
                    "s" if len(failed) > 1 else "",
                    ", ".join(repr(n) for n in failed),
                    self.name,
                    "; ".join("%s: %s" % (u["name"], u["msg"]) for u in self.out["users"] if u.get("failed")),
                )
            )
        elif created:
            self.out["status"] = STATUS_CREATED
        elif self.out["changed"]:
            self.out["status"] = STATUS_CHANGED
        if self.verify and not self.check_mode and not self.out["failed"]:
            if spec.state == "present":
                self.out["verification"] = verify_tenant(
                    self.sql_params,
                    self.name,
                    self.out.get("keyspace"),
                    self.admin_password(),
                    self.user_passwords(),
                    self.item,
                    proven=self._proven_by_reconcile(),
                )
            else:
                self.out["verification"] = verify_locked(
                    self.sql_params, self.name, self.out.get("keyspace"), self.admin_password(), self.user_passwords(), self.item
                )
        if spec.state == "present" and not self.check_mode:
            self.out["proven"] = self._proven()

    def _proven_by_reconcile(self):
        """What the reconcile's own logins proved after its last write to each
        credential (they count as verification: only the rest is tested again)."""
        users = {u["name"] for u in self.out["users"] if u.get("password_proven")}
        return {"admin": bool(self.out.get("admin_login_proven")), "bootstrap_refused": self.out.get("bootstrap_refused") is True, "users": users}

    def _proven(self):
        """Which declared passwords were proven by a login in this run: admin
        (admin_password) and the users (their password). A secret store
        promotes a pending password only when it is listed here."""
        checks = {c["check"]: c["ok"] for c in (self.out.get("verification") or {}).get("checks") or []}
        admin = bool(self.out.get("admin_login_proven")) or checks.get("admin logs in") is True
        users = sorted(u["name"] for u in self.out["users"] if u.get("password_proven") or checks.get("user %s logs in" % u["name"]) is True)
        return {"admin": admin and bool(self.item.get("admin_password")), "users": users}

    def _skip_users(self, why):
        for entry in self.item.get("users") or []:
            self.out["users"].append({"name": entry["name"], "status": "skipped", "changed": False, "msg": why})

    def admin_password(self):
        return self.item.get("admin_password") or self.generated.get("admin")

    def user_passwords(self):
        known = {}
        for entry in self.item.get("users") or []:
            if entry.get("password"):
                known[entry["name"]] = entry["password"]
        known.update(self.generated.get("users") or {})
        return known

    def _users(self, spec, tenant_result, created):
        entries = self.item.get("users") or []
        if not entries:
            return
        if self.check_mode and not tenant_result.get("exists"):
            # The tenant would be created: every present user would be created too.
            for entry in entries:
                uspec = user_spec(entry, self.default_unverifiable)
                if uspec.state == "present":
                    self.out["users"].append(
                        {
                            "name": uspec.name,
                            "status": STATUS_CREATED,
                            "changed": True,
                            "created": True,
                            "password_changed": True,
                            "password_generated": uspec.password is None,
                            "diff": {"before": {"state": "absent"}, "after": {"state": "present"}},
                        }
                    )
                    self.out["changed"] = True
                else:
                    self.out["users"].append({"name": uspec.name, "status": STATUS_UNCHANGED, "changed": False})
            return
        if self.session is None:
            try:
                self.session = self._open_session(spec)
            except sql.SQLClientError as exc:
                self._skip_users("no SQL session: %s" % exc)
                self._fail("cannot manage the users of tenant %r: %s" % (self.name, exc))
                return
        for entry in entries:
            # In a keyspace created by this run no user can exist yet: not looked up.
            self.out["users"].append(self._user(self.session, entry, exists=False if created else None))

    def _open_session(self, spec):
        """ONE session per tenant, logged in as admin with the password that is
        now current (declared or generated in this run). In check mode the
        bootstrap password is tried too: the admin may not be rotated yet."""
        users = []
        if self.admin_password():
            users.append((BOOTSTRAP_ADMIN_USER, self.admin_password()))
        if spec.login_password:
            users.append((spec.login_user or BOOTSTRAP_ADMIN_USER, spec.login_password))
        users.extend((BOOTSTRAP_ADMIN_USER, password) for password in spec.previous_admin_passwords)
        if self.check_mode:
            users.append((BOOTSTRAP_ADMIN_USER, BOOTSTRAP_ADMIN_PASSWORD))
        if not users:
            raise sql.SQLClientError(
                "the admin password is not known: give admin_password (or login_user/login_password) to manage the users of an existing tenant"
            )
        candidates = [(user, password, sql.login_name(self.name, user)) for user, password in users]
        session, _user, refused = sql.login_first(self.sql_params, self.name, candidates)
        if session is None:
            raise sql.SQLClientError(
                "no declared credential logs in to tenant %r (%s)" % (self.name, ", ".join("%s: %s" % (label, type(exc).__name__) for label, exc in refused))
            )
        return session

    def _user(self, session, entry, exists=None):
        uspec = user_spec(entry, self.default_unverifiable)
        out = {"name": uspec.name, "status": STATUS_UNCHANGED, "changed": False}
        try:
            res = reconcile_user(session, uspec, check_mode=self.check_mode, exists=exists if uspec.state == "present" else None)
        except sql.SQLClientError as exc:
            out.update(status=STATUS_FAILED, failed=True, msg=str(exc))
            return out
        generated = res.pop("generated_password", None)
        if generated:
            self.generated.setdefault("users", {})[uspec.name] = generated
        self.warnings.extend("user %r: %s" % (uspec.name, w) for w in res.get("warnings") or [])
        for key in _USER_RESULT_KEYS:
            if key in res:
                out[key] = res[key]
        out["diff"] = res.get("diff")
        if res.get("changed"):
            self.out["changed"] = True
            out["changed"] = True
            out["status"] = "removed" if res.get("removed") else STATUS_CREATED if res.get("created") else STATUS_CHANGED
        return out


# ---------------------------------------------------------------------------
# Verification: fresh test logins, never the sessions used to reconcile


def verify_tenant(sql_params, name, keyspace, admin_password, user_passwords, item, proven=None):
    """Prove a present tenant usable. Returns {complete, problems, checks}.

    - the keyspace is ENABLED in PD;
    - admin logs in with the current admin password;
    - the bootstrap admin/admin is refused;
    - every present user that may log in does so with its password.
    A password that is neither declared nor generated in this run cannot be
    proven: that is reported as a problem, not assumed. ``proven``: what the
    reconcile's own logins already proved after its last write ({admin,
    bootstrap_refused, users}); only the rest gets a test login.
    """
    checks = []
    problems = []

    def check(what, ok, problem):
        checks.append({"check": what, "ok": bool(ok)})
        if not ok:
            problems.append(problem)

    def probe(user, password):
        return sql.login_outcome(sql_params, name, user, password)

    proven = proven or {}
    proven_users = proven.get("users") or ()
    state = (keyspace or {}).get("state")
    check("keyspace ENABLED", state == "ENABLED", "keyspace is %s in PD, not ENABLED" % (state or "missing"))
    if admin_password:
        outcome = "ok" if proven.get("admin") else probe(BOOTSTRAP_ADMIN_USER, admin_password)
        check("admin logs in", outcome == "ok", "admin cannot log in with its password (%s)" % outcome)
    else:
        check("admin logs in", False, "admin password unknown (not declared, not generated in this run): cannot prove the admin login")
    outcome = "refused" if proven.get("bootstrap_refused") else probe(BOOTSTRAP_ADMIN_USER, BOOTSTRAP_ADMIN_PASSWORD)
    check("bootstrap admin/admin refused", outcome != "ok", "the bootstrap password admin/admin still logs in: anyone can take the tenant")
    for entry in item.get("users") or []:
        uname = entry["name"]
        if (entry.get("state") or "present") != "present":
            continue
        if entry.get("login") is False:
            outcome = probe(uname, user_passwords.get(uname) or BOOTSTRAP_ADMIN_PASSWORD)
            check("user %s is NOLOGIN" % uname, outcome == "nologin", "user %r should be NOLOGIN but a test login gives %s" % (uname, outcome))
            continue
        password = user_passwords.get(uname)
        if not password:
            check("user %s logs in" % uname, False, "user %r: password unknown (not declared, not generated in this run): cannot prove the login" % uname)
            continue
        outcome = "ok" if uname in proven_users else probe(uname, password)
        check("user %s logs in" % uname, outcome == "ok", "user %r cannot log in with its password (%s)" % (uname, outcome))
    return {"complete": not problems, "problems": problems, "checks": checks}


def verify_locked(sql_params, name, keyspace, admin_password, user_passwords, item):
    """Prove a decommissioned tenant closed: the keyspace has left ENABLED, and
    neither admin nor any listed user can log in, with its last known password
    or at all (NOLOGIN: pg-tikv checks it before the password)."""
    checks = []
    problems = []
    state = (keyspace or {}).get("state")
    target = TARGET_STATES.get(item.get("state") or "present")
    ok = keyspace is None or state == target
    checks.append({"check": "keyspace %s" % target, "ok": ok})
    if not ok:
        problems.append("keyspace is %s in PD, not %s" % (state, target))
    if keyspace is None:
        return {"complete": not problems, "problems": problems, "checks": checks}
    accounts = [(BOOTSTRAP_ADMIN_USER, admin_password)] + [
        (u["name"], user_passwords.get(u["name"])) for u in item.get("users") or [] if (u.get("state") or "present") == "present"
    ]
    for user, password in accounts:
        for label, candidate in (("its password", password), ("the bootstrap password", BOOTSTRAP_ADMIN_PASSWORD)):
            if not candidate:
                continue
            outcome = sql.login_outcome(sql_params, name, user, candidate)
            ok = outcome in ("nologin", "refused")
            checks.append({"check": "%s cannot log in with %s" % (user, label), "ok": ok})
            if not ok:
                problems.append("%s still logs in with %s (%s)" % (user, label, outcome))
    return {"complete": not problems, "problems": problems, "checks": checks}


# ---------------------------------------------------------------------------
# The fleet


def override_guard_error(params):
    """Why state=overridden may not run with these options (None if it may)."""
    if not params.get("allow_disable_unlisted"):
        return "state=overridden disables every managed tenant that is not listed; set allow_disable_unlisted: true to confirm"
    pattern = params.get("managed_pattern")
    if not pattern:
        return (
            "state=overridden needs managed_pattern (a regular expression matched against the whole tenant "
            "name) so that it never disables tenants this task does not own; use '.*' to own them all"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        return "managed_pattern is not a valid regular expression: %s" % exc
    return None


def _unlisted_candidates(keyspaces, listed, pattern):
    """Keyspaces that overridden may disable: ENABLED, not listed, a valid
    tenant name (never DEFAULT, 'default' or names this collection cannot
    have created) and matching ``pattern`` in full."""
    regex = re.compile(pattern)
    out = []
    for ks in keyspaces:
        name = ks.get("name")
        if name in listed or name in PD_PROTECTED_KEYSPACES or tenant_name_error(name):
            continue
        if not regex.fullmatch(name):
            continue
        if ks.get("state") == "ENABLED":
            out.append(ks)
    return out


def _summary(tenants):
    counts = {STATUS_CREATED: 0, STATUS_CHANGED: 0, STATUS_UNCHANGED: 0, STATUS_FAILED: 0}
    for t in tenants:
        counts[t["status"]] = counts.get(t["status"], 0) + 1
    counts["total"] = len(tenants)
    users = [u for t in tenants for u in t.get("users") or []]
    counts["users_created"] = sum(1 for u in users if u.get("status") == STATUS_CREATED)
    counts["users_changed"] = sum(1 for u in users if u.get("status") in (STATUS_CHANGED, "removed", "locked"))
    counts["users_failed"] = sum(1 for u in users if u.get("status") == STATUS_FAILED)
    counts["not_attempted"] = sum(1 for t in tenants if t.get("not_attempted"))
    verified = [t for t in tenants if "verification" in t]
    counts["verified"] = sum(1 for t in verified if t["verification"]["complete"])
    counts["incomplete"] = sum(1 for t in verified if not t["verification"]["complete"])
    return counts


def _pd_call_counts(pd):
    """How many requests of each kind went to PD (``GET list``, ``POST create``...)."""
    counts = {}
    for entry in getattr(pd, "requests_log", None) or []:
        path = entry["path"]
        if path == KEYSPACE_API:
            kind = "list" if entry["method"] == "GET" else "create"
        elif path.endswith(("/state", "/config")):
            kind = path.rsplit("/", 1)[-1]
        elif path.startswith(KEYSPACE_API):
            kind = "keyspace"
        elif path.endswith("/version"):
            kind = "version"
        else:
            kind = "other"
        key = "%s %s" % (entry["method"], kind)
        counts[key] = counts.get(key, 0) + 1
    return counts


def run_fleet(params, items, state, check_mode, pd=None, shape=None):
    """The module's work. ``params``: the module params (connection, workers,
    guards). Returns a dict ready for exit_json (minus the diff decision).
    ``shape``: applied to each tenant's result as soon as it is done (the
    module passes compact_tenant unless details or a diff are asked for), so
    that a run of 10,000 tenants does not hold every full result at once."""
    max_workers = params.get("max_workers") or 8
    verify = bool(params.get("verify"))
    default_unverifiable = params.get("unverifiable_attributes") or "on_create"
    sql_params = sql_params_from(params)
    own_pd = pd is None
    if own_pd:
        # One client for all workers: its urllib3 pool is thread-safe; size it to the pool.
        pd = pd_client_from_params(params, pool_maxsize=max(10, max_workers))
    started = time.monotonic()
    try:
        try:
            # The largest page PD serves unless asked otherwise; the client
            # clamps and halves a page PD's etcd refuses (see MAX_PAGE_SIZE).
            keyspaces = pd.list_keyspaces(page_size=params.get("list_page_size") or MAX_PAGE_SIZE)
        except PDError as exc:
            msg = "cannot list PD's keyspaces: %s" % exc
            return {"failed": True, "msg": msg, "tenants": [], "summary": _summary([]), "generated_passwords": {}, "problems": [msg], "report": [msg]}
        by_name = {ks.get("name"): ks for ks in keyspaces}
        if state == "gathered":
            return _gather(pd, sql_params, params, items, keyspaces, by_name, verify, max_workers, started)
        if state != "overridden":
            # Only the listed keyspaces are needed: PD may hold many more.
            listed = {i.get("name") for i in items}
            by_name = {name: ks for name, ks in by_name.items() if name in listed}
            keyspaces = None

        errors = validate_fleet(items, default_unverifiable)
        results = {}
        todo = []
        for item in items:
            name = item.get("name")
            if name in errors:
                results[name] = _untouched_failure(name, "invalid entry, nothing was done: " + "; ".join(errors[name]), state=item.get("state") or "present")
            else:
                todo.append(item)
        if errors.get(None):
            msg = "; ".join(errors[None])
            return {"failed": True, "msg": msg, "tenants": [], "summary": _summary([]), "generated_passwords": {}, "problems": [msg], "report": [msg]}

        if any(by_name.get(i["name"]) is None and (i.get("state") or "present") == "present" for i in todo):
            # reconcile_tenant reads PD's version before a create; read it once
            # here rather than racing from every worker.
            try:
                pd.version()
            except PDError:
                pass  # reconcile_tenant reports it per tenant

        runs = [_TenantRun(pd, sql_params, item, by_name.get(item["name"]), check_mode, verify, default_unverifiable) for item in todo]
        timeout = params.get("timeout")
        deadline = started + timeout if timeout else None

        def work(run):
            out = run.run()
            run.out = None  # only the (shaped) result is kept
            return shape(out) if shape is not None else out

        for run, out in zip(runs, _map(work, runs, max_workers, deadline), strict=False):
            results[run.name] = out
        _unproven(pd, [results[run.name] for run in runs if not results[run.name].get("failed")])

        unlisted = []
        notes = []
        if state == "overridden":
            unlisted, notes = _override(pd, sql_params, params, items, keyspaces, errors, check_mode, max_workers)
            if shape is not None:
                unlisted = [shape(t) for t in unlisted]

        tenants = [results[item.get("name")] for item in items] + unlisted
        generated = {}
        for run in runs:
            if run.generated:
                generated[run.name] = run.generated
        summary = _summary(tenants)
        failed = [t for t in tenants if t.get("failed")]
        incomplete = [t for t in tenants if not t.get("verification", {"complete": True})["complete"]]
        out = {
            "changed": any(t.get("changed") for t in tenants),
            "tenants": tenants,
            "summary": summary,
            "generated_passwords": generated,
            "incomplete": [{"name": t["name"], "problems": t["verification"]["problems"]} for t in incomplete],
            "pd_requests": _pd_call_counts(pd),
            "notes": notes,
            "report": report_lines(tenants, summary, verify, check_mode),
            "problems": problem_lines(tenants),
            "seconds": round(time.monotonic() - started, 3),
        }
        if failed or incomplete:
            out["failed"] = True
            parts = []
            if failed:
                parts.append(
                    "%d of %d tenants failed: %s"
                    % (len(failed), len(tenants), "; ".join("%s: %s" % (t["name"], t.get("msg")) for t in failed[:20]) + (" ..." if len(failed) > 20 else ""))
                )
            if incomplete:
                parts.append(
                    "%d tenants are not proven usable: %s"
                    % (len(incomplete), "; ".join("%s: %s" % (t["name"], ", ".join(t["verification"]["problems"])) for t in incomplete[:20]))
                )
            out["msg"] = ". ".join(parts)
        return out
    finally:
        if own_pd:
            pd.close()


def _untouched_failure(name, msg, **extra):
    """The result of a tenant the run failed without changing anything."""
    entry = {"name": name, "status": STATUS_FAILED, "changed": False, "failed": True, "users": [], "msg": msg}
    entry.update(extra)
    return entry


def _map(func, items, max_workers, deadline=None):
    """func over items on a bounded pool; results in input order. An exception
    in func is a bug: it is turned into a failed tenant, never lost. Items not
    started by ``deadline`` (time.monotonic()) are reported as not attempted."""

    def safe(item):
        name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
        if deadline is not None and time.monotonic() >= deadline:
            return _untouched_failure(
                name,
                "not attempted: the run's timeout was reached before this tenant's turn; nothing was done to it (run again, or raise timeout)",
                not_attempted=True,
            )
        try:
            return func(item)
        except Exception as exc:  # pylint: disable=broad-except
            return _untouched_failure(name, "internal error: %s: %s" % (type(exc).__name__, exc))

    if max_workers <= 1 or len(items) <= 1:
        return [safe(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(items))) as pool:
        return list(pool.map(safe, items))


def _override(pd, sql_params, params, items, keyspaces, errors, check_mode, max_workers):
    """Disable managed, unlisted tenants (PD only: their credentials are unknown)."""
    notes = []
    pattern = params["managed_pattern"]
    if errors:
        notes.append("no unlisted tenant was disabled because some listed entries are invalid (a mistyped name would otherwise disable the real tenant)")
        return [], notes
    listed = {i.get("name") for i in items}
    candidates = _unlisted_candidates(keyspaces, listed, pattern)

    def disable(ks):
        name = ks["name"]
        out = {"name": name, "state": "disabled", "status": STATUS_UNCHANGED, "changed": False, "failed": False, "users": [], "unlisted": True}
        spec = TenantSpec(name=name, state="disabled", lock_users=[])
        try:
            res = reconcile_tenant(pd, sql_params, spec, current=ks, check_mode=check_mode)
        except TenantError as exc:
            out.update(status=STATUS_FAILED, failed=True, msg=exc.message, keyspace=exc.result.get("keyspace"))
            return out
        res.pop("generated_admin_password", None)
        out.update(
            changed=bool(res.get("changed")),
            keyspace=res.get("keyspace"),
            diff=res.get("diff"),
            state_path=res.get("state_path"),
            warnings=(res.get("warnings") or [])
            + [
                "tenant %r is not listed: disabled in PD only. pg-tikv ignores the keyspace state "
                "in logins, so its users can still log in until they are locked "
                "(list it with state: disabled and its credentials)" % name
            ],
        )
        if out["changed"]:
            out["status"] = STATUS_CHANGED
        return out

    return _map(disable, candidates, max_workers), notes


def _unproven(pd, tenants):
    """After the SQL work of a run, PD must still answer: while it is down
    pg-tikv refuses every login like a wrong password (reference
    pg-tikv-server.md §1.4a), so refused test logins proved nothing. One PD
    request per run; every tenant result not already failed becomes failed and
    its verification incomplete."""
    if not tenants:
        return
    problem = refusals_unproven(pd)
    if not problem:
        return
    for out in tenants:
        verification = out.get("verification")
        if verification is not None:
            verification["complete"] = False
            verification["problems"].append(problem)
        if "name" in out:
            out.update(failed=True, status=STATUS_FAILED, msg=problem)


def _gather(pd, sql_params, params, items, keyspaces, by_name, verify, max_workers, started):
    listed = {i.get("name"): i for i in items}
    pattern = params.get("managed_pattern")
    regex = re.compile(pattern) if pattern else None
    gathered = []
    for ks in keyspaces:
        name = ks.get("name")
        if name in PD_PROTECTED_KEYSPACES:
            continue
        if listed and name not in listed:
            continue
        if regex and not regex.fullmatch(name or ""):
            continue
        gathered.append(keyspace_view(ks))
    missing = [n for n in listed if n not in by_name]

    def verify_one(item):
        ks = by_name.get(item["name"])
        users = {u["name"]: u["password"] for u in item.get("users") or [] if u.get("password")}
        return verify_tenant(sql_params, item["name"], ks, item.get("admin_password"), users, item)

    incomplete = []
    if verify and items:
        present = [i for i in items if (i.get("state") or "present") == "present"]
        by_tenant = dict(zip([i["name"] for i in present], _map(verify_one, present, max_workers), strict=False))
        for view in gathered:
            if view["name"] in by_tenant:
                view["verification"] = by_tenant[view["name"]]
        for name in missing:
            if name in by_tenant:
                gathered.append({"name": name, "state": None, "verification": by_tenant[name]})
        _unproven(pd, [{"verification": v} for v in by_tenant.values()])
        incomplete = [{"name": n, "problems": v["problems"]} for n, v in by_tenant.items() if not v["complete"]]
    out = {
        "changed": False,
        "gathered": gathered,
        "missing": missing,
        "incomplete": incomplete,
        "pd_requests": _pd_call_counts(pd),
        "seconds": round(time.monotonic() - started, 3),
        "summary": {
            "total": len(gathered),
            "missing": len(missing),
            "verified": sum(1 for g in gathered if g.get("verification", {}).get("complete")),
            "incomplete": len(incomplete),
        },
    }
    if verify and incomplete:
        out["failed"] = True
        out["msg"] = "%d tenants are not proven usable: %s" % (
            len(incomplete),
            "; ".join("%s: %s" % (i["name"], ", ".join(i["problems"])) for i in incomplete[:20]),
        )
    return out


REPORT_MAX_LINES = 50


def report_lines(tenants, summary, verify, check_mode):
    """A readable report without secrets: the counts, then one line per tenant
    that changed, failed or is not proven (at most REPORT_MAX_LINES)."""
    s = summary
    head = "%d tenants: %d created, %d changed, %d unchanged, %d failed; users: %d created, %d changed" % (
        s["total"],
        s["created"],
        s["changed"],
        s["unchanged"],
        s["failed"],
        s["users_created"],
        s["users_changed"],
    )
    if verify and not check_mode:
        head += "; %d tenants verified, %d incomplete" % (s["verified"], s["incomplete"])
    if check_mode:
        head += " (check mode)"
    shown = [t for t in tenants if t["status"] != STATUS_UNCHANGED or not t.get("verification", {"complete": True})["complete"]]
    lines = [head]
    for t in shown[:REPORT_MAX_LINES]:
        parts = []
        if t.get("state_path"):
            parts.append("state " + ">".join(t["state_path"]))
        if t.get("admin_rotated"):
            parts.append("admin rotated")
        users = [u for u in t.get("users") or [] if u.get("status") != STATUS_UNCHANGED]
        if users:
            parts.append("users: " + ", ".join("%s %s" % (u["name"], u["status"]) for u in users))
        if t.get("failed"):
            parts.append("FAILED")
        elif not t.get("verification", {"complete": True})["complete"]:
            parts.append("NOT VERIFIED: " + "; ".join(t["verification"]["problems"]))
        lines.append("%-24s %-9s %s" % (t["name"], t["status"], "; ".join(parts)))
    if len(shown) > REPORT_MAX_LINES:
        lines.append("... and %d more (set details: true, or register the result)" % (len(shown) - REPORT_MAX_LINES))
    return lines


def problem_lines(tenants):
    """Every reason the run is not complete, one readable line each."""
    lines = ["%s: FAILED: %s" % (t["name"], t.get("msg") or "unknown error") for t in tenants if t.get("failed")]
    for t in tenants:
        verification = t.get("verification")
        if verification and not verification["complete"]:
            lines.extend("%s: not proven: %s" % (t["name"], p) for p in verification["problems"])
    return lines


def compact_tenant(t):
    """The per-tenant result without the bulky parts.

    AnsibleModule masks every no_log value (every declared password) in every
    string of the result: its cost is strings x passwords, which for a fleet
    dwarfs the work itself. So an unchanged, proven tenant reports only its
    status, and a changed one what changed; ``details=true`` returns
    everything.
    """
    out = {k: t.get(k) for k in ("name", "status", "changed", "failed")}
    for key in ("unlisted", "msg", "warnings", "proven", "not_attempted"):
        if t.get(key):
            out[key] = t[key]
    verification = t.get("verification")
    if verification is not None:
        out["verification"] = {"complete": verification["complete"], "problems": verification["problems"]}
    if t.get("status") == STATUS_UNCHANGED and "msg" not in out:
        return out
    if t.get("state") != "present":
        out["state"] = t.get("state")
    for key in ("state_path", "config_patch", "admin_rotated", "admin_password_generated", "locked_users"):
        if key in t:
            out[key] = t[key]
    keyspace = t.get("keyspace")
    if keyspace:
        out["keyspace"] = {"id": keyspace.get("id"), "config": keyspace.get("config")}
    users = []
    for u in t.get("users") or []:
        users.append(
            {k: u[k] for k in ("name", "status", "changed", "password_changed", "password_generated", "msg") if k in u and (u[k] or k in ("changed", "status"))}
        )
    out["users"] = users
    return out


def fleet_diff(tenants):
    """Module diff: before/after of every tenant that changed (passwords never appear)."""
    before, after = {}, {}
    for t in tenants:
        if not t.get("changed"):
            continue
        tdiff = t.get("diff") or {}
        b = dict(tdiff.get("before") or {})
        a = dict(tdiff.get("after") or {})
        ub, ua = {}, {}
        for u in t.get("users") or []:
            if u.get("changed") and u.get("diff"):
                ub[u["name"]] = u["diff"].get("before")
                ua[u["name"]] = u["diff"].get("after")
        if ub or ua:
            b["users"] = ub
            a["users"] = ua
        before[t["name"]] = b
        after[t["name"]] = a
    return {"before": before, "after": after}
