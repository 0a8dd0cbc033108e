# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet module's result, shaped in one place.

PRIVATE: for use by this collection's modules only; may change at any time.

From the per-tenant results of ``_bulk`` to what pg_tikv_tenants returns:
statuses and counts, the readable report and problem lines, the drift of a
check-mode run (what a run would change, in words), the compact per-tenant
result, the module diff, the ``gathered`` entries in ``config`` shape, PD's
calls by kind and the echoed arguments. The module's ``main()`` and the
tenants role only pass it on or display it.
"""

from __future__ import annotations

from ansible_collections.pgtikv.cloud.plugins.module_utils._keyspace import MODULE_STATES, keyspace_view, split_config
from ansible_collections.pgtikv.cloud.plugins.module_utils._pd_client import KEYSPACE_API
from ansible_collections.pgtikv.cloud.plugins.module_utils._tenant import ADMIN_STATUS_BOOTSTRAP, ADMIN_STATUS_LOCKED

STATUS_CREATED = "created"
STATUS_CHANGED = "changed"
STATUS_UNCHANGED = "unchanged"
STATUS_FAILED = "failed"


def untouched_failure(name, msg, **extra):
    """The result of a tenant the run failed without changing anything."""
    entry = {"name": name, "status": STATUS_FAILED, "changed": False, "failed": True, "users": [], "msg": msg}
    entry.update(extra)
    return entry


def summary(tenants, check_mode=False):
    """Counts of the run; in check mode also how many tenants drifted and by how many items."""
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
    if check_mode:
        counts["drifted"] = sum(1 for t in tenants if t.get("drift"))
        counts["drift_items"] = sum(len(t.get("drift") or ()) for t in tenants)
    return counts


def pd_call_counts(pd):
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


REPORT_MAX_LINES = 50


def report_lines(tenants, counts, verify, check_mode):
    """A readable report without secrets: the counts (summary()), then one line
    per tenant that changed, failed or is not proven (at most REPORT_MAX_LINES)."""
    s = counts
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


def unproven_message(incomplete):
    """The message of a run whose tenants are not all proven; ``incomplete``:
    ``{name, problems}`` of each (the first 20 are named)."""
    return "%d tenants are not proven usable: %s" % (
        len(incomplete),
        "; ".join("%s: %s" % (i["name"], ", ".join(i["problems"])) for i in incomplete[:20]),
    )


def run_failure(msg):
    """The result of a run that failed before any tenant was handled."""
    return {"failed": True, "msg": msg, "tenants": [], "summary": summary([]), "generated_passwords": {}, "problems": [msg], "report": [msg]}


def fleet_result(tenants, generated, notes, pd_calls, verify, check_mode, seconds):
    """The result of a merged or overridden run: the tenants (in their final
    shape), the counts, the readable report and problems, and ``failed`` with a
    message when a tenant failed or is not proven."""
    counts = summary(tenants, check_mode)
    failed = [t for t in tenants if t.get("failed")]
    incomplete = [{"name": t["name"], "problems": t["verification"]["problems"]} for t in tenants if not t.get("verification", {"complete": True})["complete"]]
    out = {
        "changed": any(t.get("changed") for t in tenants),
        "tenants": tenants,
        "summary": counts,
        "generated_passwords": generated,
        "incomplete": incomplete,
        "pd_calls": pd_calls,
        "notes": notes,
        "report": report_lines(tenants, counts, verify, check_mode),
        "problems": problem_lines(tenants),
        "seconds": round(seconds, 3),
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
            parts.append(unproven_message(incomplete))
        out["msg"] = ". ".join(parts)
    return out


def gathered_result(keyspaces, missing, verification, pd_calls, seconds):
    """The result of state=gathered: ``gathered`` in ``config`` shape
    (gathered_entry), PD's view of the same keyspaces in ``keyspaces``, and
    with ``verification`` (None: not asked) the proofs by tenant name and
    ``failed`` when one is incomplete."""
    incomplete = [{"name": n, "problems": v["problems"]} for n, v in (verification or {}).items() if not v["complete"]]
    out = {
        "changed": False,
        "gathered": [gathered_entry(ks) for ks in keyspaces],
        "keyspaces": [keyspace_view(ks) for ks in keyspaces],
        "missing": missing,
        "incomplete": incomplete,
        "pd_calls": pd_calls,
        "seconds": round(seconds, 3),
        "summary": {
            "total": len(keyspaces),
            "missing": len(missing),
            "verified": sum(1 for v in (verification or {}).values() if v["complete"]),
            "incomplete": len(incomplete),
        },
    }
    if verification is not None:
        out["verification"] = verification
        if incomplete:
            out["failed"] = True
            out["msg"] = unproven_message(incomplete)
    return out


def drift_lines(t):
    """What a check-mode run found different from the declaration, one line
    per item, for one tenant's full result (before compact_tenant). Empty: no
    drift."""
    if t.get("failed"):
        return ["cannot be checked: %s" % (t.get("msg") or "unknown error")]
    if t.get("unlisted") and t.get("changed"):
        return ["not declared but ENABLED (overridden would disable it)"]
    if t.get("status") == STATUS_CREATED:
        return ["keyspace missing in PD"]
    if not t.get("changed"):
        return []
    before = (t.get("diff") or {}).get("before") or {}
    items = []
    if t.get("state_path"):
        items.append("keyspace state %s, declared %s" % (before.get("state", "?"), t["state_path"][-1]))
    if t.get("config_patch"):
        items.append("config differs: " + ", ".join(sorted(t["config_patch"])))
    if t.get("admin_rotated"):
        admin = before.get("admin")
        if admin == ADMIN_STATUS_BOOTSTRAP:
            items.append("admin: still has the bootstrap password admin/admin")
        elif admin == ADMIN_STATUS_LOCKED:
            items.append("admin: locked (NOLOGIN)")
        else:
            items.append("admin: password differs from the declared one")
    for u in t.get("users") or []:
        status = u.get("status")
        if status == STATUS_UNCHANGED:
            continue
        if status == STATUS_CREATED:
            items.append("user %s missing" % u["name"])
        elif status == "removed":
            items.append("user %s exists but is declared absent" % u["name"])
        elif status == "locked":
            items.append("user %s can still log in" % u["name"])
        elif status == STATUS_FAILED:
            items.append("user %s cannot be checked: %s" % (u["name"], u.get("msg") or ""))
        else:
            items.append("user %s: %s" % (u["name"], "password differs" if u.get("password_changed") else "attributes differ"))
    if not items and t.get("locked_users"):
        items.append("can still log in: " + ", ".join(t["locked_users"]))
    return items or ["differs (see the module result)"]


def tenant_shaper(check_mode, compact):
    """What run_fleet applies to each tenant's result as soon as it is done: in
    check mode its ``drift``, then (``compact``) compact_tenant, so that a run
    of 10,000 tenants never holds every full result at once."""

    def shape(t):
        if check_mode:
            t["drift"] = drift_lines(t)
        return compact_tenant(t) if compact else t

    return shape


def compact_tenant(t):
    """The per-tenant result without the bulky parts.

    AnsibleModule masks every no_log value (every declared password) in every
    string of the result: its cost is strings x passwords, which for a fleet
    dwarfs the work itself. So an unchanged, proven tenant reports only its
    status, and a changed one what changed; ``details=true`` returns
    everything.
    """
    out = {k: t.get(k) for k in ("name", "status", "changed", "failed")}
    for key in ("unlisted", "msg", "warnings", "proven", "not_attempted", "drift"):
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


def gathered_entry(keyspace):
    """A keyspace as an entry of the module's ``config`` list (name, module
    state, user-owned config), so that ``gathered`` can be fed back as
    ``config``. PD knows no users and pg-tikv cannot list its roles, so none
    are given."""
    return {"name": keyspace.get("name"), "state": MODULE_STATES.get(keyspace.get("state")), "config": split_config(keyspace.get("config"))[0]}


def invocation(params):
    """The echoed arguments, without the declared list: it is the caller's own
    input, and masking its passwords in thousands of echoed strings would cost
    more than the work itself."""
    echo = {k: v for k, v in params.items() if k != "config"}
    items = params.get("config") or []
    echo["config"] = "(%d tenants, %d users: not echoed)" % (len(items), sum(len(t.get("users") or []) for t in items))
    return {"module_args": echo}


def fleet_answer(result, params, diff, warnings):
    """The module's answer from run_fleet's result: every tenant's warnings
    appended to ``warnings`` (prefixed with its name), the module diff when
    asked (``diff``), no per-tenant diffs, compact tenants unless
    ``details``, and the echoed arguments."""
    tenants = result.get("tenants", [])
    warnings.extend("%s: %s" % (t["name"], w) for t in tenants for w in t.get("warnings") or [])
    if diff and params.get("state") != "gathered":
        result["diff"] = fleet_diff(tenants)
    for tenant in tenants:
        tenant.pop("diff", None)
        for user in tenant.get("users") or []:
            user.pop("diff", None)
    if diff and not params.get("details"):
        # Kept whole until here for the diff only.
        result["tenants"] = [compact_tenant(t) for t in tenants]
    result["invocation"] = invocation(params)
    return result
