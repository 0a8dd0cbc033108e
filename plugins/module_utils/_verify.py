# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Proof that a tenant is what it was declared: fresh test logins, never the
sessions used to reconcile.

PRIVATE: for use by this collection's modules only; may change at any time.

A present tenant is usable when its keyspace is ENABLED, admin logs in with
its password, the bootstrap admin/admin is refused and every present user logs
in; a decommissioned one is closed when nobody listed can log in. Each check
is recorded (``checks``), and each failed one as a readable problem.
"""

from __future__ import annotations

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as sql
from ansible_collections.pgtikv.cloud.plugins.module_utils._common import BOOTSTRAP_ADMIN_PASSWORD, BOOTSTRAP_ADMIN_USER
from ansible_collections.pgtikv.cloud.plugins.module_utils._fleet_result import STATUS_FAILED
from ansible_collections.pgtikv.cloud.plugins.module_utils._keyspace import TARGET_STATES
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import refusals_unproven


class _Proof:
    """The checks of one tenant's proof, each recorded, a failed one also as a
    readable problem."""

    def __init__(self):
        self.checks = []
        self.problems = []

    def check(self, what, ok, problem):
        self.checks.append({"check": what, "ok": bool(ok)})
        if not ok:
            self.problems.append(problem)

    def result(self):
        return {"complete": not self.problems, "problems": self.problems, "checks": self.checks}


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
    proof = _Proof()
    check = proof.check

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
    return proof.result()


def verify_locked(sql_params, name, keyspace, admin_password, user_passwords, item):
    """Prove a decommissioned tenant closed: the keyspace has left ENABLED, and
    neither admin nor any listed user can log in, with its last known password
    or at all (NOLOGIN: pg-tikv checks it before the password)."""
    proof = _Proof()
    state = (keyspace or {}).get("state")
    target = TARGET_STATES.get(item.get("state") or "present")
    proof.check("keyspace %s" % target, keyspace is None or state == target, "keyspace is %s in PD, not %s" % (state, target))
    if keyspace is None:
        return proof.result()
    accounts = [(BOOTSTRAP_ADMIN_USER, admin_password)] + [
        (u["name"], user_passwords.get(u["name"])) for u in item.get("users") or [] if (u.get("state") or "present") == "present"
    ]
    for user, password in accounts:
        for label, candidate in (("its password", password), ("the bootstrap password", BOOTSTRAP_ADMIN_PASSWORD)):
            if not candidate:
                continue
            outcome = sql.login_outcome(sql_params, name, user, candidate)
            proof.check("%s cannot log in with %s" % (user, label), outcome in ("nologin", "refused"), "%s still logs in with %s (%s)" % (user, label, outcome))
    return proof.result()


def mark_unproven(pd, tenants):
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
