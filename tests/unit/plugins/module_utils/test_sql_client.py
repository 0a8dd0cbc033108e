# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the pure parts of _sql_client: quoting, SCRAM/MD5, SASLprep, error classification."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ansible_collections.pgtikv.cloud.plugins.module_utils import _sql_client as c

# Verifiers produced by a real PostgreSQL 15 server (password_encryption =
# scram-sha-256, cleartext given to CREATE ROLE ... PASSWORD, read back from
# pg_authid.rolpassword). Test passwords only. They cover pure ASCII (no
# SASLprep), quotes and backslashes, NFD input (NFKC), a no-break space
# (mapped to U+0020), a soft hyphen (mapped to nothing), RTL text, a bidi
# violation (SASLprep fails -> raw bytes), a compatibility character, an
# emoji (unassigned in Unicode 3.2 -> raw bytes), a tab and full-width letters.
POSTGRES_VERIFIERS = [
    ("abc", "SCRAM-SHA-256$4096:eWvm0enmtQ9bm09M/lF7nQ==$KK4AsOeYG7mRMUUfhWkUbJKW0XDz6MpN2tvLfMFHzmA=:scemDwlkWd1QU0qT0GfeN4gcoSzf62E/jZNxt/hTq0E="),
    ("pa'ss\\word", "SCRAM-SHA-256$4096:+ZAJf0uoNThLjK0nJb9kLw==$sK5uXDaZ4/+jNxtIccvVcrtSTW9gYdQEocMlfvcul5U=:ShOxlv12jlgqjiedWWp/X8MXImaP9vptax6mt4FPA0Y="),
    ("e\u0301t\xe9", "SCRAM-SHA-256$4096:gQWgk2ydm+KbmmzNYqBXOg==$+CJJlFMIG3syF9a2YWW1Fvxf0o5gpNqHQoGitt8Fb5g=:jRth7EI+HaDYYT4SxGuv6SDx0gbXKhqz71DV/NJ1mcs="),
    ("a\xa0b", "SCRAM-SHA-256$4096:156OxdyQrslimoXIAW9J7Q==$Zrjqgeclq4j8TTmxin2vNOgTKqfTr4Gq6f35++5rip0=:wF76gdiaZP81HYyNDB+9ZUPblUKXiG/CLBEGDGaxADs="),
    ("x\xadY", "SCRAM-SHA-256$4096:QnW7wBE16ZIlV1bwtMUZAQ==$6seI9DNo+7sd0cMaD1cLol/loLXz7quP8RJ86HDSP7A=:MDCKJ92T04/P8Eo9Ezw/1G4uV5XkxKvhZM2nNiA4IhY="),
    (
        "\u0627\u0644\u0639",
        "SCRAM-SHA-256$4096:O67L/xcfB+Zp3axUJcZtyg==$HZNhwLQ02/qRCAj+XH3xoZ1P7rz1IY5OOLEF+VLFxO4=:o4FhGN8Df3y6xWnGuFtp+CfDDipPGJwtVZxeq5g5rtY=",
    ),
    ("\u0627a", "SCRAM-SHA-256$4096:QJ6Y5hFI/SZ2sodLx6ECvQ==$ehbH4k/3fELwvpR797ijH8snvoybJDc7jInIjL/jGbI=:bYCvn+/iTxkbITcQtsitWeZ2U4nKj5YBGtSgeplNnlQ="),
    ("\u2163", "SCRAM-SHA-256$4096:d8zOg+yT4YgszTo5S/Fnaw==$OJ3tkn6xlANuWOf3xJsFAyZ9YlhaA5WRVUNBJbLCy8w=:dS6k4zPDxwmD+LuqtdhYkjVGn5iodYKYQYvU4RViJ04="),
    ("\U0001f600z", "SCRAM-SHA-256$4096:5NyWMvxd+WYiNEqUJRAk2A==$xsaZrQUTdNIF1DHTrXKOYbpE5HH8RODjc7UE0jBX2DU=:/Qc5BLAG4ggSPGBBRtZj7msKhzACv9+tP1qfhHrjTH8="),
    ("tab\there", "SCRAM-SHA-256$4096:Yu0L2i3nU+iNnJ5uaAGo2Q==$IJqEbpq78mByw9/gGdF5bB5ZdTgOswVsPP7lWgkdN+s=:wwrtQiDf00XZ/dREjCkJad1jr2/7Z41wMLEFIURiznE="),
    (
        "\uff46\uff55\uff4c\uff4c",
        "SCRAM-SHA-256$4096:GnAYMxSqT3B7H9vYD44NnQ==$iMm3uGCnU7aF+zt/3STAiUdtZe3dy6eFWgbvb+dIOHM=:W8YVL+tDZRGjBUi8cVcaaFBwhRnTkV/uAbQdgsVwZxQ=",
    ),
    ("a\u200b\xe9", "SCRAM-SHA-256$4096:gO/OVPJvZEiagVu07C+yvA==$jgN81SgYN2LQR8WItNq/pkZUr8vNOBWAgifhoHTKzqY=:wdOp63ouxmxalln5HE+UwzuStfo237X929rs6NJsGu0="),
]


