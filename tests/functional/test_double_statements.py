# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: transactions, multi-statement queries, SKIPPED
results, the COPY hijack, query logging, catalogs and identity (reference
sections 3.5, 3.7 and 4). Driven by psycopg2 and psql; the raw wire client
only reads ReadyForQuery status bytes and counts result messages.
"""

from __future__ import annotations

from contextlib import closing

import psycopg2
import psycopg2.extensions
import pytest

PARSE = "SQL parse error: sql parser error: "


@pytest.fixture
def admin(double, keyspace, helpers):
    conn = helpers.pg_connect(double.port, keyspace + ".admin", "admin")
    yield conn
    conn.close()


def _exists(conn, name):
    try:
        conn.cursor().execute('ALTER ROLE "%s" RESET ALL' % name)
    except psycopg2.Error as exc:
        assert exc.diag.message_primary == "Role '%s' does not exist" % name
        return False
    return True


def _psql(helpers, double, keyspace, *commands, stdin=""):
    return helpers.run_psql(double.port, keyspace + ".admin", "admin", *commands, stdin=stdin)


# --------------------------------------------------------------- transactions


@pytest.mark.parametrize(
    "sql",
    [
        "BEGIN",
        "START TRANSACTION",
        "BEGIN ISOLATION LEVEL SERIALIZABLE",
        "COMMIT",
        "ROLLBACK",
        "SET search_path TO public",
        "SET application_name = 'x'",
        "SET TIME ZONE 'UTC'",
    ],
)
def test_transaction_statements_and_set_return_empty_query(sql, admin):
    """§3.7: BEGIN/START TRANSACTION/COMMIT/ROLLBACK/SET answer
    EmptyQueryResponse, which psycopg2 (autocommit) reports as an error, and
    ReadyForQuery stays idle."""
    with pytest.raises(psycopg2.ProgrammingError, match="can't execute an empty query"):
        admin.cursor().execute(sql)
    assert admin.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_IDLE


def test_ready_for_query_is_always_idle(double, keyspace, helpers):
    """§3.7: after BEGIN (and inside the transaction) ReadyForQuery says 'I'."""
    client = helpers.RawPg(double.port)
    try:
        assert client.login({"user": keyspace + ".admin"}, "admin")["ready"] == b"I"
        for sql in ("BEGIN", "CREATE ROLE inside", "SELECT 1"):
            msgs = client.query(sql)
            assert msgs[-1] == (b"Z", b"I"), sql
        assert [t for t, _ignored in client.query("BEGIN")] == [b"I", b"Z"]  # EmptyQueryResponse
    finally:
        client.close()


def test_psycopg2_without_autocommit_fails_on_its_implicit_begin(double, keyspace, helpers):
    """§3.7: psycopg2's implicit BEGIN gets EmptyQueryResponse: use autocommit."""
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin", autocommit=False)) as conn:
        with pytest.raises(psycopg2.DatabaseError):
            conn.cursor().execute("CREATE ROLE never_made")
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        assert not _exists(conn, "never_made")


def test_begin_rollback_discards_and_commit_keeps(double, keyspace, helpers, admin):
    """§3.7: BEGIN opens a real transaction: ROLLBACK discards,
    COMMIT applies, a disconnect without COMMIT discards."""
    res = _psql(helpers, double, keyspace, "BEGIN", "CREATE ROLE rb1", "ROLLBACK")
    assert res.returncode == 0 and res.stdout.splitlines() == ["CREATE ROLE"], res
    res = _psql(helpers, double, keyspace, "BEGIN", "CREATE ROLE cm1", "COMMIT")
    assert res.returncode == 0 and res.stdout.splitlines() == ["CREATE ROLE"], res
    res = _psql(helpers, double, keyspace, "BEGIN", "CREATE ROLE dc1")
    assert res.returncode == 0
    assert not _exists(admin, "rb1") and _exists(admin, "cm1") and not _exists(admin, "dc1")


def test_no_aborted_state_after_an_error_inside_begin(double, keyspace, helpers, admin):
    """§3.7: after an error inside BEGIN later statements keep running
    in the same transaction (no statement rollback inside it), and COMMIT
    applies them, including the partial work of the failed statement."""
    admin.cursor().execute("CREATE ROLE taken")
    res = _psql(helpers, double, keyspace, "BEGIN", "CREATE ROLE part1, taken", "CREATE ROLE later", "COMMIT")
    assert "User 'taken' already exists" in res.stderr
    assert _exists(admin, "later") and _exists(admin, "part1")


# ------------------------------------------------------------ multi-statement


