#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the pg-tikv chart's tenant-bootstrap hook for real, on the host.

1. Render the chart with helm template (existing-PD mode pointing at the local
   PD, the SQL port of the local pg-tikv double), with tenants whose passwords
   reference two Secrets; the Secrets are built here, as kubectl would.
2. From the rendered Job take, exactly: every container's command (init
   containers first, in order) and env, and every volume mount: ConfigMap
   keys and projected Secret items become files, emptyDirs empty dirs, all
   under a temp root (mount path P becomes ROOT/P). Command arguments and env
   values that start with a mount path are remapped the same way. The one
   other change: PG_HOST, the SQL Service's cluster DNS name, becomes the
   double's 127.0.0.1 (no cluster DNS on the host). python3 and
   ansible-playbook resolve to the test venv (the image would provide them),
   and the collection is the one under test (ANSIBLE_COLLECTIONS_PATH).
3. Verify through other clients: raw HTTP GET to PD, psycopg2 logins.
0. First the Job with the chart's default gate (waitForTiKV): the local PD
   has no TiKV store Up, so the init container must give up and the
   provision container must never start. The runs below turn that one check
   off (the local stack has no TiKV).
4. Run again (a no-op), break a tenant by hand (admin back to admin/admin, a
   user dropped), run again (repaired). The last two runs add
   ANSIBLE_VERBOSITY=3 and no password may appear in their output.
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import urllib.request

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "chart_pg_tikv", "files"))
from secret_logins import login_checks, run_logins  # noqa: E402  pylint: disable=wrong-import-position


