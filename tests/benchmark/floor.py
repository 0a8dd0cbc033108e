#!/usr/bin/env python
# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The floor: the least work that provisions a fleet and proves it, by a plain script.

Not the module's calls: what any tool has to do at least, with requests and
psycopg2, the same thread pool size, no Ansible and no collection code. Per
tenant (an admin and two users, every password declared):

from empty                                     no-op re-run
- PD: create the keyspace (POST)               - (nothing to write)
- log in as admin/admin (the new keyspace's    - log in as admin with its
  bootstrap credential) and, on that session,    password
  set admin's password and create each user
- prove: admin logs in with its password,     - prove: admin/admin is refused,
  admin/admin is refused, each user logs in      each user logs in

Per run: one paginated list of PD's keyspaces (what exists), and one PD
request after the SQL work, because with PD down pg-tikv refuses every login
like a wrong password: a refusal proves something only while PD answers.

So from empty 5 logins and 3 statements per tenant, a no-op 4 logins and no
statement, which is the limit the module is measured against.

Usage: floor.py FLEET.json create|noop WORKERS PD_URL PG_HOST PG_PORT
Prints {"seconds": ..., "tenants": N, "logins": ..., "statements": ..., "pd_requests": ...}.
"""

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import requests

LOCK = threading.Lock()
COUNTS = {"logins": 0, "statements": 0, "pd_requests": 0}


def count(key):
    with LOCK:
        COUNTS[key] += 1


class Floor:
    def __init__(self, pd_url, host, port, workers):
        self.pd_url = pd_url
        self.host = host
        self.port = port
        self.pd = requests.Session()
        self.pd.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=max(10, workers)))

    def pd_call(self, method, path, **kwargs):
        count("pd_requests")
        resp = self.pd.request(method, self.pd_url + path, timeout=10, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def keyspace_names(self):
        names, token = set(), ""
        while True:
            params = {"limit": "127"}
            if token:
                params["page_token"] = token
            page = self.pd_call("GET", "/pd/api/v2/keyspaces", params=params)
            names.update(k["name"] for k in page.get("keyspaces") or [])
            token = page.get("next_page_token") or ""
            if not token:
                return names

    def login(self, tenant, user, password):
        """An open connection, or None when the login is refused."""
        count("logins")
        try:
            conn = psycopg2.connect(host=self.host, port=self.port, user="%s.%s" % (tenant, user), password=password, dbname="postgres", connect_timeout=10)
        except psycopg2.OperationalError as exc:
            if "password authentication failed" in str(exc).lower():
                return None
            raise
        conn.autocommit = True
        return conn

    def logs_in(self, tenant, user, password):
        conn = self.login(tenant, user, password)
        if conn is None:
            return False
        conn.close()
        return True

    @staticmethod
    def run(conn, statement):
        count("statements")
        with conn.cursor() as cur:
            cur.execute(statement)

    def prove_bootstrap_refused_and_users(self, t):
        assert not self.logs_in(t["name"], "admin", "admin"), "admin/admin logs in to %s" % t["name"]
        for user in t["users"]:
            assert self.logs_in(t["name"], user["name"], user["password"]), "%s.%s" % (t["name"], user["name"])

    def create(self, t):
        self.pd_call("POST", "/pd/api/v2/keyspaces", json={"name": t["name"]})
        conn = self.login(t["name"], "admin", "admin")
        try:
            self.run(conn, 'ALTER ROLE "admin" WITH PASSWORD %s' % literal(t["admin_password"]))
            for user in t["users"]:
                self.run(conn, 'CREATE ROLE "%s" WITH LOGIN PASSWORD %s' % (user["name"], literal(user["password"])))
        finally:
            conn.close()
        assert self.logs_in(t["name"], "admin", t["admin_password"])
        self.prove_bootstrap_refused_and_users(t)

    def noop(self, t):
        assert self.logs_in(t["name"], "admin", t["admin_password"])
        self.prove_bootstrap_refused_and_users(t)


def literal(value):
    """pg-tikv takes only plain '...' literals (the benchmark's passwords are URL-safe)."""
    return "'" + value.replace("'", "''") + "'"


def main():
    fleet_path, mode, workers, pd_url, host, port = sys.argv[1:7]
    workers = int(workers)
    with open(fleet_path) as fh:
        fleet = json.load(fh)
    started = time.monotonic()
    floor = Floor(pd_url, host, int(port), workers)
    existing = floor.keyspace_names()
    if mode == "create":
        assert not existing & {t["name"] for t in fleet}, "the floor's tenants must be new"
        work = floor.create
    else:
        assert {t["name"] for t in fleet} <= existing
        work = floor.noop
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, fleet))
    floor.pd_call("GET", "/pd/api/v1/version")  # PD still answers: the refusals above prove something
    print(json.dumps(dict(COUNTS, seconds=round(time.monotonic() - started, 3), tenants=len(fleet))))


if __name__ == "__main__":
    main()
