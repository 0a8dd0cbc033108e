# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: extended protocol, ``$n`` parameters and Describe
(reference §3.6).

psycopg2 and psql only use the simple protocol, so these tests drive the
system libpq (``libpq.so.5``, the C client psql is built on) through ctypes:
PQexecParams, PQprepare and PQdescribePrepared send real Parse/Bind/Describe/
Execute/Sync messages.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import pytest

OID_INT4, OID_TEXT, OID_UNKNOWN = 23, 25, 705
OID_JSON, OID_UUID, OID_NUMERIC, OID_DATE, OID_VARCHAR = 114, 2950, 1700, 1082, 1043
PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_FATAL_ERROR = 1, 2, 7


def _load_libpq():
    for name in ("libpq.so.5", ctypes.util.find_library("pq")):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                continue
    pytest.fail("libpq.so.5 not found (install libpq5 / postgresql-client)", pytrace=False)
    return None


class LibPQ:
    """Just enough of libpq's C API."""

    def __init__(self):
        lib = self.lib = _load_libpq()
        vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        for name, res, args in (
            ("PQconnectdb", vp, [cp]),
            ("PQstatus", i, [vp]),
            ("PQerrorMessage", cp, [vp]),
            ("PQfinish", None, [vp]),
            ("PQexecParams", vp, [vp, cp, i, vp, vp, vp, vp, i]),
            ("PQexec", vp, [vp, cp]),
            ("PQprepare", vp, [vp, cp, cp, i, vp]),
            ("PQdescribePrepared", vp, [vp, cp]),
            ("PQresultStatus", i, [vp]),
            ("PQresultErrorField", cp, [vp, i]),
            ("PQresultErrorMessage", cp, [vp]),
            ("PQnfields", i, [vp]),
            ("PQfname", cp, [vp, i]),
            ("PQftype", ctypes.c_uint, [vp, i]),
            ("PQnparams", i, [vp]),
            ("PQparamtype", ctypes.c_uint, [vp, i]),
            ("PQntuples", i, [vp]),
            ("PQgetvalue", cp, [vp, i, i]),
            ("PQcmdStatus", cp, [vp]),
            ("PQgetisnull", i, [vp, i, i]),
            ("PQclear", None, [vp]),
        ):
            fn = getattr(lib, name)
            fn.restype, fn.argtypes = res, args

    def connect(self, port, user, password):
        conninfo = "host=127.0.0.1 port=%d user='%s' password='%s' dbname=postgres sslmode=disable connect_timeout=10" % (port, user, password)
        conn = self.lib.PQconnectdb(conninfo.encode())
        if self.lib.PQstatus(conn) != 0:
            message = self.lib.PQerrorMessage(conn).decode()
            self.lib.PQfinish(conn)
            raise AssertionError("connect failed: " + message)
        return conn

    def result(self, res):
        """A dict view of a PGresult (then cleared)."""
        lib = self.lib
        try:
            status = lib.PQresultStatus(res)
            out = {
                "status": status,
                "cmd": (lib.PQcmdStatus(res) or b"").decode(),
                "sqlstate": (lib.PQresultErrorField(res, ord("C")) or b"").decode(),
                "message": (lib.PQresultErrorField(res, ord("M")) or b"").decode(),
                "error": (lib.PQresultErrorMessage(res) or b"").decode(),
                "fields": [(lib.PQfname(res, k).decode(), lib.PQftype(res, k)) for k in range(lib.PQnfields(res))],
                "params": [lib.PQparamtype(res, k) for k in range(lib.PQnparams(res))],
                "rows": [],
            }
            for r in range(lib.PQntuples(res)):
                out["rows"].append([lib.PQgetvalue(res, r, c).decode() for c in range(lib.PQnfields(res))])
            return out
        finally:
            lib.PQclear(res)

    def exec_params(self, conn, sql, values, oids=None):
        n = len(values)
        vals = (ctypes.c_char_p * n)(*[v.encode() if v is not None else None for v in values])
        types = (ctypes.c_uint * n)(*oids) if oids else None
        res = self.lib.PQexecParams(conn, sql.encode(), n, types, vals, None, None, 0)
        return self.result(res)

    def prepare(self, conn, name, sql, oids=()):
        n = len(oids)
        types = (ctypes.c_uint * n)(*oids) if n else None
        return self.result(self.lib.PQprepare(conn, name.encode(), sql.encode(), n, types))

    def describe(self, conn, name):
        return self.result(self.lib.PQdescribePrepared(conn, name.encode()))


