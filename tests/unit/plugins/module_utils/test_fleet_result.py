# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet result, shaped once: compact tenants, report, diff, drift, gathered entries, echo."""

from __future__ import annotations

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _fleet_result as r

# ---------------------------------------------------------------- output shape


def test_compact_unchanged_tenant_is_tiny():
    t = {
        "name": "acme_corp",
        "status": "unchanged",
        "changed": False,
        "failed": False,
        "queries": ["x"],
        "keyspace": {"id": 3, "state": "ENABLED", "config": {}},
        "progress": ["a"],
        "warnings": [],
        "users": [{"name": "app", "status": "unchanged"}],
        "verification": {"complete": True, "problems": [], "checks": [{"check": "c", "ok": True}]},
    }
    assert r.compact_tenant(t) == {
        "name": "acme_corp",
        "status": "unchanged",
        "changed": False,
        "failed": False,
        "verification": {"complete": True, "problems": []},
    }


def test_compact_changed_tenant_keeps_what_changed():
    t = {
        "name": "acme_corp",
        "state": "present",
        "status": "changed",
        "changed": True,
        "failed": False,
        "state_path": [],
        "config_patch": {"tier": "gold"},
        "admin_rotated": False,
        "progress": ["x"],
        "keyspace": {"id": 3, "name": "acme_corp", "state": "ENABLED", "config": {"tier": "gold"}, "created": "t"},
        "users": [
            {"name": "app", "status": "created", "changed": True, "password_changed": True, "queries": ["CREATE ROLE ..."], "password_verified": True},
            {"name": "ro", "status": "unchanged", "changed": False, "password_changed": False, "queries": []},
        ],
    }
    c = r.compact_tenant(t)
    assert c["keyspace"] == {"id": 3, "config": {"tier": "gold"}}
    assert c["config_patch"] == {"tier": "gold"} and "progress" not in c and "state" not in c
    assert c["users"] == [
        {"name": "app", "status": "created", "changed": True, "password_changed": True},
        {"name": "ro", "status": "unchanged", "changed": False},
    ]
    assert r.compact_tenant(dict(t, state="disabled"))["state"] == "disabled"


def test_report_is_capped_and_counts_everything():
    tenants = [
        {
            "name": "t%03d" % i,
            "status": "created",
            "changed": True,
            "failed": False,
            "state_path": ["ENABLED"],
            "admin_rotated": True,
            "users": [{"name": "app", "status": "created"}],
        }
        for i in range(60)
    ]
    lines = r.report_lines(tenants, r.summary(tenants), False, False)
    assert lines[0] == "60 tenants: 60 created, 0 changed, 0 unchanged, 0 failed; users: 60 created, 0 changed"
    assert lines[1] == "%-24s %-9s %s" % ("t000", "created", "state ENABLED; admin rotated; users: app created")
    assert len(lines) == 1 + r.REPORT_MAX_LINES + 1 and lines[-1].startswith("... and 10 more")


def test_fleet_diff_only_lists_changed_tenants():
    tenants = [
        {"name": "a_one", "changed": False, "diff": {"before": {"state": "ENABLED"}}},
        {
            "name": "b_two",
            "changed": True,
            "diff": {"before": {"state": "absent"}, "after": {"state": "ENABLED"}},
            "users": [{"name": "app", "changed": True, "diff": {"before": {"state": "absent"}, "after": {"state": "present", "password": "<hidden, set>"}}}],
        },
    ]
    d = r.fleet_diff(tenants)
    assert d == {
        "before": {"b_two": {"state": "absent", "users": {"app": {"state": "absent"}}}},
        "after": {"b_two": {"state": "ENABLED", "users": {"app": {"state": "present", "password": "<hidden, set>"}}}},
    }


# ---------------------------------------------------------------- drift (check mode)


def _changed(**extra):
    t = {"name": "acme_corp", "status": "changed", "changed": True, "failed": False, "users": []}
    t.update(extra)
    return t