def sh(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def render(args, cfg, sfx, work, bootstrap=None):
    pd = cfg["pd_endpoints"][0]
    values = {
        "pd": {"endpoints": [pd if "://" in pd else "http://" + pd]},
        "pgtikv": {"port": int(cfg["pg_port"])},
        # The local PD runs without TiKV (one mock store, Down): the gate's
        # TiKV check is off here, and proven to hold the hook back in step 0.
        "bootstrap": bootstrap or {"waitForTiKV": False},
        "tenants": [
            {
                "name": "hk_%s_1" % sfx,
                "config": {"owner": "team-a"},
                "adminPasswordSecret": {"name": "hk-one", "key": "admin"},
                "users": [
                    {"name": "app", "passwordSecret": {"name": "hk-one", "key": "app"}},
                    {"name": "report", "passwordSecret": {"name": "hk-shared", "key": "report"}},
                ],
            },
            {
                "name": "hk_%s_2" % sfx,
                "adminPasswordSecret": {"name": "hk-shared", "key": "admin2"},
                "users": [{"name": "app", "passwordSecret": {"name": "hk-shared", "key": "app2"}}],
            },
        ],
    }
    path = os.path.join(work, "values-%s.yaml" % ("gate" if bootstrap else "run"))
    with open(path, "w", encoding="utf-8") as fh:
        yaml.safe_dump(values, fh)
    res = sh([args.helm, "template", "hk", args.chart, "--namespace", "hookns", "-f", path])
    if res.returncode:
        sys.exit("helm template failed:\n" + res.stderr)
    return values, [d for d in yaml.safe_load_all(res.stdout) if d]


def secret_objects():
    """The Secrets the values reference, as Kubernetes objects (stringData)."""
    return {
        "hk-one": {"admin": secrets.token_urlsafe(18), "app": secrets.token_urlsafe(18)},
        "hk-shared": {"report": "r'" + secrets.token_urlsafe(15), "admin2": secrets.token_urlsafe(18), "app2": secrets.token_urlsafe(18)},
    }


def materialize(job, configmaps, secret_data, root):
    """Files for every volume the Job mounts; returns {mountPath: host path}."""
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {}
    for container in pod.get("initContainers", []) + pod["containers"]:
        for mount in container.get("volumeMounts", []):
            mounts[mount["mountPath"]] = volumes[mount["name"]]
    remap = {}
    for mount_path, volume in mounts.items():
        host = os.path.join(root, mount_path.lstrip("/"))
        os.makedirs(host, exist_ok=True)
        remap[mount_path] = host
        if "configMap" in volume:
            for key, content in configmaps[volume["configMap"]["name"]]["data"].items():
                with open(os.path.join(host, key), "w", encoding="utf-8") as fh:
                    fh.write(content)
        elif "projected" in volume:
            for source in volume["projected"]["sources"]:
                sec = source["secret"]
                for item in sec["items"]:
                    path = os.path.join(host, item["path"])
                    os.makedirs(os.path.dirname(path), exist_ok=True)
                    with open(path, "w", encoding="utf-8") as fh:
                        fh.write(secret_data[sec["name"]][item["key"]])
                    os.chmod(path, 0o440)
        elif "emptyDir" not in volume:
            sys.exit("volume kind not handled: %s" % volume)
    return remap


def remapped(value, remap):
    for mount_path, host in sorted(remap.items(), key=lambda kv: -len(kv[0])):
        if value == mount_path or value.startswith(mount_path + "/"):
            return host + value[len(mount_path) :]
        if "=" in value:
            key, rest = value.split("=", 1)
            if rest == mount_path or rest.startswith(mount_path + "/"):
                return key + "=" + host + rest[len(mount_path) :]
    return value


def steps(job, remap, cfg, python):
    """[(container name, argv, env)] in the order the pod runs them."""
    pod = job["spec"]["template"]["spec"]
    out = []
    for container in pod.get("initContainers", []) + pod["containers"]:
        env = {}
        for var in container.get("env", []):
            if "value" not in var:
                sys.exit("env %s has no literal value" % var["name"])
            env[var["name"]] = remapped(var["value"], remap)
        assert "PG_PASSWORD" not in env
        if env.get("PG_HOST", "").endswith(".svc"):
            env["PG_HOST"] = cfg["pg_host"]
        argv = [remapped(a, remap) for a in container["command"] + container.get("args", [])]
        out.append((container["name"], argv, env))
    return out


def run_pod(steps_, python, log_path, extra_env=None):
    base = {
        "PATH": os.path.dirname(python) + os.pathsep + os.environ["PATH"],
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", ""),
        "LANG": "C.UTF-8",
    }
    with open(log_path, "w", encoding="utf-8") as log:
        for name, argv, env in steps_:
            full = dict(base, **env, **(extra_env or {}))
            os.makedirs(full.get("ANSIBLE_LOCAL_TEMP", "/tmp"), exist_ok=True)
            log.write("== %s: %s\n" % (name, " ".join(argv)))
            log.flush()
            res = subprocess.run(argv, env=full, stdout=log, stderr=subprocess.STDOUT, check=False)
            if res.returncode:
                return name, res.returncode
    return None, 0


def pd_get(cfg, name):
    pd = cfg["pd_endpoints"][0]
    url = (pd if "://" in pd else "http://" + pd) + "/pd/api/v2/keyspaces/" + name
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError:
        return None


def pgcheck(tools, python, mode, request):
    res = sh([python, os.path.join(tools, "pgcheck.py"), mode], input=json.dumps(request))
    if res.returncode:
        sys.exit("pgcheck %s failed: %s" % (mode, res.stderr))
    return json.loads(res.stdout)


def logins(args, cfg, values, data):
    """Every declared credential logs in, admin/admin is refused (psycopg2)."""
    return run_logins(args.tools, cfg["pg_host"], cfg["pg_port"], login_checks(values["tenants"], data))


def summary(log_path):
    with open(log_path, encoding="utf-8") as fh:
        text = fh.read()
    lines = [line.strip().strip('",') for line in text.splitlines() if " tenants: " in line and "created" in line]
    recap = [line for line in text.splitlines() if "localhost" in line and "changed=" in line]
    return (lines[-1] if lines else "no summary"), (recap[-1] if recap else "no recap")


def main():
    parser = argparse.ArgumentParser()
    for opt in ("--helm", "--chart", "--config", "--tools", "--work"):
        parser.add_argument(opt, required=True)
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as fh:
        cfg = yaml.safe_load(fh)
    python = sys.executable
    sfx = secrets.token_hex(3)
    data = secret_objects()
    with open(os.path.join(args.work, "secrets.json"), "w", encoding="utf-8") as fh:
        json.dump([v for d in data.values() for v in d.values()], fh)

    # 0. The readiness gate (the init container) with its defaults: PD is
    #    healthy but has no TiKV store Up, so it must give up, and the
    #    provision container never starts.
    gate_values, gate_docs = render(args, cfg, sfx, args.work, {"waitSeconds": 3})
    gate_job = [d for d in gate_docs if d["kind"] == "Job"][0]
    gate_root = os.path.join(args.work, "gate-root")
    gate_configmaps = {d["metadata"]["name"]: d for d in gate_docs if d["kind"] == "ConfigMap"}
    gate_plan = steps(gate_job, materialize(gate_job, gate_configmaps, data, gate_root), cfg, python)
    assert gate_plan[0][2]["BOOTSTRAP_WAIT_TIKV"] == "true", gate_plan[0][2]
    failed, rc = run_pod(gate_plan, python, os.path.join(args.work, "gate.log"))
    with open(os.path.join(args.work, "gate.log"), encoding="utf-8") as fh:
        gate_log = fh.read()
    assert failed == gate_plan[0][0] and rc == 1, (failed, rc)
    assert "gave up waiting: no TiKV store is Up (stores: Down)" in gate_log, gate_log
    assert "ansible-playbook" not in gate_log, "the provision container ran after a failed gate"
    for tenant in gate_values["tenants"]:
        assert pd_get(cfg, tenant["name"]) is None, "the gate let a tenant through"
    print("0. readiness gate (defaults): %s gave up after 3 s: no TiKV store is Up (stores: Down); provision never ran" % failed)

    values, docs = render(args, cfg, sfx, args.work)
    jobs = [d for d in docs if d["kind"] == "Job"]
    configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert len(jobs) == 1, [d["kind"] for d in docs]
    job = jobs[0]
    print(
        "1. rendered hook Job %s (%s); tenants %s"
        % (job["metadata"]["name"], job["metadata"]["annotations"]["helm.sh/hook"], ", ".join(t["name"] for t in values["tenants"]))
    )
    root = os.path.join(args.work, "root")
    remap = materialize(job, configmaps, data, root)
    plan = steps(job, remap, cfg, python)
    for name, argv, _env in plan:
        print("   %s: %s" % (name, " ".join(argv)))
    print("   env: " + ", ".join("%s=%s" % kv for kv in sorted(plan[-1][2].items())))
    for tenant in values["tenants"]:
        assert pd_get(cfg, tenant["name"]) is None, "tenant exists before the run"

    failed, rc = run_pod(plan, python, os.path.join(args.work, "run1.log"))
    assert failed is None, "run 1: container %s exited %d (log %s/run1.log)" % (failed, rc, args.work)
    line, recap = summary(os.path.join(args.work, "run1.log"))
    print("2. first run: " + line)
    assert line.startswith("2 tenants: 2 created, 0 changed, 0 unchanged, 0 failed; users: 3 created"), line
    for tenant in values["tenants"]:
        ks = pd_get(cfg, tenant["name"])
        assert ks and ks["state"] == "ENABLED", ks
        for key, value in tenant.get("config", {}).items():
            assert ks["config"].get(key) == value, ks["config"]
    res = logins(args, cfg, values, data)
    assert not res["mismatches"], res["mismatches"]
    print(
        "   PD (raw HTTP): both keyspaces ENABLED with their config; psycopg2: %d logins as expected "
        "(admins with the Secret's password, admin/admin refused, 3 users)" % len(res["results"])
    )

    failed, rc = run_pod(plan, python, os.path.join(args.work, "run2.log"), {"ANSIBLE_VERBOSITY": "3"})
    assert failed is None, "run 2 failed"
    line, recap = summary(os.path.join(args.work, "run2.log"))
    print("3. second run: %s | %s" % (line, " ".join(recap.split())))
    assert line.startswith("2 tenants: 0 created, 0 changed, 2 unchanged, 0 failed"), line
    assert "changed=0" in recap, recap

    t1, t2 = values["tenants"]
    one = data["hk-one"]
    res = pgcheck(
        args.tools,
        python,
        "sql",
        {
            "host": cfg["pg_host"],
            "port": cfg["pg_port"],
            "login": t1["name"] + ".admin",
            "password": one["admin"],
            "statements": ["ALTER ROLE admin PASSWORD 'admin'"],
            "secrets": [one["admin"]],
        },
    )
    assert res["outcome"] == "ok", res
    res = pgcheck(
        args.tools,
        python,
        "sql",
        {
            "host": cfg["pg_host"],
            "port": cfg["pg_port"],
            "login": t2["name"] + ".admin",
            "password": data["hk-shared"]["admin2"],
            "statements": ['DROP ROLE "app"'],
            "secrets": [data["hk-shared"]["admin2"]],
        },
    )
    assert res["outcome"] == "ok", res
    broken = logins(args, cfg, values, data)
    assert len(broken["mismatches"]) == 3, broken["mismatches"]
    print("4. broken by hand: %s admin back to admin/admin, %s user app dropped (%d logins now wrong)" % (t1["name"], t2["name"], len(broken["mismatches"])))

    failed, rc = run_pod(plan, python, os.path.join(args.work, "run3.log"), {"ANSIBLE_VERBOSITY": "3"})
    assert failed is None, "run 3 failed"
    line, recap = summary(os.path.join(args.work, "run3.log"))
    print("5. third run: " + line)
    assert line.startswith("2 tenants: 0 created, 2 changed, 0 unchanged, 0 failed; users: 1 created"), line
    res = logins(args, cfg, values, data)
    assert not res["mismatches"], res["mismatches"]
    print("   repaired: psycopg2 %d logins as expected again" % len(res["results"]))

    logs = os.path.join(args.work, "verbose.log")
    with open(logs, "w", encoding="utf-8") as out:
        for name in ("run2.log", "run3.log"):
            with open(os.path.join(args.work, name), encoding="utf-8") as fh:
                out.write(fh.read())
    res = sh([python, os.path.join(args.tools, "leakcheck.py"), logs, os.path.join(args.work, "secrets.json"), "5", "--expect", "pg_tikv_tenants"])
    print("6. " + (res.stdout.strip() or res.stderr.strip()))
    assert res.returncode == 0, "leak check failed"


if __name__ == "__main__":
    main()
