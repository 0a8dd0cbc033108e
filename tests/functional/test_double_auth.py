# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: authentication (reference §2).

Driven by psql and psycopg2; the raw wire client only reads what no driver
exposes (auth request type, FATAL severity/SQLSTATE, the ParameterStatus set).
The hashing test reads the persisted state file (the stored format is the
behaviour under test); it never calls the double's code.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import socket
import struct
from contextlib import closing

import psycopg2
import pytest

LOGIN_FAILED = 'Password authentication failed for user "%s"'
NOT_PERMITTED = "Authentication error: User '%s' is not permitted to log in"


def _admin_exec(helpers, port, ks, *statements, password="admin"):
    with closing(helpers.pg_connect(port, ks + ".admin", password)) as conn:
        cur = conn.cursor()
        for statement in statements:
            cur.execute(statement)


def _keyspace_doc(dbl, ks):
    """The persisted user store of keyspace ``ks`` (one JSON file per keyspace)."""
    pattern = os.path.join(str(dbl.state_file) + ".d", "ks-*-%s.json" % ks.encode().hex())
    files = glob.glob(pattern)
    assert len(files) == 1, (pattern, files)
    with open(files[0], encoding="utf-8") as fh:
        return json.load(fh)


def test_only_cleartext_password_is_requested(double, keyspace, helpers):
    """§2.1: the server always sends AuthenticationCleartextPassword (3)."""
    res = helpers.raw_login(double.port, keyspace + ".admin", "admin")
    assert res["auth_request"] == 3
    assert res["messages"][0] == (b"R", struct.pack("!i", 0))


def test_parameter_status_set_backend_key_and_ready(double, keyspace, helpers):
    """§2.7: exactly server_version=15.0, server_encoding, client_encoding,
    DateStyle (no standard_conforming_strings), then BackendKeyData and
    ReadyForQuery(I)."""
    res = helpers.raw_login(double.port, keyspace + ".admin", "admin")
    assert sorted(res["parameters"]) == sorted(
        [("server_version", "15.0"), ("server_encoding", "UTF8"), ("client_encoding", "UTF8"), ("DateStyle", "ISO, MDY")]
    )
    types = [t for t, _ignored in res["messages"]]
    assert types == [b"R", b"S", b"S", b"S", b"S", b"K", b"Z"]
    assert res["ready"] == b"I"
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        assert conn.get_parameter_status("server_version") == "15.0"
        assert conn.server_version == 150000
        assert conn.get_parameter_status("standard_conforming_strings") is None
        assert conn.get_parameter_status("DateStyle") == "ISO, MDY"
        assert conn.info.backend_pid > 0


def test_wrong_password_and_unknown_user_are_fatal_28p01(double, keyspace, helpers):
    """§2.5: wrong password and unknown user both give FATAL 28P01
    ``Password authentication failed for user "<user>"`` (capital P)."""
    for user, password in (("admin", "wrong"), ("ghost", "admin")):
        res = helpers.raw_login(double.port, "%s.%s" % (keyspace, user), password)
        assert res["error"] == {"S": "FATAL", "C": "28P01", "M": LOGIN_FAILED % user}
        with pytest.raises(psycopg2.OperationalError, match=LOGIN_FAILED % user):
            helpers.pg_connect(double.port, "%s.%s" % (keyspace, user), password)


def test_admin_bootstrapped_on_a_failing_attempt_before_checking(double, keyspace, helpers):
    """§2.2: every login attempt to a keyspace without ``admin`` first
    creates admin/admin (superuser), even an attempt that then fails."""
    res = helpers.raw_login(double.port, keyspace + ".ghost", "nope")
    assert res["error"]["C"] == "28P01"
    admin = _keyspace_doc(double, keyspace)["users"]["admin"]
    assert admin["is_superuser"] and admin["can_login"]
    assert admin["can_create_db"] and admin["can_create_role"]
    assert helpers.run_psql(double.port, keyspace + ".admin", "admin", "SELECT 1").returncode == 0