def test_multi_statement_runs_all_returns_only_the_last_result(admin, double, keyspace, helpers):
    """§3.7: each statement of a simple query runs in its own
    autocommit transaction; only the last result comes back."""
    cur = admin.cursor()
    cur.execute("CREATE ROLE ms1; CREATE ROLE ms2 LOGIN PASSWORD 'x'; SELECT version()")
    assert cur.fetchall() == [("PostgreSQL 15.0 (pg-tikv)",)]
    assert _exists(admin, "ms1") and _exists(admin, "ms2")
    client = helpers.RawPg(double.port)
    try:
        client.login({"user": keyspace + ".admin"}, "admin")
        types = [t for t, _ignored in client.query("CREATE ROLE ms3; DROP ROLE ms3; CREATE ROLE ms4")]
        assert types == [b"C", b"Z"]
    finally:
        client.close()


def test_multi_statement_error_keeps_earlier_statements(admin):
    """§3.7: a failing later statement does not undo earlier ones."""
    with pytest.raises(psycopg2.Error, match="User 'ms5' already exists"):
        admin.cursor().execute("CREATE ROLE ms5; CREATE ROLE ms5")
    assert _exists(admin, "ms5")


def test_multi_statement_parse_error_runs_nothing(admin):
    """§3, §3.7: the whole text is parsed first; a parse error anywhere runs nothing."""
    with pytest.raises(psycopg2.Error) as info:
        admin.cursor().execute("CREATE ROLE ms6; CREATE USER ms7")
    assert info.value.diag.message_primary == PARSE + "Expected an object type after CREATE, found: USER at Line: 1, Column 25"
    assert not _exists(admin, "ms6")


def test_begin_and_rollback_inside_one_query_string(double, keyspace, helpers, admin):
    """§3.7: BEGIN inside a multi-statement string also opens a transaction."""
    res = _psql(helpers, double, keyspace, "BEGIN; CREATE ROLE ms8; ROLLBACK")
    assert res.returncode == 0, res.stderr
    assert not _exists(admin, "ms8")


# -------------------------------------------------------------------- SKIPPED


@pytest.mark.parametrize(
    "sql, warning",
    [
        ("CREATE DATABASE foo", "SKIPPED: CREATE DATABASE not supported"),
        ("  alter database foo set x = 1", "SKIPPED: ALTER DATABASE not supported"),
        ("DROP DATABASE IF EXISTS foo", "SKIPPED: DROP DATABASE not supported"),
        ("COPY t TO STDOUT", "SKIPPED: COPY not supported"),
        ("SELECT 1 FROM stdin_table", "SKIPPED: COPY not supported"),
        ("\\du", "SKIPPED: psql meta-command not supported"),
        ("CREATE USER sk1 PASSWORD 'a$$b'", "SKIPPED: Dollar-quoted strings not supported"),
        ("ALTER USER sk1 PASSWORD $$x$$", "SKIPPED: Dollar-quoted strings not supported"),
    ],
)
def test_skipped_results_pretend_success(sql, warning, admin):
    """§3.5: these return one row, column ``warning``, ``SKIPPED: ...``
    (a success!) and do nothing."""
    cur = admin.cursor()
    cur.execute(sql)
    assert [d.name for d in cur.description] == ["warning"]
    assert cur.fetchall() == [(warning,)]
    assert not _exists(admin, "sk1")


def test_dollar_quoted_password_that_parses_is_not_skipped(admin, double, keyspace, helpers):
    """§3.5: ``$$`` only triggers SKIPPED when parsing fails; inside a
    plain literal it is just text."""
    admin.cursor().execute("CREATE ROLE dq LOGIN PASSWORD 'a$$b'")
    assert helpers.run_psql(double.port, keyspace + ".dq", "a$$b", "SELECT 1").returncode == 0


# --------------------------------------------------------------- COPY hijack


def test_copy_hijack_switches_to_copy_in_and_leaves_a_transaction_open(double, keyspace, helpers, admin):
    """§3.5: an unanchored ``COPY x FROM stdin`` match anywhere in a
    simple query (here inside a password literal) switches the connection to
    COPY-IN; at CopyDone the table is missing: ERROR 42P01. The statement
    never runs, and the session is left inside a transaction (upstream never
    rolls back that path), so later statements are not committed."""
    res = _psql(helpers, double, keyspace, "CREATE ROLE hj LOGIN PASSWORD 'copy t from stdin'", "CREATE ROLE after_hj", "SELECT 1", stdin="")
    assert 'relation "t" does not exist' in res.stderr
    assert res.stdout.splitlines() == ["CREATE ROLE", "1"]
    assert not _exists(admin, "hj")
    assert not _exists(admin, "after_hj")
    with pytest.raises(psycopg2.Error) as info:
        admin.cursor().execute("CREATE ROLE hj2 PASSWORD 'COPY public.users (a, b) FROM STDIN'")
    assert "COPY" in str(info.value)  # psycopg2 refuses the unexpected COPY-IN
    assert not _exists(helpers.pg_connect(double.port, keyspace + ".admin", "admin"), "hj2")


# -------------------------------------------------------------------- logging


