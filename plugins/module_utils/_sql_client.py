# Copyright (c) pgtikv.cloud contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one SQL client of the collection: logins, role statements, capability detection.

PRIVATE: for use by this collection's modules only; may change at any time.

It talks to two kinds of server through psycopg2:

* pg-tikv (reference/pg-tikv-server.md): no role catalog, every SQL error is
  ``XX000``, only plain ``'...'`` password literals, no transactions;
* a server with a role catalog (real PostgreSQL, or a future pg-tikv that adds
  ``pg_roles``): attributes are read back and compared precisely.

Which one it is is decided by capability detection after login (can
``pg_catalog.pg_roles`` be read?), never from the version string, which is
only recorded.

Secrets: every password this module sends is registered with the session and
scrubbed from recorded statements and from every error message; the
exceptions raised here never chain the driver's exception (``from None``),
so a traceback cannot carry a server message with a literal in it either.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stringprep
import threading
import unicodedata

try:
    import psycopg2
    import psycopg2.extensions
except ImportError as _imp_err:  # pragma: no cover - exercised by missing_required_lib
    psycopg2 = None
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = _imp_err
else:
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None

MASK = "********"
# What a recorded statement shows in place of a password literal or verifier.
MASKED_LITERAL = "'" + MASK + "'"

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class SQLClientError(Exception):
    """Base class. ``str(e)`` is a human message that never contains a secret."""

    def __init__(self, message, server_message=None, sqlstate=None):
        super().__init__(message)
        self.message = message
        self.server_message = server_message  # scrubbed copy of the server's text, or None
        self.sqlstate = sqlstate

    def __str__(self):
        return self.message


class ServerUnreachable(SQLClientError):
    """No answer from the SQL endpoint (refused, timeout, DNS, dropped connection)."""


class BackendUnavailable(ServerUnreachable):
    """The SQL server answers but cannot reach its storage: pg-tikv needs a
    timestamp from PD for every login and statement (reference
    pg-tikv-server.md §1.4a), so with PD down it fails them with XX000."""


class LoginRefused(SQLClientError):
    """28P01: wrong password or unknown user (on pg-tikv also: tenant missing in PD, §1.4/§2.5)."""


class LoginNotPermitted(SQLClientError):
    """The role exists but has NOLOGIN (pg-tikv XX000, PostgreSQL 28000)."""


class StatementError(SQLClientError):
    """A statement failed. ``kind`` is one of: exists, missing, unsupported, permission, readonly, other."""

    def __init__(self, message, server_message=None, sqlstate=None, kind="other"):
        super().__init__(message, server_message=server_message, sqlstate=sqlstate)
        self.kind = kind


class UnsupportedStatement(StatementError):
    """The server does not parse or implement a statement (or answered with a ``SKIPPED:`` row, §3.5)."""

    def __init__(self, message, server_message=None, sqlstate=None):
        super().__init__(message, server_message=server_message, sqlstate=sqlstate, kind="unsupported")


# --------------------------------------------------------------------------
# Pure helpers (unit-tested)
# --------------------------------------------------------------------------


def login_name(tenant, user):
    """The startup-packet user name: ``tenant.user``, or ``user`` when tenant is None.

    pg-tikv splits at the first ``.`` (reference/pg-tikv-server.md §1.1), so a user
    name may itself contain dots when a tenant prefix is given.
    """
    if tenant is None or tenant == "":
        return user
    return "%s.%s" % (tenant, user)


def quote_ident(name):
    """Double-quoted identifier with ``"`` doubled.

    Same output as libpq's PQescapeIdentifier / psycopg2.sql.Identifier; valid on
    PostgreSQL and on pg-tikv, whose tokenizer unescapes ``""`` (§3.1). Pure, so
    planning and check mode need no connection.
    """
    if not isinstance(name, str) or name == "":
        raise ValueError("identifier must be a non-empty string")
    if "\x00" in name:
        raise ValueError("identifier must not contain NUL")
    return '"' + name.replace('"', '""') + '"'


def plain_literal(value):
    """Standard-conforming ``'...'`` literal: quotes doubled, backslashes literal.

    The only form pg-tikv accepts as a password: ``E'...'``, ``$$...$$`` and the
    rest are silently ignored, which stores an empty password on CREATE
    (reference/pg-tikv-server.md §0.3, §3.5). libpq/psycopg2 quoting would
    produce ``E'...'`` or doubled backslashes, because pg-tikv sends no
    ``standard_conforming_strings`` ParameterStatus (§2.7, §3.6), so it is
    built here by hand. On PostgreSQL the same text means the same thing only
    with ``standard_conforming_strings = on``, which the session checks.
    """
    if "\x00" in value:
        raise ValueError("a string literal must not contain NUL")
    return "'" + value.replace("'", "''") + "'"


_TEXT_BOOLS = {"t": True, "true": True, "on": True, "1": True, "yes": True, "f": False, "false": False, "off": False, "0": False, "no": False}