@pytest.mark.parametrize("password,verifier", POSTGRES_VERIFIERS)
def test_verify_against_postgres_verifiers(password, verifier):
    assert c.verify_password(verifier, password, "whoever") is True
    assert c.verify_password(verifier, password + "x", "whoever") is False


@pytest.mark.parametrize("password,verifier", POSTGRES_VERIFIERS)
def test_client_side_verifier_equals_postgres(password, verifier):
    # Same salt and iterations as the server used -> byte-identical verifier.
    iterations, rest = verifier[len("SCRAM-SHA-256$") :].split(":", 1)
    salt = base64.b64decode(rest.split("$", 1)[0])
    assert c.scram_verifier(password, salt=salt, iterations=int(iterations)) == verifier


def test_scram_verifier_shape_and_random_salt():
    a, b = c.scram_verifier("secret"), c.scram_verifier("secret")
    assert a != b
    assert c.is_scram_verifier(a)
    assert "secret" not in a
    assert c.verify_password(a, "secret", "u") and c.verify_password(b, "secret", "u")


def test_md5_verifier():
    expected = "md5" + hashlib.md5(b"pwuser").hexdigest()
    assert c.md5_verifier("pw", "user") == expected
    assert c.verify_password(expected, "pw", "user") is True
    assert c.verify_password(expected, "pw", "other") is False


def test_verify_password_unknown_and_null():
    assert c.verify_password(None, "x", "u") is False
    assert c.verify_password("", "x", "u") is False
    assert c.verify_password("cleartext?", "x", "u") is None
    assert c.verify_password("SCRAM-SHA-256$4096:%%%%$a:b", "x", "u") is None


@pytest.mark.parametrize(
    "given,expected",
    [
        ("plain ascii \\ '\"\t", "plain ascii \\ '\"\t"),  # ASCII untouched, even controls
        ("a\u00a0b", "a b"),  # non-ASCII space -> space
        ("x\u00adY", "xY"),  # soft hyphen: mapped to nothing
        ("a\u200b\u00e9", "a \u00e9"),  # zero-width space: C.1.2 wins over B.1, as in PostgreSQL
        ("e\u0301\u00e9", "\u00e9\u00e9"),  # NFKC
        ("\uff46", "f"),  # full width -> NFKC
        ("\u0627a", None),  # RandALCat with LCat -> prohibited, raw bytes
        ("\U0001f600", None),  # unassigned in Unicode 3.2 -> raw bytes
        ("\u00e9\u2028", None),  # C.2.2 line separator -> raw bytes
        ("\u00ad", ""),  # everything mapped away
    ],
)
def test_saslprep(given, expected):
    assert c.saslprep(given) == expected


@pytest.mark.parametrize(
    "name,quoted",
    [
        ("bob", '"bob"'),
        ('we"ird', '"we""ird"'),
        ("Mixed Case", '"Mixed Case"'),
        ("a.b", '"a.b"'),
        ("x'; DROP ROLE admin; --", '"x\'; DROP ROLE admin; --"'),
        ("\u00e9l\u00e8ve", '"\u00e9l\u00e8ve"'),
    ],
)
def test_quote_ident(name, quoted):
    assert c.quote_ident(name) == quoted


@pytest.mark.parametrize("bad", ["", "a\x00b", None])
def test_quote_ident_rejects(bad):
    with pytest.raises(ValueError):
        c.quote_ident(bad)


def test_plain_literal_is_standard_conforming():
    assert c.plain_literal("it's") == "'it''s'"
    assert c.plain_literal("back\\slash") == "'back\\slash'"  # one backslash stays one backslash
    assert c.plain_literal("$$x$$ %s %(a)s") == "'$$x$$ %s %(a)s'"
    with pytest.raises(ValueError):
        c.plain_literal("nul\x00")


def test_escape_literal():
    assert c.escape_literal("a\\b'c") == "E'a\\\\b''c'"


def test_login_name():
    assert c.login_name("acme", "bob") == "acme.bob"
    assert c.login_name("acme", "a.b") == "acme.a.b"
    assert c.login_name(None, "postgres") == "postgres"
    assert c.login_name("", "x") == "x"


