# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logins a chart's tenants declare, checked with pgcheck.py (plain psycopg2).

``secret_data`` maps Secret name -> key -> value, as the test created the
Secrets. Every admin logs in with its Secret's password, admin/admin is
refused, every user logs in.
"""

import json
import os
import subprocess
import sys


def login_checks(tenants, secret_data):
    checks = []
    for tenant in tenants:
        ref = tenant["adminPasswordSecret"]
        checks.append({"login": tenant["name"] + ".admin", "password": secret_data[ref["name"]][ref["key"]], "expect": "ok"})
        checks.append({"login": tenant["name"] + ".admin", "password": "admin", "expect": "refused"})
        for user in tenant.get("users", []):
            ref = user["passwordSecret"]
            checks.append({"login": tenant["name"] + "." + user["name"], "password": secret_data[ref["name"]][ref["key"]], "expect": "ok"})
    return checks


def run_logins(tools, host, port, checks):
    """pgcheck.py logins: the passwords go on stdin. Returns its result."""
    res = subprocess.run(
        [sys.executable, os.path.join(tools, "pgcheck.py"), "logins"],
        capture_output=True,
        text=True,
        check=False,
        input=json.dumps({"host": host, "port": port, "checks": checks}),
    )
    if res.returncode:
        sys.exit("pgcheck logins failed: %s" % res.stderr)
    return json.loads(res.stdout)
