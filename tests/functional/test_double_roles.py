# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg-tikv double: role SQL (reference 3.1 to 3.5).

Statements go through psycopg2 (autocommit) or psql; their effect is observed
over the wire (logins, the ``ALTER ROLE ... RESET ALL`` existence probe).
Attributes nothing can read over SQL (SUPERUSER, CREATEDB, ...) are checked in
the persisted state file. Empty passwords are proven by a raw-wire login with
an empty password (libpq refuses to send one).
"""

from __future__ import annotations

import glob
import json
import os
from contextlib import closing

import psycopg2
import pytest

PARSE = "SQL parse error: sql parser error: "


class Tenant:
    """An admin session on one fresh keyspace of the shared double."""

    def __init__(self, dbl, ks, helpers):
        self.dbl, self.ks, self.helpers = dbl, ks, helpers
        self.conn = helpers.pg_connect(dbl.port, ks + ".admin", "admin")
        self.cur = self.conn.cursor()

    def run(self, sql, params=None):
        self.cur.execute(sql, params)
        return self.cur.statusmessage

    def error(self, sql):
        """Run ``sql``, expect an error; return (severity, sqlstate, message)."""
        with pytest.raises(psycopg2.Error) as info:
            self.cur.execute(sql)
        exc = info.value
        return exc.diag.severity, exc.pgcode, exc.diag.message_primary

    def exists(self, name):
        """The existence probe of section 0 item 10: ALTER ROLE "x" RESET ALL."""
        quoted = '"%s"' % name.replace('"', '""')
        try:
            self.cur.execute("ALTER ROLE %s RESET ALL" % quoted)
        except psycopg2.Error as exc:
            assert exc.diag.message_primary == "Role '%s' does not exist" % name
            return False
        assert self.cur.statusmessage == "ALTER ROLE"
        return True

    def login(self, user, password):
        """None when the login works, else the FATAL fields."""
        return self.helpers.raw_login(self.dbl.port, "%s.%s" % (self.ks, user), password)["error"]

    def user_record(self, name):
        pattern = os.path.join(str(self.dbl.state_file) + ".d", "ks-*-%s.json" % self.ks.encode().hex())
        with open(glob.glob(pattern)[0], encoding="utf-8") as fh:
            return json.load(fh)["users"].get(name)


@pytest.fixture
def tenant(double, keyspace, helpers):
    t = Tenant(double, keyspace, helpers)
    yield t
    t.conn.close()


def test_create_alter_drop_role_and_command_tags(tenant):
    """§3.1-3.3: CREATE ROLE / ALTER ROLE / DROP ROLE tags; LOGIN + PASSWORD work."""
    assert tenant.run("CREATE ROLE alice WITH LOGIN PASSWORD 'pw-a'") == "CREATE ROLE"
    assert tenant.login("alice", "pw-a") is None
    assert tenant.run("ALTER ROLE alice WITH PASSWORD 'pw-b'") == "ALTER ROLE"
    assert tenant.login("alice", "pw-a")["C"] == "28P01"
    assert tenant.login("alice", "pw-b") is None
    assert tenant.run("DROP ROLE alice") == "DROP ROLE"
    assert not tenant.exists("alice")


def test_every_sql_error_is_error_xx000(tenant):
    """§0 item 2: every SQL error is severity ERROR, SQLSTATE XX000."""
    tenant.run("CREATE ROLE dup")
    for sql in ("CREATE ROLE dup", "DROP ROLE nobody", "CREATE USER u", "SELECT * FROM pg_roles", "SHOW server_version", "GRANT SELECT ON t TO nobody"):
        severity, code, _ignored = tenant.error(sql)
        assert (severity, code) == ("ERROR", "XX000"), sql


def test_duplicate_and_missing_role_messages(tenant):
    """§3.1-3.3: ``User 'x' already exists``, ``Role 'x' does not exist``."""
    tenant.run("CREATE ROLE bob")
    assert tenant.error("CREATE ROLE bob")[2] == "User 'bob' already exists"
    assert tenant.error("ALTER ROLE ghost LOGIN")[2] == "Role 'ghost' does not exist"
    assert tenant.error("ALTER ROLE ghost RESET ALL")[2] == "Role 'ghost' does not exist"
    assert tenant.error("DROP ROLE ghost")[2] == "Role 'ghost' does not exist"
    assert tenant.run("DROP ROLE IF EXISTS ghost") == "DROP ROLE"


def test_login_defaults_to_false_and_options_apply(tenant):
    """§2.6, §3.1, §3.2: login defaults to false on CREATE; SUPERUSER
    does not imply CREATEDB/CREATEROLE; ALTER applies [NO]LOGIN,
    [NO]SUPERUSER, [NO]CREATEDB, [NO]CREATEROLE and CONNECTION LIMIT."""
    tenant.run("CREATE ROLE opt PASSWORD 'p' SUPERUSER CONNECTION LIMIT 5 VALID UNTIL 'infinity'")
    rec = tenant.user_record("opt")
    assert (rec["can_login"], rec["is_superuser"], rec["can_create_db"], rec["can_create_role"]) == (False, True, False, False)
    assert rec["connection_limit"] == -1 and rec["valid_until"] is None  # parsed and discarded on CREATE
    assert tenant.login("opt", "p")["C"] == "XX000"
    tenant.run("ALTER ROLE opt WITH LOGIN NOSUPERUSER CREATEDB CREATEROLE CONNECTION LIMIT 7")
    rec = tenant.user_record("opt")
    assert (rec["can_login"], rec["is_superuser"], rec["can_create_db"], rec["can_create_role"]) == (True, False, True, True)
    assert rec["connection_limit"] == 7
    assert tenant.login("opt", "p") is None
    tenant.run("ALTER ROLE opt NOLOGIN")
    assert tenant.login("opt", "p")["M"] == "Authentication error: User 'opt' is not permitted to log in"


def test_create_role_parsed_and_discarded_options(tenant):
    """§3.1: INHERIT, BYPASSRLS, REPLICATION, IN ROLE, ROLE, ADMIN,
    USER are parsed and discarded; duplicated options are parse errors."""
    assert tenant.run("CREATE ROLE many LOGIN INHERIT NOBYPASSRLS REPLICATION IN ROLE a, b ROLE c ADMIN d USER e PASSWORD 'x'") == "CREATE ROLE"
    assert tenant.login("many", "x") is None
    assert tenant.error("CREATE ROLE twice LOGIN NOLOGIN")[2] == PARSE + "Found multiple LOGIN or NOLOGIN at Line: 1, Column 25"


def test_if_not_exists_skips_without_updating(tenant):
    """§3.1: CREATE ROLE IF NOT EXISTS (not valid PostgreSQL) skips an
    existing user silently and does not update its password or attributes."""
    tenant.run("CREATE ROLE ine LOGIN PASSWORD 'first'")
    assert tenant.run("CREATE ROLE IF NOT EXISTS ine NOLOGIN PASSWORD 'second'") == "CREATE ROLE"
    assert tenant.login("ine", "first") is None
    assert tenant.run("CREATE ROLE IF NOT EXISTS ine2 LOGIN PASSWORD 'p2'") == "CREATE ROLE"
    assert tenant.login("ine2", "p2") is None
    # sqlparser takes IF NOT EXISTS right after ROLE only.
    assert tenant.error("CREATE ROLE ine3 IF NOT EXISTS")[2] == PARSE + "Expected end of statement, found: IF at Line: 1, Column 18"


def test_qualified_name_creates_its_last_part(tenant):
    """§3.1: ``CREATE ROLE a.b`` creates ``b`` (DROP likewise)."""
    tenant.run("CREATE ROLE myschema.qual LOGIN PASSWORD 'q'")
    assert tenant.exists("qual") and not tenant.exists("myschema.qual")
    assert tenant.login("qual", "q") is None
    tenant.run("DROP ROLE other.qual")
    assert not tenant.exists("qual")


def test_no_case_folding_of_unquoted_identifiers(tenant):
    """§3.1: ``CREATE ROLE Alice`` stores ``Alice``; logins are case-sensitive."""
    tenant.run("CREATE ROLE Alice LOGIN PASSWORD 'pa'")
    assert tenant.exists("Alice") and not tenant.exists("alice")
    assert tenant.login("Alice", "pa") is None
    assert tenant.login("alice", "pa")["C"] == "28P01"
    tenant.run("create role lower_kw login password 'lk'")  # keywords are case-insensitive
    assert tenant.login("lower_kw", "lk") is None


def test_quoted_identifiers_unescape_doubled_quotes(tenant):
    """§3.1: ``""`` inside a quoted identifier is one ``"``."""
    tenant.run('CREATE ROLE "we""ird name" LOGIN PASSWORD \'wq\'')
    assert tenant.exists('we"ird name')
    assert tenant.login('we"ird name', "wq") is None