@pytest.mark.parametrize(
    "tenant,lines",
    [
        ({"name": "a", "status": "unchanged", "changed": False, "failed": False}, []),
        ({"name": "a", "status": "failed", "changed": False, "failed": True, "msg": "wrong admin password"}, ["cannot be checked: wrong admin password"]),
        (_changed(unlisted=True), ["not declared but ENABLED (overridden would disable it)"]),
        (_changed(status="created"), ["keyspace missing in PD"]),
        (
            _changed(
                state_path=["DISABLED"], config_patch={"b": "1", "a": None}, diff={"before": {"state": "ENABLED", "admin": "bootstrap"}}, admin_rotated=True
            ),
            ["keyspace state ENABLED, declared DISABLED", "config differs: a, b", "admin: still has the bootstrap password admin/admin"],
        ),
        (_changed(admin_rotated=True, diff={"before": {"admin": "locked"}}), ["admin: locked (NOLOGIN)"]),
        (_changed(admin_rotated=True, diff={"before": {"admin": "rotated"}}), ["admin: password differs from the declared one"]),
        (
            _changed(
                users=[
                    {"name": "ok", "status": "unchanged"},
                    {"name": "new", "status": "created"},
                    {"name": "gone", "status": "removed"},
                    {"name": "app", "status": "locked"},
                    {"name": "bad", "status": "failed", "msg": "boom"},
                    {"name": "pw", "status": "changed", "password_changed": True},
                    {"name": "attr", "status": "changed"},
                ]
            ),
            [
                "user new missing",
                "user gone exists but is declared absent",
                "user app can still log in",
                "user bad cannot be checked: boom",
                "user pw: password differs",
                "user attr: attributes differ",
            ],
        ),
        (_changed(locked_users=["admin", "app"]), ["can still log in: admin, app"]),
        (_changed(), ["differs (see the module result)"]),
    ],
)
def test_drift_lines(tenant, lines):
    assert r.drift_lines(tenant) == lines


def test_the_shaper_adds_drift_in_check_mode_only_and_keeps_it_when_compact():
    t = _changed(state_path=["DISABLED"], diff={"before": {"state": "ENABLED"}}, queries=["x"])
    assert r.tenant_shaper(True, compact=True)(dict(t))["drift"] == ["keyspace state ENABLED, declared DISABLED"]
    assert "queries" not in r.tenant_shaper(True, compact=True)(dict(t))
    assert "drift" not in r.tenant_shaper(False, compact=False)(dict(t))
    counts = r.summary([dict(t, drift=["a", "b"]), {"name": "b", "status": "unchanged", "drift": []}], check_mode=True)
    assert counts["drifted"] == 1 and counts["drift_items"] == 2
    assert "drifted" not in r.summary([], check_mode=False)


# ---------------------------------------------------------------- gathered, echo


def test_gathered_entry_is_a_config_entry():
    keyspace = {"id": 7, "name": "acme_corp", "state": "DISABLED", "config": {"tier": "gold", "gc_management_type": "keyspace_level_gc"}}
    assert r.gathered_entry(keyspace) == {"name": "acme_corp", "state": "disabled", "config": {"tier": "gold"}}


def test_the_declared_list_is_not_echoed():
    params = {"state": "merged", "config": [{"name": "a", "admin_password": "Zq9-secret", "users": [{"name": "u"}]}, {"name": "b"}]}
    echo = r.invocation(params)["module_args"]
    assert echo == {"state": "merged", "config": "(2 tenants, 1 users: not echoed)"}


def test_fleet_answer_moves_warnings_and_diffs():
    tenants = [_changed(warnings=["w1"], diff={"before": {"state": "ENABLED"}, "after": {"state": "DISABLED"}})]
    warnings = []
    out = r.fleet_answer({"tenants": tenants}, {"state": "merged", "details": False, "config": []}, True, warnings)
    assert warnings == ["acme_corp: w1"]
    assert out["diff"] == {"before": {"acme_corp": {"state": "ENABLED"}}, "after": {"acme_corp": {"state": "DISABLED"}}}
    assert "diff" not in out["tenants"][0] and out["invocation"]["module_args"]["config"] == "(0 tenants, 0 users: not echoed)"