@pytest.mark.parametrize(
    "text,code,kind",
    [
        # pg-tikv (reference/pg-tikv-server.md §2.5)
        ('connection to server at "127.0.0.1", port 25433 failed: FATAL:  Password authentication failed for user "bob"', None, "refused"),
        ("FATAL:  Authentication error: User 'bob' is not permitted to log in", None, "nologin"),
        # PostgreSQL
        ('FATAL:  password authentication failed for user "bob"', "28P01", "refused"),
        ('FATAL:  role "bob" is not permitted to log in', None, "nologin"),
        ('FATAL:  no pg_hba.conf entry for host "1.2.3.4", user "bob", database "postgres", no encryption', None, "hba"),
        ("fe_sendauth: no password supplied", None, "refused"),
        # network and TLS
        (
            'connection to server at "127.0.0.1", port 1 failed: Connection refused\n\tIs the server running on that host and accepting TCP/IP connections?',
            None,
            "unreachable",
        ),
        ("timeout expired", None, "unreachable"),
        ('could not translate host name "nope" to address: Name or service not known', None, "unreachable"),
        ("server closed the connection unexpectedly", None, "unreachable"),
        ("server does not support SSL, but SSL was required", None, "tls"),
        # pg-tikv whose PD is down (reference §1.4a, §2.5)
        ("FATAL:  Failed to get client from pool: boom", None, "storage"),
        ("FATAL:  Failed to begin transaction: PD is unreachable", None, "storage"),
        ("FATAL:  Failed to bootstrap auth: gRPC error", None, "storage"),
        ('FATAL:  database "x" does not exist', None, "other"),
    ],
)
def test_classify_login_error(text, code, kind):
    assert c.classify_login_error(text, code) == kind


@pytest.mark.parametrize(
    "text,code,kind",
    [
        ("User 'bob' already exists", "XX000", "exists"),
        ('role "bob" already exists', "42710", "exists"),
        ("Role 'bob' does not exist", "XX000", "missing"),
        ('role "bob" does not exist', "42704", "missing"),
        ("SQL parse error: sql parser error: Expected an object type after CREATE, found: USER", "XX000", "unsupported"),
        ("Unsupported statement: ShowVariable { .. }", "XX000", "unsupported"),
        ("SKIPPED: Dollar-quoted strings not supported", None, "unsupported"),
        ("must be superuser to alter superuser roles or change superuser attribute", "42501", "permission"),
        ("cannot execute ALTER ROLE in a read-only transaction", "25006", "readonly"),
        ("something else", "XX000", "other"),
    ],
)
def test_classify_statement_error(text, code, kind):
    assert c.classify_statement_error(text, code) == kind


def test_scrub_masks_all_literal_forms():
    secret = "p'a\\ss"
    text = "found: 'p''a\\ss' raw p'a\\ss escaped p''a\\\\ss"
    out = c.scrub(text, {secret})
    assert "a\\ss" not in out and "a\\\\ss" not in out
    assert out.count(c.MASK) == 3


def test_copy_hijack_detection():
    assert c.copy_hijack_risk("ALTER ROLE \"x\" WITH PASSWORD 'copy t from stdin'")
    assert c.copy_hijack_risk("ALTER ROLE \"x\" WITH PASSWORD 'a FROM STDIN'")
    assert not c.copy_hijack_risk("ALTER ROLE \"copy\" WITH PASSWORD 'from stdout'")


def test_login_errors_never_contain_the_password(monkeypatch):
    class FakeErr(Exception):
        pgcode = None

    class FakePsycopg:
        Error = FakeErr

        @staticmethod
        def connect(**kw):
            raise FakeErr("FATAL: weird error echoing %s" % kw["password"])

    monkeypatch.setattr(c, "psycopg2", FakePsycopg)
    monkeypatch.setattr(c, "HAS_PSYCOPG2", True)
    with pytest.raises(c.SQLClientError) as exc:
        c.connect({"pg_host": "h", "pg_port": 1}, "t", "u", "S3cr'et")
    assert "S3cr'et" not in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_connect_requires_password():
    with pytest.raises(c.SQLClientError):
        c._conn_kwargs({}, "t", "u", "")
    kw = c._conn_kwargs({"pg_host": "db", "pg_port": 5, "ssl_mode": "verify-full", "ca_cert": "/ca", "connect_timeout": 3}, "acme", "admin", "pw")
    assert kw["user"] == "acme.admin" and kw["sslrootcert"] == "/ca" and kw["sslmode"] == "verify-full"
    assert kw["dbname"] == "postgres" and kw["connect_timeout"] == 3


class _ProbeSession(c.TenantSession):
    """A TenantSession without a connection: execute() is recorded or fails."""

    def __init__(self, down):
        self.tenant, self.sql_params, self._secrets, self.down, self.ran = "acme", {}, set(), down, []
        self.capabilities = c.Capabilities()

    def execute(self, text, **kwargs):
        self.ran.append(text)
        if self.down:
            raise c.StatementError("'check' failed: Failed to begin transaction: PD is unreachable")


