#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verifiers of the platform target, none of them the collection's code.

checks.py snapshot CONFIG OUT          raw HTTP GET of every PD keyspace -> OUT (JSON, name -> keyspace)
checks.py pd-diff BEFORE AFTER PREFIX NEW...  of the keyspaces named PREFIX*, exactly NEW appeared
                                       and the others are byte-for-byte unchanged
checks.py pd-enabled CONFIG NAME...    each NAME exists in PD and is ENABLED
checks.py declare WORK STEP            write WORK/platform-STEP.yml (the playbook's vars file) and record
                                       the passwords in WORK/secrets.json; steps: install, unreachable
                                       (install, the controller pointed at a closed port), upgrade,
                                       fail, selfcontained
checks.py logins CONFIG WORK TOOLS     psycopg2 (pgcheck.py): every declared credential of the last
                                       declaration logs in, admin/admin is refused
"""

import json
import os
import sys
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "chart_pg_tikv", "files"))
from secret_logins import login_checks, run_logins  # noqa: E402  pylint: disable=wrong-import-position


def pd_url(cfg):
    pd = cfg["pd_endpoints"][0]
    return pd if "://" in pd else "http://" + pd


def snapshot(cfg):
    out, token = {}, None
    while True:
        url = pd_url(cfg) + "/pd/api/v2/keyspaces?limit=100" + ("&page_token=%s" % token if token else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            page = json.load(response)
        for ks in page.get("keyspaces") or []:
            out[ks["name"]] = ks
        token = page.get("next_page_token")
        if not token or not page.get("keyspaces"):
            return out


def load(path):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh) if path.endswith(".json") else yaml.safe_load(fh)


def tenants_of(work, step, sfx):
    base = [
        {
            "name": "pk_%s_a" % sfx,
            "config": {"owner": "team-a"},
            "adminPasswordSecret": {"name": "pk-a", "key": "admin"},
            "users": [{"name": "app", "passwordSecret": {"name": "pk-a", "key": "app"}}],
        },
        {
            "name": "pk_%s_b" % sfx,
            "adminPasswordSecret": {"name": "pk-b", "key": "admin"},
            "users": [
                {"name": "app", "passwordSecret": {"name": "pk-b", "key": "app"}},
                {"name": "report", "passwordSecret": {"name": "pk-b", "key": "report"}},
            ],
        },
    ]
    if step in ("upgrade", "fail"):
        base.append(
            {
                "name": "pk_%s_c" % sfx,
                "adminPasswordSecret": {"name": "pk-c", "key": "admin"},
                "users": [{"name": "app", "passwordSecret": {"name": "pk-c", "key": "app"}}],
            }
        )
    return base


def declare(work, step):
    state = load(os.path.join(work, "state.json"))
    cfg = load(state["config"])
    values = {
        "pd": {"endpoints": [pd_url(cfg)]},
        "pgtikv": {"replicas": 2},
        "bootstrap": {"backoffLimit": 1, "activeDeadlineSeconds": 120},
        "tenants": tenants_of(work, step, state["sfx"]),
    }
    if step == "selfcontained":
        # PD and TiKV StatefulSets of the release (volumeClaimTemplates bound
        # by kwok's volume Stages); no tenants, so no hook.
        values = {"pd": {"deploy": True, "replicas": 3}, "tikv": {"replicas": 3}, "pgtikv": {"replicas": 2}}
    if step == "fail":
        # The project's kwok Stage fails pods with this annotation (tests/stack/kube/stages.yaml).
        values["bootstrap"]["podAnnotations"] = {"pgtikv.cloud/test-fail": "true"}
        values["bootstrap"]["backoffLimit"] = 0
    doc = {
        "platform_release_name": state["release"] + ("-sc" if step == "selfcontained" else ""),
        "platform_namespace": state["namespace"],
        "platform_helm_binary": state["helm"],
        "platform_helm_timeout": "3m",
        "platform_values": values,
        # The controller reaches the release's tenants at the local stack: on
        # kwok nothing in a pod runs, so PD and pg-tikv are the stack's.
        "platform_pd_endpoints": [pd_url(cfg)],
        "platform_pg_host": cfg["pg_host"],
        "platform_pg_port": int(cfg["pg_port"]),
        "platform_tenants_max_workers": 4,
    }
    if step == "unreachable":
        # The release is fine, but the controller cannot reach pg-tikv.
        doc["platform_pg_port"] = 1
    with open(os.path.join(work, "platform-%s.yml" % step), "w", encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh)
    if step != "unreachable":
        with open(os.path.join(work, "last.yml"), "w", encoding="utf-8") as fh:
            yaml.safe_dump(doc, fh)


def logins(cfg, work, tools):
    doc = load(os.path.join(work, "last.yml"))
    data = load(os.path.join(work, "secret-data.json"))
    result = run_logins(tools, cfg["pg_host"], cfg["pg_port"], login_checks(doc["platform_values"]["tenants"], data))
    assert not result["mismatches"], result["mismatches"]
    print("   psycopg2: %d logins as expected (admin with the Secret's password, admin/admin refused, users)" % len(result["results"]))


def main():
    cmd = sys.argv[1]
    if cmd == "snapshot":
        with open(sys.argv[3], "w", encoding="utf-8") as fh:
            json.dump(snapshot(load(sys.argv[2])), fh)
    elif cmd == "pd-diff":
        # Other tests may share this PD and change their own keyspaces: only
        # this run's keyspaces (PREFIX*) are compared.
        prefix, new = sys.argv[4], set(sys.argv[5:])
        before = {n: ks for n, ks in load(sys.argv[2]).items() if n.startswith(prefix)}
        after = {n: ks for n, ks in load(sys.argv[3]).items() if n.startswith(prefix)}
        added = set(after) - set(before)
        assert added == new, "PD: expected exactly %s created, got %s" % (sorted(new), sorted(added))
        assert not set(before) - set(after), "PD: keyspaces vanished"
        changed = sorted(n for n in before if before[n] != after[n])
        assert not changed, "PD: keyspaces changed: %s" % changed
        print("   PD snapshot (raw HTTP): of the %s* keyspaces exactly %s created, the %d others unchanged" % (prefix, sorted(added), len(before)))
    elif cmd == "pd-enabled":
        snap = snapshot(load(sys.argv[2]))
        for name in sys.argv[3:]:
            assert name in snap and snap[name]["state"] == "ENABLED", (name, snap.get(name))
        print("   PD (raw HTTP): %s ENABLED" % ", ".join(sys.argv[3:]))
    elif cmd == "declare":
        declare(sys.argv[2], sys.argv[3])
    elif cmd == "logins":
        logins(load(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
