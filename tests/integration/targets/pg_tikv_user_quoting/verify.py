#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Independent verification of the quoting suite (plain psycopg2, no collection code).

  verify.py CONFIG CASES STATE snapshot   PostgreSQL: record every pg_authid row;
                                          double: (re)create the sentinel role by hand
  verify.py CONFIG CASES STATE present    every case logs in with exactly its password,
                                          nothing else created or changed
  verify.py CONFIG CASES STATE absent     every case is gone; PostgreSQL is back to the snapshot

Never prints a password: cases are named by index. Logins and the existence
probe are the shared second client's (setup_verifiers/files/pgcheck.py).
"""

import json
import os
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "setup_verifiers", "files"))
from pgcheck import connect, login_outcome, role_exists  # noqa: E402


def login(host, port, user, password):
    """ok | nologin | refused | error: <detail>"""
    got = login_outcome(host, port, user, password)
    return got["outcome"] + (": " + got["detail"] if "detail" in got else "")


def plain_literal(s):
    return "'" + s.replace("'", "''") + "'"


def ident(s):
    return '"' + s.replace('"', '""') + '"'


def wrong_variants(pw):
    out = [pw + "x", pw[:-1], "x" + pw]
    if "'" in pw:
        out.append(pw.replace("'", "''"))
    if "\\" in pw:
        out.append(pw.replace("\\", "\\\\"))
    if pw != pw.strip():
        out.append(pw.strip())
    return [w for w in out if w and w != pw]


def pg_roles(cfg):
    c = connect(cfg["postgres_host"], cfg["postgres_port"], cfg["postgres_user"], cfg["postgres_password"])
    with c.cursor() as cur:
        cur.execute(
            "SELECT rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, "
            "rolbypassrls, rolconnlimit, rolpassword, rolvaliduntil::text FROM pg_authid"
        )
        rows = {r[0]: list(r[1:]) for r in cur.fetchall()}
    c.close()
    return rows


def double_exists(cfg, admin, name):
    c = connect(cfg["pg_host"], cfg["pg_port"], admin[0], admin[1])
    try:
        return role_exists(c, name)
    finally:
        c.close()


def main(cfg_path, cases_path, state_path, mode):
    cfg = yaml.safe_load(open(cfg_path))
    data = json.load(open(cases_path))
    cases = data["cases"]
    tenant = data["tenant"]
    admin = (tenant + ".admin", data["admin_password"])
    sentinel = data["sentinel"]
    failures = []

    if mode == "snapshot":
        json.dump({"pg": pg_roles(cfg)}, open(state_path, "w"))
        c = connect(cfg["pg_host"], cfg["pg_port"], *admin)
        with c.cursor() as cur:
            cur.execute("CREATE ROLE %s WITH LOGIN PASSWORD %s" % (ident(sentinel["name"]), plain_literal(sentinel["password"])))
        c.close()
        if login(cfg["pg_host"], cfg["pg_port"], tenant + "." + sentinel["name"], sentinel["password"]) != "ok":
            failures.append("double: sentinel cannot log in after creation")
        # PostgreSQL: a sentinel too (the injection payloads aim at it).
        c = connect(cfg["postgres_host"], cfg["postgres_port"], cfg["postgres_user"], cfg["postgres_password"])
        with c.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (sentinel["name"],))
            if not cur.fetchone():
                cur.execute("CREATE ROLE %s WITH LOGIN" % ident(sentinel["name"]))
            cur.execute("ALTER ROLE %s WITH LOGIN PASSWORD %%s" % ident(sentinel["name"]), (sentinel["password"],))
        c.close()
        json.dump({"pg": pg_roles(cfg)}, open(state_path, "w"))
        print("snapshot: %d PostgreSQL roles; sentinel ready on both servers" % len(json.load(open(state_path))["pg"]))
    else:
        before = json.load(open(state_path))["pg"]
        after = pg_roles(cfg)
        names = {c["name"] for c in cases}
        logins = 0
        for i, case in enumerate(cases):
            for kind, host, port, user in (
                ("postgres", cfg["postgres_host"], cfg["postgres_port"], case["name"]),
                ("double", cfg["pg_host"], cfg["pg_port"], tenant + "." + case["name"]),
            ):
                if mode == "present":
                    got = login(host, port, user, case["password"])
                    logins += 1
                    if got != "ok":
                        failures.append("%s case %d: login with its password gave %s" % (kind, i, got))
                    for j, wrong in enumerate(wrong_variants(case["password"])):
                        got = login(host, port, user, wrong)
                        logins += 1
                        if got != "refused":
                            failures.append("%s case %d: wrong variant %d gave %s" % (kind, i, j, got))
            exists_double = double_exists(cfg, admin, case["name"])
            if exists_double != (mode == "present"):
                failures.append("double case %d: exists=%s" % (i, exists_double))
            if (case["name"] in after) != (mode == "present"):
                failures.append("postgres case %d: in catalog=%s" % (i, case["name"] in after))
        # Nothing else created or changed (PostgreSQL: the whole catalog).
        expected_names = set(before) | (names if mode == "present" else set())
        if set(after) != expected_names:
            extra = sorted(set(after) - expected_names)
            missing = sorted(expected_names - set(after))
            failures.append("postgres: unexpected roles %r, missing roles %r" % (extra, missing))
        changed = [n for n in before if n in after and before[n] != after[n]]
        if changed:
            failures.append("postgres: pre-existing roles changed: %r" % changed)
        for case in cases:
            if mode == "present" and case["name"] in after:
                row = after[case["name"]]
                # rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, ... rolpassword
                if row[0] or row[2] or row[3] or not row[4] or not str(row[8]).startswith("SCRAM-SHA-256$"):
                    failures.append("postgres: attributes of a case role are not the defaults: %r" % row[:8])
        # Double: the injection targets are untouched, nothing named by a payload exists.
        for kind, host, port, user in (
            ("postgres", cfg["postgres_host"], cfg["postgres_port"], sentinel["name"]),
            ("double", cfg["pg_host"], cfg["pg_port"], tenant + "." + sentinel["name"]),
        ):
            if login(host, port, user, sentinel["password"]) != "ok":
                failures.append("%s: the sentinel no longer logs in with its password" % kind)
            if login(host, port, user, "pwned") == "ok":
                failures.append("%s: the sentinel logs in with 'pwned'" % kind)
        # A single-quoted name must keep its quotes: pg-tikv would create the
        # bare name if it were sent as a string literal (§3.6).
        bare = [c["name"][1:-1] for c in cases if len(c["name"]) > 2 and c["name"][0] == c["name"][-1] == "'"]
        if not bare:
            failures.append("no case with a single-quoted name")
        for probe in ("evil", "pwned", "x", "sentinel; --") + tuple(bare):
            if double_exists(cfg, admin, probe):
                failures.append("double: unexpected role %r exists" % probe)
        if login(cfg["pg_host"], cfg["pg_port"], *admin) != "ok":
            failures.append("double: the tenant admin password changed")
        print("%s: %d cases x 2 servers checked, %d test logins, %d PostgreSQL roles" % (mode, len(cases), logins, len(after)))
    if failures:
        print("FAILURES:\n  " + "\n  ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main(*sys.argv[1:5])