@pytest.mark.parametrize("down", [False, True])
def test_refused_probe_on_pg_tikv_is_confirmed_by_a_statement(monkeypatch, down):
    """With PD down pg-tikv refuses a login like a wrong password (§1.4a): a
    statement on the open session (which needs PD) must succeed after it."""
    monkeypatch.setattr(c, "probe_login", lambda *args: "refused")
    session = _ProbeSession(down)
    if down:
        with pytest.raises(c.StatementError):
            session.probe_login("app", "pw")
    else:
        assert session.probe_login("app", "pw") == "refused"
    assert session.ran == ["SELECT 1"]


@pytest.mark.parametrize(
    "value,expected",
    [(True, True), (False, False), ("t", True), ("f", False), ("true", True), ("false", False), ("on", True), ("off", False), (1, True), (0, False)],
)
def test_sql_bool_never_reads_the_text_f_as_true(value, expected):
    """§3.6a: a bool column may come typed (False) or as text ('f'); bool('f') would be True."""
    assert c.sql_bool(value) is expected


@pytest.mark.parametrize("value", [None, "maybe", 2.5])
def test_sql_bool_refuses_what_is_not_a_boolean(value):
    with pytest.raises(c.SQLClientError):
        c.sql_bool(value)


class _DetectingSession(c.TenantSession):
    """A TenantSession whose statements answer like pg-tikv and are counted."""

    def __init__(self, sql_params, login_user="admin", answers=True):
        self.conn = type("Conn", (), {"get_parameter_status": lambda self, name: None})()
        self.sql_params, self.tenant, self.login_user = sql_params, "acme", login_user
        self.queries, self.writes, self._secrets, self._capabilities = [], [], set(), None
        self.answers, self.ran = answers, []

    def _try_read(self, text, params=None):
        self.ran.append(text)
        if self.answers and text == "SELECT version()":
            return [("PostgreSQL 14.0 (pg-tikv)",)]
        return None


def test_server_kind_is_detected_once_per_endpoint_and_role():
    c.forget_detections()
    try:
        first, second = _DetectingSession({"pg_port": 7001}), _DetectingSession({"pg_port": 7001})
        assert not first.ran and not second.ran  # nothing before it is needed
        assert not first.has_role_catalog and first.capabilities.is_pg_tikv
        assert len(first.ran) == 2
        assert not second.has_role_catalog and second.capabilities.is_pg_tikv and second.ran == []
        other = _DetectingSession({"pg_port": 7002})
        assert not other.has_role_catalog and len(other.ran) == 2
    finally:
        c.forget_detections()


def test_a_server_that_answers_no_statement_is_not_remembered():
    c.forget_detections()
    try:
        for _attempt in range(2):
            down = _DetectingSession({"pg_port": 7003}, answers=False)
            assert not down.has_role_catalog and len(down.ran) == 2
    finally:
        c.forget_detections()


# ---------------------------------------------------------------- login helpers


def _refusing_raw_connect(kind):
    def raw_connect(sql_params, tenant, user, password):
        if kind == "refused":
            raise c.LoginRefused("refused", server_message="password authentication failed", sqlstate="28P01")
        if kind == "nologin":
            raise c.LoginNotPermitted("nologin", server_message="role is not permitted to log in")
        raise c.ServerUnreachable("cannot reach the SQL server at h:1: connection refused")

    return raw_connect


@pytest.mark.parametrize("kind,text", [("refused", "the tenant exists in PD, so the login_password is wrong"), ("nologin", "has NOLOGIN")])
def test_login_as_says_what_to_fix(monkeypatch, kind, text):
    monkeypatch.setattr(c, "_raw_connect", _refusing_raw_connect(kind))
    with pytest.raises(c.SQLClientError) as exc:
        c.login_as({}, "acme", "bob", "pw")
    assert str(exc.value).startswith("cannot log in as 'acme.bob': ") and text in str(exc.value)
    with pytest.raises(c.LoginRefused, match="wrong login_password or unknown login_user") if kind == "refused" else pytest.raises(c.LoginNotPermitted):
        c.login_as({}, None, "bob", "pw")


@pytest.mark.parametrize(
    "kind,outcome", [("refused", "refused"), ("nologin", "nologin"), ("down", "error: cannot reach the SQL server at h:1: connection refused")]
)
def test_login_outcome_never_raises(monkeypatch, kind, outcome):
    monkeypatch.setattr(c, "_raw_connect", _refusing_raw_connect(kind))
    assert c.login_outcome({}, "acme", "bob", "pw") == outcome
