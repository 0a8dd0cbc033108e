#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An independent SQL client for the integration tests (plain psycopg2, no collection code).

  sqlcheck.py login            -> {"outcome": "ok" | "refused" | "nologin", "detail": ...}
  sqlcheck.py role NAME        -> catalog row of NAME (PostgreSQL): {"exists": ..., "login": ..., ...}
  sqlcheck.py exists NAME      -> {"exists": bool} via ALTER ROLE "NAME" RESET ALL (pg-tikv double only)
  sqlcheck.py roles            -> {"roles": [names]} from pg_roles (PostgreSQL)

Connection from the environment: SQLCHECK_HOST, SQLCHECK_PORT, SQLCHECK_USER;
the password comes on stdin (never argv nor environment: Ansible prints a
task's environment in the -vvv EXEC line even with no_log). Output never
contains a password.
"""

import json
import os
import sys

import psycopg2

PASSWORD = sys.stdin.read()


def conn():
    c = psycopg2.connect(host=os.environ["SQLCHECK_HOST"], port=int(os.environ["SQLCHECK_PORT"]),
                         user=os.environ["SQLCHECK_USER"], password=PASSWORD,
                         dbname="postgres", sslmode="disable", connect_timeout=10)
    c.autocommit = True
    return c


def login():
    try:
        conn().close()
        return {"outcome": "ok"}
    except psycopg2.OperationalError as e:
        text = str(e)
        low = text.lower()
        if "not permitted to log in" in low:
            return {"outcome": "nologin"}
        if "password authentication failed" in low:
            return {"outcome": "refused"}
        return {"outcome": "error", "detail": text.replace(PASSWORD, "***")}


def role(name):
    c = conn()
    with c.cursor() as cur:
        cur.execute("SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit, rolpassword "
                    "FROM pg_authid WHERE rolname = %s", (name,))
        row = cur.fetchone()
    c.close()
    if row is None:
        return {"exists": False}
    return {"exists": True, "login": row[0], "superuser": row[1], "createdb": row[2], "createrole": row[3],
            "conn_limit": row[4], "password_kind": (row[5] or "").split("$", 1)[0][:13] or None}


def roles():
    c = conn()
    with c.cursor() as cur:
        cur.execute("SELECT rolname FROM pg_roles ORDER BY rolname")
        names = [r[0] for r in cur.fetchall()]
    c.close()
    return {"roles": names}


def exists(name):
    c = conn()
    try:
        with c.cursor() as cur:
            cur.execute('ALTER ROLE "%s" RESET ALL' % name.replace('"', '""'))
        return {"exists": True}
    except psycopg2.Error as e:
        if "does not exist" in str(e):
            return {"exists": False}
        raise
    finally:
        c.close()


if __name__ == "__main__":
    cmd = sys.argv[1]
    out = {"login": login, "role": lambda: role(sys.argv[2]), "exists": lambda: exists(sys.argv[2]),
           "roles": roles}[cmd]()
    print(json.dumps(out))
