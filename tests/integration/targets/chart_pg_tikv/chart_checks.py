#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""chart_checks.py HELM CHART SCHEMA_CASES: lint, schema refusals and rendered manifests of the pg-tikv chart."""

import copy
import os
import subprocess
import sys
import tempfile

import yaml


def merge(base, change):
    """``change`` merged recursively over ``base``; lists replace lists."""
    if isinstance(base, dict) and isinstance(change, dict):
        out = dict(base)
        for key, value in change.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return copy.deepcopy(change)


def helm(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def values_file(tmp, name, values):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(values, fh)
    return path


def check_lint(binary, chart, tmp, base):
    for name, values in (
        ("defaults", None),
        ("base", base),
        ("self-contained", merge(base, {"pd": {"endpoints": [], "deploy": True}, "pgtikv": {"tls": {"enabled": True, "secretName": "sql-tls"}}})),
    ):
        args = ["lint", "--strict", chart] + (["-f", values_file(tmp, name, values)] if values else [])
        res = helm(binary, *args)
        assert res.returncode == 0, "helm lint --strict (%s) failed:\n%s%s" % (name, res.stdout, res.stderr)
        assert "[WARNING]" not in res.stdout and "[ERROR]" not in res.stdout, res.stdout
    print("  lint --strict clean: defaults, base, self-contained with TLS")


def check_cases(binary, chart, tmp, spec):
    refused = 0
    for case in spec["cases"]:
        path = values_file(tmp, "case-" + case["id"], merge(spec["base"], case["values"]))
        checks = [("template", ["template", "r1", chart, "-f", path])]
        if case.get("lint", True):
            checks.append(("lint", ["lint", "--strict", chart, "-f", path]))
        for what, args in checks:
            res = helm(binary, *args)
            out = res.stdout + res.stderr
            assert res.returncode != 0, "%s: helm %s accepted the values" % (case["id"], what)
            assert case["expect"] in out, "%s: helm %s refused without the expected message %r:\n%s" % (case["id"], what, case["expect"], out)
            refused += 1
        message = [line.strip() for line in (res.stdout + res.stderr).splitlines() if case["expect"] in line][0]
        print("  refused %-36s %s" % (case["id"], message[:150]))
    print("  %d cases, %d refusals (template and lint)" % (len(spec["cases"]), refused))


def render(binary, chart, tmp, name, values):
    res = helm(binary, "template", "r1", chart, "--namespace", "ns1", "-f", values_file(tmp, name, values))
    assert res.returncode == 0, res.stderr
    return [doc for doc in yaml.safe_load_all(res.stdout) if doc]


def check_manifests(binary, chart, tmp, base):
    docs = render(binary, chart, tmp, "render-self-contained", merge(base, {"pd": {"endpoints": [], "deploy": True}}))
    kinds = sorted(d["kind"] + "/" + d["metadata"]["name"] for d in docs)
    text = yaml.safe_dump_all(docs)
    assert "PG_PASSWORD" not in [
        e["name"]
        for d in docs
        if d["kind"] in ("Deployment", "Job", "StatefulSet")
        for c in d["spec"]["template"]["spec"].get("containers", [])
        for e in c.get("env", [])
    ], "PG_PASSWORD in an env"
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc["kind"], []).append(doc)
    deploy = by_kind["Deployment"][0]
    sql = deploy["spec"]["template"]["spec"]["containers"][0]
    assert sql["command"][:3] == ["env", "-u", "PG_PASSWORD"], sql["command"]
    assert sql["readinessProbe"]["tcpSocket"]["port"] == "sql", sql["readinessProbe"]
    assert {"PodDisruptionBudget", "ServiceAccount", "StatefulSet", "ConfigMap", "Job", "Service"} <= set(by_kind)
    stss = {s["metadata"]["name"]: s for s in by_kind["StatefulSet"]}
    assert set(stss) == {"r1-pg-tikv-pd", "r1-pg-tikv-tikv"}, kinds
    for sts in stss.values():
        assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    tikv_cm = [c for c in by_kind["ConfigMap"] if c["metadata"]["name"] == "r1-pg-tikv-tikv"][0]
    assert "api-version = 2" in tikv_cm["data"]["tikv.toml"]
    assert "--initial-cluster=r1-pg-tikv-pd-0=http://r1-pg-tikv-pd-0.r1-pg-tikv-pd-peer.ns1.svc:2380," in text
    job = by_kind["Job"][0]
    ann = job["metadata"]["annotations"]
    assert job["metadata"]["name"] == "r1-pg-tikv-tenant-bootstrap"
    assert ann["helm.sh/hook"] == "post-install,post-upgrade", ann
    assert ann["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded", ann
    assert ann["pgtikv.cloud/release-revision"] == "1", ann
    spec = job["spec"]
    assert 0 <= spec["backoffLimit"] <= 3 and 0 < spec["activeDeadlineSeconds"] <= 600, spec
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["initContainers"][0]["command"] == ["python3", "/etc/pgtikv/bootstrap/wait.py"]
    main = pod["containers"][0]
    assert main["command"][:2] == ["ansible-playbook", "pgtikv.cloud.provision"], main["command"]
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env["PD_ENDPOINTS"] == "http://r1-pg-tikv-pd.ns1.svc:2379" and env["PG_HOST"] == "r1-pg-tikv.ns1.svc", env
    # No password reaches the Job's spec, its ConfigMap or argv: only Secret references.
    sources = pod["volumes"][1]["projected"]["sources"]
    assert [s["secret"]["items"][0]["path"] for s in sources] == ["acme_corp/admin", "acme_corp/users/app"], sources
    tenants = yaml.safe_load([c for c in by_kind["ConfigMap"] if c["metadata"]["name"].endswith("bootstrap")][0]["data"]["tenants.yml"])
    assert tenants["tenants_state"] == "merged" and "tenants_allow_disable_unlisted" not in tenants
    assert tenants["pgtikv_tenants"][0]["admin_password"].startswith("{{ lookup('ansible.builtin.file'"), tenants
    assert all("state" not in t for t in tenants["pgtikv_tenants"])
    print(
        "  rendered: %d objects; hook Job %s (%s, %s), PD+TiKV StatefulSets with volumeClaimTemplates"
        % (len(docs), job["metadata"]["name"], ann["helm.sh/hook"], ann["helm.sh/hook-delete-policy"])
    )
    # Without tenants there is no hook at all.
    docs = render(binary, chart, tmp, "render-no-tenants", merge(base, {"tenants": []}))
    assert not [d for d in docs if d["kind"] == "Job"], "a hook without tenants"
    print("  rendered without tenants: no hook Job, no bootstrap ConfigMap")


def main():
    binary, chart, cases = sys.argv[1:4]
    version = helm(binary, "version", "--short").stdout.strip()
    print("%s (%s)" % (binary, version))
    with open(cases, encoding="utf-8") as fh:
        spec = yaml.safe_load(fh)
    with tempfile.TemporaryDirectory() as tmp:
        check_lint(binary, chart, tmp, spec["base"])
        check_cases(binary, chart, tmp, spec)
        check_manifests(binary, chart, tmp, spec["base"])


if __name__ == "__main__":
    main()
