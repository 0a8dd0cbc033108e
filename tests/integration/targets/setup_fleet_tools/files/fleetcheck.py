#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Second client for the fleet tests: plain psycopg2, no collection code.

Everything secret comes as JSON on stdin, nothing secret is printed.

  fleetcheck.py logins    {"host", "port", "checks": [{"login", "password", "expect"}]}
      -> {"results": [{"login", "expect", "outcome"}], "mismatches": [...]}
         outcome: ok | refused | nologin | error
  fleetcheck.py sql       {"host", "port", "login", "password", "statements": [...]}
      -> {"outcome": "ok"} or {"outcome": "error", "detail": ...}
"""

import json
import sys

import psycopg2


def connect(host, port, login, password):
    return psycopg2.connect(host=host, port=int(port), user=login, password=password, dbname="postgres",
                            sslmode="disable", connect_timeout=10)


def outcome(host, port, login, password):
    try:
        conn = connect(host, port, login, password)
    except psycopg2.OperationalError as exc:
        low = str(exc).lower()
        if "not permitted to log in" in low:
            return "nologin"
        if "password authentication failed" in low:
            return "refused"
        return "error"
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    finally:
        conn.close()
    return "ok"


def scrub(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "********")
    return text


def main():
    mode = sys.argv[1]
    req = json.loads(sys.stdin.read())
    if mode == "logins":
        results = []
        for c in req["checks"]:
            got = outcome(req["host"], req["port"], c["login"], c["password"])
            results.append({"login": c["login"], "expect": c["expect"], "outcome": got})
        out = {"results": results, "mismatches": [r for r in results if r["outcome"] != r["expect"]]}
        secrets = [c["password"] for c in req["checks"]]
    elif mode == "sql":
        secrets = [req["password"]]
        try:
            conn = connect(req["host"], req["port"], req["login"], req["password"])
            conn.autocommit = True
            with conn.cursor() as cur:
                for stmt in req["statements"]:
                    cur.execute(stmt)
            conn.close()
            out = {"outcome": "ok"}
        except psycopg2.Error as exc:
            out = {"outcome": "error", "detail": " ".join(str(exc).split())[:300]}
    else:
        raise SystemExit("unknown mode %r" % mode)
    print(scrub(json.dumps(out), secrets))


if __name__ == "__main__":
    main()