def test_single_quoted_string_is_a_role_name(tenant):
    """§3.6: sqlparser 0.40 takes a plain ``'...'`` string as an identifier
    (``''`` unescaped): CREATE, ALTER and DROP ROLE ``'x'`` act on ``x``."""
    assert tenant.run("CREATE ROLE 'bob' LOGIN PASSWORD 'b1'") == "CREATE ROLE"
    assert tenant.exists("bob") and tenant.login("bob", "b1") is None
    assert tenant.run("ALTER ROLE 'bob' WITH PASSWORD 'b2'") == "ALTER ROLE"
    assert tenant.login("bob", "b2") is None
    assert tenant.run("CREATE ROLE 'o''brien'") == "CREATE ROLE"
    assert tenant.exists("o'brien")
    assert tenant.run("ALTER ROLE 'bob' RENAME TO 'rob'") == "ALTER ROLE"
    assert tenant.exists("rob") and not tenant.exists("bob")
    assert tenant.run("DROP ROLE 'rob', 'o''brien'") == "DROP ROLE"
    assert not tenant.exists("rob") and not tenant.exists("o'brien")
    assert tenant.error("DROP ROLE 'rob'")[2] == "Role 'rob' does not exist"


def test_end_is_commit(tenant):
    """§3.6a: ``END`` is COMMIT (sqlparser 0.40 parse_end): EmptyQueryResponse
    like COMMIT (§3.7), and the open transaction is applied."""
    conn = tenant.conn
    raw = tenant.helpers.RawPg(tenant.dbl.port)
    try:
        assert raw.login({"user": tenant.ks + ".admin", "database": "postgres"}, "admin")["error"] is None
        raw.query("BEGIN")
        raw.query("CREATE ROLE endy")
        assert not tenant.exists("endy")  # not visible before the commit
        assert [t for t, _p in raw.query("END")] == [b"I", b"Z"]
        assert tenant.exists("endy")
        assert [t for t, _p in raw.query("END WORK")] == [b"I", b"Z"]  # outside a transaction: a no-op
    finally:
        raw.close()
    assert conn.closed == 0