@pytest.fixture(scope="module")
def libpq():
    return LibPQ()


@pytest.fixture
def pq(libpq, double, keyspace):
    conn = libpq.connect(double.port, keyspace + ".admin", "admin")
    yield conn
    libpq.lib.PQfinish(conn)


def _login(helpers, double, keyspace, user, password):
    return helpers.raw_login(double.port, "%s.%s" % (keyspace, user), password)["error"]


def test_password_as_a_text_parameter_works_and_is_not_logged(libpq, pq, double, keyspace, helpers):
    """§3.6: ``CREATE ROLE "u" LOGIN PASSWORD $1`` works on pg-tikv: the
    text parameter becomes a plain ``'...'`` literal (quotes doubled,
    backslashes safe) and the extended query is not logged at INFO."""
    secret = "Ext'Pw\\%s" % helpers.unique_name("x")
    res = libpq.exec_params(pq, 'CREATE ROLE "ext" LOGIN PASSWORD $1', [secret])
    assert (res["status"], res["cmd"]) == (PGRES_COMMAND_OK, "CREATE ROLE"), res
    assert _login(helpers, double, keyspace, "ext", secret) is None
    res = libpq.exec_params(pq, 'ALTER ROLE "ext" PASSWORD $1', [secret + "2"], oids=[OID_TEXT])
    assert res["cmd"] == "ALTER ROLE"
    assert _login(helpers, double, keyspace, "ext", secret + "2") is None
    assert secret not in double.log_text()


def test_non_text_parameter_types_decode_as_binary_and_become_null(libpq, pq, double, keyspace, helpers):
    """§3.6: a text-format int4 parameter is decoded as binary and
    becomes NULL: ``PASSWORD NULL`` gives the empty password."""
    res = libpq.exec_params(pq, 'CREATE ROLE "num" LOGIN PASSWORD $1', ["42"], oids=[OID_INT4])
    assert res["cmd"] == "CREATE ROLE", res
    assert _login(helpers, double, keyspace, "num", "42")["C"] == "28P01"
    assert _login(helpers, double, keyspace, "num", "") is None


def test_substitution_is_a_plain_string_replace(libpq, pq):
    """§3.6: ``$2`` inside the value substituted for ``$1`` is replaced
    too (and ``$1`` would match inside ``$10``): one parameter per statement."""
    res = libpq.exec_params(pq, 'CREATE ROLE "rep" LOGIN PASSWORD $1', ["x$2y", "zz"])
    assert res["status"] == PGRES_FATAL_ERROR
    assert res["sqlstate"] == "XX000"
    assert res["message"].startswith("SQL parse error: sql parser error: Expected end of statement, found: zz")


def test_identifier_as_a_parameter_creates_the_role(libpq, pq, double, keyspace, helpers):
    """§3.6: ``CREATE ROLE $1`` becomes ``CREATE ROLE 'bob'``, which creates
    ``bob``; ``ALTER ROLE $1`` and ``DROP ROLE $1`` act on it the same way."""
    res = libpq.exec_params(pq, "CREATE ROLE $1 LOGIN", ["bob"])
    assert (res["status"], res["cmd"]) == (PGRES_COMMAND_OK, "CREATE ROLE"), res
    res = libpq.exec_params(pq, "ALTER ROLE $1 PASSWORD 'bobpw'", ["bob"])
    assert res["cmd"] == "ALTER ROLE", res
    assert _login(helpers, double, keyspace, "bob", "bobpw") is None
    assert libpq.exec_params(pq, "DROP ROLE $1", ["bob"])["cmd"] == "DROP ROLE"
    assert _login(helpers, double, keyspace, "bob", "bobpw")["C"] == "28P01"


