#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A second SQL client for the integration tests: plain psycopg2, no collection code.

  logincheck.py login HOST PORT LOGIN     password on stdin -> {"outcome": "ok"|"refused"|"nologin"|"error"}
  logincheck.py dsn                       libpq URI on stdin -> the same
  logincheck.py sql HOST PORT LOGIN SQL   password on stdin; runs SQL (its text must hold no secret)

Secrets come on stdin only: an Ansible ``environment:`` value is printed in the
``EXEC`` line of ``-vvv`` output even with ``no_log: true``; stdin is a
module argument, which no_log hides. The output never contains the secret.
"""

import json
import sys

import psycopg2


def outcome(connect):
    try:
        conn = connect()
    except psycopg2.OperationalError as exc:
        low = str(exc).lower()
        if "not permitted to log in" in low:
            return {"outcome": "nologin"}
        if "password authentication failed" in low:
            return {"outcome": "refused"}
        return {"outcome": "error", "detail": " ".join(str(exc).split())[:300]}
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT version()")
            version = cur.fetchone()[0]
    finally:
        conn.close()
    return {"outcome": "ok", "version": version}


def main():
    mode = sys.argv[1]
    secret = sys.stdin.read()
    if mode == "dsn":
        result = outcome(lambda: psycopg2.connect(secret, connect_timeout=10))
    else:
        host, port, login = sys.argv[2], int(sys.argv[3]), sys.argv[4]

        def connect():
            return psycopg2.connect(host=host, port=port, user=login, password=secret, dbname="postgres",
                                    sslmode="disable", connect_timeout=10)

        if mode == "login":
            result = outcome(connect)
        elif mode == "sql":
            conn = connect()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sys.argv[5])
            conn.close()
            result = {"outcome": "ok"}
        else:
            raise SystemExit("unknown mode %r" % mode)
    if secret and secret in json.dumps(result):
        result = {"outcome": "error", "detail": "(suppressed: contained the secret)"}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