def test_plain_literal_unescapes_quotes_and_keeps_backslashes(tenant):
    """§3.5: in ``'...'`` a doubled ``''`` is one quote and backslashes
    are kept literally (standard_conforming_strings=on style)."""
    tenant.run("CREATE ROLE lit LOGIN PASSWORD 'it''s\\n\\'")
    assert tenant.login("lit", "it's\\n\\") is None
    assert tenant.login("lit", "it's\n")["C"] == "28P01"


@pytest.mark.parametrize("literal", ["E'secret'", "$$secret$$", "$tag$secret$tag$", "N'secret'", "NULL", "12345", "X'0A'", '"secret"', "TRUE", "$1"])
def test_non_plain_password_literal_gives_empty_password_on_create(literal, tenant, helpers):
    """§0 item 3, 3.1, 3.5: E'', $$, N'', NULL, numbers (and any
    non-plain literal) are silently ignored: CREATE stores the empty password."""
    tenant.run("CREATE ROLE ep LOGIN PASSWORD %s" % literal)
    assert tenant.login("ep", "secret")["C"] == "28P01"
    assert tenant.login("ep", "") is None  # the raw client can send an empty password
    refused = helpers.run_psql(tenant.dbl.port, tenant.ks + ".ep", "", "SELECT 1")
    assert refused.returncode != 0  # libpq never sends an empty password


@pytest.mark.parametrize("literal", ["E'new'", "$$new$$", "N'new'", "NULL", "42"])
def test_non_plain_password_literal_leaves_password_unchanged_on_alter(literal, tenant):
    """§0 item 3, 3.2: on ALTER the ignored literal (and PASSWORD
    NULL) leaves the old password in place; the command still succeeds."""
    tenant.run("CREATE ROLE keep LOGIN PASSWORD 'old'")
    assert tenant.run("ALTER ROLE keep PASSWORD %s" % literal) == "ALTER ROLE"
    assert tenant.login("keep", "old") is None
    assert tenant.login("keep", "new")["C"] == "28P01"


