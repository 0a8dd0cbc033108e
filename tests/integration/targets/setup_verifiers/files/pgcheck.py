#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The second SQL client of the integration tests: plain psycopg2, none of the collection's code.

Every request is JSON on stdin, with the passwords in it: never argv (the
process list shows it) nor an Ansible ``environment:`` (printed in the EXEC
line of -vvv output even with no_log). Every password of the request is
masked in the output.

  pgcheck.py logins  {"host", "port", "checks": [{"login", "password", "expect"}]}
      -> {"results": [{"login", "expect", "outcome"}], "mismatches": [...]}
         outcome: ok | refused | nologin | error (with "detail"); ok is a login
         that then runs SELECT version()
  pgcheck.py dsn     {"dsn"}: a libpq URI, used as given -> {"outcome"} (as above)
  pgcheck.py sql     {"host", "port", "login", "password", "statements": [...], "secrets": [...]}
      -> {"outcome": "ok"} or {"outcome": "error", "detail": ...}; "secrets"
      (optional, any mode): more strings to mask, e.g. a password in a statement
  pgcheck.py role    {"host", "port", "login", "password", "name"}: NAME's row of
      PostgreSQL's pg_authid -> {"exists", "login", "superuser", "createdb",
      "createrole", "conn_limit", "password_kind"}
  pgcheck.py exists  {..., "name"} -> {"exists": bool} by ALTER ROLE "NAME" RESET ALL
      (pg-tikv has no role catalog)
  pgcheck.py roles   {"host", "port", "login", "password"} -> {"roles": [names]} from pg_roles

Other verifiers import it (connect, login_outcome, role_exists) with this
directory on sys.path.
"""

import json
import sys

import psycopg2
import psycopg2.extensions


def connect(host, port, login, password, dsn=None):
    """An autocommit connection; to ``dsn`` as it is given, when there is one."""
    if dsn is not None:
        conn = psycopg2.connect(dsn, connect_timeout=10)
    else:
        conn = psycopg2.connect(host=host, port=int(port), user=login, password=password, dbname="postgres", sslmode="disable", connect_timeout=10)
    conn.autocommit = True
    return conn


def login_outcome(host, port, login, password, dsn=None):
    """{"outcome": ok | refused | nologin | error[, "detail"]} of one login (then SELECT version())."""
    try:
        conn = connect(host, port, login, password, dsn)
    except psycopg2.OperationalError as exc:
        low = str(exc).lower()
        if "not permitted to log in" in low:
            return {"outcome": "nologin"}
        if "password authentication failed" in low:
            return {"outcome": "refused"}
        return {"outcome": "error", "detail": " ".join(scrub(str(exc), [password, dsn]).split())[:300]}
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version()")
            cur.fetchone()
    finally:
        conn.close()
    return {"outcome": "ok"}


def role_exists(conn, name):
    """pg-tikv has no role catalog: ALTER ROLE ... RESET ALL fails only for a role that does not exist."""
    try:
        with conn.cursor() as cur:
            cur.execute('ALTER ROLE "%s" RESET ALL' % name.replace('"', '""'))
        return True
    except psycopg2.Error as exc:
        if "does not exist" in str(exc):
            return False
        raise


def logins(req):
    results = []
    for check in req["checks"]:
        got = login_outcome(req["host"], req["port"], check["login"], check["password"])
        results.append(dict(got, login=check["login"], expect=check["expect"]))
    return {"results": results, "mismatches": [r for r in results if r["outcome"] != r["expect"]]}


def dsn(req):
    return login_outcome(None, None, None, None, dsn=req["dsn"])


def sql(req):
    try:
        conn = connect(req["host"], req["port"], req["login"], req["password"])
        with conn.cursor() as cur:
            for statement in req["statements"]:
                cur.execute(statement)
        conn.close()
        return {"outcome": "ok"}
    except psycopg2.Error as exc:
        return {"outcome": "error", "detail": " ".join(scrub(str(exc), secrets_of(req)).split())[:300]}


def _query(req, func):
    conn = connect(req["host"], req["port"], req["login"], req["password"])
    try:
        with conn.cursor() as cur:
            return func(conn, cur)
    finally:
        conn.close()


def role(req):
    def read(conn, cur):
        cur.execute("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit, rolpassword FROM pg_authid WHERE rolname = %s", (req["name"],))
        row = cur.fetchone()
        if row is None:
            return {"exists": False}
        return {
            "exists": True,
            "login": row[0],
            "superuser": row[1],
            "createdb": row[2],
            "createrole": row[3],
            "conn_limit": row[4],
            "password_kind": (row[5] or "").split("$", 1)[0][:13] or None,
        }

    return _query(req, read)


def exists(req):
    return _query(req, lambda conn, cur: {"exists": role_exists(conn, req["name"])})


def roles(req):
    def read(conn, cur):
        cur.execute("SELECT rolname FROM pg_roles ORDER BY rolname")
        return {"roles": [r[0] for r in cur.fetchall()]}

    return _query(req, read)


def secrets_of(req):
    """Every secret of a request: the passwords, the DSN (and the password in it),
    and ``secrets``: any other (a password inside a statement)."""
    found = [req.get("password"), req.get("dsn")] + [c.get("password") for c in req.get("checks") or []]
    found += req.get("secrets") or []
    if req.get("dsn"):
        found.append(psycopg2.extensions.parse_dsn(req["dsn"]).get("password"))
    return [s for s in found if s]


def scrub(text, secrets):
    """``text`` with every secret masked, as it is and as JSON escapes it."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        for form in (secret, json.dumps(secret)[1:-1]):
            text = text.replace(form, "********")
    return text


MODES = {"logins": logins, "dsn": dsn, "sql": sql, "role": role, "exists": exists, "roles": roles}


def main():
    mode = sys.argv[1]
    if mode not in MODES:
        raise SystemExit("unknown mode %r (use %s)" % (mode, ", ".join(sorted(MODES))))
    req = json.loads(sys.stdin.read())
    print(scrub(json.dumps(MODES[mode](req)), secrets_of(req)))


if __name__ == "__main__":
    main()