def test_admin_comes_back_after_drop(double, keyspace, helpers):
    """§2.2, §3.3: dropping ``admin`` (even the logged-in user) is
    allowed; the next login attempt, by anyone, re-creates admin/admin."""
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        cur = conn.cursor()
        cur.execute("ALTER ROLE admin PASSWORD 'rotated'")
        cur.execute("DROP ROLE admin")
        with pytest.raises(psycopg2.Error, match="Role 'admin' does not exist"):
            cur.execute("ALTER ROLE admin RESET ALL")
    assert helpers.raw_login(double.port, keyspace + ".ghost", "x")["error"]["C"] == "28P01"
    assert helpers.run_psql(double.port, keyspace + ".admin", "admin", "SELECT 1").returncode == 0
    assert helpers.raw_login(double.port, keyspace + ".admin", "rotated")["error"]["C"] == "28P01"


def test_admin_comes_back_after_rename_and_the_renamed_role_keeps_the_hash(double, keyspace, helpers):
    """§2.2, §3.2: RENAME keeps the hash; ``admin`` re-bootstraps."""
    _admin_exec(helpers, double.port, keyspace, "ALTER ROLE admin PASSWORD 'rotated'", "ALTER ROLE admin RENAME TO boss", password="admin")
    assert helpers.run_psql(double.port, keyspace + ".boss", "rotated", "SELECT 1").returncode == 0
    assert helpers.run_psql(double.port, keyspace + ".admin", "admin", "SELECT 1").returncode == 0


def test_admin_with_changed_password_is_left_alone(double, keyspace, helpers):
    """§2.2: an existing admin (new password, or NOLOGIN) is not reset."""
    _admin_exec(helpers, double.port, keyspace, "ALTER ROLE admin WITH PASSWORD 's3cret'")
    assert helpers.raw_login(double.port, keyspace + ".admin", "admin")["error"]["C"] == "28P01"
    _admin_exec(helpers, double.port, keyspace, "ALTER ROLE admin NOLOGIN", password="s3cret")
    res = helpers.raw_login(double.port, keyspace + ".admin", "admin")
    assert res["error"]["M"] == NOT_PERMITTED % "admin"


def test_nologin_refused_before_the_password_is_checked(double, keyspace, helpers):
    """§2.5, §2.6, §3.1: CREATE ROLE without LOGIN is NOLOGIN; such a
    user gets FATAL XX000 ``Authentication error: User '<u>' is not permitted
    to log in`` with the right password and with a wrong one."""
    _admin_exec(helpers, double.port, keyspace, "CREATE ROLE nolo PASSWORD 'right'")
    for password in ("right", "wrong"):
        res = helpers.raw_login(double.port, keyspace + ".nolo", password)
        assert res["error"] == {"S": "FATAL", "C": "XX000", "M": NOT_PERMITTED % "nolo"}
    psql = helpers.run_psql(double.port, keyspace + ".nolo", "right", "SELECT 1")
    assert "FATAL:  " + NOT_PERMITTED % "nolo" in psql.stderr
    _admin_exec(helpers, double.port, keyspace, "ALTER ROLE nolo LOGIN")
    assert helpers.run_psql(double.port, keyspace + ".nolo", "right", "SELECT 1").returncode == 0


def test_hashing_is_sha256_of_password_and_salt_hex_and_no_cleartext_is_stored(double, keyspace, helpers):
    """§2.4: hash = hex(SHA-256(password || salt_hex)), 16-byte random
    salt (hex); a new salt on each ALTER ... PASSWORD; never the cleartext."""
    secret = "Very-Distinct-Pw-7781"
    _admin_exec(helpers, double.port, keyspace, "CREATE ROLE hashy LOGIN PASSWORD '%s'" % secret)
    user = _keyspace_doc(double, keyspace)["users"]["hashy"]
    assert len(user["password_salt"]) == 32 and int(user["password_salt"], 16) >= 0
    assert user["password_hash"] == hashlib.sha256((secret + user["password_salt"]).encode()).hexdigest()
    _admin_exec(helpers, double.port, keyspace, "ALTER ROLE hashy PASSWORD '%s'" % secret)
    again = _keyspace_doc(double, keyspace)["users"]["hashy"]
    assert again["password_salt"] != user["password_salt"]
    for path in glob.glob(str(double.state_file) + "*") + glob.glob(str(double.state_file) + ".d/*"):
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                assert secret not in fh.read()