def test_rename(tenant):
    """§3.2: RENAME TO keeps the hash; an existing target fails with
    ``User 'new' already exists`` and leaves the old role; not idempotent."""
    tenant.run("CREATE ROLE old1 LOGIN PASSWORD 'o1'")
    tenant.run("CREATE ROLE taken")
    assert tenant.error("ALTER ROLE old1 RENAME TO taken")[2] == "User 'taken' already exists"
    assert tenant.exists("old1") and tenant.login("old1", "o1") is None
    assert tenant.run("ALTER ROLE old1 RENAME TO new1") == "ALTER ROLE"
    assert tenant.login("new1", "o1") is None
    assert not tenant.exists("old1")
    assert tenant.error("ALTER ROLE old1 RENAME TO new1")[2] == "Role 'old1' does not exist"


def test_set_and_reset_are_the_existence_probe(tenant):
    """§3.2: SET/RESET look the role up and do nothing else."""
    tenant.run("CREATE ROLE probe LOGIN PASSWORD 'pp'")
    for sql in (
        "ALTER ROLE probe RESET ALL",
        "ALTER ROLE probe RESET search_path",
        "ALTER ROLE probe SET search_path = public",
        "ALTER ROLE probe SET work_mem TO DEFAULT",
        "ALTER ROLE probe IN DATABASE postgres SET x = 1",
        "ALTER ROLE probe SET x FROM CURRENT",
    ):
        assert tenant.run(sql) == "ALTER ROLE", sql
    assert tenant.login("probe", "pp") is None
    assert tenant.error("ALTER ROLE nope SET search_path = public")[2] == "Role 'nope' does not exist"


def test_drop_role_lists_and_if_exists(tenant):
    """§3.3: DROP ROLE [IF EXISTS] a, b; a missing name without IF
    EXISTS fails the whole statement (it is rolled back)."""
    tenant.run("CREATE ROLE d1")
    tenant.run("CREATE ROLE d2")
    assert tenant.error("DROP ROLE d1, missing_one")[2] == "Role 'missing_one' does not exist"
    assert tenant.exists("d1")
    assert tenant.run("DROP ROLE IF EXISTS d1, missing_one, d2") == "DROP ROLE"
    assert not tenant.exists("d1") and not tenant.exists("d2")


def test_create_role_list_is_one_transaction(tenant):
    """§3, §3.1: ``CREATE ROLE a, b`` with ``b`` existing fails and ``a``
    is rolled back with it."""
    tenant.run("CREATE ROLE cl_b")
    assert tenant.error("CREATE ROLE cl_a, cl_b")[2] == "User 'cl_b' already exists"
    assert not tenant.exists("cl_a")
    assert tenant.run("CREATE ROLE cl_c, cl_d LOGIN PASSWORD 'same'") == "CREATE ROLE"
    assert tenant.login("cl_c", "same") is None and tenant.login("cl_d", "same") is None