@pytest.mark.parametrize("oid", [OID_JSON, OID_UUID, OID_NUMERIC, OID_DATE])
def test_parameters_of_other_types_arrive_as_null(oid, libpq, pq, double, keyspace, helpers):
    """§3.6a: a json/uuid/numeric/... parameter is not decoded as a string:
    it arrives as NULL. ``SELECT $1`` returns NULL, and ``PASSWORD $1`` is
    ``PASSWORD NULL``: an empty password on CREATE (§3.5)."""
    value = {OID_JSON: '{"a": 1}', OID_UUID: "0e2b7a3c-4b8a-4c39-9f37-5f4d0f7f1e11", OID_NUMERIC: "12.5", OID_DATE: "2026-12-04"}[oid]
    lib = libpq.lib
    res = lib.PQexecParams(pq, b"SELECT $1", 1, (ctypes.c_uint * 1)(oid), (ctypes.c_char_p * 1)(value.encode()), None, None, 0)
    try:
        assert lib.PQresultStatus(res) == PGRES_TUPLES_OK
        assert lib.PQntuples(res) == 1 and lib.PQgetisnull(res, 0, 0) == 1
    finally:
        lib.PQclear(res)
    name = "typed_%d" % oid
    res = libpq.exec_params(pq, 'CREATE ROLE "%s" LOGIN PASSWORD $1' % name, [value], oids=[oid])
    assert res["cmd"] == "CREATE ROLE", res
    assert _login(helpers, double, keyspace, name, value)["C"] == "28P01"
    assert _login(helpers, double, keyspace, name, "") is None


@pytest.mark.parametrize("oid", [OID_TEXT, OID_VARCHAR, OID_UNKNOWN])
def test_text_like_parameters_become_plain_literals(oid, libpq, pq):
    """§3.6: text, varchar and unknown parameters become ``'...'``."""
    res = libpq.exec_params(pq, "SELECT $1", ["it's"], oids=[oid])
    assert res["rows"] == [["it's"]], res


def test_describe_gives_parse_oids_and_a_fixed_select_column(libpq, pq):
    """§3.6: Describe-statement returns the Parse OIDs (none if the
    client sent none) and, for text starting ``SELECT``, one TEXT field
    ``column``; nothing otherwise."""
    assert libpq.prepare(pq, "s1", "SELECT 1, 2")["status"] == PGRES_COMMAND_OK
    desc = libpq.describe(pq, "s1")
    assert desc["fields"] == [("column", OID_TEXT)] and desc["params"] == []
    libpq.prepare(pq, "s2", 'ALTER ROLE "x" PASSWORD $1', oids=[OID_TEXT])
    desc = libpq.describe(pq, "s2")
    assert desc["fields"] == [] and desc["params"] == [OID_TEXT]
    libpq.prepare(pq, "s3", 'ALTER ROLE "x" PASSWORD $1')
    assert libpq.describe(pq, "s3")["params"] == []
    libpq.prepare(pq, "s4", " SELECT 1")  # no trim: not 'SELECT...'
    assert libpq.describe(pq, "s4")["fields"] == []
    libpq.prepare(pq, "s5", "SELECT $1", oids=[0])
    assert libpq.describe(pq, "s5")["params"] == [OID_UNKNOWN]


def test_single_column_select_works_multi_column_select_breaks_libpq(libpq, pq):
    """§3.6: a one-column SELECT works over the extended protocol; a
    multi-column one sends more fields than Describe announced and libpq fails."""
    res = libpq.exec_params(pq, "SELECT version()", [])
    assert res["rows"] == [["PostgreSQL 15.0 (pg-tikv)"]] and res["fields"] == [("column", OID_TEXT)]
    res = libpq.exec_params(pq, "SELECT 1, 2", [])
    assert res["status"] == PGRES_FATAL_ERROR, res


def test_errors_and_sync_recovery_over_the_extended_protocol(libpq, pq):
    """§3.6 / 0 item 2: errors are ERROR XX000; the connection stays usable."""
    res = libpq.exec_params(pq, "DROP ROLE $1", ["nobody"])
    assert (res["status"], res["sqlstate"]) == (PGRES_FATAL_ERROR, "XX000")
    res = libpq.exec_params(pq, 'DROP ROLE IF EXISTS "nobody"', [])
    assert res["cmd"] == "DROP ROLE"
