# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: user stores survive a restart (``--state-file``).

Upstream keeps users in TiKV (reference §2.4), so a server restart
keeps them; the double persists one JSON file per keyspace, written
atomically. Observed over the wire (psql/psycopg2) across two processes.
"""

from __future__ import annotations

import json
import os
from contextlib import closing


def test_users_survive_a_restart(double_factory, tmp_path, make_keyspace, helpers):
    """§2.4 (storage): created, altered, renamed and dropped roles are
    as they were after a restart on the same state file."""
    state = tmp_path / "state" / "users.json"
    ks = make_keyspace()
    first = double_factory(name="double-persist-1", state_file=state)
    with closing(helpers.pg_connect(first.port, ks + ".admin", "admin")) as conn:
        cur = conn.cursor()
        cur.execute("ALTER ROLE admin PASSWORD 'rotated'")
        cur.execute("CREATE ROLE stay LOGIN PASSWORD 'stay-pw'")
        cur.execute("CREATE ROLE gone LOGIN PASSWORD 'g'")
        cur.execute("DROP ROLE gone")
        cur.execute("CREATE ROLE before LOGIN PASSWORD 'b'")
        cur.execute("ALTER ROLE before RENAME TO after")
    first.stop()

    second = double_factory(name="double-persist-2", state_file=state)
    assert helpers.run_psql(second.port, ks + ".admin", "rotated", "SELECT 1").returncode == 0
    assert helpers.raw_login(second.port, ks + ".admin", "admin")["error"]["C"] == "28P01"
    assert helpers.run_psql(second.port, ks + ".stay", "stay-pw", "SELECT 1").returncode == 0
    assert helpers.run_psql(second.port, ks + ".after", "b", "SELECT 1").returncode == 0
    assert helpers.raw_login(second.port, ks + ".gone", "g")["error"]["C"] == "28P01"
    assert helpers.raw_login(second.port, ks + ".before", "b")["error"]["C"] == "28P01"


def test_state_file_layout_is_json_and_atomic(double_factory, tmp_path, make_keyspace, helpers):
    """§2.4 (storage): the state file is a JSON manifest; each keyspace has its own JSON file
    under ``<state-file>.d`` (so a write costs the same with 1 or 1,000
    tenants); atomic writes leave no temporary files behind."""
    state = tmp_path / "users.json"
    dbl = double_factory(name="double-layout", state_file=state)
    ks = make_keyspace()
    with closing(helpers.pg_connect(dbl.port, ks + ".admin", "admin")) as conn:
        for i in range(5):
            conn.cursor().execute("CREATE ROLE r%d" % i)
    manifest = json.loads(state.read_text())
    assert manifest["format"] == "pgtikv-double-state"
    files = sorted(os.listdir(str(state) + ".d"))
    mine = [f for f in files if f.endswith("-%s.json" % ks.encode().hex())]
    assert len(mine) == 1
    doc = json.loads((tmp_path / "users.json.d" / mine[0]).read_text())
    assert doc["keyspace"] == ks and sorted(doc["users"]) == ["admin", "r0", "r1", "r2", "r3", "r4"]
    assert not [f for f in files if ".tmp" in f]