@pytest.mark.parametrize(
    "sql, message",
    [
        ("CREATE USER u", "Expected an object type after CREATE, found: USER at Line: 1, Column 8"),
        ("CREATE USER u WITH PASSWORD 'x'", "Expected an object type after CREATE, found: USER at Line: 1, Column 8"),
        ("ALTER USER u PASSWORD 'x'", "Expected one of VIEW or TABLE or INDEX or ROLE, found: USER at Line: 1, Column 7"),
        ("DROP USER u", "Expected TABLE, VIEW, INDEX, ROLE, SCHEMA, FUNCTION, STAGE or SEQUENCE after DROP, found: USER at Line: 1, Column 6"),
        ("CREATE ROLE u LOGIN ENCRYPTED PASSWORD 'x'", "Expected end of statement, found: ENCRYPTED at Line: 1, Column 21"),
        ("ALTER ROLE g ADD MEMBER u", "Expected option, found: ADD at Line: 1, Column 14"),
        ("ALTER ROLE g DROP MEMBER u", "Expected option, found: DROP at Line: 1, Column 14"),
        ("DROP ROLE g CASCADE", "Cannot specify CASCADE, RESTRICT, or PURGE in DROP ROLE at Line: 1, Column 13"),
        ("DROP ROLE g RESTRICT", "Cannot specify CASCADE, RESTRICT, or PURGE in DROP ROLE at Line: 1, Column 13"),
        ("GRANT grp TO u", "Expected a privilege keyword, found: grp at Line: 1, Column 7"),
        ("GRANT CONNECT ON DATABASE postgres TO u", "Expected TO, found: postgres at Line: 1, Column 27"),
        ("CREATE ROLE u CONNECTION LIMIT -1", "Expected a value, found: - at Line: 1, Column 32"),
        ("CREATE ROLE u PASSWORD secret", "Expected a concrete value, found: secret at Line: 1, Column 24"),
        ("CREATE ROLE E'u'", "Expected identifier, found: E'u' at Line: 1, Column 13"),
        ("ALTER ROLE u", "Expected option, found: EOF"),
        ("CREATE ROLE u PASSWORD 'unterminated", "Unterminated string literal at Line: 1, Column 24"),
    ],
)
def test_rejected_statements_give_the_parse_error(sql, message, tenant):
    """§0 item 4, 3.1-3.4: statements pg-tikv cannot parse fail with
    ``SQL parse error: sql parser error: <sqlparser message>``, XX000."""
    severity, code, text = tenant.error(sql)
    assert (severity, code, text) == ("ERROR", "XX000", PARSE + message)


def test_alter_role_option_errors_become_end_of_statement_errors(tenant):
    """§3.2: ALTER's options are parsed with backtracking, so a bad
    option value surfaces as ``Expected end of statement, found: <option>``."""
    tenant.run("CREATE ROLE bt")
    assert tenant.error("ALTER ROLE bt LOGIN PASSWORD secret")[2] == PARSE + "Expected end of statement, found: PASSWORD at Line: 1, Column 21"
    assert tenant.error("ALTER ROLE bt LOGIN CONNECTION LIMIT -1")[2] == PARSE + "Expected end of statement, found: CONNECTION at Line: 1, Column 21"
    assert tenant.login("bt", "secret")["C"] == "XX000"  # nothing was applied


def test_grant_and_revoke_only_check_the_grantee(tenant):
    """§3.4: GRANT/REVOKE parse and store, never enforce; an unknown
    grantee (PUBLIC included) is ``Role or user 'x' does not exist``."""
    tenant.run("CREATE ROLE g1 LOGIN PASSWORD 'g'")
    assert tenant.run("GRANT SELECT, INSERT (a, b) ON TABLE public.t1, t2 TO g1 WITH GRANT OPTION") == "GRANT"
    assert tenant.run("GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO g1") == "GRANT"
    privs = tenant.user_record("g1")["privileges"]
    assert {"privilege": "Select", "object": {"Table": {"schema": "public", "name": "t1"}}, "with_grant_option": True} in privs
    assert tenant.run("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM g1") == "REVOKE"
    assert tenant.error("GRANT SELECT ON t TO ghost")[2] == "Role or user 'ghost' does not exist"
    assert tenant.error("GRANT SELECT ON t TO PUBLIC")[2] == "Role or user 'PUBLIC' does not exist"
    assert tenant.error("REVOKE SELECT ON t FROM ghost")[2] == "Role or user 'ghost' does not exist"


def test_privileges_are_never_enforced(tenant, helpers):
    """§0 item 5: any user who can log in may run everything, e.g.
    change admin's password."""
    tenant.run("CREATE ROLE weak LOGIN PASSWORD 'w'")
    with closing(helpers.pg_connect(tenant.dbl.port, tenant.ks + ".weak", "w")) as conn:
        conn.cursor().execute("ALTER ROLE admin PASSWORD 'taken-over'")
    assert tenant.login("admin", "taken-over") is None


def test_unmodelled_statements_are_errors_never_success(tenant):
    """§0 item 2, §4: anything the double does not model fails with XX000
    ``Unsupported statement``; it never pretends success."""
    for sql in (
        "CREATE TABLE t (id int)",
        "INSERT INTO t VALUES (1)",
        "SAVEPOINT s",
        "SET ROLE admin",
        "SELECT 1 + 1",
        "VALUES (1)",
        "SELECT * FROM information_schema.tables",
    ):
        severity, code, text = tenant.error(sql)
        assert (severity, code) == ("ERROR", "XX000") and text.startswith("Unsupported statement"), sql
