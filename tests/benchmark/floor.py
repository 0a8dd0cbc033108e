#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor: the bulk module's HTTP and SQL calls, made by a plain script.

No Ansible and no collection code: requests and psycopg2 only, the same
thread pool size, and per tenant exactly the calls that pg_tikv_tenants
makes with verify=true (counted by bench.py --count-calls on the same stack):

from empty (9 logins, 7 statements)          no-op re-run (8 logins, 4 statements)
- PD: paginated list (127 per page), version  - PD: paginated list
- TCP pre-flight to pg-tikv, POST keyspace     - login test admin (its password)
- ONE session admin/admin: SELECT version(),   - session admin: SELECT version(),
  pg_roles probe, ALTER ROLE admin PASSWORD      pg_roles probe
- login tests: admin new (ok), admin/admin     - per user: ALTER ROLE .. RESET ALL
  (refused)                                      (exists), login test (ok)
- same session, per user: ALTER ROLE .. RESET  - verification: 4 login tests
  ALL (missing), CREATE ROLE, login test
- verification: admin ok, admin/admin
  refused, each user ok (4 login tests)

Usage: floor.py FLEET.json create|noop WORKERS PD_URL PG_HOST PG_PORT
Prints {"seconds": ..., "tenants": N, "connects": ..., "statements": ..., "pd_requests": ...}.
"""

import json
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import requests

LOCK = threading.Lock()
COUNTS = {"connects": 0, "statements": 0, "pd_requests": 0}


def count(key, n=1):
    with LOCK:
        COUNTS[key] += n


def login(host, port, tenant, user, password):
    count("connects")
    try:
        conn = psycopg2.connect(host=host, port=port, user="%s.%s" % (tenant, user), password=password,
                                dbname="postgres", sslmode="prefer", connect_timeout=10)
    except psycopg2.OperationalError as exc:
        if "password authentication failed" in str(exc).lower():
            return None
        raise
    conn.autocommit = True
    return conn


def probe(host, port, tenant, user, password):
    conn = login(host, port, tenant, user, password)
    if conn is None:
        return "refused"
    conn.close()
    return "ok"


def run(conn, sql, fail_ok=False):
    count("statements")
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
        except psycopg2.Error:
            if not fail_ok:
                raise
            return False
        if cur.description is not None:
            cur.fetchall()
    return True


def session(host, port, tenant, password):
    conn = login(host, port, tenant, "admin", password)
    assert conn is not None, "admin login refused for %s" % tenant
    run(conn, "SELECT version()")
    run(conn, "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit "
              "FROM pg_catalog.pg_roles WHERE rolname = 'postgres' OR true LIMIT 1", fail_ok=True)
    return conn


def lit(value):
    return "'" + value.replace("'", "''") + "'"


def verify(host, port, t):
    assert probe(host, port, t["name"], "admin", t["admin_password"]) == "ok"
    assert probe(host, port, t["name"], "admin", "admin") == "refused"
    for u in t["users"]:
        assert probe(host, port, t["name"], u["name"], u["password"]) == "ok"


def create(pd, host, port, t):
    # reconcile_tenant's pre-flight: is pg-tikv's port open before creating a keyspace?
    socket.create_connection((host, port), timeout=10).close()
    count("pd_requests")
    resp = pd.post(PD_URL + "/pd/api/v2/keyspaces", json={"name": t["name"]}, timeout=10)
    resp.raise_for_status()
    conn = session(host, port, t["name"], "admin")
    run(conn, 'ALTER ROLE "admin" WITH PASSWORD %s' % lit(t["admin_password"]))
    assert probe(host, port, t["name"], "admin", t["admin_password"]) == "ok"
    assert probe(host, port, t["name"], "admin", "admin") == "refused"
    for u in t["users"]:
        exists = run(conn, 'ALTER ROLE "%s" RESET ALL' % u["name"], fail_ok=True)
        assert not exists
        run(conn, 'CREATE ROLE "%s" WITH LOGIN PASSWORD %s' % (u["name"], lit(u["password"])))
        assert probe(host, port, t["name"], u["name"], u["password"]) == "ok"
    conn.close()
    verify(host, port, t)


def noop(pd, host, port, t):
    assert probe(host, port, t["name"], "admin", t["admin_password"]) == "ok"
    conn = session(host, port, t["name"], t["admin_password"])
    for u in t["users"]:
        assert run(conn, 'ALTER ROLE "%s" RESET ALL' % u["name"], fail_ok=True)
        assert probe(host, port, t["name"], u["name"], u["password"]) == "ok"
    conn.close()
    verify(host, port, t)


def list_all(pd):
    token, out = "", []
    while True:
        count("pd_requests")
        params = {"limit": "127"}
        if token:
            params["page_token"] = token
        data = pd.get(PD_URL + "/pd/api/v2/keyspaces", params=params, timeout=10).json()
        out.extend(data.get("keyspaces") or [])
        token = data.get("next_page_token") or ""
        if not token:
            return out


def main():
    global PD_URL
    fleet_path, mode, workers, PD_URL, host, port = sys.argv[1:7]
    workers, port = int(workers), int(port)
    fleet = json.load(open(fleet_path))
    started = time.monotonic()
    pd = requests.Session()
    pd.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max(10, workers)))
    existing = {k["name"] for k in list_all(pd)}
    if mode == "create":
        count("pd_requests")
        pd.get(PD_URL + "/pd/api/v1/version", timeout=10)
        assert not existing & {t["name"] for t in fleet}
        work = create
    else:
        work = noop
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda t: work(pd, host, port, t), fleet))
    print(json.dumps(dict(COUNTS, seconds=round(time.monotonic() - started, 3), tenants=len(fleet))))


if __name__ == "__main__":
    main()
