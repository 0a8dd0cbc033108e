# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile a declared list of tenants (with their users) in one call.

PRIVATE: for use by this collection's modules only; may change at any time.

This file only composes: the per-tenant logic is ``_tenant.reconcile_tenant``,
the per-user logic ``_user.reconcile_user``, the proofs ``_verify``, the shape
of the result ``_fleet_result``, PD access ``_pd_client.PDClient`` and SQL
access ``_sql_client``. What it adds:

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

:func:`manage_fleet` is what pg_tikv_tenants calls.
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
    TaskError,
    sql_params_from,
    tenant_name_error,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._fleet_result import (
    STATUS_CHANGED,
    STATUS_CREATED,
    STATUS_FAILED,
    STATUS_UNCHANGED,
    drift_lines,
    fleet_answer,
    fleet_result,
    gathered_result,
    pd_call_counts,
    run_failure,
    tenant_shaper,
    untouched_failure,
)
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import (
    MAX_PAGE_SIZE,
    PDError,
    pd_client_from_params,
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
from ansible_collections.pgtikv.cloud.plugins.module_utils._verify import mark_unproven, verify_locked, verify_tenant

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


def run_fleet(params, items, state, check_mode, pd=None, shape=None):
    """The module's work. ``params``: the module params (connection, workers,
    guards). Returns the result before fleet_answer (no diff, no echo).
    ``shape``: applied to each tenant's result as soon as it is done
    (manage_fleet passes tenant_shaper), so that a run of 10,000 tenants does
    not hold every full result at once. In check mode every tenant gets its
    ``drift``."""
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
            return run_failure(msg)
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
                results[name] = untouched_failure(name, "invalid entry, nothing was done: " + "; ".join(errors[name]), state=item.get("state") or "present")
            else:
                todo.append(item)
        if errors.get(None):
            msg = "; ".join(errors[None])
            return run_failure(msg)

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
        mark_unproven(pd, [results[run.name] for run in runs if not results[run.name].get("failed")])

        unlisted = []
        notes = []
        if state == "overridden":
            unlisted, notes = _override(pd, sql_params, params, items, keyspaces, errors, check_mode, max_workers)
            if shape is not None:
                unlisted = [shape(t) for t in unlisted]

        tenants = [results[item.get("name")] for item in items] + unlisted
        if check_mode:
            # Entries refused or not attempted were never shaped.
            for t in tenants:
                if "drift" not in t:
                    t["drift"] = drift_lines(t)
        generated = {}
        for run in runs:
            if run.generated:
                generated[run.name] = run.generated
        return fleet_result(tenants, generated, notes, pd_call_counts(pd), verify, check_mode, time.monotonic() - started)
    finally:
        if own_pd:
            pd.close()


def _map(func, items, max_workers, deadline=None):
    """func over items on a bounded pool; results in input order. An exception
    in func is a bug: it is turned into a failed tenant, never lost. Items not
    started by ``deadline`` (time.monotonic()) are reported as not attempted."""

    def safe(item):
        name = item.get("name") if isinstance(item, dict) else getattr(item, "name", None)
        if deadline is not None and time.monotonic() >= deadline:
            return untouched_failure(
                name,
                "not attempted: the run's timeout was reached before this tenant's turn; nothing was done to it (run again, or raise timeout)",
                not_attempted=True,
            )
        try:
            return func(item)
        except Exception as exc:  # pylint: disable=broad-except
            return untouched_failure(name, "internal error: %s: %s" % (type(exc).__name__, exc))

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


def _gather(pd, sql_params, params, items, keyspaces, by_name, verify, max_workers, started):
    """state=gathered: PD's keyspaces as entries of ``config`` (fed back as it
    is, it declares what exists), PD's own view of each beside them, and with
    ``verify`` the proof of every listed present tenant."""
    listed = {i.get("name"): i for i in items}
    pattern = params.get("managed_pattern")
    regex = re.compile(pattern) if pattern else None
    found = []
    for ks in keyspaces:
        name = ks.get("name")
        if name in PD_PROTECTED_KEYSPACES:
            continue
        if listed and name not in listed:
            continue
        if regex and not regex.fullmatch(name or ""):
            continue
        found.append(ks)
    missing = [n for n in listed if n not in by_name]

    def verify_one(item):
        ks = by_name.get(item["name"])
        users = {u["name"]: u["password"] for u in item.get("users") or [] if u.get("password")}
        return verify_tenant(sql_params, item["name"], ks, item.get("admin_password"), users, item)

    verification = {}
    if verify and items:
        present = [i for i in items if (i.get("state") or "present") == "present"]
        verification = dict(zip([i["name"] for i in present], _map(verify_one, present, max_workers), strict=False))
        mark_unproven(pd, [{"verification": v} for v in verification.values()])
    return gathered_result(found, missing, verification if verify else None, pd_call_counts(pd), time.monotonic() - started)


def fleet_option_error(params):
    """Why the module's own options cannot run (None if they can), before any work."""
    if not 1 <= params["max_workers"] <= 64:
        return "max_workers must be between 1 and 64"
    if params["timeout"] <= 0:
        return "timeout must be a number of seconds greater than 0"
    if params["list_page_size"] < 1:
        return "list_page_size must be 1 or more"
    if params["state"] == "overridden":
        return override_guard_error(params)
    return None


def manage_fleet(params, check_mode, diff, warnings):
    """pg_tikv_tenants: check the options, run the fleet, shape the answer
    (fleet_answer). Returns the result; raises TaskError with the result when
    a tenant failed or is not proven. ``diff``: the module diff was asked."""
    err = fleet_option_error(params)
    if err:
        raise TaskError(err, kind="validation")
    compact = not (params["details"] or diff)
    try:
        result = run_fleet(params, params["config"] or [], params["state"], check_mode, shape=tenant_shaper(check_mode, compact))
    except PDError as exc:
        raise TaskError("PD client options are invalid: %s" % exc, kind="pd") from None
    result = fleet_answer(result, params, diff, warnings)
    if result.pop("failed", False):
        raise TaskError(result.pop("msg"), result=result)
    return result