def test_fallback_password_is_off_by_default(double, keyspace, helpers):
    """§2.3: without PG_PASSWORD no password opens unknown users."""
    for password in ("postgres", ""):
        res = helpers.raw_login(double.port, keyspace + ".postgres", password)
        assert res["error"]["C"] == "28P01"


def test_fallback_password_semantics(double_factory, make_keyspace, helpers):
    """§2.3 (``--fallback-password``, PG_PASSWORD): logs in any unknown
    user name and any LOGIN user whose real password is wrong; not consulted
    for NOLOGIN users nor for unknown tenants."""
    dbl = double_factory("--fallback-password", "fb-pw", name="double-fallback")
    ks = make_keyspace()
    _admin_exec(helpers, dbl.port, ks, "CREATE ROLE real LOGIN PASSWORD 'real-pw'", "CREATE ROLE nolo PASSWORD 'n'")
    for user in ("nosuchuser", "real", "admin"):
        res = helpers.run_psql(dbl.port, "%s.%s" % (ks, user), "fb-pw", "SELECT current_user")
        assert res.returncode == 0, (user, res.stderr)
        assert res.stdout.strip() == "postgres"
    assert helpers.run_psql(dbl.port, ks + ".real", "real-pw", "SELECT 1").returncode == 0
    assert helpers.raw_login(dbl.port, ks + ".nolo", "fb-pw")["error"]["M"] == NOT_PERMITTED % "nolo"
    missing = helpers.unique_name("nope")
    assert helpers.raw_login(dbl.port, missing + ".admin", "fb-pw")["error"]["C"] == "28P01"
    assert helpers.raw_login(dbl.port, ks + ".real", "other")["error"]["C"] == "28P01"


def test_psycopg2_quoting_doubles_backslashes_in_passwords(double, keyspace, helpers):
    """§2.7: no standard_conforming_strings, so psycopg2 quotes
    ``a\\b`` as ``'a\\\\b'``; pg-tikv keeps backslashes literally, so the
    stored password has two backslashes."""
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        cur = conn.cursor()
        cur.execute("CREATE ROLE bs LOGIN PASSWORD %s", ("a\\b",))
        assert cur.query == b"CREATE ROLE bs LOGIN PASSWORD 'a\\\\b'"
    assert helpers.raw_login(double.port, keyspace + ".bs", "a\\b")["error"]["C"] == "28P01"
    assert helpers.raw_login(double.port, keyspace + ".bs", "a\\\\b")["error"] is None


@pytest.mark.parametrize("request_code, extra", [(80877104, b""), (80877102, b"\x00\x00\x10\x00\x12\x34\x56\x78")], ids=["GSSENCRequest", "CancelRequest"])
def test_gssenc_and_cancel_requests_drop_the_connection(request_code, extra, double):
    """§3.6a: pgwire 0.28 answers neither: no ``N`` to GSSENCRequest, nothing
    to CancelRequest; the server closes the connection."""
    with socket.create_connection(("127.0.0.1", double.port), timeout=10) as sock:
        body = struct.pack("!i", request_code) + extra
        sock.sendall(struct.pack("!i", len(body) + 4) + body)
        assert sock.recv(16) == b""


def test_error_response_carries_only_s_c_m(double, keyspace, helpers):
    """§3.6a: ErrorResponse fields are S, C and M only (no V, detail, hint,
    position), for login failures and statement errors alike."""
    assert set(helpers.raw_login(double.port, keyspace + ".admin", "wrong")["error"]) == {"S", "C", "M"}
    client = helpers.RawPg(double.port)
    try:
        assert client.login({"user": keyspace + ".admin", "database": "postgres"}, "admin")["error"] is None
        out = client.query("DROP ROLE nobody")
    finally:
        client.close()
    fields = helpers.parse_error_fields(dict(out)[b"E"])
    assert fields == {"S": "ERROR", "C": "XX000", "M": "Role 'nobody' does not exist"}