def sql_bool(value):
    """A boolean result value, whatever type the server gave the column.

    pg-tikv types result columns from the first row (reference
    pg-tikv-server.md §3.6a), and a server may send a bool column as text:
    then the driver returns ``'f'``, which ``bool()`` would read as True.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in _TEXT_BOOLS:
        return _TEXT_BOOLS[value.strip().lower()]
    raise SQLClientError("the server returned %r where a boolean was expected" % (value,))


def escape_literal(value):
    """``E'...'`` literal (backslashes and quotes doubled): PostgreSQL only, any setting."""
    if "\x00" in value:
        raise ValueError("a string literal must not contain NUL")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# pg-tikv's simple-query path runs an unanchored COPY ... FROM stdin regex over the
# whole text, and a pre-parse check skips any text containing " FROM STDIN"
# (reference/pg-tikv-server.md §3.5). Statement text that matches is refused.
_COPY_HIJACK = re.compile(r"copy\s.*from\s+stdin|\sfrom\s+stdin", re.IGNORECASE | re.DOTALL)


def copy_hijack_risk(text):
    return bool(_COPY_HIJACK.search(text))


# ---- SASLprep (RFC 4013) as PostgreSQL applies it (src/common/saslprep.c) ----


def _in_prohibited_output(ch):
    return (
        stringprep.in_table_c12(ch)
        or stringprep.in_table_c21(ch)
        or stringprep.in_table_c22(ch)
        or stringprep.in_table_c3(ch)
        or stringprep.in_table_c4(ch)
        or stringprep.in_table_c5(ch)
        or stringprep.in_table_c6(ch)
        or stringprep.in_table_c7(ch)
        or stringprep.in_table_c8(ch)
        or stringprep.in_table_c9(ch)
    )


def saslprep(password):
    """Return the SASLprep'ed password, or None when PostgreSQL would use the raw bytes.

    PostgreSQL (server when it hashes a cleartext password, libpq when it logs in)
    leaves pure ASCII untouched, maps non-ASCII spaces to U+0020, drops
    "commonly mapped to nothing" characters, applies NFKC, and, if a prohibited or
    unassigned code point or a bidi violation remains, falls back to the
    password as given. Reproduced here so a client-side SCRAM verifier equals
    the one the server would compute, and logins by libpq succeed.
    """
    if all(ord(c) < 128 for c in password):
        return password
    mapped = []
    for ch in password:
        if stringprep.in_table_c12(ch):
            mapped.append(" ")
        elif stringprep.in_table_b1(ch):
            continue
        else:
            mapped.append(ch)
    if not mapped:
        return ""
    out = unicodedata.normalize("NFKC", "".join(mapped))
    for ch in out:
        if _in_prohibited_output(ch) or stringprep.in_table_a1(ch):
            return None
    if any(stringprep.in_table_d1(ch) for ch in out):
        if any(stringprep.in_table_d2(ch) for ch in out):
            return None
        if not (stringprep.in_table_d1(out[0]) and stringprep.in_table_d1(out[-1])):
            return None
    return out


def _scram_password_bytes(password):
    prepared = saslprep(password)
    return (password if prepared is None else prepared).encode("utf-8")


def _scram_keys(password, salt, iterations):
    salted = hashlib.pbkdf2_hmac("sha256", _scram_password_bytes(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return stored_key, server_key


def scram_verifier(password, salt=None, iterations=SCRAM_ITERATIONS):
    """``SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>``, as PostgreSQL stores it.

    Sending this instead of the cleartext keeps the password out of server logs
    (reference/ansible-collection-practices.md §5.1); PostgreSQL >= 10 stores a
    pre-hashed value as is.
    """
    if salt is None:
        salt = os.urandom(16)
    stored_key, server_key = _scram_keys(password, salt, iterations)
    b64 = base64.b64encode
    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt).decode(), b64(stored_key).decode(), b64(server_key).decode())


_SCRAM_RE = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")
_MD5_RE = re.compile(r"^md5[0-9a-f]{32}$")


def is_scram_verifier(value):
    return bool(value and _SCRAM_RE.match(value))


def md5_verifier(password, user):
    return "md5" + hashlib.md5((password + user).encode("utf-8")).hexdigest()  # nosec - PostgreSQL's md5 format


def verify_password(stored, password, user):
    """Does ``stored`` (pg_authid.rolpassword) accept ``password``?

    Returns True/False, or None when the stored value has an unknown format.
    A NULL stored value never matches.
    """
    if stored is None or stored == "":
        return False
    m = _SCRAM_RE.match(stored)
    if m:
        try:
            iterations = int(m.group(1))
            salt = base64.b64decode(m.group(2), validate=True)
            stored_key = base64.b64decode(m.group(3), validate=True)
            server_key = base64.b64decode(m.group(4), validate=True)
        except (ValueError, TypeError):
            return None
        mine_stored, mine_server = _scram_keys(password, salt, iterations)
        return hmac.compare_digest(mine_stored, stored_key) and hmac.compare_digest(mine_server, server_key)
    if _MD5_RE.match(stored):
        return hmac.compare_digest(md5_verifier(password, user), stored)
    return None


# ---- login error classification ----

# pg-tikv's FATAL XX000 login texts when its storage fails (§2.5, §1.4a).
_STORAGE_PATTERNS = ("failed to begin transaction", "failed to bootstrap auth", "failed to get client from pool", "failed to commit")

_UNREACHABLE_PATTERNS = (
    "could not connect",
    "connection refused",
    "timeout expired",
    "timed out",
    "could not translate host name",
    "name or service not known",
    "no route to host",
    "network is unreachable",
    "server closed the connection unexpectedly",
    "connection reset",
    "could not receive data",
    "could not send data",
    "is the server running",
    "ssl syscall error",
    "eof detected",
    "connection to server was lost",
    "temporary failure in name resolution",
)


def _strip_libpq_prefix(text):
    """'connection to server at "h" (1.2.3.4), port 5 failed: FATAL:  msg' -> 'FATAL:  msg'."""
    text = (text or "").strip()
    m = re.search(r"\bfailed:\s*(.*)$", text, re.DOTALL)
    if m and m.group(1).strip():
        text = m.group(1).strip()
    return " ".join(text.split())


def classify_login_error(text, sqlstate=None):
    """Map a connect-time error to 'refused' | 'nologin' | 'storage' | 'unreachable' | 'tls' | 'hba' | 'other'.

    psycopg2 usually has no pgcode at connect time, so the message text decides;
    both servers' wordings are covered (reference/pg-tikv-server.md §2.5):
    pg-tikv ``Password authentication failed for user "u"`` (28P01) and
    ``Authentication error: User 'u' is not permitted to log in`` (XX000);
    PostgreSQL ``password authentication failed for user "u"`` (28P01) and
    ``role "u" is not permitted to log in`` (28000).
    """
    low = (text or "").lower()
    if "not permitted to log in" in low:
        return "nologin"
    if any(p in low for p in _STORAGE_PATTERNS):
        return "storage"
    if sqlstate == "28P01" or "password authentication failed" in low or "no password supplied" in low:
        return "refused"
    if "pg_hba.conf" in low:
        return "hba"
    if "ssl" in low and ("not support" in low or "certificate" in low or "required" in low or "root cert" in low or "verify" in low):
        return "tls"
    if any(p in low for p in _UNREACHABLE_PATTERNS):
        return "unreachable"
    return "other"


def classify_statement_error(text, sqlstate=None):
    """Map a statement error to a StatementError kind.

    pg-tikv gives XX000 for everything, so its message text decides
    (reference/pg-tikv-server.md §0.2); PostgreSQL's SQLSTATE is used when present.
    """
    low = (text or "").lower()
    if sqlstate == "42710" or "already exists" in low:
        return "exists"
    if sqlstate == "42704" or "does not exist" in low:
        return "missing"
    if sqlstate in ("42501",) or "permission denied" in low or "must be superuser" in low:
        return "permission"
    if sqlstate == "25006" or "read-only transaction" in low:
        return "readonly"
    if (
        sqlstate in ("42601", "0A000")
        or "parse error" in low
        or "unsupported" in low
        or "not supported" in low
        or "syntax error" in low
        or low.startswith("skipped:")
    ):
        return "unsupported"
    return "other"


def scrub(text, secrets):
    """Replace every secret (and its SQL-literal forms) in ``text`` with the mask."""
    if not text:
        return text
    for s in sorted((s for s in secrets if s), key=len, reverse=True):
        for form in (s.replace("'", "''"), s.replace("\\", "\\\\").replace("'", "''"), s):
            if form and form in text:
                text = text.replace(form, MASK)
    return text


# --------------------------------------------------------------------------
# Connections
# --------------------------------------------------------------------------


def _conn_kwargs(sql_params, tenant, user, password):
    if password is None or password == "":
        # libpq would then read ~/.pgpass or PGPASSWORD: never log in with a password we did not choose.
        raise SQLClientError("a login password is required (login as %r)" % login_name(tenant, user))
    if "\x00" in password:
        raise SQLClientError("the login password must not contain a NUL character")
    kw = dict(
        host=sql_params.get("pg_host") or "127.0.0.1",
        port=int(sql_params.get("pg_port") or 5433),
        user=login_name(tenant, user),
        password=password,
        # pg-tikv ignores the database name (§1.1); PostgreSQL needs an existing one.
        dbname=sql_params.get("login_db") or "postgres",
        sslmode=sql_params.get("ssl_mode") or "prefer",
        connect_timeout=int(sql_params.get("connect_timeout") or 10),
    )
    if sql_params.get("ca_cert"):
        kw["sslrootcert"] = sql_params["ca_cert"]
    return kw


def _where(sql_params):
    return "%s:%s" % (sql_params.get("pg_host") or "127.0.0.1", sql_params.get("pg_port") or 5433)


def _raw_connect(sql_params, tenant, user, password):
    """psycopg2 connection in autocommit, or a typed SQLClientError."""
    if not HAS_PSYCOPG2:
        raise SQLClientError("psycopg2 is required for SQL connections")
    kw = _conn_kwargs(sql_params, tenant, user, password)
    who = kw["user"]
    try:
        conn = psycopg2.connect(**kw)
    except psycopg2.Error as e:
        code = getattr(e, "pgcode", None)
        kind = classify_login_error(_strip_libpq_prefix(str(e)), code)
        raw = scrub(_strip_libpq_prefix(str(e)), [password])
        where = _where(sql_params)
        if kind == "refused":
            err = LoginRefused(
                "login as %r to %s was refused: wrong password or unknown user "
                "(pg-tikv gives the same answer when the tenant is missing in PD) [%s]" % (who, where, raw),
                server_message=raw,
                sqlstate=code or "28P01",
            )
        elif kind == "nologin":
            err = LoginNotPermitted(
                "login as %r to %s is not permitted: the role exists but has NOLOGIN [%s]" % (who, where, raw), server_message=raw, sqlstate=code
            )
        elif kind == "storage":
            err = BackendUnavailable(
                "pg-tikv at %s answers but cannot serve %r: its storage (PD/TiKV) is unavailable; pg-tikv needs "
                "PD for every login and statement [%s]" % (where, who, raw),
                server_message=raw,
                sqlstate=code,
            )
        elif kind == "unreachable":
            err = ServerUnreachable("cannot reach the SQL server at %s: %s" % (where, raw), server_message=raw, sqlstate=code)
        elif kind == "tls":
            err = SQLClientError("TLS negotiation with %s failed (check ssl_mode and ca_cert): %s" % (where, raw), server_message=raw, sqlstate=code)
        elif kind == "hba":
            err = SQLClientError(
                "the server at %s rejected the connection for %r by its pg_hba.conf rules: %s" % (where, who, raw), server_message=raw, sqlstate=code
            )
        else:
            err = SQLClientError("login as %r to %s failed: %s" % (who, where, raw), server_message=raw, sqlstate=code)
        raise err from None
    # pg-tikv answers BEGIN/COMMIT/SET with EmptyQueryResponse, which breaks the
    # driver's implicit transactions: autocommit always (§0.9, §3.7).
    conn.autocommit = True
    return conn


def probe_server(sql_params):
    """None if the endpoint speaks the PostgreSQL protocol up to its password
    request, else a message. Nothing is logged in and no tenant is named.

    A TCP connect alone passes an endpoint that accepts but never answers. This
    runs the startup exchange (and TLS, as ssl_mode says) and stops when the
    server asks for a password: libpq has none to send and hangs up. pg-tikv
    asks for the password before it looks the tenant up (reference
    pg-tikv-server.md §1.4, §2.1), so this neither bootstraps admin/admin nor
    stalls other logins.
    """
    if not HAS_PSYCOPG2:
        raise SQLClientError("psycopg2 is required for SQL connections")
    kw = _conn_kwargs(sql_params, None, "pgtikv_probe", "x")
    # No password and a password file that does not exist (libpq warns about
    # /dev/null): libpq stops at the server's request.
    kw.update(user="pgtikv_probe", password="", passfile="/nonexistent/pgtikv-cloud-no-passfile")
    try:
        psycopg2.connect(**kw).close()
    except psycopg2.Error as e:
        text = _strip_libpq_prefix(str(e))
        if "no password supplied" in text.lower():
            return None
        kind = classify_login_error(text, getattr(e, "pgcode", None))
        if kind in ("refused", "nologin", "hba"):
            return None  # the server answered the startup: it speaks the protocol
        if "timeout expired" in text.lower():
            return "the SQL endpoint %s accepted the connection but did not answer the protocol's startup within %ss" % (
                _where(sql_params),
                kw["connect_timeout"],
            )
        return "the SQL endpoint %s did not complete the protocol's startup: %s" % (_where(sql_params), text)
    # A server that let us in without a password (trust): it speaks the protocol.
    return None


def connect(sql_params, tenant, user, password):
    """Log in as ``tenant.user`` and return a TenantSession (capabilities detected)."""
    conn = _raw_connect(sql_params, tenant, user, password)
    try:
        session = TenantSession(conn, sql_params, tenant, user)
        session.add_secret(password)
        return session
    except Exception:
        try:
            conn.close()
        except Exception:  # pragma: no cover
            pass
        raise


def probe_login(sql_params, tenant, user, password):
    """Test login: 'ok' | 'refused' | 'nologin'. Raises ServerUnreachable (and SQLClientError otherwise).

    On pg-tikv this is the only way to check a password or the LOGIN flag
    (§0.10), and it is meaningful only while the server's fallback password
    PG_PASSWORD is unset (§2.3): with it set, any password equal to it is
    accepted for any name. pg-tikv checks NOLOGIN before the password, so
    'nologin' comes back whatever password was sent (§2.5); PostgreSQL checks
    it after a correct password only.
    """
    try:
        conn = _raw_connect(sql_params, tenant, user, password)
    except LoginRefused:
        return "refused"
    except LoginNotPermitted:
        return "nologin"
    try:
        conn.close()
    except Exception:  # pragma: no cover
        pass
    return "ok"


def login_outcome(sql_params, tenant, user, password):
    """A fresh test login that never raises: 'ok', 'refused', 'nologin' or
    'error: <why>' (pg-tikv unreachable, TLS...), for reports that list every
    check."""
    try:
        return probe_login(sql_params, tenant, user, password)
    except SQLClientError as exc:
        return "error: %s" % exc


def login_first(sql_params, tenant, candidates):
    """Log in to ``tenant`` with the first of ``candidates`` that works.

    ``candidates``: ``(user, password, label)`` in order of preference; one
    without a password is skipped. A refused login or a NOLOGIN user moves on
    to the next candidate; any other error (pg-tikv unreachable, TLS...) is
    raised as it is.
    Returns ``(session, user, refused)``; ``session`` and ``user`` are None when
    no candidate logs in. ``refused``: ``(label, exception)`` of every refused
    candidate, the exception a LoginRefused or a LoginNotPermitted.
    """
    refused = []
    for user, password, label in candidates:
        if not password:
            continue
        try:
            return connect(sql_params, tenant, user, password), user, refused
        except (LoginRefused, LoginNotPermitted) as exc:
            refused.append((label, exc))
    return None, None, refused


def login_as(sql_params, tenant, login_user, password):
    """connect() for a module's own login (login_user/login_password): a
    refusal says what to fix. Raises like connect()."""
    who = login_name(tenant, login_user)
    try:
        return connect(sql_params, tenant, login_user, password)
    except LoginRefused as e:
        hint = (
            ("the tenant exists in PD, so the login_password is wrong or user %r does not exist in it" % login_user)
            if tenant
            else "wrong login_password or unknown login_user"
        )
        raise LoginRefused("cannot log in as %r: %s [%s]" % (who, hint, e.server_message), server_message=e.server_message, sqlstate=e.sqlstate) from None
    except LoginNotPermitted as e:
        raise LoginNotPermitted(
            "cannot log in as %r: the user exists but has NOLOGIN; log in as another superuser of the tenant (login_user) [%s]" % (who, e.server_message),
            server_message=e.server_message,
            sqlstate=e.sqlstate,
        ) from None


# --------------------------------------------------------------------------
# Session
# --------------------------------------------------------------------------

ROLE_ATTRIBUTES = ("login", "superuser", "createdb", "createrole")
_ATTR_KEYWORDS = {
    "login": ("LOGIN", "NOLOGIN"),
    "superuser": ("SUPERUSER", "NOSUPERUSER"),
    "createdb": ("CREATEDB", "NOCREATEDB"),
    "createrole": ("CREATEROLE", "NOCREATEROLE"),
}


class Capabilities:
    """What the server lets us read and how it wants passwords."""

    def __init__(self):
        self.version = None  # SELECT version(), informational only
        self.is_pg_tikv = False  # informational ('(pg-tikv)' in version, §4)
        self.role_catalog = False  # pg_catalog.pg_roles is readable
        self.authid_readable = False  # pg_catalog.pg_authid.rolpassword is readable
        self.password_encryption = None  # current_setting('password_encryption') or None
        self.standard_conforming_strings = None  # 'on' / 'off' / None (not reported, e.g. pg-tikv §2.7)

    @property
    def password_form(self):
        """'scram' | 'md5' | 'plain': how a password is sent."""
        if self.role_catalog and self.password_encryption == "scram-sha-256":
            return "scram"
        if self.role_catalog and self.password_encryption in ("md5", "on"):
            return "md5"
        return "plain"

    def as_dict(self):
        return dict(
            version=self.version,
            role_catalog=self.role_catalog,
            password_readable=self.authid_readable,
            password_form=self.password_form,
            standard_conforming_strings=self.standard_conforming_strings,
            pg_tikv=self.is_pg_tikv,
        )


# What a server is, detected once per endpoint and login role in a process
# (one module run), not once per session: the server kind does not change
# within a run, and on pg-tikv every tenant's "admin" is the same kind of role.
_DETECTED = {}
_DETECT_LOCK = threading.Lock()


def _detection_key(sql_params, login_user):
    return (sql_params.get("pg_host") or "127.0.0.1", int(sql_params.get("pg_port") or 5433), sql_params.get("ssl_mode") or "prefer", login_user)


def forget_detections():
    """Forget every detected server kind (a new run, or a test)."""
    with _DETECT_LOCK:
        _DETECTED.clear()


class TenantSession:
    """One autocommit SQL session, logged in as ``tenant.login_user``.

    What the server can do (``capabilities``) is detected on first use, and
    once per endpoint and login role: a session that only proves a login runs
    no statement at all.
    """

    def __init__(self, conn, sql_params, tenant, login_user):
        self.conn = conn
        self.sql_params = dict(sql_params)
        self.tenant = tenant
        self.login_user = login_user
        self.queries = []  # every statement executed, secrets masked
        self.writes = []  # the write statements that succeeded, masked (for changed on failure)
        self._secrets = set()
        self._capabilities = None

    @property
    def capabilities(self):
        if self._capabilities is None:
            self._capabilities = self._detected()
        return self._capabilities

    @capabilities.setter
    def capabilities(self, value):
        self._capabilities = value

    def _detected(self):
        key = _detection_key(self.sql_params, self.login_user)
        with _DETECT_LOCK:
            known = _DETECTED.get(key)
            if known is None:
                caps = Capabilities()
                self._capabilities = caps
                self._detect()
                # Only a server that answered statements is remembered (with PD
                # down pg-tikv fails every statement, which proves nothing).
                if caps.version is not None:
                    _DETECTED[key] = caps
                return caps
        caps = Capabilities()
        caps.__dict__.update(known.__dict__)
        scs = self._parameter_status("standard_conforming_strings")
        if scs is not None:
            caps.standard_conforming_strings = scs
        return caps

    def _parameter_status(self, name):
        try:
            return self.conn.get_parameter_status(name)
        except Exception:  # pragma: no cover
            return None

    # ---- plumbing ----

    @property
    def has_role_catalog(self):
        return self.capabilities.role_catalog

    def add_secret(self, value):
        if value:
            self._secrets.add(value)

    def close(self):
        try:
            self.conn.close()
        except Exception:  # pragma: no cover
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _error(self, e, what):
        text = " ".join(str(getattr(e, "pgerror", None) or e).split())
        code = getattr(e, "pgcode", None)
        # Classify the server's own words first, then mask secrets for display.
        kind = classify_statement_error(re.sub(r"^(ERROR|FATAL):\s*", "", text), code)
        raw = scrub(text, self._secrets)
        if isinstance(e, psycopg2.OperationalError) and self.conn.closed:
            return ServerUnreachable("the SQL connection was lost during %s: %s" % (what, raw), server_message=raw, sqlstate=code)
        msg = "%s failed: %s" % (what, raw)
        if kind == "unsupported":
            return UnsupportedStatement("%s is not supported by this server (%s)" % (what, raw), server_message=raw, sqlstate=code)
        return StatementError(msg, server_message=raw, sqlstate=code, kind=kind)

    def execute(self, text, masked=None, params=None, what=None, fetch=False, record=True):
        """Run one statement; return rows (fetch=True) or None. Raises StatementError.

        ``masked`` is the text recorded in ``queries`` (defaults to ``text``,
        scrubbed of registered secrets). Without ``params`` the text goes out
        verbatim (no %-interpolation by the driver).
        """
        shown = scrub(masked if masked is not None else text, self._secrets)
        what = what or shown.split(" (", 1)[0][:60]
        if record:
            self.queries.append(shown)
        try:
            with self.conn.cursor() as cur:
                if params is None:
                    cur.execute(text)
                else:
                    cur.execute(text, params)
                rows = cur.fetchall() if cur.description is not None else None
                desc = [d[0] for d in cur.description] if cur.description is not None else []
        except psycopg2.Error as e:
            raise self._error(e, repr(what)) from None
        # pg-tikv turns some statements into a success row `warning = SKIPPED: ...` (§3.5).
        if rows and desc and desc[0] == "warning" and isinstance(rows[0][0], str) and rows[0][0].startswith("SKIPPED:"):
            raise UnsupportedStatement(
                "%r was skipped by the server: %s" % (what, scrub(rows[0][0], self._secrets)), server_message=scrub(rows[0][0], self._secrets)
            )
        return rows if fetch else None

    def _try_read(self, text, params=None):
        """A read that may legitimately fail (capability probe): rows or None."""
        try:
            return self.execute(text, params=params, fetch=True, record=True)
        except StatementError:
            return None

    def _detect(self):
        caps = self.capabilities
        rows = self._try_read("SELECT version()")
        if rows:
            caps.version = str(rows[0][0])
            caps.is_pg_tikv = "(pg-tikv)" in caps.version
        # Capability, not flavour: can the role catalog be read? On pg-tikv this
        # fails with XX000 "Table 'pg_roles' not found" (§4).
        # (pg-tikv reads only the last name part, so a tenant table named pg_roles
        # would be read instead; whoever can create one can already do anything in
        # the tenant, §0.5, so this is not treated as a security boundary.)
        rows = self._try_read("SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit FROM pg_catalog.pg_roles LIMIT 1")
        caps.role_catalog = rows is not None
        if caps.role_catalog:
            rows = self._try_read("SELECT rolpassword FROM pg_catalog.pg_authid LIMIT 0")
            caps.authid_readable = rows is not None
            rows = self._try_read("SELECT current_setting('password_encryption')")
            caps.password_encryption = str(rows[0][0]) if rows else None
        scs = self._parameter_status("standard_conforming_strings")
        if scs is None and caps.role_catalog:
            rows = self._try_read("SELECT current_setting('standard_conforming_strings')")
            scs = str(rows[0][0]) if rows else None
        caps.standard_conforming_strings = scs

    # ---- password literals ----

    def password_sql(self, user, password):
        """SQL text for ``PASSWORD <here>`` and whether it is a verifier.

        * catalog server with password_encryption scram-sha-256 / md5: the
          verifier is computed here and only it is sent, so the cleartext never
          reaches server logs (practices §5.1); PostgreSQL stores a pre-hashed
          value as is. Verifiers contain no quote or backslash.
        * otherwise (pg-tikv): the plain ``'...'`` literal (§0.3, §3.5), after
          checking the server does not report standard_conforming_strings=off.
        """
        if not isinstance(password, str) or password == "":
            raise SQLClientError("the password must be a non-empty string")
        if "\x00" in password:
            raise SQLClientError("the password must not contain a NUL character")
        self.add_secret(password)
        form = self.capabilities.password_form
        if form == "scram":
            lit = plain_literal(scram_verifier(password))
        elif form == "md5":
            lit = plain_literal(md5_verifier(password, user))
        elif self.capabilities.standard_conforming_strings == "off" and self.has_role_catalog:
            # A catalog server with an unknown password_encryption and backslash
            # escapes on: E'' means the same text whatever the setting.
            lit = escape_literal(password)
        elif self.capabilities.standard_conforming_strings == "off" and "\\" in password:
            # No catalog (pg-tikv-like) but a server that says backslashes escape: the
            # plain literal is the only form pg-tikv accepts (§3.5), and with a
            # backslash it would mean something else here. Refuse rather than guess.
            raise SQLClientError(
                "this server reports standard_conforming_strings=off and accepts only plain "
                "'...' password literals; a password with a backslash cannot be sent exactly"
            )
        else:
            lit = plain_literal(password)
        self.add_secret(lit[1:-1] if lit.startswith("'") else lit[2:-1])
        return lit

    # ---- role reads ----

    def role_exists(self, user):
        if self.has_role_catalog:
            rows = self.execute("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", params=(user,), fetch=True, what="role lookup")
            return bool(rows)
        # pg-tikv: ALTER ROLE ... RESET ALL looks the role up and does nothing else
        # (§0.10, §3.2). Never used where a catalog exists (it would reset settings there).
        try:
            self.execute("ALTER ROLE %s RESET ALL" % quote_ident(user), what="existence probe (ALTER ROLE RESET ALL)")
        except StatementError as e:
            if e.kind == "missing":
                return False
            raise
        return True

    def get_role(self, user):
        """Attributes from the catalog: dict or None when absent. Catalog servers only."""
        if not self.has_role_catalog:
            raise SQLClientError("this server has no role catalog; role attributes cannot be read")
        rows = self.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = %s",
            params=(user,),
            fetch=True,
            what="role lookup",
        )
        if not rows:
            return None
        r = rows[0]
        return dict(login=sql_bool(r[0]), superuser=sql_bool(r[1]), createdb=sql_bool(r[2]), createrole=sql_bool(r[3]), conn_limit=int(r[4]))

    def list_roles(self):
        """All roles with attributes (catalog servers only)."""
        if not self.has_role_catalog:
            raise SQLClientError("this server has no role catalog; roles cannot be listed")
        rows = self.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolconnlimit, "
            "rolvaliduntil IS NOT NULL FROM pg_catalog.pg_roles ORDER BY rolname",
            fetch=True,
            what="role listing",
        )
        return [
            dict(
                name=r[0],
                login=sql_bool(r[1]),
                superuser=sql_bool(r[2]),
                createdb=sql_bool(r[3]),
                createrole=sql_bool(r[4]),
                conn_limit=int(r[5]),
                valid_until_set=sql_bool(r[6]),
            )
            for r in rows
        ]

    def stored_password(self, user):
        """pg_authid.rolpassword (a verifier) or None; raises if unreadable."""
        rows = self.execute("SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = %s", params=(user,), fetch=True, what="password verifier lookup")
        return rows[0][0] if rows else None

    def password_matches(self, user, password, can_login=None):
        """True / False, or None when it cannot be verified.

        Catalog with readable pg_authid: verifier comparison (SCRAM and MD5, like
        postgresql_user). A stored MD5 hash while the server wants SCRAM counts as
        a mismatch (upgrade). Otherwise a test login as ``tenant.user`` (§0.10).
        """
        self.add_secret(password)
        if self.has_role_catalog and self.capabilities.authid_readable:
            stored = self.stored_password(user)
            ok = verify_password(stored, password, user)
            if ok and self.capabilities.password_form == "scram" and not is_scram_verifier(stored):
                return False
            if ok is not None:
                return ok
        if can_login is False:
            return None
        outcome = self.probe_login(user, password)
        if outcome == "ok":
            return True
        if outcome == "refused":
            return False
        return None

    def login_allowed(self, user):
        """pg-tikv only: read LOGIN with a test login using a random password.

        pg-tikv checks NOLOGIN before the password (§2.5), so 'nologin' means
        NOLOGIN and 'refused' means LOGIN. Returns True/False, or None if the
        random password was accepted (a PG_PASSWORD fallback, §2.3).
        """
        outcome = self.probe_login(user, base64.urlsafe_b64encode(os.urandom(24)).decode())
        if outcome == "nologin":
            return False
        if outcome == "refused":
            return True
        return None

    def probe_login(self, user, password):
        if self.tenant is None and not self.has_role_catalog and ("." in user or ":" in user):
            # Without a tenant prefix pg-tikv would split 'a.b' into keyspace 'a', user 'b' (§1.1).
            raise SQLClientError("cannot test a login for %r without a tenant: pg-tikv would read the part before '.' or ':' as the tenant; set tenant" % user)
        self.add_secret(password)
        outcome = probe_login(self.sql_params, self.tenant, user, password)
        if outcome == "refused" and not self.has_role_catalog:
            # With PD down pg-tikv refuses every login to a tenant it has not
            # cached, like a wrong password (reference pg-tikv-server.md §1.4a):
            # a statement, which needs a timestamp from PD, proves PD was up.
            self.execute("SELECT 1", what="check that pg-tikv still reaches PD", record=False)
        return outcome

    # ---- role writes ----

    def _options_sql(self, user, attrs, password=None, conn_limit=None):
        parts, shown = [], []
        for key in ROLE_ATTRIBUTES:
            val = attrs.get(key)
            if val is not None:
                kw = _ATTR_KEYWORDS[key][0 if val else 1]
                parts.append(kw)
                shown.append(kw)
        if conn_limit is not None:
            parts.append("CONNECTION LIMIT %d" % int(conn_limit))
            shown.append("CONNECTION LIMIT %d" % int(conn_limit))
        if password is not None:
            parts.append("PASSWORD " + self.password_sql(user, password))
            shown.append("PASSWORD " + MASKED_LITERAL)
        return " ".join(parts), " ".join(shown)

    def _guard(self, text):
        if not self.has_role_catalog and copy_hijack_risk(text):
            raise SQLClientError(
                "refusing to send this statement: its text contains 'COPY ... FROM STDIN' or ' FROM STDIN', "
                "which pg-tikv intercepts before parsing; "
                "choose another name or password"
            )

    def plan_create(self, user, attrs=None, password=None, conn_limit=None):
        """Statements that create a role: list of (text, masked_text).

        CREATE ROLE, never CREATE USER (pg-tikv cannot parse it, §0.4). pg-tikv
        parses and discards CONNECTION LIMIT on CREATE (§3.1) but stores it on
        ALTER (§3.2), so there it follows as a second statement.
        """
        attrs = dict(attrs or {})
        opts, shown = self._options_sql(user, attrs, password=password, conn_limit=conn_limit if self.has_role_catalog else None)
        head = "CREATE ROLE %s" % quote_ident(user)
        plan = [(head + (" WITH " + opts if opts else ""), head + (" WITH " + shown if shown else ""))]
        if conn_limit is not None and not self.has_role_catalog:
            plan.extend(self.plan_alter(user, conn_limit=conn_limit))
        return plan

    def plan_alter(self, user, attrs=None, password=None, conn_limit=None):
        """One ALTER ROLE with every change, or [] when there is nothing to send."""
        opts, shown = self._options_sql(user, dict(attrs or {}), password=password, conn_limit=conn_limit)
        if not opts:
            return []
        head = "ALTER ROLE %s WITH " % quote_ident(user)
        return [(head + opts, head + shown)]

    def plan_drop(self, user):
        """DROP ROLE without IF EXISTS/CASCADE (CASCADE does not parse on pg-tikv, §3.3)."""
        text = "DROP ROLE %s" % quote_ident(user)
        return [(text, text)]

    def run_plan(self, plan):
        for text, _shown in plan:
            self._guard(text)
        for text, shown in plan:
            self.execute(text, masked=shown, what=shown.split(" WITH ", 1)[0])
            self.writes.append(scrub(shown, self._secrets))

    def create_role(self, user, attrs=None, password=None, conn_limit=None):
        self.run_plan(self.plan_create(user, attrs, password, conn_limit))

    def alter_role(self, user, attrs=None, password=None, conn_limit=None):
        plan = self.plan_alter(user, attrs, password, conn_limit)
        self.run_plan(plan)
        return bool(plan)

    def set_password(self, user, password):
        """ALTER ROLE "user" WITH PASSWORD <literal correct for the server kind>."""
        return self.alter_role(user, password=password)

    def set_login(self, user, can_login):
        """ALTER ROLE … LOGIN / NOLOGIN."""
        return self.alter_role(user, attrs={"login": bool(can_login)})

    def drop_role(self, user):
        """DROP ROLE (no CASCADE: pg-tikv cannot parse it, §3.3). Returns False if already gone."""
        try:
            self.run_plan(self.plan_drop(user))
        except StatementError as e:
            if e.kind == "missing":
                return False
            raise
        return True
