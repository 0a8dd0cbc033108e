#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet provisioning benchmark: prints ratios measured in one run.

On the local stack (real PD + pg-tikv double), for each N (default 100,
1,000 and 10,000) tenants, each with an admin rotation and 2 users:

- the tenants role (ansible-playbook pgtikv.cloud.provision, verify on) from
  empty, then again as a no-op re-run;
- the floor: floor.py, the least work that provisions and proves the same
  fleet (5 logins and 3 statements per tenant from empty, 4 logins and none
  on a no-op), by a plain script with the same concurrency and no Ansible;
  from empty, then as a no-op;
- at N_naive (default 100) only: a naive playbook looping the single-item
  modules per tenant and per user (naive.yml).

Calls are counted per tenant for every run, outside the code under test:
logins, startup probes and statements from the pg-tikv double's log, PD
requests by a wrapper of requests' transport in the module processes
(count_pd/, put on their PYTHONPATH by rsspython) and by the floor itself.

The role and the floor each start on a fresh stack (the benchmark's own,
purged and restarted by tests/stack/stop and start): PD's keyspace creates
slow down as keyspaces accumulate (each adds a region label rule that PD
keeps in one sorted list), so a run that came second would pay for the
first one's keyspaces. Not a timed test: run it with `make benchmark`
(tests/benchmark/run). Targets: N=1,000 from
empty <= 10 s and no-op <= 3 s; N=10,000 from empty <= 120 s and no-op
<= 25 s, peak RSS of the module <= 150 MiB; per-tenant cost at 10,000 within
1.3x of that at 1,000; at 10,000 the role within 1.5x of the floor.
"""

import argparse
import glob
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
STACK_SCRIPTS = os.path.join(os.path.dirname(HERE), "stack")


def fresh_stack():
    """Purge and restart the benchmark's stack (PGTIKV_STACK_DIR, set by
    tests/benchmark/run to its own): an empty PD and a new double."""
    for script, args in (("stop", ["--purge"]), ("start", [])):
        out = subprocess.run([os.path.join(STACK_SCRIPTS, script)] + args, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.exit("tests/stack/%s failed:\n%s%s" % (script, out.stdout[-2000:], out.stderr[-2000:]))


def fleet(prefix, n):
    def pw():
        return secrets.token_urlsafe(18)

    return [
        {"name": "%s_%d" % (prefix, i), "admin_password": pw(), "users": [{"name": "app", "password": pw()}, {"name": "ro", "password": pw()}]}
        for i in range(n)
    ]


def write_vars(path, tenants):
    # provision.yml reads a .json file as JSON; naive.yml's include_vars too (JSON is YAML).
    with open(path, "w") as fh:
        json.dump({"pgtikv_tenants": tenants}, fh)
    os.chmod(path, 0o600)


class DoubleLog:
    """Counts what the pg-tikv double logged since a mark: logins (every
    authentication attempt, refused ones too), startup probes (a startup
    exchange that stops at the password request, user pgtikv_probe) and
    statements."""

    def __init__(self, path):
        self.path = path

    def mark(self):
        return os.path.getsize(self.path)

    def since(self, mark):
        time.sleep(0.2)  # the double's log handler may still be writing the last lines
        counts = {"logins": 0, "startup_probes": 0, "statements": 0}
        with open(self.path, "rb") as fh:
            fh.seek(mark)
            for line in fh:
                if b" Actual user: " in line:
                    counts["startup_probes" if line.rstrip().endswith(b" pgtikv_probe") else "logins"] += 1
                elif b" Received query: " in line:
                    counts["statements"] += 1
        return counts


class Runner:
    def __init__(self, work, python, double_log):
        self.work = work
        self.python = python
        self.rss_log = os.path.join(work, "rss.log")
        self.pd_counts = os.path.join(work, "pd-counts")
        self.double = double_log

    def playbook(self, label, playbook, extra):
        env = dict(
            os.environ,
            ANSIBLE_PYTHON_INTERPRETER=os.path.join(HERE, "rsspython"),
            PGTIKV_BENCH_RSS_LOG=self.rss_log,
            PGTIKV_BENCH_REAL_PYTHON=self.python,
            PGTIKV_BENCH_PD_COUNTS=self.pd_counts,
            ANSIBLE_LOCALHOST_WARNING="false",
            ANSIBLE_INVENTORY_UNPARSED_WARNING="false",
        )
        open(self.rss_log, "w").close()
        shutil.rmtree(self.pd_counts, ignore_errors=True)
        os.makedirs(self.pd_counts)
        log = os.path.join(self.work, label + ".log")
        # Implicit localhost runs modules with ansible-playbook's own python unless
        # ansible_python_interpreter is set as a variable.
        extra = dict(extra, ansible_python_interpreter=os.path.join(HERE, "rsspython"))
        cmd = ["ansible-playbook", playbook] + [a for k, v in extra.items() for a in ("-e", "%s=%s" % (k, v))]
        mark = self.double.mark()
        started = time.monotonic()
        with open(log, "w") as fh:
            rc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
        wall = time.monotonic() - started
        with open(log) as fh:
            text = fh.read()
        if rc != 0:
            sys.exit("%s failed (rc=%d), see %s:\n%s" % (label, rc, log, text[-3000:]))
        rss = {}
        with open(self.rss_log) as fh:
            for line in fh:
                m = re.match(r"^(\d+) .*AnsiballZ_(\w+)\.py", line)
                if m:
                    rss[m.group(2)] = max(rss.get(m.group(2), 0), int(m.group(1)))
        pd = 0
        for path in glob.glob(os.path.join(self.pd_counts, "*.json")):
            with open(path) as fh:
                pd += sum(json.load(fh).values())
        summary = re.findall(r'"(\d+ tenants: [^"]*)"', text)
        recap = re.search(r"localhost\s+:\s+ok=(\d+)\s+changed=(\d+)", text)
        return dict(
            self.double.since(mark),
            label=label,
            seconds=round(wall, 2),
            rss_kib=rss,
            pd_requests=pd,
            summary=summary[-1] if summary else None,
            changed_tasks=int(recap.group(2)) if recap else None,
            log=log,
        )

    def floor(self, fleet_path, mode, workers):
        pd = os.environ["PD_ENDPOINTS"].split(",")[0]
        pd = pd if "://" in pd else "http://" + pd
        mark = self.double.mark()
        out = subprocess.run(
            [
                "/usr/bin/time",
                "-f",
                "RSS %M",
                self.python,
                os.path.join(HERE, "floor.py"),
                fleet_path,
                mode,
                str(workers),
                pd,
                os.environ["PG_HOST"],
                os.environ["PG_PORT"],
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode != 0:
            sys.exit("floor %s failed:\n%s%s" % (mode, out.stdout, out.stderr[-3000:]))
        res = json.loads(out.stdout.strip().splitlines()[-1])
        seen = self.double.since(mark)
        if seen["logins"] != res["logins"] or seen["statements"] != res["statements"]:
            sys.exit("the double's log does not count what the floor did: %s vs %s" % (seen, res))
        res.update(seen)
        res["rss_kib"] = int(re.search(r"RSS (\d+)", out.stderr).group(1))
        return res


def per_tenant_calls(run, n):
    return {k: round(run[k] / float(n), 2) for k in ("logins", "statements", "startup_probes", "pd_requests")}


def measure(run, n, workers, sfx, results):
    """The floor, then the role, at N: each from empty on a fresh stack, then
    again as a no-op on the fleet it made."""
    floor_path = os.path.join(run.work, "floor-%d.json" % n)
    with open(floor_path, "w") as fh:
        json.dump(fleet("bf%s%d" % (sfx, n), n), fh)
    role_vars = os.path.join(run.work, "role-fleet-%d.json" % n)
    write_vars(role_vars, fleet("br%s%d" % (sfx, n), n))
    # The role's own secret store: every password is declared, so nothing is
    # written there, but the default store may be in use by another run.
    store = os.path.join(run.work, "secrets-%d.yml" % n)

    fresh_stack()
    for mode in ("create", "noop"):
        r = results["floor_" + mode] = run.floor(floor_path, mode, workers)
        print("N=%-6d %-16s %8.2f s  per tenant: %s" % (n, "floor_" + mode, r["seconds"], per_tenant_calls(r, n)), flush=True)
    fresh_stack()
    for mode in ("create", "noop"):
        r = results["role_" + mode] = run.playbook(
            "role_%s_%d" % (mode, n),
            "pgtikv.cloud.provision",
            {"pgtikv_tenants_file": role_vars, "tenants_max_workers": workers, "tenants_secrets_file": store},
        )
        print(
            "N=%-6d %-16s %8.2f s  per tenant: %s  %s (changed tasks: %s)"
            % (n, "role_" + mode, r["seconds"], per_tenant_calls(r, n), r["summary"], r["changed_tasks"]),
            flush=True,
        )
    expect_create = "%d tenants: %d created, 0 changed, 0 unchanged, 0 failed; users: %d created" % (n, n, 2 * n)
    if (
        not (results["role_create"]["summary"] or "").startswith(expect_create)
        or "%d tenants verified, 0 incomplete" % n not in results["role_create"]["summary"]
    ):
        sys.exit("the role did not provision and verify every tenant: %s" % results["role_create"]["summary"])
    if "%d unchanged" % n not in (results["role_noop"]["summary"] or "") or results["role_noop"]["changed_tasks"]:
        sys.exit("the re-run was not a no-op: %s" % results["role_noop"]["summary"])


def naive(run, n, workers, sfx, results):
    naive_vars = os.path.join(run.work, "naive-fleet.json")
    write_vars(naive_vars, fleet("bn%s" % sfx, n))
    for mode in ("create", "noop"):
        r = run.playbook("naive_%s" % mode, os.path.join(HERE, "naive.yml"), {"pgtikv_tenants_file": naive_vars})
        results["naive_" + mode] = r
        print(
            "N=%-6d %-16s %8.2f s  per tenant: %s (changed tasks: %s)" % (n, "naive_" + mode, r["seconds"], per_tenant_calls(r, n), r["changed_tasks"]),
            flush=True,
        )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", default="100,1000,10000", help="tenant counts for the role and the floor, comma-separated")
    ap.add_argument("--n-naive", type=int, default=100, help="tenants for the naive loop (0: skip it)")
    ap.add_argument("--workers", type=int, default=8, help="bulk module / floor concurrency")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--python", default=sys.executable, help="interpreter for modules and the floor")
    args = ap.parse_args()
    for var in ("PD_ENDPOINTS", "PG_HOST", "PG_PORT", "PGTIKV_STACK_DIR"):
        if not os.environ.get(var):
            sys.exit("%s is not set: source the stack's env.sh (tests/benchmark/run does)" % var)
    sizes = [int(x) for x in args.n.split(",") if x.strip()]

    work = tempfile.mkdtemp(prefix="pgtikv-bench-")
    run = Runner(work, args.python, DoubleLog(os.path.join(os.environ["PGTIKV_STACK_DIR"], "logs", "double.log")))
    sfx = secrets.token_hex(2)
    load = os.getloadavg()
    everything = {"n": sizes, "n_naive": args.n_naive, "workers": args.workers, "nproc": os.cpu_count(), "load_before": load, "runs": {}}
    print(
        "work dir %s; N=%s, N_naive=%d, workers=%d, %d CPUs, load average before: %.2f %.2f %.2f"
        % (work, sizes, args.n_naive, args.workers, os.cpu_count(), load[0], load[1], load[2]),
        flush=True,
    )
    base = run.playbook("baseline", os.path.join(HERE, "baseline.yml"), {})
    everything["ansible_baseline"] = base
    print("ansible-playbook startup (one module task): %.2f s" % base["seconds"], flush=True)

    for n in sizes:
        everything["runs"][n] = results = {}
        measure(run, n, args.workers, sfx, results)
        if n == args.n_naive:
            naive(run, n, args.workers, sfx, results)
    everything["load_after"] = os.getloadavg()

    rows = []
    print()
    print("| Run | N | Wall time | Per tenant | Logins | Statements | Startup probes | PD requests | Peak RSS of the module process |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        results = everything["runs"][n]
        names = [
            ("role_create", "tenants role, from empty"),
            ("role_noop", "tenants role, no-op re-run"),
            ("floor_create", "floor, from empty"),
            ("floor_noop", "floor, no-op"),
        ]
        names = [(key, name) for key, name in names if key in results]
        if "naive_create" in results:
            names += [("naive_create", "naive loop, from empty"), ("naive_noop", "naive loop, no-op re-run")]
        for key, name in names:
            r = results[key]
            kib = r["rss_kib"] if isinstance(r["rss_kib"], int) else max(list(r["rss_kib"].values()) or [0])
            calls = per_tenant_calls(r, n)
            rows.append((key, n, r["seconds"]))
            print(
                "| %s | %d | %.1f s | %.2f ms | %g | %g | %g | %g | %.0f MiB%s |"
                % (
                    name,
                    n,
                    r["seconds"],
                    r["seconds"] * 1000.0 / n,
                    calls["logins"],
                    calls["statements"],
                    calls["startup_probes"],
                    calls["pd_requests"],
                    kib / 1024.0,
                    " (whole script)" if key.startswith("floor") else "",
                )
            )

    def secs(n, key):
        return everything["runs"].get(n, {}).get(key, {}).get("seconds")

    ratios, targets = {}, {}
    print()
    print("| Ratio | Measured | Target |")
    print("|---|---:|---:|")
    for n in sizes:
        for mode in ("create", "noop"):
            if "role_" + mode not in everything["runs"][n]:
                continue
            ratios["role_vs_floor_%s_%d" % (mode, n)] = r = secs(n, "role_" + mode) / secs(n, "floor_" + mode)
            print("| role / floor, %s, N=%d | %.2fx | %s |" % ("from empty" if mode == "create" else "no-op", n, r, "<= 1.5x" if n == 10000 else ""))
    if 1000 in sizes and 10000 in sizes:
        for mode in ("create", "noop"):
            if secs(10000, "role_" + mode) is None:
                continue
            r = (secs(10000, "role_" + mode) / 10000.0) / (secs(1000, "role_" + mode) / 1000.0)
            ratios["per_tenant_10000_vs_1000_%s" % mode] = r
            print("| role per tenant, N=10,000 / N=1,000, %s | %.2fx | <= 1.3x |" % ("from empty" if mode == "create" else "no-op", r))
            targets["per tenant at 10,000 within 1.3x of 1,000 (%s)" % mode] = r <= 1.3
    if args.n_naive in sizes and "naive_create" in everything["runs"][args.n_naive]:
        nn = args.n_naive
        for mode in ("create", "noop"):
            r = secs(nn, "naive_" + mode) / secs(nn, "role_" + mode)
            ratios["naive_vs_role_%s_%d" % (mode, nn)] = r
            print("| naive loop / role, %s, N=%d | %.1fx | |" % ("from empty" if mode == "create" else "no-op", nn, r))
    if 1000 in sizes:
        targets["N=1,000 from empty <= 10 s"] = secs(1000, "role_create") <= 10
        targets["N=1,000 no-op <= 3 s"] = secs(1000, "role_noop") <= 3
    if 10000 in sizes:
        ran = [m for m in ("create", "noop") if secs(10000, "role_" + m) is not None]
        if "create" in ran:
            targets["N=10,000 from empty <= 120 s"] = secs(10000, "role_create") <= 120
        targets["N=10,000 no-op <= 25 s"] = secs(10000, "role_noop") <= 25
        rss = max(everything["runs"][10000]["role_%s" % m]["rss_kib"].get("pg_tikv_tenants", 0) for m in ran)
        targets["N=10,000 peak RSS of the module <= 150 MiB (%.0f MiB)" % (rss / 1024.0)] = rss <= 150 * 1024
        for mode in ran:
            targets["N=10,000 role within 1.5x of the floor (%s)" % mode] = ratios["role_vs_floor_%s_10000" % mode] <= 1.5
    everything["ratios"] = ratios
    everything["targets"] = targets
    print()
    load = everything["load_after"]
    print(
        "ansible-playbook startup alone: %.2f s; %d CPUs; bulk module workers: %d; load average after: "
        "%.2f %.2f %.2f" % (base["seconds"], os.cpu_count(), args.workers, load[0], load[1], load[2])
    )
    for name, ok in targets.items():
        print("  %-64s %s" % (name, "met" if ok else "MISSED"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(everything, fh, indent=2)
        print("results: %s" % args.json)


if __name__ == "__main__":
    main()
