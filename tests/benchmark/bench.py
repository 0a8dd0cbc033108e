#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet provisioning benchmark: prints ratios measured in one run.

On the local stack (real PD + pg-tikv double), N tenants each with an admin
rotation and 2 users:

- the tenants role (ansible-playbook pgtikv.cloud.provision, verify on) at N
  from empty, then again as a no-op re-run;
- a naive playbook looping the single-item modules per tenant and per user
  (naive.yml) at N_NAIVE, giving a per-tenant cost;
- the floor: floor.py, the same HTTP and SQL calls with the same concurrency
  and no Ansible, at N from empty and no-op.

Fresh tenant names every run (PD names can never be reused). Not a timed test:
run it with `make benchmark` (tests/benchmark/run). Targets: from empty <= 60 s
and no-op <= 10 s at N = 1000; per-tenant cost >= 30x lower than the naive
loop; within 1.5x of the floor.
"""

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def fleet(prefix, n):
    def pw():
        return secrets.token_urlsafe(18)
    return [{"name": "%s_%d" % (prefix, i), "admin_password": pw(),
             "users": [{"name": "app", "password": pw()}, {"name": "ro", "password": pw()}]} for i in range(n)]


def write_vars(path, tenants, workers):
    # JSON is YAML: include_vars reads it.
    with open(path, "w") as fh:
        json.dump({"pgtikv_tenants": tenants, "tenants_max_workers": workers}, fh)
    os.chmod(path, 0o600)


class Runner:
    def __init__(self, work, python):
        self.work = work
        self.python = python
        self.rss_log = os.path.join(work, "rss.log")

    def playbook(self, label, playbook, extra):
        env = dict(os.environ, ANSIBLE_PYTHON_INTERPRETER=os.path.join(HERE, "rsspython"),
                   PGTIKV_BENCH_RSS_LOG=self.rss_log, PGTIKV_BENCH_REAL_PYTHON=self.python,
                   ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
        open(self.rss_log, "w").close()
        log = os.path.join(self.work, label + ".log")
        # Implicit localhost runs modules with ansible-playbook's own python unless
        # ansible_python_interpreter is set as a variable.
        extra = dict(extra, ansible_python_interpreter=os.path.join(HERE, "rsspython"))
        cmd = ["ansible-playbook", playbook] + [a for k, v in extra.items() for a in ("-e", "%s=%s" % (k, v))]
        started = time.monotonic()
        with open(log, "w") as fh:
            rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
        wall = time.monotonic() - started
        text = open(log).read()
        if rc != 0:
            sys.exit("%s failed (rc=%d), see %s:\n%s" % (label, rc, log, text[-3000:]))
        rss = {}
        for line in open(self.rss_log):
            m = re.match(r"^(\d+) .*AnsiballZ_(\w+)\.py", line)
            if m:
                rss[m.group(2)] = max(rss.get(m.group(2), 0), int(m.group(1)))
        summary = re.findall(r'"(\d+ tenants: [^"]*)"', text)
        recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)", text)
        return {"label": label, "seconds": round(wall, 2), "rss_kib": rss,
                "summary": summary[-1] if summary else None,
                "changed_tasks": int(recap.group(2)) if recap else None, "log": log}

    def floor(self, fleet_path, mode, workers):
        pd = os.environ["PD_ENDPOINTS"].split(",")[0]
        pd = pd if "://" in pd else "http://" + pd
        out = subprocess.run(["/usr/bin/time", "-f", "RSS %M", self.python, os.path.join(HERE, "floor.py"),
                              fleet_path, mode, str(workers), pd, os.environ["PG_HOST"], os.environ["PG_PORT"]],
                             capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit("floor %s failed:\n%s%s" % (mode, out.stdout, out.stderr[-3000:]))
        res = json.loads(out.stdout.strip().splitlines()[-1])
        res["rss_kib"] = int(re.search(r"RSS (\d+)", out.stderr).group(1))
        return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000, help="tenants for the role and the floor")
    ap.add_argument("--n-naive", type=int, default=100, help="tenants for the naive loop")
    ap.add_argument("--workers", type=int, default=8, help="bulk module / floor concurrency")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--python", default=sys.executable, help="interpreter for modules and the floor")
    args = ap.parse_args()
    for var in ("PD_ENDPOINTS", "PG_HOST", "PG_PORT"):
        if not os.environ.get(var):
            sys.exit("%s is not set: source the stack's env.sh (tests/benchmark/run does)" % var)

    work = tempfile.mkdtemp(prefix="pgtikv-bench-")
    run = Runner(work, args.python)
    sfx = secrets.token_hex(3)
    results = {"n": args.n, "n_naive": args.n_naive, "workers": args.workers, "nproc": os.cpu_count()}

    print("work dir %s; N=%d, N_naive=%d, workers=%d, %d CPUs"
          % (work, args.n, args.n_naive, args.workers, os.cpu_count()), flush=True)
    base = run.playbook("baseline", os.path.join(HERE, "baseline.yml"), {})
    results["ansible_baseline"] = base
    print("ansible-playbook startup (one debug task): %.2f s" % base["seconds"], flush=True)

    # The floor is measured right before and right after the role, and the mean
    # is used: the stack gets slower as PD and the double accumulate keyspaces
    # (every run adds thousands), so whichever ran later would be penalised.
    floor_paths = {}
    for tag in ("a", "b"):
        floor_paths[tag] = os.path.join(work, "floor-fleet-%s.json" % tag)
        with open(floor_paths[tag], "w") as fh:
            json.dump(fleet("bf%s%s" % (tag, sfx), args.n), fh)

    def floor_run(mode, tag):
        r = run.floor(floor_paths[tag], mode, args.workers)
        results["floor_%s_%s" % (mode, tag)] = r
        print("%-14s %7.2f s  (%d connects, %d statements, %d PD requests)" % (
            "floor_%s (%s)" % (mode, tag), r["seconds"], r["connects"], r["statements"], r["pd_requests"]),
            flush=True)

    role_vars = os.path.join(work, "role-fleet.json")
    write_vars(role_vars, fleet("br%s" % sfx, args.n), args.workers)
    floor_run("create", "a")
    results["role_create"] = r = run.playbook("role_create", "pgtikv.cloud.provision", {"pgtikv_tenants_file": role_vars})
    print("%-14s %7.2f s  %s  (changed tasks: %s)" % ("role_create", r["seconds"], r["summary"], r["changed_tasks"]),
          flush=True)
    floor_run("create", "b")
    floor_run("noop", "a")
    results["role_noop"] = r = run.playbook("role_noop", "pgtikv.cloud.provision", {"pgtikv_tenants_file": role_vars})
    print("%-14s %7.2f s  %s  (changed tasks: %s)" % ("role_noop", r["seconds"], r["summary"], r["changed_tasks"]),
          flush=True)
    floor_run("noop", "b")
    for mode in ("create", "noop"):
        pair = [results["floor_%s_%s" % (mode, tag)] for tag in ("a", "b")]
        results["floor_" + mode] = {"seconds": sum(p["seconds"] for p in pair) / 2.0,
                                    "rss_kib": max(p["rss_kib"] for p in pair)}
    expect_create = "%d tenants: %d created, 0 changed, 0 unchanged, 0 failed; users: %d created" % (
        args.n, args.n, 2 * args.n)
    if not results["role_create"]["summary"].startswith(expect_create) or \
            "%d tenants verified, 0 incomplete" % args.n not in results["role_create"]["summary"]:
        sys.exit("the role did not provision and verify every tenant: %s" % results["role_create"]["summary"])
    if "%d unchanged" % args.n not in results["role_noop"]["summary"] or results["role_noop"]["changed_tasks"] != 0:
        sys.exit("the re-run was not a no-op: %s" % results["role_noop"]["summary"])

    naive_vars = os.path.join(work, "naive-fleet.json")
    write_vars(naive_vars, fleet("bn%s" % sfx, args.n_naive), args.workers)
    r = run.playbook("naive_create", os.path.join(HERE, "naive.yml"), {"pgtikv_tenants_file": naive_vars})
    results["naive_create"] = r
    print("%-12s %7.2f s  (N=%d)" % ("naive_create", r["seconds"], args.n_naive), flush=True)
    r = run.playbook("naive_noop", os.path.join(HERE, "naive.yml"), {"pgtikv_tenants_file": naive_vars})
    results["naive_noop"] = r
    print("%-12s %7.2f s  (N=%d, changed tasks: %s)" % ("naive_noop", r["seconds"], args.n_naive,
                                                        r["changed_tasks"]), flush=True)

    n, nn = args.n, args.n_naive
    per = {
        "role_create": results["role_create"]["seconds"] / n,
        "role_noop": results["role_noop"]["seconds"] / n,
        "naive_create": results["naive_create"]["seconds"] / nn,
        "naive_noop": results["naive_noop"]["seconds"] / nn,
        "floor_create": results["floor_create"]["seconds"] / n,
        "floor_noop": results["floor_noop"]["seconds"] / n,
    }
    results["per_tenant_ms"] = {k: round(v * 1000, 2) for k, v in per.items()}
    ratios = {
        "naive_vs_role_create": round(per["naive_create"] / per["role_create"], 1),
        "naive_vs_role_noop": round(per["naive_noop"] / per["role_noop"], 1),
        "role_vs_floor_create": round(per["role_create"] / per["floor_create"], 2),
        "role_vs_floor_noop": round(per["role_noop"] / per["floor_noop"], 2),
    }
    results["ratios"] = ratios
    rss = results["role_create"]["rss_kib"].get("pg_tikv_tenants", 0)
    rss_noop = results["role_noop"]["rss_kib"].get("pg_tikv_tenants", 0)
    targets = {
        "from empty <= 60 s": results["role_create"]["seconds"] <= 60,
        "no-op <= 10 s": results["role_noop"]["seconds"] <= 10,
        ">= 30x cheaper per tenant than the naive loop": ratios["naive_vs_role_create"] >= 30,
        "<= 1.5x the floor (from empty)": ratios["role_vs_floor_create"] <= 1.5,
        "<= 1.5x the floor (no-op)": ratios["role_vs_floor_noop"] <= 1.5,
    }
    results["targets"] = targets

    rows = [
        ("tenants role, from empty", n, results["role_create"]["seconds"], per["role_create"], rss),
        ("tenants role, no-op re-run", n, results["role_noop"]["seconds"], per["role_noop"], rss_noop),
        ("naive loop, from empty", nn, results["naive_create"]["seconds"], per["naive_create"],
         max(results["naive_create"]["rss_kib"].values() or [0])),
        ("naive loop, no-op re-run", nn, results["naive_noop"]["seconds"], per["naive_noop"],
         max(results["naive_noop"]["rss_kib"].values() or [0])),
        ("floor (plain Python), from empty, mean of before/after", n, results["floor_create"]["seconds"],
         per["floor_create"], results["floor_create"]["rss_kib"]),
        ("floor (plain Python), no-op, mean of before/after", n, results["floor_noop"]["seconds"], per["floor_noop"],
         results["floor_noop"]["rss_kib"]),
    ]
    print()
    print("| Run | N | Wall time | Per tenant | Peak RSS of the module process |")
    print("|---|---:|---:|---:|---:|")
    for name, count, secs, each, kib in rows:
        print("| %s | %d | %.1f s | %.1f ms | %.0f MiB |" % (name, count, secs, each * 1000, kib / 1024.0))
    print()
    print("| Ratio | Measured | Target |")
    print("|---|---:|---:|")
    print("| naive / role, per tenant, from empty | %.1fx | >= 30x |" % ratios["naive_vs_role_create"])
    print("| naive / role, per tenant, no-op | %.1fx | |" % ratios["naive_vs_role_noop"])
    print("| role / floor, from empty | %.2fx | <= 1.5x |" % ratios["role_vs_floor_create"])
    print("| role / floor, no-op | %.2fx | <= 1.5x |" % ratios["role_vs_floor_noop"])
    print()
    print("ansible-playbook startup alone: %.2f s; %d CPUs; bulk module workers: %d" % (
        base["seconds"], os.cpu_count(), args.workers))
    for name, ok in targets.items():
        print("  %-48s %s" % (name, "met" if ok else "MISSED"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
        print("results: %s" % args.json)


if __name__ == "__main__":
    main()
