"""Readiness gate of the tenant-bootstrap hook: waits until PD reports a
healthy member (and, with BOOTSTRAP_WAIT_TIKV=true, a TiKV store that is Up)
and pg-tikv accepts TCP connections, or gives up after BOOTSTRAP_WAIT_SECONDS
with a message saying which one never answered.

Environment: PD_ENDPOINTS (comma-separated, with or without http://),
PG_HOST, PG_PORT, BOOTSTRAP_WAIT_SECONDS, BOOTSTRAP_WAIT_TIKV. Standard
library only.
"""

import json
import os
import socket
import sys
import time
import urllib.request


def pd_healthy(endpoints):
    """The first endpoint whose /pd/api/v1/health lists a healthy member, or None and the last error."""
    error = "no PD endpoint configured"
    for endpoint in endpoints:
        base = endpoint if "://" in endpoint else "http://" + endpoint
        url = base.rstrip("/") + "/pd/api/v1/health"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                members = json.load(response)
        except (OSError, ValueError) as exc:
            error = "%s: %s" % (url, exc)
            continue
        if any(member.get("health") for member in members):
            return endpoint, None
        error = "%s: no healthy PD member" % url
    return None, error


def tikv_up(endpoint):
    """None when PD knows a TiKV store that is Up, else why not."""
    base = endpoint if "://" in endpoint else "http://" + endpoint
    url = base.rstrip("/") + "/pd/api/v1/stores"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            stores = json.load(response).get("stores") or []
    except (OSError, ValueError) as exc:
        return "%s: %s" % (url, exc)
    states = [s.get("store", {}).get("state_name", "?") for s in stores]
    if "Up" in states:
        return None
    return "no TiKV store is Up (stores: %s)" % (", ".join(states) or "none")


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=5):
            return None
    except OSError as exc:
        return "%s:%d: %s" % (host, port, exc)


def main():
    endpoints = [e.strip() for e in os.environ.get("PD_ENDPOINTS", "").split(",") if e.strip()]
    host, port = os.environ["PG_HOST"], int(os.environ["PG_PORT"])
    deadline = time.monotonic() + int(os.environ.get("BOOTSTRAP_WAIT_SECONDS", "300"))
    want_tikv = os.environ.get("BOOTSTRAP_WAIT_TIKV", "true").lower() == "true"
    while True:
        healthy, pd_error = pd_healthy(endpoints)
        if healthy and want_tikv:
            pd_error = tikv_up(healthy)
            healthy = None if pd_error else healthy
        sql_error = port_open(host, port)
        if healthy and sql_error is None:
            print("PD healthy at %s%s; pg-tikv accepts connections at %s:%d" % (healthy, " with a TiKV store Up" if want_tikv else "", host, port))
            return 0
        if time.monotonic() >= deadline:
            print("gave up waiting: " + "; ".join(e for e in (pd_error, sql_error) if e), file=sys.stderr)
            return 1
        time.sleep(2)


if __name__ == "__main__":
    sys.exit(main())