def test_every_simple_query_is_logged_with_its_full_text(double, keyspace, helpers):
    """§3.5: ``Received query: <full SQL>`` at INFO for every simple
    query, password literals included."""
    secret = helpers.unique_name("Pw")
    with closing(helpers.pg_connect(double.port, keyspace + ".admin", "admin")) as conn:
        conn.cursor().execute("CREATE ROLE logged LOGIN PASSWORD '%s'" % secret)
    lines = [line for line in double.log_text().splitlines() if secret in line]
    assert len(lines) == 1
    assert lines[0].endswith("  INFO Received query: CREATE ROLE logged LOGIN PASSWORD '%s'" % secret)


# --------------------------------------------------------- catalogs, identity


@pytest.mark.parametrize(
    "sql, table",
    [
        ("SELECT rolname FROM pg_roles", "pg_roles"),
        ("SELECT * FROM pg_catalog.pg_roles WHERE rolname = 'x'", "pg_roles"),
        ("SELECT usename FROM pg_user", "pg_user"),
        ("SELECT 1 FROM pg_catalog.pg_authid", "pg_authid"),
        ('SELECT 1 FROM "pg_catalog"."pg_user" u JOIN pg_roles r ON true', "pg_user"),
        ("SELECT name FROM pg_users", "pg_users"),
    ],
)
def test_no_role_catalog(sql, table, admin):
    """§4: no pg_roles/pg_user/pg_authid (any schema prefix):
    ``Table '<last name part>' not found``."""
    with pytest.raises(psycopg2.Error) as info:
        admin.cursor().execute(sql)
    assert (info.value.pgcode, info.value.diag.message_primary) == ("XX000", "Table '%s' not found" % table)


@pytest.mark.parametrize(
    "sql, value, oid",
    [
        ("SELECT version()", "PostgreSQL 15.0 (pg-tikv)", 25),
        ("SELECT 1", 1, 23),
        ("SELECT 3000000000", 3000000000, 20),
        ("SELECT 1.5", 1.5, 701),
        ("SELECT current_user", "postgres", 25),
        ("SELECT session_user", "postgres", 25),
        ("SELECT user", "postgres", 25),
        ("select CURRENT_USER;", "postgres", 25),
        ("SELECT current_database()", "postgres", 25),
        ("SELECT current_schema()", "public", 25),
        ("SELECT pg_is_in_recovery()", False, 16),
        ("SELECT NULL", None, 25),
    ],
)
def test_identity_functions(sql, value, oid, admin):
    """§4: constant identity answers in one column named ``?column?``;
    §3.6a: the column is typed from the first row (bool, int4/int8, float8,
    else text), so psycopg2 reads ``pg_is_in_recovery()`` as ``False``, not
    the truthy string ``'f'``."""
    cur = admin.cursor()
    cur.execute(sql)
    rows = cur.fetchall()
    assert rows == [(value,)] and type(rows[0][0]) is type(value)
    assert [(d.name, d.type_code) for d in cur.description] == [("?column?", oid)]


def test_result_types_on_the_wire(double, keyspace, helpers):
    """§3.6a, read from the RowDescription itself (raw client): type OIDs
    per column from the first row; values in text format (bool as ``t``/``f``)."""
    client = helpers.RawPg(double.port)
    try:
        assert client.login({"user": keyspace + ".admin", "database": "postgres"}, "admin")["error"] is None
        out = dict(client.query("SELECT pg_is_in_recovery(), pg_backend_pid(), version()")[:2])
    finally:
        client.close()
    desc = out[b"T"]
    oids, pos = [], 2
    for _ignored in range(3):
        pos = desc.index(b"\0", pos) + 1
        oids.append(int.from_bytes(desc[pos + 6 : pos + 10], "big"))
        pos += 18
    assert oids == [16, 23, 25]
    assert out[b"D"].split(b"\x00\x00\x00\x01")[1][:1] == b"f"


def test_identity_ignores_who_is_logged_in_and_aliases_name_columns(admin, double, keyspace, helpers):
    """§4: current_user is 'postgres' whoever logs in; ``AS`` names the column."""
    admin.cursor().execute("CREATE ROLE who LOGIN PASSWORD 'w'")
    res = helpers.run_psql(double.port, keyspace + ".who", "w", "SELECT current_user AS me, 1 AS one")
    assert res.stdout.strip() == "postgres|1"
    cur = admin.cursor()
    cur.execute("SELECT version() AS v")
    assert [d.name for d in cur.description] == ["v"]


def test_show_is_unsupported(admin):
    """§4: any ``SHOW x`` is ``Unsupported statement: ShowVariable {...}``."""
    with pytest.raises(psycopg2.Error) as info:
        admin.cursor().execute("SHOW server_version")
    assert info.value.diag.message_primary == 'Unsupported statement: ShowVariable { variable: [Ident { value: "server_version", quote_style: None }] }'
    with pytest.raises(psycopg2.Error, match="Unsupported statement: ShowVariable"):
        admin.cursor().execute("SHOW ALL")
    with pytest.raises(psycopg2.Error, match="Unsupported function: current_setting"):
        admin.cursor().execute("SELECT current_setting('server_version')")
