# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double with the REAL pd-server of the stack killed and
restarted (reference §1.4a).

Every pg-tikv transaction needs a timestamp from PD, so with PD down even a
tenant used a second ago stops working: logins fail with FATAL XX000, and
statements on open sessions with ERROR XX000. When PD is back, the same
sessions and new logins work again without restarting the server.

The stack's pd-server is SIGKILLed (found by its pid file, checked against
its command line) and brought back by ``tests/stack/start``, which is also
run on any failure, so the stack is healthy when the test ends.
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import time
from contextlib import closing

import pytest
import requests

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
STACK_START = REPO_ROOT / "tests" / "stack" / "start"


def _stack_pd_pid(stack_dir):
    pid = int(pathlib.Path(stack_dir, "run", "pd.pid").read_text().strip())
    cmdline = pathlib.Path("/proc/%d/cmdline" % pid).read_bytes().replace(b"\0", b" ").decode()
    # Only our own pd-server: the binary and this stack's data dir (pid reuse guard).
    assert "pd-server" in cmdline and str(pathlib.Path(stack_dir, "pd", "data")) in cmdline, cmdline
    return pid


def _pd_answers(pd_url):
    try:
        return requests.get(pd_url + "/pd/api/v2/keyspaces/DEFAULT", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _restart_stack(stack_dir):
    env = dict(os.environ, PGTIKV_STACK_DIR=stack_dir)
    return subprocess.run([str(STACK_START)], env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_real_pd_killed_and_restarted(double, stack_env, pd_url, make_keyspace, helpers):
    stack_dir = stack_env["PGTIKV_STACK_DIR"]  # env.sh always sets it
    cached = make_keyspace("outg")
    never_seen = make_keyspace("nevr")  # exists in PD, but this double has never loaded it
    assert helpers.raw_login(double.port, cached + ".admin", "admin")["error"] is None
    conn = helpers.pg_connect(double.port, cached + ".admin", "admin")
    killed = False
    try:
        with closing(conn):
            conn.cursor().execute("CREATE ROLE before_outage LOGIN PASSWORD 'b'")

            os.kill(_stack_pd_pid(stack_dir), signal.SIGKILL)
            killed = True
            deadline = time.monotonic() + 20
            while _pd_answers(pd_url):
                assert time.monotonic() < deadline, "PD still answers after SIGKILL"
                time.sleep(0.1)

            # A statement on the open session (tenant used a second ago): ERROR XX000.
            helpers.outage_statements_fail(conn)
            # A login to the cached tenant: FATAL XX000, even with the right password.
            res = helpers.raw_login(double.port, cached + ".admin", "admin")
            assert (res["error"]["S"], res["error"]["C"]) == ("FATAL", "XX000"), res
            assert res["error"]["M"].startswith("Failed to begin transaction: ")
            res = helpers.raw_login(double.port, cached + ".before_outage", "b")
            assert res["error"]["C"] == "XX000"
            # A login to a tenant not yet cached: 28P01, as for a missing tenant (§1.4).
            res = helpers.raw_login(double.port, never_seen + ".admin", "admin")
            assert res["error"] == {"S": "FATAL", "C": "28P01", "M": 'Password authentication failed for user "admin"'}

            started = _restart_stack(stack_dir)
            assert started.returncode == 0, started.stderr[-3000:]
            killed = False
            assert _pd_answers(pd_url)

            # Same session, no reconnect, no restart of the double.
            helpers.outage_session_works_again(conn)
        assert helpers.raw_login(double.port, cached + ".before_outage", "b")["error"] is None
        assert helpers.raw_login(double.port, never_seen + ".admin", "admin")["error"] is None
    finally:
        if killed or not _pd_answers(pd_url):
            _restart_stack(stack_dir)
    # The whole stack is healthy again: PD keyspace API and the stack's own double.
    assert _pd_answers(pd_url)
    port = int(stack_env.get("PG_PORT") or 0)
    assert helpers.raw_login(port, cached + ".admin", "admin")["error"] is None
